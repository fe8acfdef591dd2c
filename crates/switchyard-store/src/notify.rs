//! Change notifications between gateways sharing a PostgreSQL database (`LISTEN`/`NOTIFY`).
//!
//! Every write of what gateways cache (a key, an account's settings or credits, guardrails, a
//! preset) is followed by a notification on [`CHANNEL`] naming what changed, whichever process
//! made it (a gateway's API or the CLI). Each gateway listens ([`Store::listen`]) and forgets
//! what it cached of it at once. Notifications are best effort: one sent while a listener was
//! reconnecting is lost, which the listener reports ([`Heard::Lost`]) so the gateway forgets
//! everything; the caches' short lifetimes remain the fallback. SQLite has no notifications
//! (one gateway per database file): [`Store::listen`] gives `None` and nothing is sent.

use crate::{Dialect, Store, StoreResult};

/// The notification channel.
pub const CHANNEL: &str = "switchyard_changes";

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A key (by hash): its limit, its state, or the key deleted.
    Key(String),
    /// An account's settings.
    Settings(String),
    /// An account's credits.
    Credits(String),
    /// An account's guardrails or their assignments.
    Guardrails(String),
    /// An account's preset.
    Preset {
        /// The account.
        account: String,
        /// The preset's slug.
        slug: String,
    },
}

impl Change {
    /// The notification's payload: `kind:id` (a preset's id is `account` and `slug` separated
    /// by a newline, which a slug never contains).
    pub fn payload(&self) -> String {
        match self {
            Change::Key(hash) => format!("key:{hash}"),
            Change::Settings(a) => format!("settings:{a}"),
            Change::Credits(a) => format!("credits:{a}"),
            Change::Guardrails(a) => format!("guardrails:{a}"),
            Change::Preset { account, slug } => format!("preset:{account}\n{slug}"),
        }
    }

    /// Reads a payload; `None` for one this version does not know.
    pub fn parse(payload: &str) -> Option<Change> {
        let (kind, id) = payload.split_once(':')?;
        let id = id.to_owned();
        Some(match kind {
            "key" => Change::Key(id),
            "settings" => Change::Settings(id),
            "credits" => Change::Credits(id),
            "guardrails" => Change::Guardrails(id),
            "preset" => {
                let (account, slug) = id.rsplit_once('\n')?;
                Change::Preset {
                    account: account.to_owned(),
                    slug: slug.to_owned(),
                }
            }
            _ => return None,
        })
    }
}

/// What a listener heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A change.
    Change(Change),
    /// The connection was lost and made again: changes may have been missed meanwhile.
    Lost,
}

/// A connection listening to [`CHANNEL`].
pub struct Listener {
    inner: sqlx::postgres::PgListener,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

impl Listener {
    /// The next change (or the news that some may have been lost). Reconnects by itself after
    /// a lost connection; an error means the reconnection failed (try again later).
    pub async fn recv(&mut self) -> StoreResult<Heard> {
        loop {
            match self.inner.try_recv().await? {
                None => return Ok(Heard::Lost),
                Some(n) => {
                    if let Some(change) = Change::parse(n.payload()) {
                        return Ok(Heard::Change(change));
                    }
                    tracing::debug!("ignored an unknown change notification");
                }
            }
        }
    }
}

impl Store {
    /// Tells the other gateways on this database that `change` happened (PostgreSQL only). A
    /// failure is logged, never returned: the change itself is committed, and the others'
    /// caches expire within seconds anyway.
    pub(crate) async fn notify(&self, change: Change) {
        if self.dialect != Dialect::Postgres {
            return;
        }
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(change.payload())
            .execute(&self.pool)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "a change notification could not be sent");
        }
    }

    /// A listener for the changes made by any process on this database (PostgreSQL); `None` on
    /// SQLite.
    pub async fn listen(&self) -> StoreResult<Option<Listener>> {
        let Some(url) = self.url.as_deref() else {
            return Ok(None);
        };
        let mut inner = sqlx::postgres::PgListener::connect(url).await?;
        inner.listen(CHANNEL).await?;
        Ok(Some(Listener { inner }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let changes = [
            Change::Key("abc".into()),
            Change::Settings("acct:1".into()),
            Change::Credits("a".into()),
            Change::Guardrails("a".into()),
            Change::Preset {
                account: "a:b".into(),
                slug: "my-preset".into(),
            },
        ];
        for c in changes {
            assert_eq!(Change::parse(&c.payload()), Some(c.clone()), "{c:?}");
        }
        assert_eq!(Change::parse("nothing"), None);
        assert_eq!(Change::parse("future:x"), None);
    }
}
