"""Publishers: they send numbered events the scheduler in `run.py` hands them.

WebSocket publishers send one `publish` frame per event on a picows connection (the baseline
server understands only this). HTTP publishers send everything that became due since their last
request as one `POST /broadcast` array, and retry a failed request with the same events (same
ids, so the server's dedup makes the retry safe): that is how publishing rides through a server
restart in the `recovery` scenario.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import quote

import orjson

from .httpc import HttpClient
from .wire import event_body, publish_frame

Item = tuple[int, int, int]  # (topic index, sequence number, due time in epoch ns)

_HTTP_MAX_BATCH = 1000        # the server's default max_batch_events
_HTTP_RETRY_S = 0.05


class WsPublisher:
    def __init__(self, ws_url: str, tag: str, pad: str, token: str | None) -> None:
        sep = "&" if "?" in ws_url else "?"
        self.url = ws_url + (f"{sep}token={quote(token)}" if token else "")
        self.tag, self.pad = tag, pad
        self.transport: Any = None
        self.sent = self.acks = self.errors = self.unsent = 0
        self.error_samples: list[str] = []

    async def connect(self) -> None:
        from picows import WSListener, WSMsgType, ws_connect

        pub = self

        class Listener(WSListener):  # type: ignore[misc]
            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                if frame.msg_type == WSMsgType.CLOSE:
                    transport.send_close(frame.get_close_code(), frame.get_close_message())
                    transport.disconnect()
                    return
                data = frame.get_payload_as_bytes()
                if data.startswith(b'{"type":"ack"'):
                    pub.acks += 1
                elif data.startswith(b'{"type":"error"'):
                    pub.errors += 1
                    if len(pub.error_samples) < 5:
                        pub.error_samples.append(data[:300].decode("utf-8", "replace"))

            def on_ws_disconnected(self, transport: Any) -> None:
                pub.transport = None

        self.transport, _ = await ws_connect(Listener, self.url, websocket_handshake_timeout=10)

    def backlog(self) -> int:
        return 0  # sends go straight to the socket

    def add(self, items: list[Item]) -> None:
        from picows import WSMsgType

        transport = self.transport
        if transport is None:  # lost its connection: these events are never published
            self.unsent += len(items)
            return
        tag, pad = self.tag, self.pad
        for topic, seq, due in items:
            transport.send(WSMsgType.TEXT, publish_frame(tag, topic, seq, due, pad))
        self.sent += len(items)

    def stats(self) -> dict[str, Any]:
        return {"sent": self.sent, "acked": self.acks, "errors": self.errors, "unsent": self.unsent,
                "error_samples": self.error_samples}

    async def close(self) -> None:
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.disconnect()


class HttpPublisher:
    def __init__(self, http_url: str, tag: str, pad: str, token: str | None) -> None:
        self.client = HttpClient(http_url)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.tag, self.pad = tag, pad
        self.pending: list[Item] = []
        self.wake = asyncio.Event()
        self.closing = False
        self.sent = self.acks = self.errors = self.retries = self.requests = 0
        self.error_samples: list[str] = []
        self.task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._sender())

    def backlog(self) -> int:
        return len(self.pending)

    def add(self, items: list[Item]) -> None:
        self.pending.extend(items)
        self.wake.set()

    async def _sender(self) -> None:
        # Runs until close() and the backlog is empty (or close() gives up on it).
        while not (self.closing and not self.pending):
            if not self.pending:
                self.wake.clear()
                await self.wake.wait()
                continue
            batch = self.pending[:_HTTP_MAX_BATCH]
            body = b"[" + b",".join(event_body(self.tag, t, s, d, self.pad) for t, s, d in batch) + b"]"
            try:
                status, payload = await self.client.request("POST", "/broadcast", body, self.headers)
            except Exception:  # refused or reset: the server is down or restarting; retry the same events
                self.retries += 1
                await asyncio.sleep(_HTTP_RETRY_S)
                continue
            self.requests += 1
            if status == 503:  # shutting down: the same events again, after a pause
                self.retries += 1
                await asyncio.sleep(_HTTP_RETRY_S)
                continue
            del self.pending[:len(batch)]
            self.sent += len(batch)
            if status == 200:
                with contextlib.suppress(Exception):
                    accepted = int(orjson.loads(payload)["accepted"])
                    self.acks += accepted
                    self.errors += len(batch) - accepted
            else:
                self.errors += len(batch)
                if len(self.error_samples) < 5:
                    self.error_samples.append(f"HTTP {status}: {payload[:300].decode('utf-8', 'replace')}")

    def stats(self) -> dict[str, Any]:
        return {"sent": self.sent, "acked": self.acks, "errors": self.errors, "retries": self.retries,
                "requests": self.requests, "unsent": len(self.pending), "error_samples": self.error_samples}

    async def close(self, timeout_s: float = 10.0) -> None:
        """Send what is still pending (bounded by `timeout_s`), then stop."""
        self.closing = True
        self.wake.set()
        if self.task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self.task), timeout_s)
            self.task.cancel()
        self.client.close()
