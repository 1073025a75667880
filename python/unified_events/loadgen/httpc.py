"""A minimal HTTP/1.1 keep-alive client on asyncio streams: POST /broadcast and GET /metrics.

The standard library has no async HTTP client, and one connection with keep-alive is all the
harness needs; responses from the server always carry Content-Length.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import orjson


class HttpError(Exception):
    pass


class HttpClient:
    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"not an http:// URL: {base_url}")
        self.host, self.port = url.hostname, url.port or 80
        self.timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """One request; reconnects once if the kept-alive connection was closed under us."""
        async with self._lock:
            for attempt in (0, 1):
                try:
                    return await asyncio.wait_for(self._exchange(method, path, body, headers), self.timeout_s)
                except (OSError, asyncio.IncompleteReadError, HttpError):
                    self.close()
                    if attempt == 1:
                        raise
            raise AssertionError("unreachable")

    async def json(self, method: str, path: str) -> object:
        status, payload = await self.request(method, path)
        if status != 200:
            raise HttpError(f"{method} {path}: HTTP {status}")
        return orjson.loads(payload)

    async def _exchange(self, method: str, path: str, body: bytes | None,
                        headers: dict[str, str] | None) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        for key, value in (headers or {}).items():
            lines.append(f"{key}: {value}")
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise HttpError(f"bad status line {status_line!r}")
        length, close = None, False
        for line in header_lines:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key == "content-length":
                length = int(value.strip())
            elif key == "connection" and value.strip().lower() == "close":
                close = True
        if length is None:
            payload = await self._reader.read()
            close = True
        else:
            payload = await self._reader.readexactly(length)
        if close:
            self.close()
        return int(parts[1]), payload

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
