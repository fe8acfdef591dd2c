#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The command line: keys (create, list, update, disable, enable, rotate, delete), credits,
//! account settings, audit and catalogue checks, with clear errors.

use std::path::{Path, PathBuf};
use std::process::Command;

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[store]\nurl = \"sqlite://{}\"\n",
            dir.path().join("db.sqlite").display()
        );
        std::fs::write(dir.path().join("switchyard.toml"), config).expect("config");
        Cli { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("switchyard.toml")
    }

    /// Runs a command; returns (success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("SWITCHYARD_LOG")
            .output()
            .expect("run");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "{args:?} failed: {err}");
        out
    }

    fn fails(&self, args: &[&str]) -> String {
        let (ok, _, err) = self.run(args);
        assert!(!ok, "{args:?} should fail");
        err
    }
}

fn hash_of(list: &str, name: &str) -> String {
    list.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{name} not in\n{list}"))
        .to_owned()
}

fn state_of(list: &str, name: &str) -> String {
    list.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .and_then(|l| l.split_whitespace().nth(3))
        .expect("state")
        .to_owned()
}

#[test]
fn keys_lifecycle() {
    let cli = Cli::new();
    let key = cli.ok(&[
        "keys",
        "create",
        "--name",
        "billing",
        "--limit",
        "5",
        "--limit-reset",
        "daily",
    ]);
    let key = key.trim();
    assert!(key.starts_with("sk-or-v1-") && key.len() == 73, "{key}");
    let list = cli.ok(&["keys", "list"]);
    assert!(!list.contains(key), "a listing never shows the key");
    let hash = hash_of(&list, "billing");
    assert_eq!(hash.len(), 64);
    assert!(list.contains("$5") || list.contains(" 5"), "{list}");

    cli.ok(&[
        "keys",
        "update",
        "billing",
        "--limit",
        "7.5",
        "--limit-reset",
        "weekly",
        "--expires-at",
        "2030-01-01",
    ]);
    let list = cli.ok(&["keys", "list"]);
    assert!(list.contains("7.5"), "{list}");
    cli.ok(&[
        "keys",
        "update",
        &hash,
        "--no-limit",
        "--no-expiry",
        "--name",
        "billing-2",
    ]);
    let list = cli.ok(&["keys", "list"]);
    assert!(list.contains("billing-2"), "{list}");

    cli.ok(&["keys", "disable", &hash]);
    assert_eq!(
        state_of(&cli.ok(&["keys", "list"]), "billing-2"),
        "disabled"
    );
    cli.ok(&["keys", "enable", "billing-2"]);
    assert_eq!(state_of(&cli.ok(&["keys", "list"]), "billing-2"), "active");

    let (ok, new_key, err) = cli.run(&["keys", "rotate", &hash]);
    assert!(ok, "{err}");
    assert!(new_key.trim().starts_with("sk-or-v1-") && new_key.trim() != key);
    let list = cli.ok(&["keys", "list"]);
    assert_eq!(
        list.lines().filter(|l| l.contains("billing-2")).count(),
        2,
        "{list}"
    );
    let mut states: Vec<String> = list
        .lines()
        .filter(|l| l.contains("billing-2"))
        .map(|l| l.split_whitespace().nth(3).expect("state").to_owned())
        .collect();
    states.sort();
    assert_eq!(
        states,
        ["active", "disabled"],
        "the old key is disabled: {list}"
    );
    let old_line = list
        .lines()
        .find(|l| l.starts_with(&hash))
        .expect("old key listed");
    assert!(old_line.contains("disabled"), "{old_line}");

    // A name shared by two keys is ambiguous.
    let err = cli.fails(&["keys", "delete", "billing-2"]);
    assert!(err.contains("several keys"), "{err}");
    cli.ok(&["keys", "delete", &hash]);
    let list = cli.ok(&["keys", "list"]);
    assert_eq!(list.lines().filter(|l| l.contains("billing-2")).count(), 1);

    for (args, needle) in [
        (vec!["keys", "disable", "nobody"], "no key"),
        (vec!["keys", "create", "--name", " "], "--name"),
        (
            vec!["keys", "create", "--name", "x", "--limit-reset", "hourly"],
            "limit-reset",
        ),
        (vec!["keys", "update", "nobody", "--name", "y"], "no key"),
        (
            vec!["keys", "update", "billing-2", "--expires-at", "soon"],
            "ISO-8601",
        ),
    ] {
        let err = cli.fails(&args);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn credits_account_audit_and_catalogue() {
    let cli = Cli::new();
    let out = cli.ok(&["credits", "add", "12.5"]);
    assert!(out.contains("12.5"), "{out}");
    let out = cli.ok(&["credits", "show"]);
    assert!(out.contains("balance"), "{out}");

    let out = cli.ok(&[
        "account",
        "set",
        "--zdr-only",
        "true",
        "--ignored-providers",
        "DeepSeek, groq",
        "--data-classification",
        "Internal",
    ]);
    let settings: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(settings["zdr_only"], true);
    assert_eq!(
        settings["ignored_providers"],
        serde_json::json!(["deepseek", "groq"])
    );
    assert_eq!(settings["data_classification"], "internal");
    let out = cli.ok(&["account", "show"]);
    assert!(out.contains("\"zdr_only\": true"), "{out}");
    let err = cli.fails(&["account", "set", "--data-classification", "secret"]);
    assert!(err.contains("unknown"), "{err}");

    let out = cli.ok(&["audit", "verify"]);
    assert!(out.contains("verified: 0 records"), "{out}");
    let (ok, out, err) = cli.run(&["audit", "export", "--since", "2026-01-01"]);
    assert!(ok, "{err}");
    assert!(out.is_empty());
    let err = cli.fails(&["audit", "export", "--since", "yesterday"]);
    assert!(err.contains("ISO-8601"), "{err}");

    let out = cli.ok(&["catalog", "check"]);
    assert!(out.contains("10 providers"), "{out}");
}

#[test]
fn invalid_configuration_lists_every_problem() {
    let cli = Cli::new();
    std::fs::write(
        cli.config(),
        "[server]\nlisten = \"nowhere\"\nkeepalive_secs = -1\n[store]\nurl = \"mysql://x\"\n[telemetry]\nenabled = true\nendpoint = \"collector\"\nsampling_ratio = 2\n",
    )
    .expect("write");
    let err = cli.fails(&["serve"]);
    for needle in [
        "server.listen",
        "server.keepalive_secs",
        "store.url",
        "telemetry.endpoint",
        "telemetry.sampling_ratio must be between 0 and 1, got 2",
    ] {
        assert!(err.contains(needle), "{needle} missing: {err}");
    }
    let bad_catalog = cli.dir.path().join("bad.toml");
    std::fs::write(&bad_catalog, "[[providers]]\nslug = \"x\"\n").expect("write");
    std::fs::write(
        cli.config(),
        format!(
            "[catalog]\npath = \"{}\"\n",
            Path::new(&bad_catalog).display()
        ),
    )
    .expect("write");
    let err = cli.fails(&["catalog", "check"]);
    assert!(
        err.contains("bad.toml") && err.contains("missing field `name`"),
        "{err}"
    );
}

#[test]
fn end_users_policy_blocks_limits_moderation_and_the_abuse_report() {
    let cli = Cli::new();
    cli.ok(&["keys", "create", "--name", "app"]);
    let out = cli.ok(&[
        "end-users",
        "policy",
        "app",
        "--require-user",
        "--user-limit",
        "5",
        "--user-limit-reset",
        "daily",
        "--user-rpm",
        "20",
    ]);
    let policy: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(policy["require_user"], true);
    assert_eq!(policy["user_limit"], 5.0);
    assert_eq!(policy["user_requests_per_minute"], 20);
    let out = cli.ok(&["end-users", "policy", "app", "--show"]);
    assert!(out.contains("\"user_limit_reset\": \"daily\""), "{out}");
    let err = cli.fails(&["end-users", "policy", "app", "--user-limit-reset", "hourly"]);
    assert!(err.contains("--user-limit-reset"), "{err}");

    let out = cli.ok(&[
        "end-users",
        "block",
        "alice",
        "--reason",
        "ticket 12",
        "--until",
        "2099-01-01",
    ]);
    assert!(out.contains("\"blocked\": true"), "{out}");
    assert!(out.contains("\"source\": \"operator\""), "{out}");
    let out = cli.ok(&["end-users", "list", "--blocked"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let err = cli.fails(&["end-users", "block", "bob", "--reason", " "]);
    assert!(err.contains("reason"), "{err}");
    let out = cli.ok(&["end-users", "unblock", "alice"]);
    assert!(out.contains("\"blocked\": false"), "{out}");
    let out = cli.ok(&["end-users", "limits", "alice", "--limit", "2", "--rpm", "3"]);
    assert!(out.contains("\"requests_per_minute\": 3"), "{out}");
    let out = cli.ok(&["end-users", "limits", "alice", "--rpm", "default"]);
    assert!(out.contains("\"requests_per_minute\": null"), "{out}");
    let out = cli.ok(&["end-users", "show", "alice"]);
    assert!(out.contains("\"strikes_last_30_days\": 0"), "{out}");
    let err = cli.fails(&["end-users", "show", "nobody"]);
    assert!(err.contains("no end user"), "{err}");

    let (ok, out, err) = cli.run(&[
        "abuse",
        "report",
        "--user",
        "alice",
        "--since",
        "2026-01-01",
    ]);
    assert!(ok, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("0 flagged or blocked requests; audit chain verified"),
        "{err}"
    );
    let (ok, out, _) = cli.run(&["abuse", "report", "--user", "alice", "--format", "csv"]);
    assert!(ok);
    assert!(out.starts_with("time,generation_id"), "{out}");
    let err = cli.fails(&["abuse", "report", "--user", "alice", "--format", "xml"]);
    assert!(err.contains("--format"), "{err}");

    let out = cli.ok(&[
        "account",
        "set",
        "--moderation",
        r#"{"provider": "openai", "model": "omni-moderation-latest", "actions": {"violence": "flag"}}"#,
    ]);
    assert!(out.contains("omni-moderation-latest"), "{out}");
    let err = cli.fails(&[
        "account",
        "set",
        "--moderation",
        r#"{"provider": "nowhere", "model": "m"}"#,
    ]);
    assert!(err.contains("nowhere"), "{err}");
    let out = cli.ok(&["account", "set", "--moderation", ""]);
    assert!(out.contains("\"moderation\": null"), "{out}");
}
