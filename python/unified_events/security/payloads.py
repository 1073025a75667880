"""Where an event body would be published, and the strict type check of UnifiedEvent fields.

`event_topic` mirrors events.parse_body so a permission check sees the same topic the stream
will use. `strict_issues` enforces the column types of unified-event-columns.tsv (one row per
column there; the logical type decides what JSON value is accepted).
"""

from __future__ import annotations

from typing import Any

from ..events import topic_for_ns

# Columns by logical type (unified-event-columns.tsv). Every other column is a string.
_NUMBER = frozenset((
    "depth", "duration_ms", "cpu_time_ms", "http_status", "http_request_size", "http_response_size",
    "log_level_num", "metric_value", "metric_count", "metric_sum", "metric_min", "metric_max",
    "vital_value", "vital_delta", "replay_sequence", "replay_timestamp_offset", "msg_batch_size",
    "geo_latitude", "geo_longitude", "geo_asn", "bot_score", "snippet_transfer_size", "snippet_decoded_size",
    "snippet_start_time", "snippet_dns_time", "snippet_connect_time", "snippet_ttfb", "snippet_download_time",
    "snippet_blocked_time", "status_code", "hour", "schema_version", "db_version", "action_input_version",
))
_BOOLEAN = frozenset(("is_leaf", "is_root", "bot_verified"))
_JSON = frozenset((
    "data", "attributes", "properties", "context", "traits", "labels", "metric_buckets", "metric_quantiles",
    "db_before", "db_after", "replay_data",
))
# timestamp_ns travels as a decimal string or an integer (decisions.md); timestamps as ISO text or epoch ms.
_STRING_OR_NUMBER = frozenset(("timestamp_ns", "timestamp", "started_at", "ended_at", "ingested_at"))


def event_topic(body: Any) -> str | None:
    """The topic a /broadcast body (or a WS publish body) goes to; None if it cannot be told."""
    if not isinstance(body, dict):
        return None
    if body.get("event_type") or body.get("event_name"):
        ns = body.get("ns") or "default"
        return topic_for_ns(ns) if isinstance(ns, str) else None
    event = body.get("event")
    topic = body.get("topic") or (event.get("topic") if isinstance(event, dict) else None) or "default"
    return topic if isinstance(topic, str) else None


def strict_issues(body: Any) -> list[dict[str, Any]]:
    """Type errors of a UnifiedEvent body, each naming its field. Legacy bodies are not checked."""
    if not isinstance(body, dict) or not (body.get("event_type") or body.get("event_name")):
        return []
    issues = []
    for name, value in body.items():
        if value is None:
            continue
        expected = _expected(name)
        if expected is not None and not _matches(expected, value):
            issues.append({"code": "invalid_type", "path": [name], "expected": expected,
                           "received": _json_type(value), "message": f"{name} must be {_article(expected)}"})
    return issues


def _expected(name: str) -> str | None:
    if name in _NUMBER:
        return "number"
    if name in _BOOLEAN:
        return "boolean"
    if name in _JSON:
        return None  # any JSON value (stored as JSON text)
    if name in _STRING_OR_NUMBER:
        return "string or number"
    if name in _STRINGS:
        return "string"
    return None  # an unknown key passes through (lazy schema)


def _matches(expected: str, value: Any) -> bool:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == "number":
        return is_number
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "string or number":
        return is_number or isinstance(value, str)
    return isinstance(value, str)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _article(expected: str) -> str:
    return "an " + expected if expected[0] in "aeiou" else "a " + expected


_STRINGS = frozenset((
    "id", "event_type", "event_name", "ns", "trace_id", "span_id", "parent_id", "root_id", "session_id",
    "correlation_id", "transaction_id", "workflow_id", "batch_id", "outcome", "outcome_reason", "event_source",
    "visibility", "service_name", "service_version", "service_namespace", "service_instance", "host_name",
    "host_id", "container_id", "k8s_namespace", "k8s_pod", "k8s_deployment", "cloud_provider", "cloud_region",
    "cloud_zone", "actor_id", "actor_type", "actor_name", "anonymous_id", "resource_type", "resource_id",
    "resource_name", "resource_ns", "resource_version", "action_verb", "action_target", "action_durability",
    "http_method", "http_url", "http_host", "http_path", "http_query", "http_protocol",
    "http_content_type", "http_user_agent", "http_referrer", "rpc_system", "rpc_service", "rpc_method",
    "db_system", "db_name", "db_table", "db_operation", "db_statement", "db_row_id", "db_lsn", "rpc_status",
    "msg_system", "msg_destination", "msg_operation", "msg_message_id", "log_level", "log_message",
    "log_logger", "error_type", "error_message", "error_stack", "metric_name", "metric_type", "metric_unit",
    "vital_name", "vital_rating", "vital_element", "vital_load_state", "nav_type", "page_title", "page_search",
    "replay_type", "replay_source", "snippet_request_id", "snippet_resource_type", "snippet_initiator",
    "snippet_priority", "snippet_cache_state", "geo_country", "geo_region", "geo_city", "geo_postal",
    "geo_timezone", "geo_colo", "geo_as_org", "device_type", "device_brand", "device_model", "os_name",
    "os_version", "client_type", "client_name", "client_version", "screen_size", "campaign_source",
    "campaign_medium", "campaign_name", "campaign_term", "campaign_content", "campaign_id", "ab_test_id",
    "ab_variant", "biz_step", "biz_disposition", "biz_transaction", "biz_location", "biz_read_point",
    "do_class", "do_id", "do_method", "day",
))
