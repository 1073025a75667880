//! Reading JSON without building a tree: members in document order with unparsed values, strings
//! borrowed when they hold no escapes, and the numeric conversions of the Arrow columns.

use std::borrow::Cow;

use serde_json::value::RawValue;

/// Integers as given; whole floats and booleans converted; anything else (strings) is null.
pub fn as_int(text: &str) -> Option<i64> {
    match text {
        "true" => Some(1),
        "false" => Some(0),
        _ => text.parse::<i64>().ok().or_else(|| {
            let f = text.parse::<f64>().ok()?;
            // Saturating cast is fine: only whole, in-range floats get here.
            (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18).then_some(f as i64)
        }),
    }
}

pub fn as_real(text: &str) -> Option<f64> {
    match text {
        "true" => Some(1.0),
        "false" => Some(0.0),
        _ => text.parse::<f64>().ok().filter(|f| f.is_finite()),
    }
}

/// A JSON string, borrowed from the document when it holds no escapes. (serde's own `Cow<str>`
/// always allocates.)
pub struct CowStr<'de>(pub Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = CowStr<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// The members of a JSON object in document order, values unparsed; None if not an object.
pub fn ordered_members(text: &str) -> Option<Vec<(Cow<'_, str>, &RawValue)>> {
    // A hot row has 37 members: one allocation instead of growing 0, 4, 8, ... 64.
    ordered_members_sized(text, 40)
}

/// `ordered_members` with room for `capacity` members up front (small objects: a small Vec).
pub fn ordered_members_sized(
    text: &str,
    capacity: usize,
) -> Option<Vec<(Cow<'_, str>, &RawValue)>> {
    struct Members(usize);
    impl<'de> serde::de::Visitor<'de> for Members {
        type Value = Vec<(Cow<'de, str>, &'de RawValue)>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).max(self.0));
            while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
                out.push((key, map.next_value::<&'de RawValue>()?));
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    serde::Deserializer::deserialize_map(&mut de, Members(capacity)).ok()
}
