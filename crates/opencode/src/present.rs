//! One OpenCode permission request as an inbox request: the session, the
//! permission (tool), what it asks for (the command for `bash`), what an
//! "always" would allow, and the free-form metadata.

use chrono::{DateTime, Utc};
use countersign_model::{AllowedDecision, Fact, Kind, ObservedRequest, RequestExtra};
use serde_json::{json, Value};

/// When the request was made, from its id: `per_` + 12 hex digits, the
/// low 48 bits of `ms * 4096 + counter`. That keeps the milliseconds
/// modulo 2^36 (about 795 days), so the time is the latest one at or
/// before `now` with those low bits. Requests carry no timestamp.
pub fn created_at(id: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    const WRAP: i64 = 1 << 36;
    let hex = id.split_once('_')?.1.get(..12)?;
    let low = i64::try_from(u64::from_str_radix(hex, 16).ok()? >> 12).ok()?;
    let now_ms = now.timestamp_millis();
    let back = (now_ms.rem_euclid(WRAP) - low).rem_euclid(WRAP);
    DateTime::from_timestamp_millis(now_ms - back)
}

/// What an ask is, besides its id: who asked, for what, what `always`
/// would allow, the metadata shown and the tool call. The reviewer
/// decided on these; the reply goes out only while they still hold.
const ASKED: [&str; 6] = [
    "sessionID",
    "permission",
    "patterns",
    "always",
    "metadata",
    "tool",
];

/// The first field of [`ASKED`] that differs between the ask as the
/// reviewer saw it and as it is pending now (an absent field counts as
/// `null`), or `None` when it is the same ask.
pub fn changed(seen: &Value, now: &Value) -> Option<&'static str> {
    let field = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    ASKED.into_iter().find(|k| field(seen, k) != field(now, k))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `directory`: the instance it was asked in (`None`: the server's own).
pub fn request(v: &Value, directory: Option<&str>) -> Option<ObservedRequest> {
    let id = v.get("id").and_then(Value::as_str)?;
    let session = v.get("sessionID").and_then(Value::as_str)?;
    let permission = v
        .get("permission")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    let patterns = strings(&v["patterns"]);
    let always = strings(&v["always"]);
    let metadata = v.get("metadata").filter(|m| m.is_object()).cloned();
    let command = metadata
        .as_ref()
        .and_then(|m| m.get("command"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let what = command.clone().unwrap_or_else(|| patterns.join(", "));
    let title: String = format!("{permission}: {what}")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let arguments = match &metadata {
        Some(m) if m.as_object().is_some_and(|o| !o.is_empty()) => m.clone(),
        _ => json!({"patterns": patterns}),
    };
    let mut facts = vec![Fact {
        name: "session".into(),
        value: json!(session),
    }];
    if let Some(d) = directory {
        facts.push(Fact {
            name: "directory".into(),
            value: json!(d),
        });
    }
    facts.push(Fact {
        name: "patterns".into(),
        value: json!(patterns),
    });
    if !always.is_empty() {
        facts.push(Fact {
            name: "always allows".into(),
            value: json!(always),
        });
    }
    if let Some(call) = v.pointer("/tool/callID") {
        facts.push(Fact {
            name: "tool call".into(),
            value: call.clone(),
        });
    }
    let mut allowed = vec![AllowedDecision::Approve, AllowedDecision::Deny];
    if !always.is_empty() {
        allowed.push(AllowedDecision::AlwaysAllow);
    }
    Some(ObservedRequest {
        remote_id: id.to_owned(),
        route: json!({"directory": directory, "session_id": session}),
        kind: Kind::Approval,
        title,
        action: permission.clone(),
        arguments,
        description: None,
        agent: Some(match directory {
            Some(d) => format!("{d} · {session}"),
            None => session.to_owned(),
        }),
        tier: None,
        created_at: created_at(id, Utc::now()).unwrap_or_else(Utc::now),
        deadline: None,
        allowed_decisions: allowed,
        link: None,
        extra: RequestExtra {
            label: Some(format!("{permission} permission")),
            facts,
            ..Default::default()
        },
        raw: v.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_creation_time_is_read_from_the_id() {
        let ms: u64 = 1_787_390_000_456;
        let id = format!(
            "per_{:012x}k1T4N3mVntSscs",
            (ms * 4096 + 7) & 0xffff_ffff_ffff
        );
        let now = DateTime::from_timestamp_millis(ms as i64 + 5_000).unwrap();
        assert_eq!(
            created_at(&id, now).map(|t| t.timestamp_millis()),
            Some(ms as i64),
            "ids keep the low 48 bits of ms * 4096 + counter: 5 s ago"
        );
    }

    #[test]
    fn a_bash_request_shows_its_command_and_what_always_would_allow() {
        let v = json!({"id": "per_2010a33f9001k1T4N3mVntSscs", "sessionID": "ses_1", "permission": "bash",
            "patterns": ["echo hi"], "metadata": {"command": "echo hi"}, "always": ["echo *"]});
        let r = request(&v, Some("/p")).expect("valid");
        assert_eq!(r.title, "bash: echo hi");
        assert!(r.allowed_decisions.contains(&AllowedDecision::AlwaysAllow));
        assert_eq!(
            r.route["directory"], "/p",
            "replies go to the request's instance"
        );
    }

    #[test]
    fn an_ask_is_changed_when_what_it_asks_for_differs_and_not_when_it_is_the_same() {
        let seen = json!({"id": "per_1", "sessionID": "ses_1", "permission": "bash",
            "patterns": ["ls"], "metadata": {"command": "ls"}, "always": ["ls *"],
            "tool": {"messageID": "msg_1", "callID": "call_1"}});
        assert_eq!(
            changed(&seen, &seen.clone()),
            None,
            "the same ask listed again is the one decided"
        );
        let mut now = seen.clone();
        now["patterns"] = json!(["rm -rf /"]);
        now["metadata"] = json!({"command": "rm -rf /"});
        assert_eq!(
            changed(&seen, &now),
            Some("patterns"),
            "another command under the same id is not what the reviewer saw"
        );
        let mut now = seen.clone();
        now["tool"]["callID"] = json!("call_2");
        assert_eq!(
            changed(&seen, &now),
            Some("tool"),
            "the same words for another tool call are another ask"
        );
    }

    #[test]
    fn without_always_patterns_always_is_not_offered() {
        let v = json!({"id": "per_2010a33f9001k1T4N3mVntSscs", "sessionID": "s", "permission": "read",
            "patterns": ["/etc/passwd"], "metadata": {}, "always": []});
        let r = request(&v, None).expect("valid");
        assert!(!r.allowed_decisions.contains(&AllowedDecision::AlwaysAllow));
        assert_eq!(
            r.arguments,
            json!({"patterns": ["/etc/passwd"]}),
            "empty metadata shows the patterns"
        );
    }
}
