"""unified-events: a self-hosted real-time event server (WebSocket fan-out, hot-tier queries).

Embedding:

    from unified_events import EventStream
    stream = EventStream()
    await stream.start()
    await stream.publish({"event_type": "log", "event_name": "app.start", "ns": "app"})
    async for event in stream.subscribe("app.*"): ...
"""

from .config import Config, load_config
from .errors import ConfigError, EventValidationError, ShuttingDownError, UnifiedEventsError
from .stream import EventStream, PublishResult, __version__

__all__ = [
    "Config",
    "ConfigError",
    "EventStream",
    "EventValidationError",
    "PublishResult",
    "ShuttingDownError",
    "UnifiedEventsError",
    "__version__",
    "load_config",
]
