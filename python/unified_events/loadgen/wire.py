"""What the harness puts on the wire and how it reads it back.

Each published event carries, at the front of its payload, the topic index `bk`, the per-topic
sequence number `bs` and the due time `bt` (epoch ns). The payload is padded with `bp` to the
requested size. Servers keep the payload's key order (orjson on both sides), so a subscriber finds
the three numbers with one regex instead of parsing the JSON: that keeps the client's cost per
frame low enough for one process to follow tens of thousands of frames per second.

`bt` is when the event was *due* by the publisher's schedule, not when it was sent: a publisher
that falls behind shows up as latency instead of hiding it (no coordinated omission).
"""

from __future__ import annotations

import re

EVENT_RE = re.compile(rb'"bk":(\d+),"bs":(\d+),"bt":(\d+)')
# Frames the harness counts apart from events (original-system.md §3.5 frame types).
BACKPRESSURE_MARK = b'"backpressure"'
SHUTDOWN_MARK = b'"type":"shutdown"'

TOPIC_PREFIX = "bench"


def topic_name(index: int) -> str:
    return f"{TOPIC_PREFIX}.t{index}"


def pattern_for_all() -> str:
    return f"{TOPIC_PREFIX}.*"


def event_id(tag: str, topic: int, seq: int) -> str:
    return f"{tag}-{topic}-{seq}"


def padding(payload_bytes: int) -> str:
    """Pad so the payload object is about `payload_bytes` long (the fixed part is ~60 bytes)."""
    return "x" * max(0, payload_bytes - 60)


def event_body(tag: str, topic: int, seq: int, due_ns: int, pad: str) -> bytes:
    """The legacy body `{"topic","event":{id,type,payload}}` shared by POST /broadcast and the
    WebSocket publish frame (without the `"type":"publish"` wrapper)."""
    return (b'{"topic":"%s","event":{"id":"%s","type":"bench","payload":{"bk":%d,"bs":%d,"bt":%d,"bp":"%s"}}}'
            % (topic_name(topic).encode(), event_id(tag, topic, seq).encode(), topic, seq, due_ns, pad.encode()))


def publish_frame(tag: str, topic: int, seq: int, due_ns: int, pad: str) -> bytes:
    return (b'{"type":"publish","topic":"%s","event":{"id":"%s","type":"bench",'
            b'"payload":{"bk":%d,"bs":%d,"bt":%d,"bp":"%s"}}}'
            % (topic_name(topic).encode(), event_id(tag, topic, seq).encode(), topic, seq, due_ns, pad.encode()))
