//! `switchyard`: the gateway binary. Parses the command line, loads configuration and catalogue,
//! and runs the server or an administrative command.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use rust_decimal::Decimal;
use switchyard_core::money::Money;
use switchyard_server::config::Config;
use switchyard_server::keys::{self, KeySpec};
use switchyard_server::settings::{AccountSettings, SettingsChange};
use switchyard_server::state::{AppState, Clock};
use switchyard_store::{KeyUpdate, LimitReset, Store};

mod end_users;

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Self-hosted, OpenRouter-compatible LLM router"
)]
struct Cli {
    /// Configuration file (TOML). Environment variables SWITCHYARD__SECTION__KEY override it.
    #[arg(long, global = true, default_value = "switchyard.toml")]
    config: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve,
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage the account's credits.
    Credits {
        #[command(subcommand)]
        command: CreditsCommand,
    },
    /// Validate the catalogue and print a summary.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Show or change the account's privacy and logging settings.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Verify, export or prune the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// End users: list, show, block, unblock, limits, and a key's end-user policy.
    EndUsers {
        #[command(subcommand)]
        command: end_users::EndUsersCommand,
    },
    /// Abuse reports of end users from the audit chain.
    Abuse {
        #[command(subcommand)]
        command: end_users::AbuseCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain and its signed anchors; report the first broken record.
    Verify,
    /// Write records as JSON Lines to standard output.
    Export {
        /// Start (inclusive), ISO-8601 such as 2026-11-01 or 2026-11-01T00:00:00Z.
        #[arg(long)]
        since: Option<String>,
        /// End (exclusive), ISO-8601.
        #[arg(long)]
        until: Option<String>,
    },
    /// Remove records older than `[audit] retention_days` behind a signed checkpoint.
    Prune,
}

fn audit_key(config: &Config) -> Option<Vec<u8>> {
    std::env::var(&config.audit.key_env)
        .ok()
        .filter(|k| !k.is_empty())
        .map(String::into_bytes)
}

fn parse_time(name: &str, text: Option<&str>, default: i64) -> anyhow::Result<i64> {
    match text {
        None => Ok(default),
        Some(t) => {
            // A bare date means its UTC midnight.
            let full = if t.contains('T') {
                t.to_owned()
            } else {
                format!("{t}T00:00:00Z")
            };
            switchyard_core::periods::parse_iso8601(&full)
        }
        .with_context(|| format!("--{name}: {t:?} is not an ISO-8601 date or time")),
    }
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key and print it (shown only once).
    Create {
        /// Name of the key.
        #[arg(long)]
        name: String,
        /// Spending limit in USD.
        #[arg(long)]
        limit: Option<Decimal>,
        /// Limit window: daily, weekly or monthly.
        #[arg(long)]
        limit_reset: Option<String>,
        /// Create a management key (admin APIs only, no inference).
        #[arg(long)]
        management: bool,
    },
    /// List keys.
    List,
    /// Change a key's settings (identified by its hash, or a unique name).
    Update {
        /// Key hash or name.
        key: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New spending limit in USD.
        #[arg(long, conflicts_with = "no_limit")]
        limit: Option<Decimal>,
        /// Remove the spending limit.
        #[arg(long)]
        no_limit: bool,
        /// Limit window: daily, weekly, monthly, or never.
        #[arg(long)]
        limit_reset: Option<String>,
        /// Count BYOK spend against the limit (true or false).
        #[arg(long)]
        include_byok_in_limit: Option<bool>,
        /// Expiry, ISO-8601 (2027-01-01 or 2027-01-01T00:00:00Z).
        #[arg(long, conflicts_with = "no_expiry")]
        expires_at: Option<String>,
        /// Remove the expiry.
        #[arg(long)]
        no_expiry: bool,
    },
    /// Disable a key (it is refused until enabled again).
    Disable {
        /// Key hash or name.
        key: String,
    },
    /// Enable a disabled key.
    Enable {
        /// Key hash or name.
        key: String,
    },
    /// Delete a key.
    Delete {
        /// Key hash or name.
        key: String,
    },
    /// Create a new key with the same settings, print it, and disable the old one.
    Rotate {
        /// Key hash or name.
        key: String,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Show the account's privacy and logging settings.
    Show,
    /// Change the account's settings; requests can only tighten them.
    Set {
        /// Allow paid endpoints whose provider may train on prompts.
        #[arg(long)]
        allow_training_paid: Option<bool>,
        /// Allow free endpoints whose provider may train on prompts.
        #[arg(long)]
        allow_training_free: Option<bool>,
        /// Only zero-data-retention endpoints.
        #[arg(long)]
        zdr_only: Option<bool>,
        /// Only these providers (comma-separated slugs); an empty value removes the list.
        #[arg(long)]
        allowed_providers: Option<String>,
        /// Never these providers (comma-separated slugs).
        #[arg(long)]
        ignored_providers: Option<String>,
        /// Store prompts and completions, encrypted (needs the content key).
        #[arg(long)]
        prompt_logging: Option<bool>,
        /// Data classification applied to every request; an empty value removes it.
        #[arg(long)]
        data_classification: Option<String>,
        /// Moderation settings as JSON (see docs/compliance.md); an empty value removes them.
        #[arg(long)]
        moderation: Option<String>,
    },
}

/// Finds a key by hash or by a unique name.
async fn find_key(
    store: &Store,
    account: &str,
    key: &str,
    now: i64,
) -> anyhow::Result<switchyard_store::KeyRecord> {
    let keys = store.list_keys(account, now).await?;
    if let Some(k) = keys.iter().find(|k| k.hash == key) {
        return Ok(k.clone());
    }
    let named: Vec<_> = keys.iter().filter(|k| k.name == key).collect();
    match named.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("no key with hash or name {key:?} (see `switchyard keys list`)"),
        _ => bail!("several keys are named {key:?}: give the hash instead"),
    }
}

async fn set_disabled(store: &Store, hash: &str, disabled: bool, now: i64) -> anyhow::Result<()> {
    store
        .update_key(
            hash,
            &KeyUpdate {
                disabled: Some(disabled),
                ..KeyUpdate::default()
            },
            now,
        )
        .await?
        .context("the key disappeared")?;
    Ok(())
}

#[derive(Subcommand)]
enum CreditsCommand {
    /// Add credits in USD.
    Add {
        /// Amount in USD, such as 10 or 2.50.
        usd: Decimal,
    },
    /// Show credits and usage.
    Show,
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Check the catalogue and list its providers and models.
    Check,
}

fn load_config(path: &str) -> anyhow::Result<Config> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {path}")),
    };
    Ok(Config::load(path, text.as_deref(), std::env::vars())?)
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.store.url)
        .await
        .with_context(|| "opening the store (store.url)".to_owned())?;
    store
        .ensure_account(
            &config.server.default_account,
            "Default account",
            Clock::System.now_ms(),
        )
        .await?;
    Ok(store)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested: finishing open requests");
}

/// The key service's refusal, naming the command-line flag of the parameter.
fn key_error(e: keys::KeyError) -> anyhow::Error {
    match e {
        keys::KeyError::Invalid { field, message } => {
            anyhow::anyhow!("--{}: {message}", field.replace('_', "-"))
        }
        keys::KeyError::Store(e) => e.into(),
    }
}

fn usd(m: Money) -> String {
    format!("{}", m.to_usd())
}

/// jemalloc: the gateway allocates and frees many small buffers per request (JSON values,
/// headers, strings); it costs about half of what the system allocator does on that pattern,
/// and returns freed memory to the system.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(switchyard_server::log_filter(
            std::env::var("SWITCHYARD_LOG").ok().as_deref(),
        ))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = load_config(&cli.config)?;
    match cli.command {
        Command::Serve => {
            let catalog = switchyard_server::load_catalog(config.catalog.path.as_deref())?;
            let secrets: HashMap<String, String> = catalog
                .providers()
                .iter()
                .filter_map(|p| p.api_key_env.clone())
                .chain([
                    config.audit.key_env.clone(),
                    config.prompt_logging.key_env.clone(),
                ])
                .filter_map(|env| std::env::var(&env).ok().map(|v| (env, v)))
                .collect();
            if !secrets.contains_key(&config.audit.key_env) {
                tracing::warn!(env = %config.audit.key_env, "audit key not set: the audit chain is hash-linked but its head and checkpoints are unsigned");
            }
            for p in catalog.providers() {
                if let Some(env) = &p.api_key_env {
                    if !secrets.contains_key(env) {
                        tracing::warn!(provider = %p.slug, env = %env, "provider key not set: its endpoints will fail over");
                    }
                }
            }
            let store = open_store(&config)
                .await?
                .with_hold_lease(config.store.hold_lease());
            // Holds whose gateway stopped renewing them (a crash) are released; holds of other
            // gateways running on the same database are theirs and stay.
            let released = store.release_stale_holds(Clock::System.now_ms()).await?;
            if released > 0 {
                tracing::warn!(released, "released lapsed holds left by a stopped gateway");
            }
            let listener = tokio::net::TcpListener::bind(&config.server.listen)
                .await
                .with_context(|| format!("binding {}", config.server.listen))?;
            tracing::info!(
                address = %listener.local_addr()?,
                models = catalog.models().len(),
                providers = catalog.providers().len(),
                "switchyard listening"
            );
            let state = Arc::new(AppState::new(
                config,
                catalog,
                store,
                secrets,
                Clock::System,
            )?);
            switchyard_server::serve(listener, state, shutdown_signal()).await?;
        }
        Command::Keys { command } => {
            let store = open_store(&config).await?;
            let account = &config.server.default_account;
            let now = Clock::System.now_ms();
            match command {
                KeysCommand::Create {
                    name,
                    limit,
                    limit_reset,
                    management,
                } => {
                    let limit = limit
                        .map(Money::from_usd)
                        .transpose()
                        .map_err(|e| anyhow::anyhow!("--limit {e}"))?;
                    let limit_reset = limit_reset
                        .map(|r| r.parse::<LimitReset>())
                        .transpose()
                        .map_err(|e| anyhow::anyhow!("--limit-reset: {e}"))?;
                    let spec = KeySpec {
                        name,
                        limit,
                        limit_reset,
                        management,
                        ..KeySpec::default()
                    };
                    let (key, record) = keys::create(&store, account, &spec, now)
                        .await
                        .map_err(key_error)?;
                    eprintln!(
                        "Created {} key {:?} (hash {}). Store it now: it is not shown again.",
                        if management { "management" } else { "standard" },
                        record.name,
                        record.hash
                    );
                    println!("{key}");
                }
                KeysCommand::List => {
                    println!(
                        "{:<64}  {:<20}  {:<10}  {:<8}  {:>12}  {:>12}",
                        "HASH", "NAME", "KIND", "STATE", "USAGE", "LIMIT"
                    );
                    for k in store.list_keys(account, now).await? {
                        println!(
                            "{:<64}  {:<20}  {:<10}  {:<8}  {:>12}  {:>12}",
                            k.hash,
                            k.name,
                            if k.is_management {
                                "management"
                            } else {
                                "standard"
                            },
                            if k.disabled {
                                "disabled"
                            } else if k.is_expired(now) {
                                "expired"
                            } else {
                                "active"
                            },
                            usd(k.usage.total),
                            k.limit.map_or("-".to_owned(), usd),
                        );
                    }
                }
                KeysCommand::Update {
                    key,
                    name,
                    limit,
                    no_limit,
                    limit_reset,
                    include_byok_in_limit,
                    expires_at,
                    no_expiry,
                } => {
                    let record = find_key(&store, account, &key, now).await?;
                    let limit = match (limit, no_limit) {
                        (_, true) => Some(None),
                        (Some(l), false) => Some(Some(
                            Money::from_usd(l).map_err(|e| anyhow::anyhow!("--limit {e}"))?,
                        )),
                        (None, false) => None,
                    };
                    let limit_reset = match limit_reset.as_deref() {
                        None => None,
                        Some("never" | "none") => Some(None),
                        Some(r) => Some(Some(
                            r.parse::<LimitReset>()
                                .map_err(|e| anyhow::anyhow!("--limit-reset: {e}"))?,
                        )),
                    };
                    let expires_at = match (expires_at, no_expiry) {
                        (_, true) => Some(None),
                        (Some(t), false) => Some(Some(parse_time("expires-at", Some(&t), 0)?)),
                        (None, false) => None,
                    };
                    let update = KeyUpdate {
                        name,
                        disabled: None,
                        limit,
                        limit_reset,
                        include_byok_in_limit,
                        expires_at,
                    };
                    keys::update(&store, &record.hash, &update, now)
                        .await
                        .map_err(key_error)?
                        .context("the key disappeared")?;
                    println!("updated {}", record.hash);
                }
                KeysCommand::Disable { key } => {
                    let record = find_key(&store, account, &key, now).await?;
                    set_disabled(&store, &record.hash, true, now).await?;
                    println!("disabled {}", record.hash);
                }
                KeysCommand::Enable { key } => {
                    let record = find_key(&store, account, &key, now).await?;
                    set_disabled(&store, &record.hash, false, now).await?;
                    println!("enabled {}", record.hash);
                }
                KeysCommand::Delete { key } => {
                    let record = find_key(&store, account, &key, now).await?;
                    store.delete_key(&record.hash).await?;
                    println!("deleted {}", record.hash);
                }
                KeysCommand::Rotate { key } => {
                    let old = find_key(&store, account, &key, now).await?;
                    let spec = KeySpec {
                        name: old.name.clone(),
                        limit: old.limit,
                        limit_reset: old.limit_reset,
                        include_byok_in_limit: old.include_byok_in_limit,
                        management: old.is_management,
                        expires_at: old.expires_at,
                        ..KeySpec::default()
                    };
                    let (new_key, record) = keys::create(&store, account, &spec, now)
                        .await
                        .map_err(key_error)?;
                    store
                        .update_key(
                            &old.hash,
                            &KeyUpdate {
                                disabled: Some(true),
                                ..KeyUpdate::default()
                            },
                            now,
                        )
                        .await?;
                    eprintln!(
                        "Rotated {:?}: new key hash {}, old key {} disabled. Store the new key now: it is not shown again.",
                        record.name, record.hash, old.hash
                    );
                    println!("{new_key}");
                }
            }
            store.close().await;
        }
        Command::Credits { command } => {
            let store = open_store(&config).await?;
            let account = &config.server.default_account;
            let result = match command {
                CreditsCommand::Add { usd: amount } => {
                    let amount =
                        Money::from_usd(amount).map_err(|e| anyhow::anyhow!("amount {e}"))?;
                    store.add_credits(account, amount).await?
                }
                CreditsCommand::Show => store.account(account).await?,
            };
            let a = result.context("account not found")?;
            println!(
                "credits {}  usage {}  balance {}  held {}",
                usd(a.credits),
                usd(a.usage),
                usd(a.balance()),
                usd(a.held)
            );
            store.close().await;
        }
        Command::Account { command } => {
            let store = open_store(&config).await?;
            let account = &config.server.default_account;
            let mut settings = AccountSettings::from_json(&store.account_settings(account).await?)
                .map_err(|e| anyhow::anyhow!("stored account settings are invalid: {e}"))?;
            if let AccountCommand::Set {
                allow_training_paid,
                allow_training_free,
                zdr_only,
                allowed_providers,
                ignored_providers,
                prompt_logging,
                data_classification,
                moderation,
            } = command
            {
                if let Some(m) = moderation {
                    settings.moderation = if m.trim().is_empty() {
                        None
                    } else {
                        let m: switchyard_server::moderation::ModerationSettings =
                            serde_json::from_str(&m).context("--moderation")?;
                        let catalog =
                            switchyard_server::load_catalog(config.catalog.path.as_deref())?;
                        m.validate(&catalog)
                            .map_err(|e| anyhow::anyhow!("--moderation: {e}"))?;
                        Some(m)
                    };
                }
                let known = switchyard_core::classification::Classifications::with(
                    config.data_classifications.clone(),
                );
                settings
                    .apply(
                        SettingsChange {
                            allow_training_paid,
                            allow_training_free,
                            zdr_only,
                            allowed_providers,
                            ignored_providers,
                            prompt_logging,
                            data_classification,
                        },
                        &known,
                    )
                    .map_err(|e| anyhow::anyhow!("--data-classification: {e}"))?;
                store
                    .set_account_settings(account, &serde_json::to_value(&settings)?)
                    .await?;
            }
            println!("{}", serde_json::to_string_pretty(&settings)?);
            store.close().await;
        }
        Command::Audit { command } => {
            let store = open_store(&config).await?;
            let key = audit_key(&config);
            match command {
                AuditCommand::Verify => {
                    match switchyard_server::audit::verify(&store, key.as_deref()).await {
                        Ok(v) => {
                            let range = v
                                .range
                                .map_or_else(|| "none".to_owned(), |(a, b)| format!("{a}..={b}"));
                            println!(
                                "audit chain verified: {} records (seq {range}), anchors {}",
                                v.records,
                                if v.signed {
                                    "signed and checked"
                                } else {
                                    "unsigned (set the audit key to check signatures)"
                                }
                            );
                        }
                        Err(switchyard_server::audit::AuditError::Broken(b)) => {
                            store.close().await;
                            bail!("{b}");
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                AuditCommand::Export { since, until } => {
                    let since = parse_time("since", since.as_deref(), i64::MIN)?;
                    let until = parse_time("until", until.as_deref(), i64::MAX)?;
                    let stdout = std::io::stdout();
                    let mut out = std::io::BufWriter::new(stdout.lock());
                    let n = switchyard_server::audit::export(&store, since, until, None, &mut out)
                        .await?;
                    eprintln!("exported {n} records");
                }
                AuditCommand::Prune => {
                    let n = switchyard_server::audit::prune(
                        &store,
                        config.audit.retention_days,
                        key.as_deref(),
                        Clock::System.now_ms(),
                    )
                    .await?;
                    println!("pruned {n} records");
                }
            }
            store.close().await;
        }
        Command::EndUsers { command } => {
            let store = open_store(&config).await?;
            let result = end_users::run(
                &store,
                &config.server.default_account,
                command,
                Clock::System.now_ms(),
            )
            .await;
            store.close().await;
            result?;
        }
        Command::Abuse { command } => {
            let store = open_store(&config).await?;
            let key = audit_key(&config);
            let result = end_users::abuse(
                &store,
                key.as_deref(),
                &config.server.default_account,
                command,
            )
            .await;
            store.close().await;
            result?;
        }
        Command::Catalog {
            command: CatalogCommand::Check,
        } => {
            let catalog = switchyard_server::load_catalog(config.catalog.path.as_deref())?;
            println!(
                "catalogue is valid: {} providers, {} models, {} endpoints",
                catalog.providers().len(),
                catalog.models().len(),
                catalog
                    .models()
                    .iter()
                    .map(|m| m.endpoints.len())
                    .sum::<usize>()
            );
        }
    }
    Ok(())
}
