//! Re-serialising a JSON value exactly as `orjson.dumps(orjson.loads(text))` would, in one pass
//! (no tree), or refusing. The refusals are the values where a Python round trip is not a plain
//! compaction: floats (Python's float repr), integers outside i64/u64 and `-0` (both become
//! floats or ints serde reads differently), and objects with a repeated key (a dict keeps the
//! last value at the first key's place). A refusal sends the body down the Python path.

use std::borrow::Cow;
use std::io::Write;

use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};

use crate::hot::json::CowStr;

/// Writes the canonical form of the value it deserialises into `out`.
pub struct Canonical<'o> {
    pub out: &'o mut Vec<u8>,
}

/// `text` as a compact JSON string, escaped as orjson (and serde_json) escape it.
pub fn write_json_string(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).expect("writing to a Vec cannot fail");
}

impl<'de> DeserializeSeed<'de> for Canonical<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Canonical<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        write!(self.out, "{v}").expect("Vec write");
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        write!(self.out, "{v}").expect("Vec write");
        Ok(())
    }

    fn visit_f64<E: Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom("floats take the Python path"))
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        write_json_string(self.out, v);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let out = self.out;
        out.push(b'[');
        let mut first = true;
        loop {
            let mark = out.len();
            if !first {
                out.push(b',');
            }
            if seq.next_element_seed(Canonical { out })?.is_none() {
                out.truncate(mark);
                break;
            }
            first = false;
        }
        out.push(b']');
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let out = self.out;
        let mut keys: Vec<Cow<'de, str>> = Vec::new();
        out.push(b'{');
        while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
            if keys.contains(&key) {
                return Err(A::Error::custom("repeated keys take the Python path"));
            }
            if !keys.is_empty() {
                out.push(b',');
            }
            write_json_string(out, &key);
            out.push(b':');
            map.next_value_seed(Canonical { out: &mut *out })?;
            keys.push(key);
        }
        out.push(b'}');
        Ok(())
    }
}

/// The canonical form of the JSON text `raw` (one value), or None when it must be refused.
pub fn canonical(raw: &str, out: &mut Vec<u8>) -> Option<()> {
    let mut de = serde_json::Deserializer::from_str(raw);
    Canonical { out }.deserialize(&mut de).ok()?;
    de.end().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> Option<String> {
        let mut out = Vec::new();
        canonical(text, &mut out).map(|()| String::from_utf8(out).unwrap())
    }

    #[test]
    fn compacts_and_keeps_member_order() {
        assert_eq!(
            canon(r#" { "b" : [1, -2, true, null, "x\u0041\n"], "a":{}} "#).as_deref(),
            Some(r#"{"b":[1,-2,true,null,"xA\n"],"a":{}}"#)
        );
        assert_eq!(canon("[]").as_deref(), Some("[]"));
        assert_eq!(
            canon("18446744073709551615").as_deref(),
            Some("18446744073709551615")
        );
    }

    #[test]
    fn refuses_what_a_python_round_trip_changes() {
        for text in [
            "1.0",
            "1e2",
            "-0",
            "18446744073709551616",
            r#"{"a":1,"a":2}"#,
            "[1,]",
            "nul",
        ] {
            assert_eq!(canon(text), None, "{text}");
        }
    }
}
