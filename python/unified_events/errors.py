"""Exceptions raised by unified_events."""

from .codes import INVALID_EVENT


class UnifiedEventsError(Exception):
    """Base class."""


class ConfigError(UnifiedEventsError):
    """A configuration value is invalid. The message names the key, the value and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"config error: {key} = {value!r}: {allowed}")


class EventValidationError(UnifiedEventsError):
    """An event (or its topic) was refused. `body` is the JSON error body for HTTP clients."""

    def __init__(self, message: str, body: dict[str, object] | None = None, code: str = INVALID_EVENT) -> None:
        super().__init__(message)
        self.code = code
        self.body: dict[str, object] = body if body is not None else {"error": message}


class ShuttingDownError(UnifiedEventsError):
    """The stream is stopping and accepts no new events."""


class LogUnavailableError(UnifiedEventsError, OSError):
    """The durable log failed (a write or fsync): no event can be made durable, so none is
    acknowledged until a restart. An OSError too, as the log's errors were before."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"durable log unavailable: {reason}")
        self.reason = reason
