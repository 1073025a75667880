"""Wire-protocol constants in one place: close codes, frame texts, error codes.

Close codes (WebSocket):
  1000 normal · 1001 server shutdown · 1008 policy violation · 1009 frame too big
  1013 slow consumer (try again later; reconnect with lastEventId to replay)
  4000-4999 are ours: 4001 token expired · 4003 forbidden (async validator refused a topic)
  4029 too many connections from one address · 4401 unauthorized (async validator refused the token)
"""

CLOSE_SHUTDOWN = 1001
CLOSE_SLOW_CONSUMER = 1013
CLOSE_TOKEN_EXPIRED = 4001
CLOSE_FORBIDDEN = 4003
CLOSE_TOO_MANY_CONNECTIONS = 4029
CLOSE_UNAUTHORIZED = 4401

SHUTDOWN_CLOSE_REASON = "Server shutdown"
SHUTDOWN_REASON = "Server is shutting down"
SLOW_CONSUMER_REASON = "Slow consumer: queued bytes over the cap for too long"

# Error frame codes (`{"type":"error","code":...}`).
PARSE_ERROR = "PARSE_ERROR"
INVALID_MESSAGE = "INVALID_MESSAGE"
INVALID_TOPIC = "INVALID_TOPIC"
MAX_TOPICS_EXCEEDED = "MAX_TOPICS_EXCEEDED"
INVALID_EVENT = "INVALID_EVENT"
PUBLISH_FAILED = "PUBLISH_FAILED"

# Texts the original system's clients and tests depend on (original-system.md §2, §3.5).
PARSE_ERROR_MESSAGE = "Invalid JSON message"
BACKPRESSURE_MESSAGE = "Messages being dropped due to backpressure"
REPLAY_TRUNCATED = "REPLAY_TRUNCATED"
REPLAY_TRUNCATED_MESSAGE = "Requested timestamp is outside hot tier retention window"
UPGRADE_REQUIRED = "Upgrade Required"
MAX_CONNECTIONS = "Service Unavailable - Max Connections"
MAX_TOPICS = "Service Unavailable - Max Topics"
SHUTTING_DOWN = "Service Unavailable - Shutting Down"
UNAUTHORIZED = "Unauthorized"
FORBIDDEN_TOPIC = "Forbidden - Topic not allowed"
TOO_MANY_CONNECTIONS = "Too many connections from this address"

ERRORS_TOPIC = "_errors"
