//! Topic and pattern validation, rule for rule and text for text as the original's
//! `validateTopic` (original-system.md §3.2). The rules run in the original order so that a topic
//! breaking several rules reports the same code as before. One extension (decisions.md): `>` is
//! accepted as a whole final segment (`orders.>`, or `>` alone).

/// A failed check: the original's `errorCode` and its exact message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicError {
    pub code: &'static str,
    pub message: String,
}

pub const MAX_TOPIC_LEN: usize = 256;
pub const MAX_TOPIC_DEPTH: usize = 10;

/// Checked in this order; the message names the first one that matches.
const RESERVED_PREFIXES: [&str; 4] = ["__", "_system", "$", "internal."];

fn err(code: &'static str, message: impl Into<String>) -> Result<(), TopicError> {
    Err(TopicError {
        code,
        message: message.into(),
    })
}

/// Validate a topic or subscription pattern.
pub fn check_topic(topic: &str) -> Result<(), TopicError> {
    // JS `trim()` also strips the BOM, which Rust's whitespace set does not include.
    if topic
        .trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
        .is_empty()
    {
        return err("EMPTY_TOPIC", "Topic cannot be empty");
    }
    // The original measured JS string length, i.e. UTF-16 code units.
    if topic.encode_utf16().count() > MAX_TOPIC_LEN {
        return err(
            "TOPIC_TOO_LONG",
            "Topic exceeds maximum length of 256 characters",
        );
    }
    if has_path_traversal(topic) {
        return err(
            "PATH_TRAVERSAL",
            "Topic contains path traversal pattern (..)",
        );
    }
    if let Some(p) = RESERVED_PREFIXES.iter().find(|p| topic.starts_with(**p)) {
        return err(
            "RESERVED_PREFIX",
            format!("Topic uses reserved prefix '{p}'. Reserved prefixes are not allowed."),
        );
    }
    if !valid_characters(topic) {
        return err(
            "INVALID_CHARACTER",
            "Topic contains invalid character. Allowed: alphanumeric, dots, dashes, underscores, asterisks",
        );
    }
    if topic.starts_with('.') || topic.ends_with('.') {
        return err(
            "INVALID_DOT_POSITION",
            "Topic cannot start or end with a dot",
        );
    }
    if topic.contains("..") {
        return err("CONSECUTIVE_DOTS", "Topic cannot contain consecutive dots");
    }
    if topic.split('.').count() > MAX_TOPIC_DEPTH {
        return err(
            "MAX_DEPTH_EXCEEDED",
            "Topic exceeds maximum depth of 10 segments",
        );
    }
    check_wildcards(topic)
}

/// `..` at the start or after `/` or `\`, followed by the end, `/` or `\`.
fn has_path_traversal(topic: &str) -> bool {
    let b = topic.as_bytes();
    let sep = |c: u8| c == b'/' || c == b'\\';
    (0..b.len().saturating_sub(1)).any(|i| {
        b[i] == b'.'
            && b[i + 1] == b'.'
            && (i == 0 || sep(b[i - 1]))
            && (i + 2 == b.len() || sep(b[i + 2]))
    })
}

/// `^[a-zA-Z0-9.\-_*]+$`, plus `>` but only as the whole last segment. Any other `>` stays an
/// invalid character, so `orders>file` reports what it did in the original.
fn valid_characters(topic: &str) -> bool {
    let body = if topic == ">" {
        ""
    } else {
        topic.strip_suffix(".>").unwrap_or(topic)
    };
    body.bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'*'))
}

fn check_wildcards(topic: &str) -> Result<(), TopicError> {
    if topic.contains("***") {
        return err(
            "INVALID_WILDCARD",
            "Invalid wildcard pattern: triple or more asterisks not allowed",
        );
    }
    if topic == "*" || !topic.contains('*') {
        return Ok(());
    }
    let (head, last) = match topic.rfind('.') {
        Some(i) => (&topic[..i], &topic[i + 1..]),
        None => ("", topic),
    };
    if head.contains('*') {
        return err(
            "INVALID_WILDCARD",
            "Invalid wildcard pattern: wildcard can only appear at the end of a topic",
        );
    }
    if last.contains('*') && last != "*" && last != "**" {
        return err(
            "INVALID_WILDCARD",
            "Invalid wildcard pattern: wildcard segment must be exactly \"*\" or \"**\"",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(topic: &str) -> Option<&'static str> {
        check_topic(topic).err().map(|e| e.code)
    }

    #[test]
    fn valid_topics_and_patterns() {
        // §11 B14, the §3.2 pattern list, and the `>` extension.
        for t in [
            "orders",
            "orders.created",
            "user-events",
            "topic_123",
            "orders.*",
            "tenant-123.orders.created_v2",
            "a",
            "*",
            "**",
            "a.b",
            "a.*",
            "a.b.**",
            "_errors",
            "orders.>",
            ">",
            "a.b.c.d.e.f.g.h.i.j",
            "user.123.*",
        ] {
            assert_eq!(check_topic(t), Ok(()), "{t:?} should be valid");
        }
        assert_eq!(check_topic(&"a".repeat(256)), Ok(()));
    }

    #[test]
    fn error_codes_table() {
        let eleven = ["a"; 11].join(".");
        let cases: &[(&str, &str)] = &[
            ("", "EMPTY_TOPIC"),
            ("   ", "EMPTY_TOPIC"),
            ("\t\t", "EMPTY_TOPIC"),
            ("../secret", "PATH_TRAVERSAL"),
            ("..", "PATH_TRAVERSAL"),
            ("../../etc/passwd", "PATH_TRAVERSAL"),
            ("orders/../admin", "PATH_TRAVERSAL"),
            ("..\\secret", "PATH_TRAVERSAL"),
            ("orders created", "INVALID_CHARACTER"),
            ("orders\ncreated", "INVALID_CHARACTER"),
            ("orders\x00", "INVALID_CHARACTER"),
            ("orders;rm -rf", "INVALID_CHARACTER"),
            ("orders`whoami`", "INVALID_CHARACTER"),
            ("orders$PATH", "INVALID_CHARACTER"),
            ("orders|cat", "INVALID_CHARACTER"),
            ("orders&x", "INVALID_CHARACTER"),
            ("orders<script>", "INVALID_CHARACTER"),
            ("orders>file", "INVALID_CHARACTER"),
            ("orders'q", "INVALID_CHARACTER"),
            ("orders\"q", "INVALID_CHARACTER"),
            ("orders/sub", "INVALID_CHARACTER"),
            ("orders\\sub", "INVALID_CHARACTER"),
            ("orders%00admin", "INVALID_CHARACTER"),
            ("orders\0admin", "INVALID_CHARACTER"), // §11 B16 once URL-decoded
            ("orders.>.x", "INVALID_CHARACTER"),
            ("orders.a>", "INVALID_CHARACTER"),
            (".orders", "INVALID_DOT_POSITION"),
            ("orders.", "INVALID_DOT_POSITION"),
            (".>", "INVALID_DOT_POSITION"),
            ("a..b", "CONSECUTIVE_DOTS"),
            (&eleven, "MAX_DEPTH_EXCEEDED"),
            ("__x", "RESERVED_PREFIX"),
            ("_system.x", "RESERVED_PREFIX"),
            ("internal.x", "RESERVED_PREFIX"),
            ("$x", "RESERVED_PREFIX"),
            ("*.created", "INVALID_WILDCARD"),
            ("orders*", "INVALID_WILDCARD"),
            ("orders.*.x", "INVALID_WILDCARD"),
            ("orders.***", "INVALID_WILDCARD"),
            ("*.>", "INVALID_WILDCARD"),
        ];
        for (topic, want) in cases {
            assert_eq!(code(topic), Some(*want), "{topic:?}");
        }
        assert_eq!(code(&"a".repeat(257)), Some("TOPIC_TOO_LONG"));
    }

    #[test]
    fn exact_messages() {
        let msg = |t: &str| check_topic(t).unwrap_err().message;
        assert_eq!(msg(""), "Topic cannot be empty");
        assert!(msg(&"a".repeat(257)).contains("256"));
        assert_eq!(msg(".."), "Topic contains path traversal pattern (..)");
        assert_eq!(
            msg("_system.x"),
            "Topic uses reserved prefix '_system'. Reserved prefixes are not allowed."
        );
        assert_eq!(
            msg("__x"),
            "Topic uses reserved prefix '__'. Reserved prefixes are not allowed."
        );
        assert_eq!(
            msg("orders created"),
            "Topic contains invalid character. Allowed: alphanumeric, dots, dashes, underscores, asterisks"
        );
        assert_eq!(msg("a."), "Topic cannot start or end with a dot");
        assert_eq!(msg("a..b"), "Topic cannot contain consecutive dots");
        assert_eq!(
            msg(&["a"; 11].join(".")),
            "Topic exceeds maximum depth of 10 segments"
        );
        assert_eq!(
            msg("orders.***"),
            "Invalid wildcard pattern: triple or more asterisks not allowed"
        );
        assert_eq!(
            msg("*.created"),
            "Invalid wildcard pattern: wildcard can only appear at the end of a topic"
        );
        assert_eq!(
            msg("orders*"),
            "Invalid wildcard pattern: wildcard segment must be exactly \"*\" or \"**\""
        );
    }

    #[test]
    fn length_counts_utf16_units_and_runs_before_characters() {
        // 256 two-byte chars are 256 units: not too long, but invalid characters.
        assert_eq!(code(&"é".repeat(256)), Some("INVALID_CHARACTER"));
        assert_eq!(code(&"é".repeat(257)), Some("TOPIC_TOO_LONG"));
    }

    #[test]
    fn rule_order() {
        // Traversal wins over characters; reserved prefix wins over characters.
        assert_eq!(code("../a b"), Some("PATH_TRAVERSAL"));
        assert_eq!(code("$ x"), Some("RESERVED_PREFIX"));
        // `...` is not a traversal (three dots); it starts with a dot.
        assert_eq!(code("..."), Some("INVALID_DOT_POSITION"));
    }
}
