//! Unmasked server-to-client WebSocket text frames (RFC 6455 §5.2). Server frames are never
//! masked, so the header is all we add and a frame can be shared by every recipient.

use crate::error::CoreError;

/// FIN bit plus opcode 0x1 (text).
const FIN_TEXT: u8 = 0x81;

pub fn header_len(payload_len: usize) -> usize {
    match payload_len {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    }
}

/// The frame header for a payload of `len` bytes: the first `header_len(len)` bytes.
pub fn header(len: usize) -> [u8; 10] {
    let mut h = [0u8; 10];
    h[0] = FIN_TEXT;
    match len {
        0..=125 => h[1] = len as u8,
        126..=65_535 => {
            h[1] = 126;
            h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h[1] = 127;
            h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        }
    }
    h
}

/// Append the frame for `payload` to `out`.
pub fn write_text_frame(out: &mut Vec<u8>, payload: &[u8]) {
    let n = header_len(payload.len());
    out.reserve(n + payload.len());
    out.extend_from_slice(&header(payload.len())[..n]);
    out.extend_from_slice(payload);
}

/// Write the frame into `buf`, which must be exactly `header_len + payload.len()` bytes: lets
/// callers frame straight into a buffer they own (a Python bytes object, a shared `Arc`).
pub fn fill_text_frame(buf: &mut [u8], payload: &[u8]) {
    let n = header_len(payload.len());
    buf[..n].copy_from_slice(&header(payload.len())[..n]);
    buf[n..].copy_from_slice(payload);
}

/// The frame as a shared buffer, allocated once: one copy per publish, not per recipient.
pub fn shared_text_frame(payload: &[u8]) -> std::sync::Arc<[u8]> {
    let n = header_len(payload.len());
    header(payload.len())[..n]
        .iter()
        .chain(payload)
        .copied()
        .collect()
}

pub fn encode_text_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header_len(payload.len()) + payload.len());
    write_text_frame(&mut out, payload);
    out
}

/// Parse concatenated frames made by [`encode_text_frame`] back into payload slices.
pub fn split_frames(data: &[u8]) -> Result<Vec<&[u8]>, CoreError> {
    let bad = |why: &str| CoreError::MalformedFrame(why.to_owned());
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 2 {
            return Err(bad("truncated header"));
        }
        if rest[0] != FIN_TEXT {
            return Err(bad("expected a FIN text frame (first byte 0x81)"));
        }
        if rest[1] & 0x80 != 0 {
            return Err(bad("server frames must not be masked"));
        }
        let (len, hdr) = match rest[1] {
            126 => {
                let b = rest
                    .get(2..4)
                    .ok_or_else(|| bad("truncated 16-bit length"))?;
                (u16::from_be_bytes([b[0], b[1]]) as u64, 4)
            }
            127 => {
                let b = rest
                    .get(2..10)
                    .ok_or_else(|| bad("truncated 64-bit length"))?;
                (u64::from_be_bytes(b.try_into().expect("8 bytes")), 10)
            }
            n => (u64::from(n), 2),
        };
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(hdr))
            .filter(|&e| e <= rest.len())
            .ok_or_else(|| bad("truncated payload"))?;
        out.push(&rest[hdr..end]);
        rest = &rest[end..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_sizes() {
        for (len, hdr) in [(0, 2), (125, 2), (126, 4), (65_535, 4), (65_536, 10)] {
            let f = encode_text_frame(&vec![b'x'; len]);
            assert_eq!(f.len(), len + hdr, "len {len}");
            assert_eq!(f[0], 0x81);
        }
        assert_eq!(encode_text_frame(b"hi"), [0x81, 2, b'h', b'i']);
        assert_eq!(&encode_text_frame(&[0; 300])[..4], &[0x81, 126, 1, 44]);
        assert_eq!(
            &encode_text_frame(&[0; 70_000])[..10],
            &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]
        );
    }

    #[test]
    fn round_trip() {
        let payloads: Vec<Vec<u8>> = [0, 1, 125, 126, 127, 65_535, 65_536, 100_000]
            .iter()
            .map(|&n| vec![7u8; n])
            .collect();
        let mut buf = Vec::new();
        for p in &payloads {
            write_text_frame(&mut buf, p);
        }
        for p in &payloads {
            let mut filled = vec![0; header_len(p.len()) + p.len()];
            fill_text_frame(&mut filled, p);
            assert_eq!(filled, encode_text_frame(p));
            assert_eq!(&*shared_text_frame(p), filled.as_slice());
        }
        let back = split_frames(&buf).unwrap();
        assert_eq!(back.len(), payloads.len());
        for (a, b) in back.iter().zip(&payloads) {
            assert_eq!(*a, b.as_slice());
        }
        assert!(split_frames(b"").unwrap().is_empty());
    }

    #[test]
    fn malformed() {
        for bad in [
            &[0x81][..],
            &[0x82, 0],
            &[0x01, 0],
            &[0x81, 0x85, 0, 0, 0, 0, 1],
            &[0x81, 3, b'a'],
            &[0x81, 126, 0],
            &[0x81, 127, 0, 0, 0],
            &[0x81, 127, 255, 255, 255, 255, 255, 255, 255, 255],
        ] {
            assert!(split_frames(bad).is_err(), "{bad:?}");
        }
    }
}
