//! The per-key guardrail the engine enforces, compiled once and cached briefly. The API that
//! manages guardrails is [`crate::routes::guardrails`].

use std::sync::Arc;
use std::time::Duration;

use switchyard_core::guard::{Guardrail, Rule};
use switchyard_store::{GuardrailRow, Store, StoreResult};

use crate::cache::TtlCache;

/// How long a key's compiled guardrail is reused before it is read again.
const TTL: Duration = Duration::from_secs(2);

/// Most keys whose guardrail is kept at once.
const CAPACITY: u64 = 100_000;

/// A guardrail ready to enforce.
#[derive(Debug)]
pub struct Compiled {
    /// The guardrail.
    pub guardrail: Guardrail,
    /// Its content rules.
    pub rules: Vec<Rule>,
}

/// Key hash to its guardrail (or to none), cached.
#[derive(Debug)]
pub struct GuardrailCache {
    entries: TtlCache<Option<Arc<Compiled>>>,
}

impl Default for GuardrailCache {
    fn default() -> Self {
        GuardrailCache {
            entries: TtlCache::new(CAPACITY, TTL),
        }
    }
}

impl GuardrailCache {
    /// The guardrail assigned to a key, if any.
    pub async fn for_key(
        &self,
        store: &Store,
        key_hash: &str,
    ) -> StoreResult<Option<Arc<Compiled>>> {
        self.entries
            .get_or_load(key_hash, async {
                let row = store.guardrail_for_key(key_hash).await?;
                Ok(row.as_ref().and_then(compile).map(Arc::new))
            })
            .await
    }

    /// Forgets everything (after a change made by this process).
    pub fn clear(&self) {
        self.entries.clear();
    }
}

/// A stored guardrail ready to enforce, carrying its row's id (the stored document has none:
/// the id is the row's). Stored guardrails were validated; one that no longer compiles blocks
/// nothing silently: it is logged and enforced without content rules (or not at all when the
/// document itself no longer reads).
pub fn compile(row: &GuardrailRow) -> Option<Compiled> {
    let mut compiled = match parse(row) {
        Ok(compiled) => compiled,
        Err(e) => {
            tracing::error!(guardrail = %row.id, error = %e, "a stored guardrail is invalid");
            Compiled {
                guardrail: serde_json::from_str::<Guardrail>(&row.body).ok()?,
                rules: Vec::new(),
            }
        }
    };
    compiled.guardrail.id.clone_from(&row.id);
    Some(compiled)
}

fn parse(row: &GuardrailRow) -> Result<Compiled, String> {
    let guardrail: Guardrail = serde_json::from_str(&row.body).map_err(|e| e.to_string())?;
    let rules = guardrail.validate()?;
    Ok(Compiled { guardrail, rules })
}
