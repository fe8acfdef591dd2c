//! The tamper-evident audit chain: canonical encoding, hash chaining, signed checkpoints and
//! verification. Pure: the store keeps the rows, the server appends them.
//!
//! Each record stores `prev_hash` (the hash of the record before it, or of the checkpoint it
//! follows) and `hash = SHA-256(prev_hash ‖ "\n" ‖ seq ‖ "\n" ‖ canonical JSON body)`. Editing a
//! body, deleting or reordering records breaks the chain at the first affected record. The
//! chain's head (last seq and hash) and every prune checkpoint are signed with HMAC-SHA-256 when
//! an audit key is configured, so that truncating the tail or rewriting the whole chain is
//! detected too.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the very first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// JSON with object keys sorted and no insignificant whitespace, whatever the map order of the
/// value it comes from.
pub fn canonical_json(value: &Value) -> String {
    let mut out = Vec::with_capacity(1024);
    write_canonical(value, &mut out);
    // Only serde_json's output and ASCII punctuation were written: always UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Writing to a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

/// The hash of a record.
pub fn record_hash(prev_hash: &str, seq: i64, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(seq.to_string().as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    hex::encode(h.finalize())
}

/// SHA-256 of some text, hex-encoded (prompts and completions are recorded only this way).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// HMAC-SHA-256 of a message under the audit key, hex-encoded.
pub fn sign(key: &[u8], message: &str) -> String {
    // HMAC accepts keys of any length.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// The message signed for a head or a checkpoint.
pub fn anchor_message(kind: &str, seq: i64, hash: &str) -> String {
    format!("switchyard-audit-{kind}\n{seq}\n{hash}")
}

/// One stored record, as verification reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// Canonical JSON body.
    pub body: String,
    /// Hash of the previous record (or of the checkpoint, or [`GENESIS`]).
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

/// A signed anchor: the last pruned record (checkpoint) or the last written one (head).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// Sequence number of the record it stands for.
    pub seq: i64,
    /// That record's hash.
    pub hash: String,
    /// HMAC over [`anchor_message`]; empty when no audit key is configured.
    pub signature: String,
}

/// Where and why verification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at record {seq}: {reason}")]
pub struct Broken {
    /// The first record that does not verify.
    pub seq: i64,
    /// What is wrong with it.
    pub reason: String,
}

/// What a successful verification saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Records checked.
    pub records: u64,
    /// First and last sequence numbers checked.
    pub range: Option<(i64, i64)>,
    /// Whether the anchors carried signatures that were checked.
    pub signed: bool,
}

fn check_anchor(kind: &str, anchor: &Anchor, key: Option<&[u8]>) -> Result<bool, Broken> {
    match key {
        Some(key) => {
            let want = sign(key, &anchor_message(kind, anchor.seq, &anchor.hash));
            if anchor.signature != want {
                return Err(Broken {
                    seq: anchor.seq,
                    reason: format!("the {kind} signature does not match (the {kind} was altered or signed with another key)"),
                });
            }
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Verifies records in `seq` order against the optional prune checkpoint and the head.
///
/// Detects: an edited body or hash (hash mismatch), a deleted record (a gap in `seq`, or a
/// `prev_hash` that does not link), reordering (the same), truncation of the tail (the head names
/// a later record than the last one present), and a forged head or checkpoint (signature, when a
/// key is given).
pub fn verify(
    records: impl IntoIterator<Item = StoredRecord>,
    checkpoint: Option<&Anchor>,
    head: Option<&Anchor>,
    key: Option<&[u8]>,
) -> Result<Verified, Broken> {
    let mut signed = false;
    let (mut expected_seq, mut prev) = match checkpoint {
        Some(c) => {
            signed |= check_anchor("checkpoint", c, key)?;
            (c.seq + 1, c.hash.clone())
        }
        None => (1, GENESIS.to_owned()),
    };
    let mut count = 0u64;
    let mut first = None;
    let mut last = None;
    for r in records {
        if r.seq != expected_seq {
            return Err(Broken {
                seq: expected_seq.min(r.seq),
                reason: if r.seq > expected_seq {
                    format!(
                        "record {expected_seq} is missing (next present is {})",
                        r.seq
                    )
                } else {
                    format!("record {} is out of order", r.seq)
                },
            });
        }
        if r.prev_hash != prev {
            return Err(Broken {
                seq: r.seq,
                reason: "prev_hash does not match the previous record's hash".to_owned(),
            });
        }
        let want = record_hash(&r.prev_hash, r.seq, &r.body);
        if r.hash != want {
            return Err(Broken {
                seq: r.seq,
                reason: "its content does not match its hash (edited)".to_owned(),
            });
        }
        first.get_or_insert(r.seq);
        last = Some(r.seq);
        prev = r.hash;
        expected_seq += 1;
        count += 1;
    }
    if let Some(h) = head {
        signed |= check_anchor("head", h, key)?;
        let last_seq = expected_seq - 1;
        if h.seq > last_seq {
            return Err(Broken {
                seq: last_seq + 1,
                reason: format!(
                    "the chain ends at {last_seq} but the head records {} (truncated)",
                    h.seq
                ),
            });
        }
        if h.seq == last_seq && h.hash != prev {
            return Err(Broken {
                seq: last_seq,
                reason: "the last record's hash does not match the head".to_owned(),
            });
        }
    }
    Ok(Verified {
        records: count,
        range: first.zip(last),
        signed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &[u8] = b"audit-key";

    fn chain(n: i64) -> (Vec<StoredRecord>, Anchor) {
        let mut prev = GENESIS.to_owned();
        let mut out = Vec::new();
        for seq in 1..=n {
            let body =
                canonical_json(&json!({"seq": seq, "status": 200, "b": [1, {"z": 1, "a": 2}]}));
            let hash = record_hash(&prev, seq, &body);
            out.push(StoredRecord {
                seq,
                body,
                prev_hash: prev.clone(),
                hash: hash.clone(),
            });
            prev = hash;
        }
        let head = Anchor {
            seq: n,
            hash: prev.clone(),
            signature: sign(KEY, &anchor_message("head", n, &prev)),
        };
        (out, head)
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"d": [3, {"y": 1, "x": "é\"q"}], "c": null}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":null,"d":[3,{"x":"é\"q","y":1}]},"b":1}"#
        );
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (records, head) = chain(5);
        let v = verify(records, None, Some(&head), Some(KEY)).expect("valid");
        assert_eq!(v.records, 5);
        assert_eq!(v.range, Some((1, 5)));
        assert!(v.signed);
    }

    #[test]
    fn every_kind_of_tampering_names_the_first_bad_record() {
        type Tamper = fn(&mut Vec<StoredRecord>, &mut Anchor);
        let cases: Vec<(&str, Tamper, i64)> = vec![
            (
                "edit a body",
                |r, _| r[2].body = r[2].body.replace("200", "500"),
                3,
            ),
            (
                "edit a body and its hash",
                |r, _| {
                    r[2].body = r[2].body.replace("200", "500");
                    r[2].hash = record_hash(&r[2].prev_hash, 3, &r[2].body);
                },
                4,
            ),
            (
                "delete a record",
                |r, _| {
                    r.remove(1);
                },
                2,
            ),
            ("reorder", |r, _| r.swap(1, 2), 2),
            (
                "truncate the tail",
                |r, _| {
                    r.truncate(3);
                },
                4,
            ),
            (
                "truncate and forge the head",
                |r, h| {
                    r.truncate(3);
                    h.seq = 3;
                    h.hash = r[2].hash.clone();
                },
                3,
            ),
        ];
        for (name, tamper, want) in cases {
            let (mut records, mut head) = chain(6);
            tamper(&mut records, &mut head);
            let err = verify(records, None, Some(&head), Some(KEY)).expect_err(name);
            assert_eq!(err.seq, want, "{name}: {err}");
        }
    }

    #[test]
    fn a_pruned_chain_verifies_from_its_checkpoint() {
        let (records, head) = chain(6);
        let cut = &records[2];
        let checkpoint = Anchor {
            seq: cut.seq,
            hash: cut.hash.clone(),
            signature: sign(KEY, &anchor_message("checkpoint", cut.seq, &cut.hash)),
        };
        let rest: Vec<StoredRecord> = records[3..].to_vec();
        let v = verify(rest.clone(), Some(&checkpoint), Some(&head), Some(KEY)).expect("valid");
        assert_eq!(v.range, Some((4, 6)));
        // A forged checkpoint (moved forward to hide a deletion) fails.
        let forged = Anchor {
            seq: 4,
            hash: rest[0].hash.clone(),
            signature: checkpoint.signature.clone(),
        };
        assert!(verify(rest[1..].to_vec(), Some(&forged), Some(&head), Some(KEY)).is_err());
    }
}
