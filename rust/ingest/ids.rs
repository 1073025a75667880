//! Server-side event ids and ISO timestamps, as `events.generate_id` and `events.iso_from_ms`
//! write them.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Up to 9999-12-31T23:59:59.999Z: the range `iso_from_ms` writes with a 4-digit year.
pub const MAX_ISO_MS: i64 = 253_402_300_799_999;

const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const SUFFIX_SPACE: u64 = 36u64.pow(9);

/// `<epoch ms>-<9 random base36 chars>` (the original's id format). wyrand, seeded from the
/// process's random hasher keys: ids need to be unlikely to repeat, not unpredictable.
pub struct IdGen {
    state: u64,
    /// `<ms>-` of the last id's millisecond (a batch shares one "now").
    prefix: (i64, String),
    /// The process that seeded `state`: a forked child reseeds, or it would repeat the parent's ids.
    pid: u32,
}

impl Default for IdGen {
    fn default() -> Self {
        Self::new()
    }
}

impl IdGen {
    pub fn new() -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        Self {
            state: h.finish(),
            prefix: (i64::MIN, String::new()),
            pid: std::process::id(),
        }
    }

    /// Reseed after a fork (one `getpid` per call: call it per batch, not per id).
    pub fn reseed_if_forked(&mut self) {
        if self.pid != std::process::id() {
            *self = Self::new();
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.state) * u128::from(self.state ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) ^ t) as u64
    }

    pub fn generate(&mut self, now_ms: i64) -> String {
        // 64 random bits modulo 36^9, as generate_id (bias below 1e-5).
        let mut n = self.next_u64() % SUFFIX_SPACE;
        let mut suffix = [b'0'; 9];
        for digit in suffix.iter_mut().rev() {
            *digit = BASE36[(n % 36) as usize];
            n /= 36;
        }
        if self.prefix.0 != now_ms {
            self.prefix = (now_ms, format!("{now_ms}-"));
        }
        let mut id = String::with_capacity(self.prefix.1.len() + 9);
        id.push_str(&self.prefix.1);
        id.push_str(std::str::from_utf8(&suffix).expect("ASCII"));
        id
    }
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2024-01-01T00:00:00.000Z` for epoch ms in `0..=MAX_ISO_MS`.
pub fn iso_from_ms(ms: i64) -> String {
    let mut out = Vec::with_capacity(24);
    write_iso_from_ms(&mut out, ms);
    String::from_utf8(out).expect("ASCII")
}

/// `iso_from_ms`, appended to `out`.
pub fn write_iso_from_ms(out: &mut Vec<u8>, ms: i64) {
    let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let parts: [(i64, usize, u8); 7] = [
        (year, 4, b'-'),
        (i64::from(month), 2, b'-'),
        (i64::from(day), 2, b'T'),
        (rem / 3600, 2, b':'),
        (rem % 3600 / 60, 2, b':'),
        (rem % 60, 2, b'.'),
        (millis, 3, b'Z'),
    ];
    // Zero-padded digits by hand: `write!` with widths cost more than the rest of an event's row.
    for (value, width, separator) in parts {
        let start = out.len();
        let mut v = value;
        for _ in 0..width {
            out.push(b'0' + (v % 10) as u8);
            v /= 10;
        }
        out[start..].reverse();
        out.push(separator);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_matches_known_instants() {
        assert_eq!(iso_from_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_from_ms(1_704_067_200_123), "2024-01-01T00:00:00.123Z");
        assert_eq!(iso_from_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso_from_ms(MAX_ISO_MS), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn ids_have_the_format_and_do_not_repeat() {
        let mut ids = IdGen::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20_000 {
            let id = ids.generate(1_700_000_000_000);
            assert_eq!(id.len(), 23);
            assert!(id.starts_with("1700000000000-"));
            assert!(id[14..].bytes().all(|b| BASE36.contains(&b)));
            assert!(seen.insert(id));
        }
    }
}
