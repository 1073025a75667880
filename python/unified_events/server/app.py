"""One node: one uvloop loop serving WebSocket (picows) and HTTP (granian, embedded RSGI)."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from pathlib import Path

from granian.constants import Interfaces
from granian.server.embed import Server as GranianServer
from picows import ws_create_server

from ..cold.supervisor import start_archiver
from ..config import Config
from ..security import check_listeners
from ..security.http_guard import GuardedApp
from ..security.oauth import OAuth
from ..security.tls import granian_tls, server_ssl_context
from ..durable import SegmentLog
from ..stream import EventStream
from .http import HttpApp
from .ws import make_factory

log = logging.getLogger("unified_events")

# Reap peers that stopped answering: ws.Heartbeat, one timer for all connections (not picows'
# auto-ping, which runs a task per connection).
_AUTO_PING_IDLE_S = 20
_AUTO_PING_REPLY_S = 10
# Memory per idle connection (bench/README.md, connections scenario). picows' read buffer starts at
# 16 KiB per connection by default; 2 KiB (its minimum) holds any control frame and grows by
# doubling for a larger one. aiofastnet's transports cost about 5 KiB more per connection than
# uvloop's own. A plain LoggerAdapter stops picows from creating a child Logger per connection.
_READ_BUFFER_BYTES = 2048
_PICOWS_LOGGER = logging.LoggerAdapter(logging.getLogger("picows.server"), {})


async def serve(config: Config, stream: EventStream | None = None) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    Path(config.data_dir).mkdir(parents=True, exist_ok=True)
    if stream is None:
        durable = open_durable_log(config)
        stream = EventStream(config, event_log=durable)
        # Rebuild the hot tier and the dedup window, so lastEventId replay and dedup survive a restart.
        window_ms = max(config.hot_tier_retention_ms, config.dedup_window_ms)
        kept = stream.restore(durable.recent(window_ms, config.hot_tier_max_bytes))
        log.info("durable log at position %d (%s); %d events restored to the hot tier",
                 durable.stats()["last_position"], config.durability, kept)
    await stream.start()  # refuses insecure auth settings first (security.check_startup)
    try:
        check_listeners(config)  # then TLS where it is required, before anything binds
    except Exception:
        await stream.stop(0)
        raise
    loop = asyncio.get_running_loop()

    ws_server = await ws_create_server(
        make_factory(stream, _AUTO_PING_IDLE_S, _AUTO_PING_REPLY_S), config.host, config.ws_port,
        max_frame_size=config.max_frame_bytes, enable_auto_ping=False,
        backlog=1024, ssl=server_ssl_context(config),
        read_buffer_init_size=_READ_BUFFER_BYTES, use_aiofastnet=False, logger_name=_PICOWS_LOGGER,
    )
    ws_port = ws_server.sockets[0].getsockname()[1]
    http_port = config.http_port or _free_port(config.host)
    granian = GranianServer(
        GuardedApp(HttpApp(stream), stream, OAuth.from_config(stream)), address=config.host, port=http_port,
        interface=Interfaces.RSGI, websockets=False, log_enabled=False, backlog=1024, **granian_tls(config),
    )
    http_task = loop.create_task(granian.serve())
    await _wait_listening(config.host, http_port, http_task)
    scheme = "s" if config.tls.cert_file else ""
    log.info("listening http%s://%s:%d", scheme, config.host, http_port)
    log.info("listening ws%s://%s:%d/events", scheme, config.host, ws_port)
    archiver = start_archiver(config)  # the Iceberg archiver child process (None when cold.enabled = false)

    # What start-up allocated lives as long as the process: keep it out of the cyclic GC's full
    # collections, which the publish path's allocations trigger every few seconds.
    gc.freeze()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    log.info("shutting down: draining connections for up to %d ms", config.drain_timeout_ms)
    await stream.stop()  # HTTP answers 503 while this drains
    if archiver is not None:
        await archiver.stop()
    ws_server.close()
    granian.stop()
    try:
        await asyncio.wait_for(http_task, timeout=5)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        http_task.cancel()
    log.info("stopped")


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def _wait_listening(host: str, port: int, task: asyncio.Task[None], timeout_s: float = 10.0) -> None:
    """granian binds inside its own runtime: wait until the port accepts, so the log line is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if task.done():
            task.result()  # re-raise the bind error
            raise RuntimeError(f"HTTP server exited while starting on {host}:{port}")
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.02)
    raise RuntimeError(f"HTTP server did not start listening on {host}:{port} within {timeout_s} s")


def open_durable_log(config: Config) -> SegmentLog:
    """The server's log under `data_dir/log`. Opening cuts a torn tail; recovery of the hot tier
    and dedup window happens in `serve` (`EventStream.restore`)."""
    return SegmentLog(config.data_dir, config.durability, config.durability_interval_ms,
                      config.log_segment_bytes, config.hot_tier_retention_ms)
