//! `switchyard end-users` (list, show, block, unblock, limits, a key's end-user policy) and
//! `switchyard abuse report`. Changes made here reach a running gateway within a second (its
//! caches of end users and keys).

use anyhow::{bail, Context};
use clap::Subcommand;
use switchyard_core::money::Money;
use switchyard_server::end_users::{self, EndUserError};
use switchyard_server::routes::end_users::{end_user_json, policy_json};
use switchyard_store::{EndUserLimits, KeyUserPolicy, LimitReset, Store};

#[derive(Subcommand)]
pub enum EndUsersCommand {
    /// List the account's end users, last seen first.
    List {
        /// Only those blocked now.
        #[arg(long)]
        blocked: bool,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show an end user: usage, limits, block state, strikes of the last 30 days.
    Show {
        /// The end user's id (the requests' `user`).
        id: String,
    },
    /// Block an end user: their requests get a 403 naming no detail.
    Block {
        /// The end user's id.
        id: String,
        /// Why (kept for the operator, never shown to the end user).
        #[arg(long)]
        reason: String,
        /// Until when (ISO-8601); without it, until unblocked.
        #[arg(long)]
        until: Option<String>,
    },
    /// Lift an end user's block.
    Unblock {
        /// The end user's id.
        id: String,
    },
    /// Set an end user's own limits ("default" returns one to the key's).
    Limits {
        /// The end user's id.
        id: String,
        /// Spending limit in USD, or "default".
        #[arg(long)]
        limit: Option<String>,
        /// daily, weekly, monthly, or "default" (all time).
        #[arg(long)]
        limit_reset: Option<String>,
        /// Requests per minute, or "default".
        #[arg(long)]
        rpm: Option<String>,
        /// Tokens per minute, or "default".
        #[arg(long)]
        tpm: Option<String>,
    },
    /// Show or replace a key's end-user policy (flags left out are cleared when any is given).
    Policy {
        /// Key hash or name.
        key: String,
        /// Refuse requests that name no end user.
        #[arg(long)]
        require_user: bool,
        /// Each end user's default spending limit, USD.
        #[arg(long)]
        user_limit: Option<String>,
        /// Its window: daily, weekly, monthly.
        #[arg(long)]
        user_limit_reset: Option<String>,
        /// The key's requests per minute.
        #[arg(long)]
        rpm: Option<u64>,
        /// The key's tokens per minute.
        #[arg(long)]
        tpm: Option<u64>,
        /// Each end user's default requests per minute.
        #[arg(long)]
        user_rpm: Option<u64>,
        /// Each end user's default tokens per minute.
        #[arg(long)]
        user_tpm: Option<u64>,
        /// Only show the policy.
        #[arg(long)]
        show: bool,
    },
}

#[derive(Subcommand)]
pub enum AbuseCommand {
    /// Every flagged or blocked request of an end user, from the verified audit chain.
    Report {
        /// The end user's id.
        #[arg(long)]
        user: String,
        /// Start (inclusive), ISO-8601 such as 2026-11-01.
        #[arg(long)]
        since: Option<String>,
        /// End (exclusive), ISO-8601.
        #[arg(long)]
        until: Option<String>,
        /// jsonl (default) or csv.
        #[arg(long, default_value = "jsonl")]
        format: String,
    },
}

fn service_error(e: EndUserError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// "default" (or "none") as `Some(None)`, else the parsed value.
fn change<T>(
    text: Option<String>,
    parse: impl FnOnce(&str) -> anyhow::Result<T>,
) -> anyhow::Result<Option<Option<T>>> {
    match text.as_deref() {
        None => Ok(None),
        Some("default" | "none") => Ok(Some(None)),
        Some(t) => parse(t).map(|v| Some(Some(v))),
    }
}

fn parse_usd(name: &str, t: &str) -> anyhow::Result<Money> {
    let m = Money::parse_usd(t).with_context(|| format!("--{name}: {t:?} is not an amount"))?;
    if m.picos() < 0 {
        bail!("--{name} must not be negative");
    }
    Ok(m)
}

fn parse_reset(name: &str, t: &str) -> anyhow::Result<LimitReset> {
    t.parse::<LimitReset>()
        .map_err(|e| anyhow::anyhow!("--{name}: {e}"))
}

/// Runs an end-users command against the store.
pub async fn run(
    store: &Store,
    account: &str,
    command: EndUsersCommand,
    now: i64,
) -> anyhow::Result<()> {
    let print = |v: serde_json::Value| -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(&v)?);
        Ok(())
    };
    match command {
        EndUsersCommand::List { blocked, limit } => {
            let users = store
                .list_end_users(account, now, blocked, 0, limit)
                .await?;
            for u in users {
                println!("{}", end_user_json(&u, now));
            }
        }
        EndUsersCommand::Show { id } => {
            let Some(u) = store.end_user(account, &id, now).await? else {
                bail!("no end user {id:?}");
            };
            let mut v = end_user_json(&u, now);
            let strikes = store
                .strikes(account, &id, now.saturating_sub(30 * 86_400_000))
                .await?;
            v["strikes_last_30_days"] = serde_json::json!(strikes.len());
            print(v)?;
        }
        EndUsersCommand::Block { id, reason, until } => {
            let until = until
                .map(|t| crate::parse_time("until", Some(&t), 0))
                .transpose()?;
            let u = end_users::block(
                store,
                None,
                account,
                &id,
                end_users::NewBlock {
                    reason: &reason,
                    expires_at: until,
                    source: switchyard_store::BLOCKED_BY_OPERATOR,
                },
                now,
            )
            .await
            .map_err(service_error)?;
            print(end_user_json(&u, now))?;
        }
        EndUsersCommand::Unblock { id } => {
            let u = end_users::unblock(store, None, account, &id, now)
                .await
                .map_err(service_error)?;
            print(end_user_json(&u, now))?;
        }
        EndUsersCommand::Limits {
            id,
            limit,
            limit_reset,
            rpm,
            tpm,
        } => {
            let count = |name: &'static str| {
                move |t: &str| {
                    t.parse::<u64>()
                        .with_context(|| format!("--{name}: {t:?} is not a count"))
                }
            };
            let limits = EndUserLimits {
                limit: change(limit, |t| parse_usd("limit", t))?,
                limit_reset: change(limit_reset, |t| parse_reset("limit-reset", t))?,
                rpm: change(rpm, count("rpm"))?,
                tpm: change(tpm, count("tpm"))?,
            };
            let u = end_users::set_limits(store, account, &id, &limits, now)
                .await
                .map_err(service_error)?;
            print(end_user_json(&u, now))?;
        }
        EndUsersCommand::Policy {
            key,
            require_user,
            user_limit,
            user_limit_reset,
            rpm,
            tpm,
            user_rpm,
            user_tpm,
            show,
        } => {
            let record = crate::find_key(store, account, &key, now).await?;
            if show {
                return print(policy_json(&record));
            }
            let policy = KeyUserPolicy {
                require_user,
                user_limit: user_limit
                    .map(|t| parse_usd("user-limit", &t))
                    .transpose()?,
                user_limit_reset: user_limit_reset
                    .map(|t| parse_reset("user-limit-reset", &t))
                    .transpose()?,
                rpm,
                tpm,
                user_rpm,
                user_tpm,
            };
            let Some(k) = store
                .set_key_user_policy(&record.hash, &policy, now)
                .await?
            else {
                bail!("the key was deleted meanwhile");
            };
            print(policy_json(&k))?;
        }
    }
    Ok(())
}

/// Runs an abuse command: the report on standard output, the chain's verification on standard
/// error; a chain that does not verify is an error.
pub async fn abuse(
    store: &Store,
    key: Option<&[u8]>,
    account: &str,
    command: AbuseCommand,
) -> anyhow::Result<()> {
    let AbuseCommand::Report {
        user,
        since,
        until,
        format,
    } = command;
    end_users::check_id(&user, "--user").map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let since = crate::parse_time("since", since.as_deref(), i64::MIN)?;
    let until = crate::parse_time("until", until.as_deref(), i64::MAX)?;
    let csv = match format.as_str() {
        "jsonl" => false,
        "csv" => true,
        other => bail!("--format {other:?} is not one of jsonl, csv"),
    };
    let report = switchyard_server::abuse::report(store, key, account, &user, since, until).await?;
    let out = if csv {
        switchyard_server::abuse::to_csv(&report.entries)
    } else {
        switchyard_server::abuse::to_jsonl(&report.entries)
    };
    print!("{out}");
    eprintln!(
        "{} flagged or blocked requests; audit chain verified: {} records, anchors {}",
        report.entries.len(),
        report.chain.records,
        if report.chain.signed {
            "signed and checked"
        } else {
            "unsigned"
        }
    );
    Ok(())
}
