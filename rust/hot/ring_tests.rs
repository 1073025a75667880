use super::*;

fn meta<'a>(id: &'a str, topic: &'a str, ts: i64) -> EventMeta<'a> {
    EventMeta {
        id,
        topic,
        event_type: "test",
        ns: topic,
        timestamp_ms: ts,
        trace_id: None,
        session_id: None,
        correlation_id: None,
    }
}

fn add(h: &mut HotTier, id: &str, topic: &str, ts: i64) -> u64 {
    h.insert(
        &meta(id, topic, ts),
        format!("F{id}").as_bytes(),
        format!("R{id}").as_bytes(),
    )
}

fn strs<B: AsRef<[u8]>>(v: Vec<B>) -> Vec<String> {
    v.into_iter()
        .map(|b| String::from_utf8(b.as_ref().to_vec()).unwrap())
        .collect()
}

fn big() -> HotTier {
    HotTier::new(300_000, usize::MAX)
}

#[test]
fn replay_after_id() {
    // §11 G43/G44: 10 events, replay after the 5th -> events 6-10.
    let mut h = big();
    for i in 1..=10 {
        add(&mut h, &format!("e{i}"), "replay", 1000 + i);
    }
    add(&mut h, "other", "elsewhere", 2000);
    let got = strs(h.replay_after_id("e5", &["replay"]).unwrap());
    assert_eq!(got, ["Fe6", "Fe7", "Fe8", "Fe9", "Fe10"]);
    assert_eq!(h.replay_after_id("e10", &[]).unwrap().len(), 1);
    assert!(h.replay_after_id("nope", &[]).is_none());
    // Wildcards use the fan-out matcher.
    assert_eq!(h.replay_after_id("e1", &["*"]).unwrap().len(), 10);
    assert_eq!(
        h.replay_after_id("e1", &["else.*", "replay"])
            .unwrap()
            .len(),
        9
    );
}

#[test]
fn replay_after_id_sorts_by_time_and_skips_earlier_timestamps() {
    let mut h = big();
    add(&mut h, "x", "t", 100);
    add(&mut h, "late", "t", 300);
    add(&mut h, "before", "t", 50); // inserted after x but earlier in time: skipped
    add(&mut h, "same", "t", 100);
    add(&mut h, "mid", "t", 200);
    assert_eq!(
        strs(h.replay_after_id("x", &[]).unwrap()),
        ["Fsame", "Fmid", "Flate"]
    );
}

#[test]
fn replay_after_time() {
    // §11 G45: events at base+0..4000 step 1000, from base+2500 -> 2.
    let mut h = big();
    for i in 0..5 {
        add(&mut h, &format!("e{i}"), "t", 10_000 + i * 1000);
    }
    assert_eq!(strs(h.replay_after_time(12_500, &[])), ["Fe3", "Fe4"]);
    assert_eq!(h.replay_after_time(13_000, &[]).len(), 1); // strictly greater
    assert!(h.replay_after_time(0, &["u"]).is_empty());
}

#[test]
fn retention() {
    // §11 H47/H48: retention 5 min.
    let min = 60_000;
    let mut h = HotTier::new(5 * min, usize::MAX);
    add(&mut h, "a", "t", 0);
    assert_eq!(h.evict_expired(4 * min), 0);
    assert_eq!(h.find(Field::Id, "a").len(), 1);
    assert_eq!(h.evict_expired(6 * min), 1);
    assert!(h.find(Field::Id, "a").is_empty());
    assert_eq!(h.bytes_used(), 0);
    let mut h = HotTier::new(5 * min, usize::MAX);
    for i in 0..10 {
        add(&mut h, &format!("e{i}"), "t", i * min);
    }
    h.evict_expired(10 * min);
    assert!(h.len() <= 5);
    // Out-of-order timestamps: removal from the middle keeps the indexes right.
    let mut h = HotTier::new(1000, usize::MAX);
    add(&mut h, "new1", "t", 5000);
    add(&mut h, "old", "t", 1000);
    add(&mut h, "new2", "t", 5000);
    assert_eq!(h.evict_expired(5500), 1);
    assert_eq!(strs(h.find(Field::Topic, "t")), ["Rnew1", "Rnew2"]);
    assert_eq!(strs(h.records()), ["Rnew1", "Rnew2"]);
}

#[test]
fn byte_budget() {
    // frame, record, id, topic, type, ns, and a row of nulls in the Arrow columns
    let one = ENTRY_OVERHEAD + 2 + 2 + 1 + 1 + 4 + 1 + crate::hot::arrow::ARROW_ROW_FIXED;
    let mut h = HotTier::new(i64::MAX, one * 3);
    for i in 0..5 {
        add(&mut h, &i.to_string(), "t", i);
    }
    assert_eq!(h.len(), 3);
    assert_eq!(h.bytes_used(), one * 3);
    assert_eq!(strs(h.records()), ["R2", "R3", "R4"]);
    assert!(h.find(Field::Id, "0").is_empty());
    assert_eq!(h.last_seq(), 5);
    // An event bigger than the budget is kept on its own.
    let mut h = HotTier::new(i64::MAX, 10);
    add(&mut h, "a", "t", 0);
    add(&mut h, "b", "t", 0);
    assert_eq!(strs(h.records()), ["Rb"]);
}

#[test]
fn find_and_query() {
    // §11 H53 shape.
    let mut h = big();
    let rows = [
        ("evt-1", "trace", "api-service", Some("trace-abc")),
        ("evt-2", "log", "api-service", None),
        ("evt-3", "metric", "metrics-service", None),
        ("evt-4", "trace", "api-service", Some("trace-abc")),
    ];
    for (i, (id, ty, ns, trace)) in rows.iter().enumerate() {
        let m = EventMeta {
            event_type: ty,
            ns,
            trace_id: *trace,
            ..meta(id, ns, i as i64)
        };
        h.insert(&m, b"f", id.as_bytes());
    }
    let q = |f: &[(Field, &str)], after, limit| strs(h.query(f, after, limit));
    assert_eq!(
        q(&[(Field::EventType, "trace")], None, None),
        ["evt-4", "evt-1"]
    );
    assert_eq!(q(&[(Field::Ns, "api-service")], None, None).len(), 3);
    assert_eq!(q(&[], None, Some(2)), ["evt-4", "evt-3"]);
    assert_eq!(
        q(
            &[(Field::EventType, "trace"), (Field::Ns, "api-service")],
            None,
            None
        )
        .len(),
        2
    );
    assert_eq!(
        q(
            &[(Field::EventType, "trace"), (Field::Ns, "nope")],
            None,
            None
        )
        .len(),
        0
    );
    assert_eq!(q(&[], Some(1), None), ["evt-4", "evt-3"]);
    assert_eq!(
        strs(h.find(Field::TraceId, "trace-abc")),
        ["evt-1", "evt-4"]
    );
    assert!(h.find(Field::SessionId, "x").is_empty());
    assert_eq!(
        "nope".parse::<Field>(),
        Err(CoreError::UnknownField("nope".into()))
    );
    assert_eq!("correlation_id".parse::<Field>(), Ok(Field::CorrelationId));
}

#[test]
fn query_ties_latest_inserted_first() {
    let mut h = big();
    add(&mut h, "a", "t", 5);
    add(&mut h, "b", "t", 5);
    add(&mut h, "c", "t", 1);
    assert_eq!(
        strs(h.query(&[(Field::Topic, "t")], None, None)),
        ["Rb", "Ra", "Rc"]
    );
}

/// A hot row shaped like the ones `events.py` writes: every column, in order, compact.
fn json_row(id: &str, duration: &str) -> String {
    use arrow_schema::DataType;
    let schema = crate::hot::arrow::schema();
    let members: Vec<String> = schema
        .fields()
        .iter()
        .take_while(|f| f.name() != "seq")
        .map(|f| {
            let value = match (f.name().as_str(), f.data_type()) {
                ("id", _) => format!("\"{id}\""),
                ("payload", _) => "null".to_owned(),
                ("duration_ms", _) => duration.to_owned(),
                ("log_message", _) => "\"tab\\there \\\"quoted\\\" é\"".to_owned(),
                (_, DataType::Int64) => "7".to_owned(),
                (_, DataType::Float64) => "2.5".to_owned(),
                (name, _) => format!("\"v-{name}\""),
            };
            format!("\"{}\":{value}", f.name())
        })
        .collect();
    format!("{{{}}}", members.join(","))
}

#[test]
fn json_rows_are_rebuilt_from_frozen_columns_byte_for_byte() {
    let mut h = HotTier::new(10, usize::MAX);
    let n = crate::hot::arrow::SEGMENT_ROWS * 2 + 50;
    let rows: Vec<String> = (0..n)
        .map(|i| json_row(&format!("e{i}"), if i % 3 == 0 { "40" } else { "12.75" }))
        .collect();
    let mut before = 0;
    for (i, row) in rows.iter().enumerate() {
        h.insert(&meta(&format!("e{i}"), "t", 1), b"frame", row.as_bytes());
        if i == 0 {
            before = h.bytes_used();
        }
    }
    // `40` comes back as `40.0` from a Float64 column, so those rows keep their JSON; the rest of
    // the frozen rows are rebuilt.
    assert!(
        h.bytes_used() < before * n - rows[1].len() * 1000,
        "frozen rows were compacted"
    );
    assert_eq!(strs(h.records()), rows);
    assert_eq!(strs(h.find(Field::Id, "e5")), [rows[5].clone()]);
    assert_eq!(strs(h.find(Field::Id, "e6")), [rows[6].clone()]);
    // Eviction still works with compacted rows.
    assert_eq!(h.evict_expired(1000), n);
    assert!(h.records().is_empty() && h.bytes_used() == 0);
}
