"""Where the archiver reads events from: the durable log, or an NDJSON file (tests, imports, bench).

A source returns records (`Records`: a position and raw bytes each) with positions strictly
increasing, starting after the given position (`None` = from the beginning); `decode(raw)` turns a
record into an `Accepted` and may raise (the archiver then dead-letters the record with the reason).
The durable log's records (`_core.RawRecords`) stay in a Rust buffer: the archiver converts them
there (cold/fast.py) and asks for the bytes of only the few records Python must convert.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

import orjson

from ..events import Accepted, parse_body

if TYPE_CHECKING:
    from .. import _core


class Records(Protocol):
    """What a read returns (`_core.RawRecords` has the same methods)."""

    def __len__(self) -> int: ...

    @property
    def nbytes(self) -> int:
        """Bytes of all the records (what a read's max_bytes limits)."""

    def position(self, i: int) -> int: ...

    def payload(self, i: int) -> bytes: ...

    def records(self) -> list[tuple[int, bytes]]:
        """Every record as (position, raw bytes)."""


class RecordList:
    """`Records` over a list of (position, raw bytes), for sources that make Python bytes anyway."""

    def __init__(self, records: list[tuple[int, bytes]]) -> None:
        self._records = records
        self.nbytes = sum(len(raw) for _, raw in records)

    def __len__(self) -> int:
        return len(self._records)

    def position(self, i: int) -> int:
        return self._records[i][0]

    def payload(self, i: int) -> bytes:
        return self._records[i][1]

    def records(self) -> list[tuple[int, bytes]]:
        return self._records


class LogSource(Protocol):
    def read(self, after: int | None, max_records: int, max_bytes: int) -> Records: ...

    def decode(self, raw: bytes) -> tuple[Accepted, int | None]:
        """The event and the wall clock (epoch ms) the server accepted it at, when known."""

    def accepted_at_ms(self, raw: bytes) -> int | None:
        """Only the acceptance time (cheap): the age of the oldest pending record is the lag."""

    def head(self) -> int | None:
        """The last position available to read, when the source knows it."""

    def describe(self) -> str: ...


class NdjsonSource:
    """One event body per line (the JSON a client would POST to /broadcast); the position is the
    line number, from 1. Only complete lines are read, so a writer may append while we read."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        # (position, byte offset after that line): where the next read resumes without rescanning
        self._cursor: tuple[int, int] = (0, 0)

    def describe(self) -> str:
        return f"ndjson file {self.path}"

    def read(self, after: int | None, max_records: int, max_bytes: int) -> RecordList:
        return RecordList(self._read(after, max_records, max_bytes))

    def _read(self, after: int | None, max_records: int, max_bytes: int) -> list[tuple[int, bytes]]:
        after = after or 0
        position, offset = self._cursor if self._cursor[0] <= after else (0, 0)
        out: list[tuple[int, bytes]] = []
        size = 0
        try:
            fh = self.path.open("rb")
        except FileNotFoundError:
            return out
        with fh:
            fh.seek(offset)
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # a line still being written
                position += 1
                offset += len(line)
                if position <= after:
                    self._cursor = (position, offset)
                    continue
                if line.strip():
                    out.append((position, line.rstrip(b"\n")))
                    size += len(line)
                self._cursor = (position, offset)
                if len(out) >= max_records or size >= max_bytes:
                    break
        return out

    def decode(self, raw: bytes) -> tuple[Accepted, int | None]:
        return parse_body(orjson.loads(raw)), None

    def accepted_at_ms(self, raw: bytes) -> int | None:
        return None

    def head(self) -> int | None:
        return None


class DurableLogSource:
    """The server's segmented log (`_core.LogReader`), read-only, and its record decoder."""

    # Records are durable/records.py payloads in `_core.RawRecords`: the archiver converts them in
    # Rust (cold/fast.py `convert_raw`).
    records_are_log_payloads = True

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        from .. import _core
        from ..durable import records

        self.log_dir = str(log_dir)
        self._reader = _core.LogReader(self.log_dir)
        # head() is asked from the committer thread (status.json) while the archiver reads on
        # another: a reader of its own, as one LogReader serves one call at a time.
        self._head_reader = _core.LogReader(self.log_dir)
        self._decode: Callable[[bytes], tuple[Accepted, int]] = records.decode_with_time

    def describe(self) -> str:
        return f"durable log {self.log_dir}"

    def read(self, after: int | None, max_records: int, max_bytes: int) -> _core.RawRecords:
        # No Python object per record: the payloads stay in one Rust buffer up to the converter.
        return self._reader.read_raw(after or 0, max_records, max_bytes)

    def decode(self, raw: bytes) -> tuple[Accepted, int | None]:
        accepted, accepted_at_ms = self._decode(raw)
        return accepted, accepted_at_ms or None

    def accepted_at_ms(self, raw: bytes) -> int | None:
        # durable/records.py: u8 version, then i64 accepted_at_ms (little-endian)
        return int.from_bytes(raw[1:9], "little", signed=True) or None if len(raw) >= 9 else None

    def head(self) -> int | None:
        return int(self._head_reader.last_position())
