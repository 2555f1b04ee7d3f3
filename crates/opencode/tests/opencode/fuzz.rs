//! OpenCode's permission requests and its event stream against hostile
//! input: never a panic; a request without an id or session costs only
//! itself; and the SSE reader (`eventsource-stream`, which harn's and
//! SurfSense's streams use too) hands over every well-formed event
//! however the bytes are split and whatever malformed lines lie between.

use chrono::{TimeZone, Utc};
use countersign_connector::http::without_bom;
use countersign_fakes::hostile::{broken, garbage, json, mangled, odd_string, one_bad_among};
use countersign_opencode::present::{changed, created_at, request};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use proptest::prelude::*;
use serde_json::{json, Value};

const WORDS: &[&str] = &[
    "id",
    "sessionID",
    "permission",
    "patterns",
    "always",
    "metadata",
    "command",
    "tool",
    "callID",
    "messageID",
    "type",
    "properties",
    "directory",
    "payload",
    "permission.asked",
    "permission.replied",
    "server.connected",
    "requestID",
    "reply",
    "once",
    "reject",
    "bash",
    "per_0a1b2c3d4e5f",
    "per_ffffffffffff",
];

fn permission() -> impl Strategy<Value = Value> {
    (
        (odd_string(), odd_string(), odd_string()),
        (
            prop::collection::vec(odd_string(), 0..3),
            prop::collection::vec(odd_string(), 0..3),
            json(WORDS),
            json(WORDS),
        ),
    )
        .prop_map(
            |((id, session, perm), (patterns, always, metadata, tool))| {
                json!({"id": format!("per_{id}"), "sessionID": session, "permission": perm,
                   "patterns": patterns, "always": always, "metadata": metadata, "tool": tool})
            },
        )
        .prop_flat_map(|p| prop_oneof![Just(p.clone()), mangled(p, WORDS)])
        .prop_filter("keeps its id and session", |p| {
            p["id"].is_string() && p["sessionID"].is_string()
        })
}

/// A stream's bytes cut into chunks at the given points, as the network
/// may deliver them (inside a line, inside a UTF-8 character).
fn chunks(bytes: &[u8], cuts: &[prop::sample::Index]) -> Vec<Result<Vec<u8>, std::io::Error>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.windows(2)
        .map(|w| Ok(bytes[w[0]..w[1]].to_vec()))
        .collect()
}

/// Every event's data the reader yields, up to its first error, reading
/// as the connectors do.
fn read(chunks: Vec<Result<Vec<u8>, std::io::Error>>) -> (Vec<String>, bool) {
    futures::executor::block_on(async {
        let mut events = without_bom(futures::stream::iter(chunks)).eventsource();
        let mut data = Vec::new();
        while let Some(ev) = events.next().await {
            match ev {
                Ok(ev) => data.push(ev.data),
                Err(_) => return (data, true),
            }
        }
        (data, false)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn a_request_without_id_or_session_costs_only_itself(
        (items, good) in one_bad_among(permission(), broken(permission(), &["id", "sessionID"], WORDS)),
        directory in prop::option::of(odd_string()),
    ) {
        let requests: Vec<_> = items.iter().filter_map(|v| request(v, directory.as_deref())).collect();
        prop_assert_eq!(requests.len(), good, "every request with an id and a session is asked; the other is skipped");
        for (r, v) in requests.iter().zip(&items) {
            prop_assert_eq!(changed(&r.raw, &r.raw), None, "an ask is the same as itself");
            let _ = changed(&r.raw, v);
        }
    }

    #[test]
    fn no_id_makes_the_time_reader_panic(id in prop_oneof![odd_string(), "per_[0-9a-f]{12}[a-zA-Z0-9]{0,14}"], now in any::<i64>()) {
        let now = Utc.timestamp_millis_opt(now / 1000).single().unwrap_or_default();
        if let Some(t) = created_at(&id, now) {
            prop_assert!(t <= now, "a request was made at or before now: {t} > {now}");
        }
    }

    #[test]
    fn every_well_formed_event_survives_malformed_lines_and_odd_chunks(
        good in prop::collection::vec(json(WORDS), 1..5),
        junk in prop::collection::vec(odd_string(), 0..5),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        // Junk lines (unknown fields, comments, stray `data` lines) each
        // end in a blank line, so they cannot run into a good event.
        let mut stream = String::new();
        for (i, g) in good.iter().enumerate() {
            if let Some(j) = junk.get(i) {
                stream.push_str(j);
                stream.push_str("\n\n");
            }
            stream.push_str(&format!("event: message\ndata: {g}\n\n"));
        }
        let (data, failed) = read(chunks(stream.as_bytes(), &cuts));
        prop_assert!(!failed, "valid UTF-8 never fails the reader");
        for g in &good {
            let text = g.to_string();
            prop_assert!(data.contains(&text), "the event {text} is read whatever lies around it");
        }
    }

    #[test]
    fn no_bytes_make_the_reader_panic(bytes in garbage(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let (data, _) = read(chunks(&bytes, &cuts));
        for d in data {
            if let Ok(v) = serde_json::from_str::<Value>(&d) {
                let props = v.pointer("/payload/properties").cloned().unwrap_or(Value::Null);
                let _ = request(&props, v.get("directory").and_then(Value::as_str));
            }
        }
    }
}

/// Found by `no_bytes_make_the_reader_panic` and
/// `every_well_formed_event_survives_malformed_lines_and_odd_chunks`: a
/// stream that begins with a byte-order mark (which the SSE spec allows),
/// or two, panicked inside `eventsource-stream`, whole or split across
/// chunks.
#[test]
fn a_stream_beginning_with_a_byte_order_mark_is_read() {
    let body = "\u{FEFF}\u{FEFF}data: {\"type\":\"server.connected\"}\n\n".as_bytes();
    for cut in 0..=7 {
        let (data, failed) = read(vec![Ok(body[..cut].to_vec()), Ok(body[cut..].to_vec())]);
        assert!(!failed, "a BOM is not an error (cut at byte {cut})");
        assert_eq!(
            data,
            vec![r#"{"type":"server.connected"}"#.to_owned()],
            "the event after the BOM is read, wherever the chunks split (cut at byte {cut})"
        );
    }
}
