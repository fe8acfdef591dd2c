//! The abuse trail of an end user: every request of theirs that moderation flagged or blocked,
//! or that was refused because they were blocked, read from the audit chain and checked
//! against it. Served by `GET /api/v1/end-users/{id}/abuse-report` and
//! `switchyard abuse report`, as JSON Lines or CSV.
//!
//! Each entry carries its record's `seq` and `hash`: the report verifies that every record it
//! lists hashes to its stored hash from its predecessor, and the whole chain is verified with
//! it ([`crate::audit::verify`]), so a listed entry cannot have been edited, and none can have
//! been removed from the stored chain without the verification failing.

use serde::Serialize;
use serde_json::Value;
use switchyard_core::audit::{self, Verified};
use switchyard_store::Store;

use crate::audit::AuditError;

/// Records read per page.
const PAGE: i64 = 1000;

/// One flagged or blocked request. Fields in the byte order of their names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// The strongest moderation action (`flag`, `block`, `block_and_strike`), or `blocked`
    /// when the request was refused because the end user was blocked.
    pub action: String,
    /// Whether moderation blocked the end user automatically at this request.
    pub auto_blocked: bool,
    /// The moderation categories marked, over every stage.
    pub categories: Vec<String>,
    /// The request's generation id.
    pub generation_id: String,
    /// Its audit record's hash.
    pub hash: String,
    /// The key (hash) it came with.
    pub key_hash: Option<String>,
    /// The model that served it, else the one asked for.
    pub model: Option<String>,
    /// The provider that served it, if one did.
    pub provider: Option<String>,
    /// Its audit record's position in the chain.
    pub seq: i64,
    /// The stages moderation ran at and acted (`request`, `completion`).
    pub stages: Vec<String>,
    /// The status the client got.
    pub status: u64,
    /// When it arrived, ISO-8601 UTC.
    pub time: String,
}

/// The report: the entries and what verification saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Flagged or blocked requests, in chain order.
    pub entries: Vec<Entry>,
    /// The whole chain's verification.
    pub chain: Verified,
}

fn strength(action: &str) -> u8 {
    match action {
        "flag" => 1,
        "block" => 2,
        "block_and_strike" => 3,
        _ => 0,
    }
}

/// The entry of one audit record body, when it is a flagged or blocked request of `user` of
/// `account_id`.
pub fn entry_of(body: &Value, account_id: &str, user: &str) -> Option<Entry> {
    if body.get("kind")?.as_str()? != "inference"
        || body.get("account_id")?.as_str()? != account_id
        || body.get("user")?.as_str()? != user
    {
        return None;
    }
    let mut action = String::new();
    let mut categories: Vec<String> = Vec::new();
    let mut stages = Vec::new();
    let mut auto_blocked = false;
    for m in body
        .get("moderation")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let a = m.get("action").and_then(Value::as_str).unwrap_or("none");
        if strength(a) == 0 {
            continue;
        }
        if strength(a) > strength(&action) {
            action = a.to_owned();
        }
        stages.push(
            m.get("stage")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        );
        auto_blocked |= m.get("auto_blocked").and_then(Value::as_bool) == Some(true);
        for c in m
            .get("categories")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !categories.iter().any(|x| x == c) {
                categories.push(c.to_owned());
            }
        }
    }
    let refused_blocked =
        body.get("refusal").and_then(Value::as_str) == Some(crate::end_users::refusal::BLOCKED);
    if action.is_empty() {
        if !refused_blocked {
            return None;
        }
        action = "blocked".to_owned();
    }
    categories.sort();
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let served = body.get("served").filter(|s| !s.is_null());
    Some(Entry {
        action,
        auto_blocked,
        categories,
        generation_id: text(body.get("generation_id")).unwrap_or_default(),
        hash: String::new(),
        key_hash: text(body.get("key_hash")),
        model: text(served.and_then(|s| s.get("model")))
            .or_else(|| text(body.get("requested_model"))),
        provider: text(served.and_then(|s| s.get("provider"))),
        seq: 0,
        stages,
        status: body.get("status").and_then(Value::as_u64).unwrap_or(0),
        time: switchyard_core::periods::to_iso8601(
            body.get("time").and_then(Value::as_i64).unwrap_or(0),
        ),
    })
}

/// The abuse report of `user` of `account_id` over `[since_ms, until_ms)`, verified against
/// the chain (signed anchors checked with `key`).
pub async fn report(
    store: &Store,
    key: Option<&[u8]>,
    account_id: &str,
    user: &str,
    since_ms: i64,
    until_ms: i64,
) -> Result<Report, AuditError> {
    let chain = crate::audit::verify(store, key).await?;
    let mut entries = Vec::new();
    let mut after = i64::MIN;
    loop {
        let page = store.audit_range(since_ms, until_ms, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in page {
            if r.account_id.as_deref() != Some(account_id) {
                continue;
            }
            let Ok(body) = serde_json::from_str::<Value>(&r.body) else {
                continue;
            };
            let Some(mut entry) = entry_of(&body, account_id, user) else {
                continue;
            };
            if audit::record_hash(&r.prev_hash, r.seq, &r.body) != r.hash {
                return Err(AuditError::Broken(audit::Broken {
                    seq: r.seq,
                    reason: "the record's hash does not match its body".to_owned(),
                }));
            }
            entry.seq = r.seq;
            entry.hash = r.hash;
            entries.push(entry);
        }
    }
    Ok(Report { entries, chain })
}

/// The report as JSON Lines, one entry a line.
pub fn to_jsonl(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries {
        out.push_str(&serde_json::to_string(e).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// The report as CSV (RFC 4180), with a header row; lists are joined with `;`.
pub fn to_csv(entries: &[Entry]) -> String {
    fn field(text: &str) -> String {
        if text.contains([',', '"', '\n', '\r', ';']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text.to_owned()
        }
    }
    let mut out = String::from(
        "time,generation_id,key_hash,model,provider,categories,action,stages,auto_blocked,status,seq,hash\r\n",
    );
    for e in entries {
        let row = [
            field(&e.time),
            field(&e.generation_id),
            field(e.key_hash.as_deref().unwrap_or("")),
            field(e.model.as_deref().unwrap_or("")),
            field(e.provider.as_deref().unwrap_or("")),
            field(&e.categories.join(";")),
            field(&e.action),
            field(&e.stages.join(";")),
            e.auto_blocked.to_string(),
            e.status.to_string(),
            e.seq.to_string(),
            field(&e.hash),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(user: &str, moderation: Value, refusal: Value) -> Value {
        json!({
            "kind": "inference", "account_id": "acct", "user": user, "generation_id": "gen-1",
            "key_hash": "abc", "requested_model": "test/model", "status": 403, "time": 0,
            "served": null, "moderation": moderation, "refusal": refusal,
        })
    }

    #[test]
    fn selection_table() {
        let flagged = json!([{"action": "flag", "stage": "request", "categories": ["harassment"]}]);
        let clean = json!([{"action": "none", "stage": "request", "categories": []}]);
        let both = json!([
            {"action": "flag", "stage": "request", "categories": ["violence"]},
            {"action": "block_and_strike", "stage": "completion", "categories": ["hate", "violence"], "auto_blocked": true},
        ]);
        let cases = [
            (
                "flagged",
                body("u", flagged, Value::Null),
                Some(("flag", vec!["harassment"])),
            ),
            ("clean", body("u", clean.clone(), Value::Null), None),
            (
                "another user",
                body(
                    "v",
                    json!([{"action": "block", "categories": ["x"]}]),
                    Value::Null,
                ),
                None,
            ),
            (
                "refused as blocked",
                body("u", json!([]), json!("end_user_blocked")),
                Some(("blocked", vec![])),
            ),
            (
                "rate limited",
                body("u", clean, json!("rate_limited")),
                None,
            ),
            (
                "strongest over stages",
                body("u", both, Value::Null),
                Some(("block_and_strike", vec!["hate", "violence"])),
            ),
        ];
        for (name, b, want) in cases {
            let got = entry_of(&b, "acct", "u");
            match (got, want) {
                (None, None) => {}
                (Some(e), Some((action, categories))) => {
                    assert_eq!(e.action, action, "{name}");
                    assert_eq!(e.categories, categories, "{name}");
                }
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
        assert!(entry_of(&json!({"kind": "auth_failures"}), "acct", "u").is_none());
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let e = Entry {
            action: "block".into(),
            auto_blocked: false,
            categories: vec!["harassment/threatening".into(), "violence".into()],
            generation_id: "gen-1".into(),
            hash: "h".into(),
            key_hash: Some("k".into()),
            model: Some("a,b".into()),
            provider: None,
            seq: 7,
            stages: vec!["request".into()],
            status: 403,
            time: "2026-01-01T00:00:00Z".into(),
        };
        let csv = to_csv(std::slice::from_ref(&e));
        let row = csv.lines().nth(1).expect("row");
        assert_eq!(
            row,
            "2026-01-01T00:00:00Z,gen-1,k,\"a,b\",,\"harassment/threatening;violence\",block,request,false,403,7,h"
        );
        let line: Value = serde_json::from_str(to_jsonl(&[e]).trim()).expect("json");
        assert_eq!(line["seq"], 7);
    }
}
