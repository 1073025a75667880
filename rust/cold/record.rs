//! A durable-log record as the converter reads it: the version-1 layout of durable/records.py,
//! and the frame JSON inside it (its `id`, `type` and payload entries, values unparsed).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::log::event_record::{ABSENT, HEADER_LEN, VERSION};

/// (accepted_at_ms, frame bytes) of a version-1 record (layout: durable/records.py), or None when
/// Python's decoder would reject it (then it dead-letters the record with its own message).
pub(super) fn split_record(payload: &[u8]) -> Option<(i64, &[u8])> {
    if payload.len() < HEADER_LEN || payload[0] != VERSION {
        return None;
    }
    let accepted_at_ms = i64::from_le_bytes(payload[1..9].try_into().ok()?);
    let mut offset = HEADER_LEN;
    let mut frame = None;
    for i in 0..9 {
        let at = 17 + 4 * i;
        let len = u32::from_le_bytes(payload[at..at + 4].try_into().ok()?);
        if len == ABSENT {
            continue;
        }
        let end = offset.checked_add(len as usize)?;
        let field = payload.get(offset..end)?;
        if i < 7 {
            std::str::from_utf8(field).ok()?; // Python decodes the seven text fields
        } else if i == 7 {
            frame = Some(field);
        }
        offset = end;
    }
    Some((accepted_at_ms, frame?))
}

/// A frame payload's entries in order, values unparsed (pairs borrowed from the frame text).
pub(super) type Entries<'a> = Vec<(&'a str, &'a RawValue)>;

/// Parse a frame: its `id` and `type`, and its payload's entries into `entries` (cleared first;
/// one vector for all the rows of a chunk, as growing a new one per row cost ~3% of a
/// conversion). None on a repeated `id`, `type` or `payload` key, a payload that is not an
/// object, a key with escapes, or anything but one JSON object.
pub(super) fn parse_frame<'a>(text: &'a str, entries: &mut Entries<'a>) -> Option<Frame<'a>> {
    entries.clear();
    let mut de = serde_json::Deserializer::from_str(text);
    let frame = FrameSeed(entries).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(frame)
}

/// The frame's `id` and `type`, and whether it had a payload (its entries parsed in the same
/// pass: the payload is most of the frame).
pub(super) struct Frame<'a> {
    pub id: Option<&'a RawValue>,
    pub kind: Option<&'a RawValue>,
    pub payload: bool,
}

struct FrameSeed<'s, 'a>(&'s mut Entries<'a>);

impl<'de> DeserializeSeed<'de> for FrameSeed<'_, 'de> {
    type Value = Frame<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Frame<'de>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FrameSeed<'_, 'de> {
    type Value = Frame<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a frame object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Frame<'de>, A::Error> {
        let mut frame = Frame {
            id: None,
            kind: None,
            payload: false,
        };
        let repeated = || A::Error::custom("repeated key");
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "id" if frame.id.is_none() => frame.id = Some(map.next_value()?),
                "type" if frame.kind.is_none() => frame.kind = Some(map.next_value()?),
                "payload" if !frame.payload => {
                    map.next_value_seed(EntriesSeed(&mut *self.0))?;
                    frame.payload = true;
                }
                "id" | "type" | "payload" => return Err(repeated()),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(frame)
    }
}

/// A JSON object's entries, appended to the vector.
struct EntriesSeed<'s, 'a>(&'s mut Entries<'a>);

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(entry) = map.next_entry::<&'de str, &'de RawValue>()? {
            self.0.push(entry);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_into_one_reused_entry_list() {
        let mut entries = Entries::new();
        let frame = parse_frame(
            r#"{"id":"a","type":"t","payload":{"x":1,"y":[2]}}"#,
            &mut entries,
        );
        let frame = frame.unwrap();
        assert!(frame.payload && frame.id.unwrap().get() == "\"a\"");
        let got: Vec<(&str, &str)> = entries.iter().map(|(k, v)| (*k, v.get())).collect();
        assert_eq!(got, [("x", "1"), ("y", "[2]")]);
        // Cleared for the next frame; a frame without a payload says so.
        assert!(!parse_frame(r#"{"id":"b"}"#, &mut entries).unwrap().payload);
        assert!(entries.is_empty());
        for bad in [
            r#"{"payload":{}} x"#,            // trailing text
            r#"{"payload":{},"payload":{}}"#, // a repeated key
            r#"{"payload":[1]}"#,             // a payload that is not an object
            r#"{"payload":{"\u0078":1}}"#,    // an escaped key (not borrowable)
            r#"[1]"#,
        ] {
            assert!(parse_frame(bad, &mut entries).is_none(), "{bad}");
        }
    }
}
