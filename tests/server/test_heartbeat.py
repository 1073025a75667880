"""ws.Heartbeat: one timer pings idle connections and closes those that do not answer (1001),
in place of picows' per-connection auto-ping task. Also: an idle connection keeps no upgrade headers."""

from __future__ import annotations

import asyncio

from picows import WSCloseCode, WSListener, WSMsgType, ws_connect, ws_create_server

from unified_events import EventStream
from unified_events.server.ws import make_factory


class _Client(WSListener):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.close_code: int | None = None
        self.pings = 0

    def on_ws_frame(self, transport, frame) -> None:  # type: ignore[no-untyped-def]
        if frame.msg_type == WSMsgType.CLOSE:
            self.close_code = frame.get_close_code()
        elif frame.msg_type == WSMsgType.PING:
            self.pings += 1


async def _scenario() -> None:
    stream = EventStream()
    await stream.start()
    server = await ws_create_server(make_factory(stream, ping_idle_s=0.2, ping_reply_s=0.1), "127.0.0.1", 0,
                                    enable_auto_ping=False, read_buffer_init_size=2048, use_aiofastnet=False)
    port = server.sockets[0].getsockname()[1]
    url = f"ws://127.0.0.1:{port}/events?topic=a"
    alive_t, alive = await ws_connect(_Client, url)                          # answers pings (auto-pong)
    mute_t, mute = await ws_connect(_Client, url, enable_auto_pong=False)    # never answers
    await asyncio.sleep(1.0)  # ten ticks: pinged after 0.2 s idle, closed 0.1 s later without a pong
    assert mute.close_code == WSCloseCode.GOING_AWAY
    assert mute.pings >= 1
    assert alive.close_code is None and not alive_t.is_disconnected
    assert stream.connection_count == 1
    # the idle connection still gets events
    result = await stream.publish({"id": "e-1", "type": "t"}, topic="a")
    assert result.delivered_to == 1
    alive_t.disconnect()
    mute_t.disconnect()
    await asyncio.sleep(0.1)
    assert stream.connection_count == 0
    server.close()
    await stream.stop(0)


def test_heartbeat_reaps_silent_peers_and_keeps_answering_ones() -> None:
    asyncio.run(asyncio.wait_for(_scenario(), timeout=20))
