//! The fast path of `POST /broadcast` with a JSON array of legacy events: parse, validate,
//! default, and build each event's frame and hot row in one pass over the body, the same bytes
//! `events.accept_legacy` splices. Anything this does not handle exactly as the Python path
//! would (another shape, a value Python would reject or re-serialise differently) makes the
//! whole batch `None`, and the caller runs the Python path, which owns every error message.

use std::borrow::Cow;
use std::io::Write;
use std::ops::Range;
use std::sync::OnceLock;

use serde_json::value::RawValue;

use super::canonical::{canonical, write_json_string};
use super::ids::{write_iso_from_ms, IdGen, MAX_ISO_MS};
use crate::hot::arrow::{Cell, COLUMN_COUNT};
use crate::hot::json::{ordered_members_sized, CowStr};
use crate::hot::{ArrowRow, EventMeta};
use crate::log::event_record::{ABSENT, HEADER_LEN, VERSION};
use crate::topic::check_topic;

/// One accepted legacy event: `events.Accepted` with ns = topic and no trace/session/correlation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyEvent {
    pub id: String,
    pub topic: String,
    pub event_type: String,
    pub timestamp_ms: i64,
    pub frame: Vec<u8>,
    pub record: Vec<u8>,
    /// Where the payload's JSON text sits in `frame`, and the ISO timestamp's text (unquoted)
    /// in `record`: the values of the Arrow row (`arrow_cells`) without parsing the row again.
    payload_in_frame: Range<usize>,
    iso_in_record: Range<usize>,
}

/// How the hot row fills a column of `events.HOT_COLUMNS` for a legacy event.
#[derive(Debug, Clone, Copy)]
enum Fill {
    Null,
    Id,
    Type,
    Topic,
    Iso,
    Data,
    Payload,
    TimestampMs,
}

/// `events.HOT_COLUMNS` then the four compatibility keys, as `events._legacy_row_template` fills
/// them (tests/test_ingest.py holds the two to the same bytes): the columns of the Arrow row too,
/// in the same order (`hot::arrow::cell_columns`, checked by a test).
const ROW: [(&str, Fill); COLUMN_COUNT] = [
    ("id", Fill::Id),
    ("event_type", Fill::Type),
    ("event_name", Fill::Type),
    ("ns", Fill::Topic),
    ("trace_id", Fill::Null),
    ("span_id", Fill::Null),
    ("parent_id", Fill::Null),
    ("session_id", Fill::Null),
    ("correlation_id", Fill::Null),
    ("depth", Fill::Null),
    ("is_leaf", Fill::Null),
    ("is_root", Fill::Null),
    ("timestamp", Fill::Iso),
    ("outcome", Fill::Null),
    ("http_url", Fill::Null),
    ("http_status", Fill::Null),
    ("duration_ms", Fill::Null),
    ("service_name", Fill::Null),
    ("vital_name", Fill::Null),
    ("vital_value", Fill::Null),
    ("vital_rating", Fill::Null),
    ("log_level", Fill::Null),
    ("log_message", Fill::Null),
    ("actor_id", Fill::Null),
    ("data", Fill::Data),
    ("attributes", Fill::Null),
    ("properties", Fill::Null),
    ("error_message", Fill::Null),
    ("http_method", Fill::Null),
    ("http_host", Fill::Null),
    ("metric_name", Fill::Null),
    ("metric_value", Fill::Null),
    ("metric_unit", Fill::Null),
    ("topic", Fill::Topic),
    ("type", Fill::Type),
    ("payload", Fill::Payload),
    ("timestamp_ms", Fill::TimestampMs),
];

/// The members of a JSON object, or None when it is not one or repeats a key (Python would keep
/// the last value; the fast path does not go there).
fn members(raw: &str) -> Option<Vec<(Cow<'_, str>, &RawValue)>> {
    let members = ordered_members_sized(raw, 5)?; // a legacy event has at most 5 members we read
    for (i, (key, _)) in members.iter().enumerate() {
        if members[..i].iter().any(|(k, _)| k == key) {
            return None;
        }
    }
    Some(members)
}

/// A member that must be a JSON string or null: Some(None) for null, None for anything else.
fn opt_string(raw: Option<&RawValue>) -> Option<Option<Cow<'_, str>>> {
    match raw.map(RawValue::get) {
        None | Some("null") => Some(None),
        Some(text) if text.starts_with('"') => {
            let CowStr(s) = serde_json::from_str::<CowStr<'_>>(text).ok()?;
            Some(Some(s))
        }
        Some(_) => None,
    }
}

/// Python's `a or b` for strings: an empty string counts as missing.
fn truthy(s: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    s.filter(|s| !s.is_empty())
}

/// The serialised values of one event, spliced into its frame and row.
struct Values<'a> {
    id: &'a [u8],
    event_type: &'a [u8],
    topic: &'a [u8],
    payload: &'a [u8],
    data: &'a [u8],
    iso: &'a [u8],
    timestamp: &'a [u8],
}

/// The frame, and where the payload sits in it.
fn frame(v: &Values<'_>) -> (Vec<u8>, Range<usize>) {
    let mut out =
        Vec::with_capacity(64 + v.id.len() + v.event_type.len() + v.topic.len() + v.payload.len());
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(v.id);
    out.extend_from_slice(b",\"type\":");
    out.extend_from_slice(v.event_type);
    out.extend_from_slice(b",\"topic\":");
    out.extend_from_slice(v.topic);
    out.extend_from_slice(b",\"payload\":");
    let payload = out.len()..out.len() + v.payload.len();
    out.extend_from_slice(v.payload);
    out.extend_from_slice(b",\"timestamp\":");
    out.extend_from_slice(v.timestamp);
    out.push(b'}');
    (out, payload)
}

/// `ROW` as literal text between the filled values: the null columns are part of the text.
struct RowTemplate {
    parts: Vec<(Vec<u8>, Fill)>,
    tail: Vec<u8>,
}

fn row_template() -> &'static RowTemplate {
    static TEMPLATE: OnceLock<RowTemplate> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let (mut parts, mut text) = (Vec::new(), b"{".to_vec());
        for (i, (name, fill)) in ROW.iter().enumerate() {
            if i > 0 {
                text.push(b',');
            }
            text.extend_from_slice(format!("\"{name}\":").as_bytes());
            match fill {
                Fill::Null => text.extend_from_slice(b"null"),
                _ => parts.push((std::mem::take(&mut text), *fill)),
            }
        }
        text.push(b'}');
        RowTemplate { parts, tail: text }
    })
}

/// The hot row, and where the ISO timestamp (unquoted) sits in it.
fn row(v: &Values<'_>) -> (Vec<u8>, Range<usize>) {
    let template = row_template();
    let mut out = Vec::with_capacity(700 + 2 * v.payload.len());
    let mut iso = 0..0;
    for (text, fill) in &template.parts {
        out.extend_from_slice(text);
        match fill {
            Fill::Null => out.extend_from_slice(b"null"),
            Fill::Id => out.extend_from_slice(v.id),
            Fill::Type => out.extend_from_slice(v.event_type),
            Fill::Topic => out.extend_from_slice(v.topic),
            Fill::Iso => {
                out.push(b'"');
                iso = out.len()..out.len() + v.iso.len();
                out.extend_from_slice(v.iso);
                out.push(b'"');
            }
            Fill::Data => out.extend_from_slice(v.data),
            Fill::Payload => out.extend_from_slice(v.payload),
            Fill::TimestampMs => out.extend_from_slice(v.timestamp),
        }
    }
    out.extend_from_slice(&template.tail);
    (out, iso)
}

/// Falsy payloads (Python truthiness of what `orjson.loads` gives) have no `data` column.
fn is_falsy(payload_json: &[u8]) -> bool {
    matches!(payload_json, b"{}" | b"[]" | b"\"\"" | b"0" | b"false")
}

/// One body `{"topic"?, "event"?: {...}}`, as `events.parse_body` would accept it, or None.
fn accept(
    body: &RawValue,
    now_ms: i64,
    ids: &mut IdGen,
    scratch: &mut Vec<u8>,
) -> Option<LegacyEvent> {
    let body = members(body.get())?;
    let (mut topic, mut event) = (None, None);
    for (key, value) in &body {
        match key.as_ref() {
            "topic" => topic = Some(*value),
            "event" => event = Some(*value),
            _ => return None, // `event_type`/`event_name` make it a UnifiedEvent; others are rare
        }
    }
    let event = match event.map(RawValue::get) {
        None | Some("null") => Vec::new(),
        Some(text) => members(text)?,
    };
    let field = |name: &str| event.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let topic = match truthy(opt_string(topic)?) {
        Some(t) => t,
        None => truthy(opt_string(field("topic"))?).unwrap_or(Cow::Borrowed("default")),
    };
    check_topic(&topic).ok()?;
    let event_id = match truthy(opt_string(field("id"))?) {
        Some(id) => id.into_owned(),
        None => ids.generate(now_ms),
    };
    let event_type = truthy(opt_string(field("type"))?).unwrap_or(Cow::Borrowed("broadcast"));
    let timestamp_ms = match field("timestamp").map(RawValue::get) {
        None | Some("null") | Some("\"\"") => now_ms,
        Some(text) => {
            let first = text.as_bytes()[0];
            // Integers only; floats, ISO strings and booleans take the Python path.
            if !(first == b'-' || first.is_ascii_digit()) || text.contains(['.', 'e', 'E']) {
                return None;
            }
            text.parse::<i64>().ok()?
        }
    };
    if !(0..=MAX_ISO_MS).contains(&timestamp_ms) {
        return None;
    }
    // Every serialised value goes into one scratch buffer, reused across the batch.
    scratch.clear();
    let payload = {
        let start = scratch.len();
        match field("payload").map(RawValue::get) {
            None | Some("null") => scratch.extend_from_slice(b"{}"),
            Some(text) => canonical(text, scratch)?,
        }
        start..scratch.len()
    };
    let data = {
        let start = scratch.len();
        if is_falsy(&scratch[payload.clone()]) {
            scratch.extend_from_slice(b"null");
        } else {
            // orjson.dumps(payload_json.decode()): the payload's JSON as a JSON string. Compact
            // JSON holds no raw control characters, so only quotes and backslashes get escaped.
            scratch.push(b'"');
            for i in payload.clone() {
                let b = scratch[i];
                if b == b'"' || b == b'\\' {
                    scratch.push(b'\\');
                }
                scratch.push(b);
            }
            scratch.push(b'"');
        }
        start..scratch.len()
    };
    let mut json_string = |text: &str| {
        let start = scratch.len();
        write_json_string(scratch, text);
        start..scratch.len()
    };
    let (id_json, type_json, topic_json) = (
        json_string(&event_id),
        json_string(&event_type),
        json_string(&topic),
    );
    let iso = {
        let start = scratch.len();
        write_iso_from_ms(scratch, timestamp_ms);
        start..scratch.len()
    };
    let timestamp = {
        let start = scratch.len();
        write!(scratch, "{timestamp_ms}").expect("Vec write");
        start..scratch.len()
    };
    let values = Values {
        id: &scratch[id_json],
        event_type: &scratch[type_json],
        topic: &scratch[topic_json],
        payload: &scratch[payload],
        data: &scratch[data],
        iso: &scratch[iso],
        timestamp: &scratch[timestamp],
    };
    let (frame, payload_in_frame) = frame(&values);
    let (record, iso_in_record) = row(&values);
    Some(LegacyEvent {
        frame,
        record,
        payload_in_frame,
        iso_in_record,
        id: event_id,
        topic: topic.into_owned(),
        event_type: event_type.into_owned(),
        timestamp_ms,
    })
}

/// Every event of a body holding a JSON array of 1..=`max_events` legacy events, or None (then
/// the Python path decides, errors included). `now_ms` stands for "now" (ids and timestamps).
pub fn accept_legacy_batch(
    body: &[u8],
    max_events: usize,
    now_ms: i64,
    ids: &mut IdGen,
) -> Option<Vec<LegacyEvent>> {
    ids.reseed_if_forked();
    let text = std::str::from_utf8(body).ok()?;
    let items: Vec<&RawValue> = serde_json::from_str(text).ok()?;
    if items.is_empty() || items.len() > max_events {
        return None;
    }
    let mut scratch = Vec::with_capacity(1024);
    items
        .iter()
        .map(|item| accept(item, now_ms, ids, &mut scratch))
        .collect()
}

impl LegacyEvent {
    /// The values of the event's Arrow row (`hot::arrow`), one per column of `ROW`: what
    /// `ColumnStore::push` reads back from `record`, taken from the values the row was built
    /// from. A legacy row has no `extra` (its payload has a column).
    pub fn arrow_cells(&self) -> [Option<Cell<'_>>; COLUMN_COUNT] {
        fn text(text: &str) -> Option<Cell<'_>> {
            Some(Cell::Text(Cow::Borrowed(text)))
        }
        let utf8 = |bytes| std::str::from_utf8(bytes).expect("built from strings");
        let payload = utf8(&self.frame[self.payload_in_frame.clone()]);
        let iso = utf8(&self.record[self.iso_in_record.clone()]);
        std::array::from_fn(|i| match ROW[i].1 {
            Fill::Null => None,
            Fill::Id => text(&self.id),
            Fill::Type => text(&self.event_type),
            Fill::Topic => text(&self.topic),
            Fill::Iso => text(iso),
            // `data` is the payload's JSON as a JSON string: unquoted, the payload's text.
            Fill::Data if is_falsy(payload.as_bytes()) => None,
            Fill::Data | Fill::Payload => text(payload),
            Fill::TimestampMs => Some(Cell::Int(self.timestamp_ms)),
        })
    }

    /// The event's Arrow row for `HotTier::insert_cells`. `record` is the form the columns
    /// rebuild: the template's keys and nulls are `row_json`'s, its strings are escaped by
    /// serde_json as `row_json`'s are, and `data` (the payload's compact JSON, which holds no
    /// control characters, with only quotes and backslashes escaped) is what serde_json writes
    /// for that text. The tests hold the two to the same bytes.
    pub fn arrow_row(&self) -> ArrowRow<'_> {
        ArrowRow {
            cells: self.arrow_cells(),
            extra: None,
            record_rebuilds: true,
        }
    }

    /// What the hot tier indexes the event by: a legacy event has no trace, session or
    /// correlation id, and its namespace is its topic.
    pub fn hot_meta(&self) -> EventMeta<'_> {
        EventMeta {
            id: &self.id,
            topic: &self.topic,
            event_type: &self.event_type,
            ns: &self.topic,
            timestamp_ms: self.timestamp_ms,
            trace_id: None,
            session_id: None,
            correlation_id: None,
        }
    }

    /// The fields of the durable-log record, in `records.encode` order.
    fn record_fields(&self) -> [Option<&[u8]>; 9] {
        [
            Some(self.id.as_bytes()),
            Some(self.topic.as_bytes()),
            Some(self.event_type.as_bytes()),
            Some(self.topic.as_bytes()), // ns
            None,
            None,
            None,
            Some(&self.frame),
            Some(&self.record),
        ]
    }

    /// The length of the payload `encode_record` appends.
    pub fn record_len(&self) -> usize {
        HEADER_LEN
            + self
                .record_fields()
                .iter()
                .flatten()
                .map(|f| f.len())
                .sum::<usize>()
    }

    /// The durable-log record payload (`records.encode`), appended to `out`. The caller sizes
    /// `out` (`record_len`): a batch's records go into one buffer reserved once.
    pub fn encode_record(&self, accepted_at_ms: i64, out: &mut Vec<u8>) {
        let fields = self.record_fields();
        out.push(VERSION);
        out.extend_from_slice(&accepted_at_ms.to_le_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_le_bytes());
        for field in &fields {
            let len = field.map_or(ABSENT, |f| f.len() as u32);
            out.extend_from_slice(&len.to_le_bytes());
        }
        for field in fields.iter().flatten() {
            out.extend_from_slice(field);
        }
    }
}

#[cfg(test)]
#[path = "legacy_tests.rs"]
mod tests;
