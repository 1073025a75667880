use super::*;
use crate::fanout::{encode_text_frame, split_frames};

fn cfg() -> HubConfig {
    HubConfig {
        rate_per_sec: 1000.0,
        burst: 1000.0,
        max_queued_bytes: 1 << 20,
        max_pending_messages: 100,
        slow_consumer_ms: 1000.0,
    }
}

fn hub_with(cfg: HubConfig, conns: &[(u64, &[&str])]) -> Hub {
    let mut h = Hub::new(cfg);
    for (id, keys) in conns {
        h.add_connection(*id, 0.0).unwrap();
        for k in *keys {
            h.subscribe(*id, k).unwrap();
        }
    }
    h
}

/// Drain everything; payloads per connection.
fn drain_all(h: &mut Hub) -> Vec<(u64, Vec<Vec<u8>>)> {
    h.drain(usize::MAX)
        .into_iter()
        .map(|d| {
            let mut buf = vec![0; d.len];
            d.write_into(&mut buf);
            let frames = split_frames(&buf)
                .unwrap()
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect();
            (d.conn_id, frames)
        })
        .collect()
}

fn count_for(drained: &[(u64, Vec<Vec<u8>>)], id: u64) -> usize {
    drained
        .iter()
        .filter(|(c, _)| *c == id)
        .map(|(_, f)| f.len())
        .sum()
}

#[test]
fn routing_and_dedupe() {
    // §11 D27/D28/D29.
    let mut h = hub_with(
        cfg(),
        &[
            (1, &["orders"]),
            (2, &["orders", "payments"]),
            (3, &["users"]),
            (4, &["orders.created", "orders.*"]),
        ],
    );
    assert_eq!(h.publish("orders", b"o", 0.0), 2);
    assert_eq!(h.publish("payments", b"p", 0.0), 1);
    assert_eq!(h.publish("orders.created", b"c", 0.0), 1);
    let d = drain_all(&mut h);
    assert_eq!(
        [
            count_for(&d, 1),
            count_for(&d, 2),
            count_for(&d, 3),
            count_for(&d, 4)
        ],
        [1, 2, 0, 1]
    );
    assert_eq!(h.publish_all(b"all", 0.0), 4);
    let d = drain_all(&mut h);
    assert_eq!(d.len(), 4);
    assert!(d.iter().all(|(_, f)| f == &[b"all".to_vec()]));
    assert_eq!(h.stats().delivered, 8);
    assert_eq!(h.stats().queued_bytes, 0);
}

#[test]
fn frames_in_order_and_one_buffer_per_connection() {
    let mut h = hub_with(cfg(), &[(1, &["ordered"])]);
    for i in 0..10u8 {
        h.publish("ordered", &[b'0' + i], 0.0);
    }
    assert!(h.has_pending());
    let d = drain_all(&mut h);
    assert_eq!(d.len(), 1);
    let got: Vec<u8> = d[0].1.iter().map(|f| f[0]).collect();
    assert_eq!(got, b"0123456789");
    assert!(!h.has_pending());
    assert!(h.drain(10).is_empty());
}

#[test]
fn rate_limit_is_per_connection_and_runs_first() {
    // §11 F39-F41: rate 10, burst 20, two connections.
    let c = HubConfig {
        rate_per_sec: 10.0,
        burst: 20.0,
        ..cfg()
    };
    let mut h = hub_with(c, &[(1, &["t"]), (2, &["t"])]);
    for _ in 0..30 {
        h.publish("t", b"x", 0.0);
    }
    let d = drain_all(&mut h);
    assert_eq!((count_for(&d, 1), count_for(&d, 2)), (20, 20));
    assert_eq!(h.stats().dropped_rate_limit, 20);
    for _ in 0..10 {
        h.publish("t", b"x", 1000.0);
    }
    let d = drain_all(&mut h);
    assert_eq!((count_for(&d, 1), count_for(&d, 2)), (10, 10));
    // A message dropped for backpressure has used a token: with a cap of 0 bytes the first
    // frame still goes (an empty queue always takes one), the second is dropped, the third has no token.
    let c = HubConfig {
        rate_per_sec: 0.0,
        burst: 2.0,
        max_queued_bytes: 0,
        ..cfg()
    };
    let mut h = hub_with(c, &[(1, &["t"])]);
    for _ in 0..3 {
        h.publish("t", b"x", 0.0);
    }
    let s = h.stats();
    assert_eq!(
        (s.dropped_backpressure, s.dropped_rate_limit, s.delivered),
        (1, 1, 1)
    );
}

#[test]
fn backpressure_one_notice_per_burst() {
    let c = HubConfig {
        max_pending_messages: 3,
        ..cfg()
    };
    let mut h = hub_with(c, &[(1, &["t"])]);
    h.set_writable(1, false);
    for _ in 0..10 {
        h.publish("t", b"event", 0.0);
    }
    assert!(!h.has_pending());
    assert!(h.drain(10).is_empty());
    let s = h.stats();
    assert_eq!(
        (s.delivered, s.dropped_backpressure, s.backpressure_notices),
        (3, 7, 1)
    );
    h.set_writable(1, true);
    assert!(h.has_pending());
    let d = drain_all(&mut h);
    assert_eq!(d[0].1.len(), 4);
    assert_eq!(d[0].1[3], BACKPRESSURE_NOTICE);
    // New burst after the drain: a fresh notice.
    h.set_writable(1, false);
    for _ in 0..5 {
        h.publish("t", b"event", 0.0);
    }
    assert_eq!(h.stats().backpressure_notices, 2);
}

#[test]
fn byte_cap_applies_while_writable() {
    let frame_len = encode_text_frame(b"0123456789").len();
    let c = HubConfig {
        max_queued_bytes: frame_len * 2,
        ..cfg()
    };
    let mut h = hub_with(c, &[(1, &["t"])]);
    for _ in 0..5 {
        h.publish("t", b"0123456789", 0.0);
    }
    assert_eq!(h.stats().dropped_backpressure, 3);
    // The notice bypasses the cap.
    assert_eq!(
        h.pending_bytes(1),
        frame_len * 2 + encode_text_frame(BACKPRESSURE_NOTICE).len()
    );
    assert_eq!(h.stats().queued_bytes as usize, h.pending_bytes(1));
}

#[test]
fn slow_consumers_reported_once() {
    let c = HubConfig {
        max_pending_messages: 1,
        slow_consumer_ms: 500.0,
        ..cfg()
    };
    let mut h = hub_with(c, &[(1, &["t"]), (2, &["t"])]);
    h.set_writable(1, false);
    h.publish("t", b"a", 0.0);
    h.publish("t", b"b", 100.0); // 1 goes over cap at 100
    assert!(h.take_slow_consumers(599.0).is_empty());
    h.publish("t", b"c", 300.0);
    assert_eq!(h.take_slow_consumers(600.0), vec![1]);
    assert!(h.take_slow_consumers(10_000.0).is_empty());
    assert_eq!(h.stats().slow_consumers, 1);
    // Draining ends the episode; a later one is reported again.
    h.set_writable(1, true);
    drain_all(&mut h);
    h.set_writable(1, false);
    h.publish("t", b"d", 20_000.0);
    h.publish("t", b"e", 20_000.0);
    assert_eq!(h.take_slow_consumers(21_000.0), vec![1]);
    // A removed connection is not reported.
    h.publish("t", b"f", 0.0);
    h.remove_connection(1);
    assert!(h.take_slow_consumers(99_000.0).is_empty());
}

#[test]
fn drain_is_fifo_and_bounded() {
    let mut h = hub_with(cfg(), &[(1, &["t1"]), (2, &["t2"]), (3, &["t1", "t2"])]);
    h.send_control(3, b"first");
    h.publish("t1", b"x", 0.0);
    h.publish("t2", b"x", 0.0);
    let first: Vec<u64> = h.drain(2).iter().map(|d| d.conn_id).collect();
    assert_eq!(first, vec![3, 1]);
    assert!(h.has_pending());
    let rest: Vec<u64> = h.drain(2).iter().map(|d| d.conn_id).collect();
    assert_eq!(rest, vec![2]);
    assert!(!h.has_pending());
    assert!(h.drain(0).is_empty());
}

#[test]
fn control_frames_bypass_everything() {
    let c = HubConfig {
        rate_per_sec: 0.0,
        burst: 0.0,
        max_queued_bytes: 0,
        max_pending_messages: 0,
        ..cfg()
    };
    let mut h = hub_with(c, &[(1, &["t"])]);
    h.set_writable(1, false);
    assert!(h.send_control(1, b"welcome"));
    assert!(!h.send_control(9, b"nobody"));
    assert_eq!(h.publish("t", b"x", 0.0), 0);
    h.set_writable(1, true);
    let d = drain_all(&mut h);
    assert_eq!(d[0].1, vec![b"welcome".to_vec()]);
}

#[test]
fn writable_toggles_and_removal_keep_ready_count() {
    let mut h = hub_with(cfg(), &[(1, &["t"]), (2, &["t"])]);
    h.publish("t", b"x", 0.0);
    h.set_writable(1, false);
    h.set_writable(1, false);
    assert!(h.has_pending()); // 2 still ready
    h.remove_connection(2);
    assert!(!h.has_pending());
    h.set_writable(1, true);
    assert!(h.has_pending());
    h.remove_connection(1);
    assert!(!h.has_pending());
    assert!(h.drain(10).is_empty());
    assert_eq!(h.stats().queued_bytes, 0);
    // Re-adding an id leaves no ghost state.
    h.add_connection(1, 0.0).unwrap();
    assert!(h.add_connection(1, 0.0).is_err());
    assert_eq!(h.index().subscriber_count("t"), 0);
    h.subscribe(1, "t").unwrap();
    h.publish("t", b"y", 0.0);
    let d = drain_all(&mut h);
    assert_eq!(d, vec![(1, vec![b"y".to_vec()])]);
    assert!(h.subscribe(42, "t").is_err());
}

#[test]
fn many_connections_one_pattern() {
    // §11 D25/D34 shape: 10k connections, 10k distinct keys.
    let mut h = Hub::new(cfg());
    for i in 0..10_000u64 {
        h.add_connection(i, 0.0).unwrap();
        h.subscribe(i, &format!("tenant-{}.*", i % 10)).unwrap();
        h.subscribe(i, &format!("room.{i}")).unwrap();
    }
    assert_eq!(h.publish("tenant-5.orders", b"x", 0.0), 1000);
    assert_eq!(h.publish("room.77", b"x", 0.0), 1);
    assert_eq!(h.drain(usize::MAX).len(), 1001);
}

#[test]
fn an_empty_queue_takes_a_frame_larger_than_the_cap() {
    let c = HubConfig {
        max_queued_bytes: 4,
        ..cfg()
    };
    let mut h = hub_with(c, &[(1, &["t"])]);
    assert_eq!(h.publish("t", b"much larger than four bytes", 0.0), 1);
    assert_eq!(h.publish("t", b"dropped", 0.0), 0);
    assert_eq!(h.stats().dropped_backpressure, 1);
}
