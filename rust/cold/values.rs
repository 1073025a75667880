//! One payload value -> its column's typed value, exactly as convert.py converts it, or None:
//! anything that is not already of the column's own JSON type is left to Python.

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::{Kind, Val};

/// The text of a JSON string value (None for any other JSON type).
pub(super) fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    let inner = &text[1..text.len() - 1];
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner)); // already validated by the parser
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// A value of the column's own JSON type, converted as convert.py would; None for anything else.
pub(super) fn value(kind: Kind, raw: &RawValue) -> Option<Val<'_>> {
    let text = raw.get();
    let first = *text.as_bytes().first()?;
    Some(match kind {
        Kind::Str => Val::Str(string(raw)?),
        Kind::Json => match first {
            b'"' => Val::Str(string(raw)?),
            b'{' | b'[' => Val::Str(Cow::Borrowed(text)), // see the doc of cold/mod.rs
            _ => return None,
        },
        Kind::Long => Val::I64(integer(text)?),
        Kind::Int => Val::I64(i32::try_from(integer(text)?).ok()? as i64),
        Kind::Double => {
            if first != b'-' && !first.is_ascii_digit() {
                return None;
            }
            // Python: float(int) for an integer, the parsed float otherwise; both round to nearest.
            let v = match integer(text) {
                Some(i) => i as f64,
                None => text.parse::<f64>().ok()?,
            };
            if !v.is_finite() {
                return None;
            }
            Val::F64(v)
        }
        Kind::Bool => match text {
            "true" => Val::Bool(true),
            "false" => Val::Bool(false),
            _ => return None,
        },
        Kind::Timestamp => Val::I64(server_timestamp_us(text)?),
        Kind::Date => Val::I64(date_days(text)?),
    })
}

/// A JSON integer (no fraction or exponent) that fits i64.
fn integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `"YYYY-MM-DDTHH:MM:SS.mmmZ"` (the server's own format) -> epoch microseconds. Years 2-9998 only:
/// the edges of convert.py's range check stay with Python.
fn server_timestamp_us(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 26 || b[0] != b'"' || b[25] != b'"' {
        return None;
    }
    let s = &b[1..25];
    let (y, mo, d) = ymd(&s[..10])?;
    if s[10] != b'T' || s[13] != b':' || s[16] != b':' || s[19] != b'.' || s[23] != b'Z' {
        return None;
    }
    let (h, mi, sec, ms) = (
        num(&s[11..13])?,
        num(&s[14..16])?,
        num(&s[17..19])?,
        num(&s[20..23])?,
    );
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let seconds = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec;
    Some(seconds * 1_000_000 + ms * 1000)
}

/// A JSON string starting `YYYY-MM-DD` -> days since the epoch (convert.py reads `value[:10]`).
fn date_days(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 12 || b[0] != b'"' || text.contains('\\') {
        return None;
    }
    let (y, mo, d) = ymd(&b[1..11])?;
    Some(days_from_civil(y, mo, d))
}

fn ymd(s: &[u8]) -> Option<(i64, i64, i64)> {
    if s.len() != 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(&s[..4])?, num(&s[5..7])?, num(&s[8..10])?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(2..=9998).contains(&y)
        || !(1..=12).contains(&mo)
        || d < 1
        || d > month_days[mo as usize - 1]
    {
        return None;
    }
    Some((y, mo, d))
}

fn num(digits: &[u8]) -> Option<i64> {
    digits.iter().try_fold(0i64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + (b - b'0') as i64)
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_and_server_timestamps() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(
            server_timestamp_us("\"1970-01-02T00:00:01.250Z\""),
            Some(86_401_250_000)
        );
        assert_eq!(server_timestamp_us("\"2026-02-29T00:00:00.000Z\""), None); // not a leap year
        assert_eq!(date_days("\"2024-02-29\""), Some(19_782));
    }

    #[test]
    fn only_plain_json_types_take_the_fast_path() {
        let raw = |s: &str| serde_json::from_str::<&RawValue>(s).unwrap().to_owned();
        assert!(value(Kind::Str, &raw("12")).is_none());
        assert!(value(Kind::Long, &raw("1.0")).is_none());
        assert!(value(Kind::Int, &raw("2147483648")).is_none());
        assert!(matches!(value(Kind::Double, &raw("3")), Some(Val::F64(v)) if v == 3.0));
        assert!(
            matches!(value(Kind::Json, &raw("{\"a\":1}")), Some(Val::Str(s)) if s == "{\"a\":1}")
        );
    }
}
