//! harn's provenance hash chain: canonical JSON, each event-log row's
//! `record_hash` and `prev_hash` headers, and approval signatures.
//!
//! Keys are sorted explicitly (UTF-8 byte order, at every depth) rather than
//! trusting `serde_json::Map`'s order, which the `preserve_order` feature —
//! additive across a workspace — would silently change.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub const SCHEMA_HEADER: &str = "harn.provenance.schema";
pub const SCHEMA: &str = "harn-eventlog-provenance-v1";
pub const PREV_HASH_HEADER: &str = "harn.provenance.prev_hash";
pub const RECORD_HASH_HEADER: &str = "harn.provenance.record_hash";

/// Compact JSON with object keys sorted by their UTF-8 bytes at every depth.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&map[*k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// `"sha256:" + hex(SHA-256(text))`.
pub fn sha256_tagged(text: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

/// The `record_hash` of one row. `headers` may hold a `record_hash`
/// already; it is left out of the hash, as harn does.
pub fn record_hash(
    topic: &str,
    event_id: i64,
    kind: &str,
    payload: &Value,
    headers: &Map<String, Value>,
    occurred_at_ms: i64,
) -> String {
    let mut headers = headers.clone();
    headers.remove(RECORD_HASH_HEADER);
    let record = serde_json::json!({
        "topic": topic,
        "event_id": event_id,
        "kind": kind,
        "payload": payload,
        "headers": Value::Object(headers),
        "occurred_at_ms": occurred_at_ms,
    });
    sha256_tagged(&canonical(&record))
}

/// Adds the provenance headers to a new row's headers: the schema, the
/// previous row's hash (when the topic has one) and this row's hash.
pub fn seal(
    topic: &str,
    event_id: i64,
    kind: &str,
    payload: &Value,
    headers: &mut Map<String, Value>,
    occurred_at_ms: i64,
    prev_hash: Option<&str>,
) {
    headers.insert(SCHEMA_HEADER.into(), SCHEMA.into());
    headers.remove(PREV_HASH_HEADER);
    if let Some(prev) = prev_hash.filter(|p| !p.trim().is_empty()) {
        headers.insert(PREV_HASH_HEADER.into(), prev.into());
    }
    let hash = record_hash(topic, event_id, kind, payload, headers, occurred_at_ms);
    headers.insert(RECORD_HASH_HEADER.into(), hash.into());
}

/// harn's `approval_receipt_signature` for one counted approval.
pub fn approval_signature(
    request_id: &str,
    reviewer: &str,
    signed_at: &str,
    reason: Option<&str>,
) -> String {
    sha256_tagged(&format!(
        "harn-hitl-approval-v1\nrequest_id:{request_id}\nreviewer:{reviewer}\nsigned_at:{signed_at}\napproved:true\nreason:{}\n",
        reason.unwrap_or("")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn record_hashes_match_the_worked_example_in_harns_docs() {
        let first = record_hash(
            "waitpoint.resumes",
            1,
            "waitpoint.resume",
            &json!({"reason":"waitpoint_changed","requested_at":"2026-05-01T12:00:00Z","waitpoint_id":"hitl_approval_demo"}),
            &headers(json!({"harn.provenance.schema":"harn-eventlog-provenance-v1"})),
            1777636800000,
        );
        assert_eq!(
            first, "sha256:a7641feb2eff95d114a136c0f48e6525b651009646e0865563508b914d7c9486",
            "harn recomputes this hash; any difference breaks its chain check"
        );
        let mut h = Map::new();
        seal(
            "waitpoint.resumes",
            2,
            "waitpoint.resume",
            &json!({"reason":"waitpoint_changed","requested_at":"2026-05-01T12:00:01Z","waitpoint_id":"hitl_question_demo"}),
            &mut h,
            1777636801000,
            Some(&first),
        );
        assert_eq!(
            h[PREV_HASH_HEADER],
            json!(first),
            "the chain links to the previous row"
        );
        assert_eq!(
            h[RECORD_HASH_HEADER],
            json!("sha256:adb19be3a8fc68aac8594c77253a8294bbdd0c9d72a964e772fd3b857a2f1a75"),
            "second row of the documented chain"
        );
    }

    #[test]
    fn signatures_match_the_documented_example() {
        assert_eq!(
            approval_signature(
                "hitl_approval_demo",
                "alice",
                "2026-05-01T12:00:00Z",
                Some("ok")
            ),
            "sha256:2f0f4f21a28f50a7104c7ba1197394ff41cfcad32f9f51848337b12521f8d835",
            "harn's approval receipts are this exact text hashed"
        );
    }

    #[test]
    fn canonical_json_sorts_keys_by_bytes_at_every_depth() {
        let v = json!({"b": [{"z": 1, "a": "é"}], "B": null, "a": {"y": true, "x": 1.5}});
        assert_eq!(
            canonical(&v),
            r#"{"B":null,"a":{"x":1.5,"y":true},"b":[{"a":"é","z":1}]}"#,
            "uppercase sorts before lowercase in byte order; arrays keep their order"
        );
    }
}
