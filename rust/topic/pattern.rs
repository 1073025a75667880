//! The canonical matcher (original-system.md §3.3 "Recommended canonical semantics" plus the
//! NATS `>` extension from decisions.md). One matcher serves fan-out, replay and permission
//! checks. The subscription index classifies keys with [`PatternKind`] so that it agrees with
//! [`topic_matches`] by construction (and a property test checks it).

/// What a subscription key means. `P` is taken literally: a `*` anywhere but in the final
/// wildcard segment is an ordinary character (rule 6), and there is no case folding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternKind<'a> {
    /// Matches only the identical topic.
    Exact(&'a str),
    /// Bare `*`, `**` or `>`: every topic.
    All,
    /// `P.*`: `P.x` where `x` is one non-empty segment.
    OneLevel(&'a str),
    /// `P.**`: `P` itself or anything starting with `P.`.
    Subtree(&'a str),
    /// `P.>`: `P.rest` with `rest` non-empty (one or more further segments).
    OneOrMore(&'a str),
}

impl<'a> PatternKind<'a> {
    pub fn of(pattern: &'a str) -> Self {
        if matches!(pattern, "*" | "**" | ">") {
            return Self::All;
        }
        if let Some(p) = pattern.strip_suffix(".**") {
            return Self::Subtree(p);
        }
        if let Some(p) = pattern.strip_suffix(".*") {
            return Self::OneLevel(p);
        }
        if let Some(p) = pattern.strip_suffix(".>") {
            return Self::OneOrMore(p);
        }
        Self::Exact(pattern)
    }

    pub fn matches(self, topic: &str) -> bool {
        match self {
            Self::Exact(p) => p == topic,
            Self::All => true,
            Self::OneLevel(p) => {
                below(p, topic).is_some_and(|rest| !rest.is_empty() && !rest.contains('.'))
            }
            Self::Subtree(p) => topic == p || below(p, topic).is_some(),
            Self::OneOrMore(p) => below(p, topic).is_some_and(|rest| !rest.is_empty()),
        }
    }
}

/// The part of `topic` after `prefix.`, if `topic` starts with `prefix.`.
fn below<'t>(prefix: &str, topic: &'t str) -> Option<&'t str> {
    topic.strip_prefix(prefix)?.strip_prefix('.')
}

/// Does subscription key `pattern` cover `topic`?
pub fn topic_matches(pattern: &str, topic: &str) -> bool {
    pattern == topic || PatternKind::of(pattern).matches(topic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_table() {
        // §3.3 table, canonical column, with the `>` extension (DO column) for `>` rows.
        let cases: &[(&str, &str, bool)] = &[
            ("orders", "orders", true),
            ("orders", "orders.created", false),
            ("orders.created", "orders", false),
            ("orders.created", "orders.created.v2", false),
            ("orders.*", "orders.created", true),
            ("orders.*", "orders.item.added", false),
            ("orders.*", "orders.created.v2", false),
            ("orders.*", "orders", false),
            ("orders.*", "ordersXYZ.created", false),
            ("*", "orders", true),
            ("*", "orders.created", true),
            ("*", "", true),
            ("**", "orders.created", true),
            (">", "a.b.c", true),
            ("orders.**", "orders", true),
            ("orders.**", "orders.item.added", true),
            ("orders.**", "ordersXYZ.created", false),
            ("orders.>", "orders.created", true),
            ("orders.>", "orders.items.added", true),
            ("orders.>", "orders", false),
            ("orders.>", "ordersX.a", false),
            ("orders.*.created", "orders.item.created", false),
            ("orders.*.created", "orders.*.created", true),
            ("Orders", "orders", false),
            ("a*", "ab", false),
            ("a*", "a*", true),
            ("a.*.*", "a.*.x", true),
            ("a.*.*", "a.b.x", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(topic_matches(p, t), *want, "{p:?} vs {t:?}");
        }
    }

    #[test]
    fn fanout_examples() {
        // §11 D22: `orders.*` gets 3 of 4.
        let topics = [
            "orders.created",
            "orders.updated",
            "orders.deleted",
            "orders.items.added",
        ];
        assert_eq!(
            topics
                .iter()
                .filter(|t| topic_matches("orders.*", t))
                .count(),
            3
        );
        // D23: exact `orders.created` gets 1 of 3.
        let topics = ["orders.created", "orders.created.v2", "orders"];
        assert_eq!(
            topics
                .iter()
                .filter(|t| topic_matches("orders.created", t))
                .count(),
            1
        );
        // D26.
        for t in [
            "orders.created",
            "orders.item.added",
            "orders.item.quantity.updated",
            "orders",
        ] {
            assert!(topic_matches("orders.**", t), "{t}");
        }
        assert!(!topic_matches("orders.**", "ordersXYZ.created"));
        for t in ["orders", "payments.processed", "any.topic.here"] {
            assert!(topic_matches("*", t), "{t}");
        }
        // Auth: allowed `user.*` does not authorise the requested pattern `user.123.*`.
        assert!(!topic_matches("user.*", "user.123.*"));
        assert!(topic_matches("user.123.*", "user.123.*"));
    }

    #[test]
    fn classification() {
        assert_eq!(PatternKind::of("*"), PatternKind::All);
        assert_eq!(PatternKind::of(">"), PatternKind::All);
        assert_eq!(PatternKind::of("a.b.**"), PatternKind::Subtree("a.b"));
        assert_eq!(PatternKind::of("a.*"), PatternKind::OneLevel("a"));
        assert_eq!(PatternKind::of("a.>"), PatternKind::OneOrMore("a"));
        assert_eq!(PatternKind::of("a.***"), PatternKind::Exact("a.***"));
        assert_eq!(PatternKind::of("a*"), PatternKind::Exact("a*"));
    }
}
