"""Baseline for bench/fanout.py: the broadcast server a Python user would write with `websockets`.

websockets 17 (asyncio implementation) on uvloop when available, orjson for JSON, and
`websockets.broadcast()` for the fan-out: the library's recommended way to send one message to
many connections. It speaks the same subset of the unified-events protocol the benchmark uses:

* subscribers connect to `ws://HOST:PORT/events?topic=T` (several `topic=` allowed) and get a
  welcome frame `{"type":"connected","connectionId":...,"topics":[...]}`;
* a client publishes with `{"type":"publish","topic":T,"event":{"id","type","payload"}}`;
* every subscriber of exactly topic T receives
  `{"id":...,"type":...,"topic":T,"payload":{...},"timestamp":<epoch ms>}` as a text frame.

No acks, no dedup, no persistence, no rate limits: the cheapest correct thing.

    python bench/baseline_server.py --port 9001
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import sys
import time
from urllib.parse import parse_qs, urlsplit

import orjson
import websockets
from websockets.asyncio.server import ServerConnection, serve

SUBSCRIBERS: dict[str, set[ServerConnection]] = {}
_ids = itertools.count(1)


async def handler(ws: ServerConnection) -> None:
    url = urlsplit(ws.request.path if ws.request is not None else "/")
    if url.path not in ("/events", "/"):
        await ws.close(1008, "unknown path")
        return
    topics = list(dict.fromkeys(parse_qs(url.query).get("topic", [])))
    for topic in topics:
        SUBSCRIBERS.setdefault(topic, set()).add(ws)
    try:
        await ws.send(orjson.dumps({"type": "connected", "connectionId": f"c{next(_ids)}", "topics": topics}),
                      text=True)
        async for raw in ws:
            try:
                message = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(message, dict) or message.get("type") != "publish":
                continue
            topic = message.get("topic")
            event = message.get("event") or {}
            if not isinstance(topic, str) or not isinstance(event, dict):
                continue
            frame = orjson.dumps({
                "id": event.get("id") or f"e{next(_ids)}",
                "type": event.get("type") or "broadcast",
                "topic": topic,
                "payload": event.get("payload") or {},
                "timestamp": time.time_ns() // 1_000_000,
            })
            subscribers = SUBSCRIBERS.get(topic)
            if subscribers:
                websockets.broadcast(subscribers, frame, text=True)
    except websockets.ConnectionClosed:
        pass
    finally:
        for topic in topics:
            subs = SUBSCRIBERS.get(topic)
            if subs is not None:
                subs.discard(ws)
                if not subs:
                    del SUBSCRIBERS[topic]


async def main(host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(handler, host, port, compression=None, max_size=1 << 20, backlog=1024) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(f"listening ws://{host}:{bound}/events", file=sys.stderr, flush=True)
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(args.host, args.port))
    else:
        uvloop.run(main(args.host, args.port))
