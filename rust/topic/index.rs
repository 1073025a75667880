//! Subscription index: which connections hold a key matching topic T.
//!
//! Keys are split by [`PatternKind`] into one map per kind, each keyed by the literal prefix
//! `P`, so a topic of n segments costs O(n) hash lookups however many patterns exist:
//! exact -> `exact[T]`; `P.*` -> `one_level[parent(T)]`; `P.**` -> `subtree[T]` and
//! `subtree[each proper prefix]`; `P.>` -> `one_or_more[each proper prefix]`; bare `*`/`**`/`>`
//! -> `all`. Within one kind `P` determines the key, so each set belongs to exactly one key.

use rustc_hash::{FxHashMap, FxHashSet};

use super::pattern::PatternKind;

pub type ConnSet = FxHashSet<u64>;
type KindMap = FxHashMap<Box<str>, ConnSet>;

#[derive(Default, Debug)]
pub struct SubscriptionIndex {
    exact: KindMap,
    one_level: KindMap,
    subtree: KindMap,
    one_or_more: KindMap,
    /// Keyed by the bare key itself (`*`, `**` or `>`), so counts stay per key.
    all: KindMap,
    /// Each connection's keys in subscription order, for `subscriptions()` and removal.
    by_conn: FxHashMap<u64, Vec<Box<str>>>,
}

impl SubscriptionIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// The map holding `key` and the name it has there.
    fn slot<'k>(&self, key: &'k str) -> (&KindMap, &'k str) {
        match PatternKind::of(key) {
            PatternKind::Exact(p) => (&self.exact, p),
            PatternKind::All => (&self.all, key),
            PatternKind::OneLevel(p) => (&self.one_level, p),
            PatternKind::Subtree(p) => (&self.subtree, p),
            PatternKind::OneOrMore(p) => (&self.one_or_more, p),
        }
    }

    fn slot_mut<'k>(&mut self, key: &'k str) -> (&mut KindMap, &'k str) {
        match PatternKind::of(key) {
            PatternKind::Exact(p) => (&mut self.exact, p),
            PatternKind::All => (&mut self.all, key),
            PatternKind::OneLevel(p) => (&mut self.one_level, p),
            PatternKind::Subtree(p) => (&mut self.subtree, p),
            PatternKind::OneOrMore(p) => (&mut self.one_or_more, p),
        }
    }

    /// Add `key` for `conn`; false if the connection already holds it.
    pub fn subscribe(&mut self, conn: u64, key: &str) -> bool {
        let (map, name) = self.slot_mut(key);
        let inserted = match map.get_mut(name) {
            Some(set) => set.insert(conn),
            None => {
                map.insert(name.into(), std::iter::once(conn).collect());
                true
            }
        };
        if inserted {
            self.by_conn.entry(conn).or_default().push(key.into());
        }
        inserted
    }

    /// Remove `key` from `conn`; false if it was not held. Empty keys disappear.
    pub fn unsubscribe(&mut self, conn: u64, key: &str) -> bool {
        if !self.remove_from_set(conn, key) {
            return false;
        }
        if let Some(list) = self.by_conn.get_mut(&conn) {
            list.retain(|k| &**k != key);
            if list.is_empty() {
                self.by_conn.remove(&conn);
            }
        }
        true
    }

    fn remove_from_set(&mut self, conn: u64, key: &str) -> bool {
        let (map, name) = self.slot_mut(key);
        let Some(set) = map.get_mut(name) else {
            return false;
        };
        let removed = set.remove(&conn);
        if set.is_empty() {
            map.remove(name);
        }
        removed
    }

    /// Drop every subscription of `conn`; returns how many there were.
    pub fn remove_connection(&mut self, conn: u64) -> usize {
        let keys = self.by_conn.remove(&conn).unwrap_or_default();
        for key in &keys {
            self.remove_from_set(conn, key);
        }
        keys.len()
    }

    pub fn subscriptions(&self, conn: u64) -> &[Box<str>] {
        self.by_conn.get(&conn).map_or(&[], Vec::as_slice)
    }

    /// Connections holding exactly `key`.
    pub fn subscriber_count(&self, key: &str) -> usize {
        let (map, name) = self.slot(key);
        map.get(name).map_or(0, FxHashSet::len)
    }

    pub fn key_count(&self) -> usize {
        self.exact.len()
            + self.one_level.len()
            + self.subtree.len()
            + self.one_or_more.len()
            + self.all.len()
    }

    /// Every key with its subscriber count, sorted by key for a stable listing.
    pub fn keys(&self) -> Vec<(String, usize)> {
        let mut out = Vec::with_capacity(self.key_count());
        let groups: [(&KindMap, &str); 5] = [
            (&self.exact, ""),
            (&self.all, ""),
            (&self.one_level, ".*"),
            (&self.subtree, ".**"),
            (&self.one_or_more, ".>"),
        ];
        for (map, suffix) in groups {
            out.extend(map.iter().map(|(p, s)| (format!("{p}{suffix}"), s.len())));
        }
        out.sort_unstable();
        out
    }

    /// Call `f` with every subscriber set whose key matches `topic`. A connection can appear in
    /// several sets; the caller de-duplicates.
    pub fn for_each_matching_set<'s>(&'s self, topic: &str, mut f: impl FnMut(&'s ConnSet)) {
        for set in self.all.values() {
            f(set);
        }
        let mut visit = |map: &'s KindMap, name: &str| {
            if let Some(set) = map.get(name) {
                f(set);
            }
        };
        visit(&self.exact, topic);
        if !self.one_level.is_empty() {
            if let Some(i) = topic.rfind('.') {
                if i + 1 < topic.len() {
                    visit(&self.one_level, &topic[..i]);
                }
            }
        }
        let want_subtree = !self.subtree.is_empty();
        let want_more = !self.one_or_more.is_empty();
        if want_subtree {
            visit(&self.subtree, topic);
        }
        if want_subtree || want_more {
            for (i, _) in topic.match_indices('.') {
                let prefix = &topic[..i];
                if want_subtree {
                    visit(&self.subtree, prefix);
                }
                if want_more && i + 1 < topic.len() {
                    visit(&self.one_or_more, prefix);
                }
            }
        }
    }

    /// De-duplicated, sorted connections with a key matching `topic`.
    pub fn matching(&self, topic: &str) -> Vec<u64> {
        let mut out = Vec::new();
        self.for_each_matching_set(topic, |set| out.extend(set.iter().copied()));
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn index(subs: &[(u64, &str)]) -> SubscriptionIndex {
        let mut ix = SubscriptionIndex::new();
        for (c, k) in subs {
            ix.subscribe(*c, k);
        }
        ix
    }

    #[test]
    fn acceptance_examples() {
        // §11 D22.
        let ix = index(&[(1, "orders.*")]);
        let got: usize = [
            "orders.created",
            "orders.updated",
            "orders.deleted",
            "orders.items.added",
        ]
        .iter()
        .map(|t| ix.matching(t).len())
        .sum();
        assert_eq!(got, 3);
        // D23.
        let ix = index(&[(1, "orders.created")]);
        let got: usize = ["orders.created", "orders.created.v2", "orders"]
            .iter()
            .map(|t| ix.matching(t).len())
            .sum();
        assert_eq!(got, 1);
        // D25: 100 subs on tenant-{i%10}.* -> 10 receive.
        let mut ix = SubscriptionIndex::new();
        for i in 0..100u64 {
            ix.subscribe(i, &format!("tenant-{}.*", i % 10));
        }
        assert_eq!(ix.matching("tenant-5.orders").len(), 10);
        // D26.
        let ix = index(&[(1, "orders.**"), (2, "*")]);
        for t in [
            "orders.created",
            "orders.item.added",
            "orders.item.quantity.updated",
            "orders",
        ] {
            assert_eq!(ix.matching(t), vec![1, 2], "{t}");
        }
        assert_eq!(ix.matching("ordersXYZ.created"), vec![2]);
        // D29: one copy for a connection holding two matching keys.
        let ix = index(&[
            (7, "orders.created"),
            (7, "orders.*"),
            (7, "orders.>"),
            (7, ">"),
        ]);
        assert_eq!(ix.matching("orders.created"), vec![7]);
    }

    #[test]
    fn bookkeeping() {
        let mut ix = SubscriptionIndex::new();
        assert!(ix.subscribe(1, "orders"));
        assert!(!ix.subscribe(1, "orders"));
        assert!(ix.subscribe(1, "payments.*"));
        assert!(ix.subscribe(2, "orders"));
        assert!(ix.subscribe(2, "**"));
        assert_eq!(ix.subscriber_count("orders"), 2);
        assert_eq!(ix.subscriber_count("payments.*"), 1);
        assert_eq!(ix.subscriber_count("payments"), 0);
        assert_eq!(ix.subscriber_count("*"), 0);
        assert_eq!(ix.subscriber_count("**"), 1);
        assert_eq!(ix.key_count(), 3);
        assert_eq!(
            ix.keys(),
            vec![
                ("**".into(), 1),
                ("orders".into(), 2),
                ("payments.*".into(), 1)
            ]
        );
        let subs: Vec<&str> = ix.subscriptions(1).iter().map(|k| &**k).collect();
        assert_eq!(subs, ["orders", "payments.*"]);
        assert!(ix.unsubscribe(1, "orders"));
        assert!(!ix.unsubscribe(1, "orders"));
        assert_eq!(ix.subscriber_count("orders"), 1);
        assert_eq!(ix.remove_connection(2), 2);
        assert_eq!(ix.subscriber_count("orders"), 0);
        assert_eq!(ix.key_count(), 1);
        assert_eq!(ix.remove_connection(1), 1);
        assert_eq!(ix.key_count(), 0);
        assert!(ix.subscriptions(1).is_empty());
        assert_eq!(ix.remove_connection(99), 0);
    }

    /// Segment-based reference for the canonical rules, written independently of `PatternKind`.
    fn reference_match(p: &str, t: &str) -> bool {
        if p == t || matches!(p, "*" | "**" | ">") {
            return true;
        }
        let ps: Vec<&str> = p.split('.').collect();
        let ts: Vec<&str> = t.split('.').collect();
        let n = ps.len();
        if n < 2 {
            return false;
        }
        let head = &ps[..n - 1];
        let prefix_eq = |len: usize| ts.len() >= len && ts[..len] == *head;
        match ps[n - 1] {
            "*" => ts.len() == n && prefix_eq(n - 1) && !ts[n - 1].is_empty(),
            "**" => prefix_eq(n - 1),
            ">" => prefix_eq(n - 1) && ts.len() >= n && (ts.len() > n || !ts[n - 1].is_empty()),
            _ => false,
        }
    }

    fn segment() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("a"),
            Just("b"),
            Just("ab"),
            Just(""),
            Just("*"),
            Just("**"),
            Just(">")
        ]
    }

    fn dotted(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(segment(), 1..=max).prop_map(|s| s.join("."))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn matcher_agrees_with_reference(p in dotted(4), t in dotted(5)) {
            prop_assert_eq!(crate::topic::topic_matches(&p, &t), reference_match(&p, &t));
        }

        #[test]
        fn index_agrees_with_linear_scan(
            ops in prop::collection::vec((0u64..6, dotted(4), any::<bool>()), 1..60),
            topics in prop::collection::vec(dotted(5), 1..20),
        ) {
            let mut ix = SubscriptionIndex::new();
            let mut model: std::collections::BTreeSet<(u64, String)> = Default::default();
            for (conn, key, add) in ops {
                if add {
                    prop_assert_eq!(ix.subscribe(conn, &key), model.insert((conn, key)));
                } else {
                    prop_assert_eq!(ix.unsubscribe(conn, &key), model.remove(&(conn, key)));
                }
            }
            for t in topics {
                let mut want: Vec<u64> = model
                    .iter()
                    .filter(|(_, k)| reference_match(k, &t))
                    .map(|(c, _)| *c)
                    .collect();
                want.dedup();
                prop_assert_eq!(ix.matching(&t), want, "topic {:?}", t);
            }
            let mut keys: std::collections::BTreeMap<String, usize> = Default::default();
            for (_, k) in &model {
                *keys.entry(k.clone()).or_default() += 1;
            }
            let want: Vec<(String, usize)> = keys.into_iter().collect();
            prop_assert_eq!(ix.keys(), want);
        }
    }
}
