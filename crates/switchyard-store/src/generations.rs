//! Generation records and the activity report.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use switchyard_core::money::Money;

use switchyard_core::periods::DAY_MS;

use crate::{insert_chunks, money, placeholders, to_i64, Dialect, Store, StoreResult};

/// One row of the activity report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityRow {
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    /// Model id.
    pub model: String,
    /// Provider slug.
    pub provider_slug: String,
    /// Provider name.
    pub provider_name: String,
    /// Requests.
    pub requests: u64,
    /// Spend charged to credits.
    pub usage: Money,
    /// Spend on BYOK endpoints.
    pub byok_usage: Money,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Cached prompt tokens.
    pub cached_tokens: u64,
}

/// Which generations the log shows: every filter left empty matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerationQuery {
    /// Made by this key.
    pub key_hash: Option<String>,
    /// Served by (or asked of) this model.
    pub model: Option<String>,
    /// Served by this provider (slug).
    pub provider: Option<String>,
    /// For this end user.
    pub end_user: Option<String>,
    /// `Some(true)`: answered with a status below 400; `Some(false)`: failed.
    pub succeeded: Option<bool>,
    /// A generation id, or a part of a model id or provider name.
    pub search: Option<String>,
    /// Created at or after (Unix ms).
    pub since_ms: Option<i64>,
    /// Created before (Unix ms).
    pub until_ms: Option<i64>,
    /// Rows skipped (newest first).
    pub offset: i64,
    /// Most rows returned.
    pub limit: i64,
}

/// Spend and tokens of an account per key and end user, over a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageByKeyAndUser {
    /// Key hash.
    pub key_hash: String,
    /// The request's `user`, when it named one.
    pub end_user: Option<String>,
    /// Requests.
    pub requests: u64,
    /// Spend charged to credits.
    pub usage: Money,
    /// Spend on BYOK endpoints.
    pub byok_usage: Money,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
}

/// A generation's metadata, written when it is settled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GenerationRecord {
    /// `gen-...`.
    pub id: String,
    /// Account.
    pub account_id: String,
    /// Key hash.
    pub key_hash: String,
    /// Unix ms.
    pub created_at: i64,
    /// Serving model id.
    pub model: String,
    /// Serving provider slug.
    pub provider_slug: String,
    /// Serving provider display name.
    pub provider_name: String,
    /// Provider's id.
    pub upstream_id: Option<String>,
    /// Streamed.
    pub streamed: bool,
    /// Cancelled by the client.
    pub cancelled: bool,
    /// Contract finish reason.
    pub finish_reason: Option<String>,
    /// Provider finish reason.
    pub native_finish_reason: Option<String>,
    /// Prompt tokens.
    pub tokens_prompt: u64,
    /// Completion tokens.
    pub tokens_completion: u64,
    /// Reasoning tokens.
    pub tokens_reasoning: u64,
    /// Cached prompt tokens.
    pub tokens_cached: u64,
    /// Charged.
    pub cost: Money,
    /// Served with the operator's own provider key.
    pub is_byok: bool,
    /// Time to first byte, ms.
    pub latency_ms: Option<i64>,
    /// Total generation time, ms.
    pub generation_time_ms: Option<i64>,
    /// `HTTP-Referer`.
    pub http_referer: Option<String>,
    /// `X-OpenRouter-Title`.
    pub app_title: Option<String>,
    /// End user.
    pub end_user: Option<String>,
    /// Session.
    pub session_id: Option<String>,
    /// HTTP status given to the client.
    pub status: u16,
    /// Error message when it failed.
    pub error_message: Option<String>,
    /// The preset applied to the request.
    pub preset_id: Option<String>,
    /// The router the request named (`openrouter/auto`, `openrouter/free`, a `~...-latest`
    /// name).
    pub router: Option<String>,
    /// The API the request came through, as the contract names it (`completions`,
    /// `embeddings`).
    pub api_type: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// Every attempt of the request, fallbacks included, in order.
    pub provider_responses: Vec<ProviderResponse>,
}

/// One attempt of a generation, as `GET /generation` lists it in `provider_responses`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderResponse {
    /// The provider's display name.
    pub provider_name: String,
    /// The status the provider answered (the gateway's, for a transport failure).
    pub status: Option<u16>,
    /// The model's permanent slug.
    pub model_permaslug: Option<String>,
    /// Served with the operator's own provider key.
    pub is_byok: bool,
}

impl GenerationRecord {
    /// `provider_responses` as stored: a JSON array, `NULL` when there were none.
    pub(crate) fn provider_responses_json(&self) -> Option<String> {
        if self.provider_responses.is_empty() {
            return None;
        }
        serde_json::to_string(&self.provider_responses).ok()
    }
}

pub(crate) const GENERATION_COLUMNS: &str = "id, account_id, key_hash, created_at, model, provider_slug, provider_name, \
     upstream_id, streamed, cancelled, finish_reason, native_finish_reason, tokens_prompt, tokens_completion, \
     tokens_reasoning, tokens_cached, cost, is_byok, latency_ms, generation_time_ms, http_referer, app_title, \
     end_user, session_id, status, error_message, preset_id, router, api_type, user_agent, provider_responses";

/// How many columns [`GENERATION_COLUMNS`] names.
pub(crate) const GENERATION_COLUMN_COUNT: usize = 31;

/// A row of the daily totals: account, day, key, model, provider slug, provider name.
type DayRow<'a> = (&'a str, i64, &'a str, &'a str, &'a str, &'a str);

/// A settlement batch's additions to the activity report's daily totals.
#[derive(Debug, Default)]
pub(crate) struct DailyActivity<'a> {
    /// (account, day, key, model, provider slug, provider name) to requests, usage, BYOK usage,
    /// prompt, completion, reasoning and cached tokens.
    rows: std::collections::BTreeMap<DayRow<'a>, [i64; 7]>,
}

impl<'a> DailyActivity<'a> {
    /// Counts a newly settled generation.
    pub(crate) fn add(&mut self, r: &'a GenerationRecord) {
        let day = r.created_at.div_euclid(DAY_MS);
        let t = self
            .rows
            .entry((
                r.account_id.as_str(),
                day,
                r.key_hash.as_str(),
                r.model.as_str(),
                r.provider_slug.as_str(),
                r.provider_name.as_str(),
            ))
            .or_default();
        let (usage, byok) = if r.is_byok {
            (0, r.cost.picos())
        } else {
            (r.cost.picos(), 0)
        };
        let add = [
            1,
            usage,
            byok,
            to_i64(r.tokens_prompt),
            to_i64(r.tokens_completion),
            to_i64(r.tokens_reasoning),
            to_i64(r.tokens_cached),
        ];
        for (total, n) in t.iter_mut().zip(add) {
            *total = total.saturating_add(n);
        }
    }

    /// Adds the batch's totals to the stored ones: one multi-row upsert per chunk, rows in key
    /// order (so concurrent batches lock them in the same order).
    pub(crate) async fn write(
        self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        dialect: Dialect,
    ) -> StoreResult<()> {
        let rows: Vec<(DayRow<'a>, [i64; 7])> = self.rows.into_iter().collect();
        for chunk in insert_chunks(&rows) {
            let sql = format!(
                "INSERT INTO activity_daily (account_id, day, key_hash, model, provider_slug, provider_name, \
                 requests, usage, byok_usage, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens) \
                 VALUES {} \
                 ON CONFLICT (account_id, day, key_hash, model, provider_slug, provider_name) DO UPDATE SET \
                 requests = activity_daily.requests + excluded.requests, \
                 usage = activity_daily.usage + excluded.usage, \
                 byok_usage = activity_daily.byok_usage + excluded.byok_usage, \
                 prompt_tokens = activity_daily.prompt_tokens + excluded.prompt_tokens, \
                 completion_tokens = activity_daily.completion_tokens + excluded.completion_tokens, \
                 reasoning_tokens = activity_daily.reasoning_tokens + excluded.reasoning_tokens, \
                 cached_tokens = activity_daily.cached_tokens + excluded.cached_tokens",
                placeholders(dialect, chunk.len(), 13)
            );
            let mut q = sqlx::query(&sql);
            for ((account, day, key, model, slug, name), t) in chunk {
                q = q
                    .bind(*account)
                    .bind(*day)
                    .bind(*key)
                    .bind(*model)
                    .bind(*slug)
                    .bind(*name);
                for n in t {
                    q = q.bind(*n);
                }
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

/// Generation rows deleted per statement by [`Store::prune_generations`]: short transactions,
/// so settlements are never kept waiting for long.
const PRUNE_BATCH: i64 = 5_000;

impl Store {
    /// Deletes the generation records created before `before_ms` (the generation retention),
    /// a few thousand per statement; returns how many. Spend is unaffected (it is kept on the
    /// keys and accounts), and so is the audit chain, whose retention is its own.
    pub async fn prune_generations(&self, before_ms: i64) -> StoreResult<u64> {
        let mut total = 0;
        loop {
            let done = sqlx::query(
                "DELETE FROM generations WHERE id IN \
                 (SELECT id FROM generations WHERE created_at < $1 LIMIT $2)",
            )
            .bind(before_ms)
            .bind(PRUNE_BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected();
            total += done;
            if done < u64::try_from(PRUNE_BATCH).unwrap_or(u64::MAX) {
                return Ok(total);
            }
        }
    }

    /// Activity of an account over the whole UTC days from the one holding `since_ms` to the
    /// one before the day `until_ms` falls in (exactly `[since_ms, until_ms)` when both are
    /// midnights), per day, model and provider, optionally for one key; newest day first. Read
    /// from the daily totals, so its cost does not grow with the number of generations.
    pub async fn activity(
        &self,
        account_id: &str,
        since_ms: i64,
        until_ms: i64,
        key_hash: Option<&str>,
    ) -> StoreResult<Vec<ActivityRow>> {
        self.activity_of(account_id, since_ms, until_ms, key_hash, None)
            .await
    }

    /// [`Store::activity`], of one end user's generations when `end_user` names one: read from
    /// the generations themselves over the same whole days (the daily totals are not kept per
    /// end user).
    pub async fn activity_of(
        &self,
        account_id: &str,
        since_ms: i64,
        until_ms: i64,
        key_hash: Option<&str>,
        end_user: Option<&str>,
    ) -> StoreResult<Vec<ActivityRow>> {
        let since_day = since_ms.div_euclid(DAY_MS);
        let until_day = until_ms.div_euclid(DAY_MS) + i64::from(until_ms.rem_euclid(DAY_MS) != 0);
        let rows = match end_user {
            None => sqlx::query(
                "SELECT day, model, provider_slug, provider_name, \
                 CAST(SUM(requests) AS BIGINT) AS requests, \
                 CAST(SUM(usage) AS BIGINT) AS usage, \
                 CAST(SUM(byok_usage) AS BIGINT) AS byok_usage, \
                 CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens, \
                 CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens, \
                 CAST(SUM(reasoning_tokens) AS BIGINT) AS reasoning_tokens, \
                 CAST(SUM(cached_tokens) AS BIGINT) AS cached_tokens \
                 FROM activity_daily WHERE account_id = $1 AND day >= $2 AND day < $3 \
                 AND ($4 = '' OR key_hash = $4) \
                 GROUP BY day, model, provider_slug, provider_name \
                 ORDER BY day DESC, model, provider_slug",
            )
            .bind(account_id)
            .bind(since_day)
            .bind(until_day)
            .bind(key_hash.unwrap_or(""))
            .fetch_all(&self.pool)
            .await?,
            Some(user) => sqlx::query(
                "SELECT CAST(created_at / 86400000 AS BIGINT) AS day, model, provider_slug, provider_name, \
                 CAST(COUNT(*) AS BIGINT) AS requests, \
                 CAST(SUM(CASE WHEN is_byok = 0 THEN cost ELSE 0 END) AS BIGINT) AS usage, \
                 CAST(SUM(CASE WHEN is_byok = 1 THEN cost ELSE 0 END) AS BIGINT) AS byok_usage, \
                 CAST(SUM(tokens_prompt) AS BIGINT) AS prompt_tokens, \
                 CAST(SUM(tokens_completion) AS BIGINT) AS completion_tokens, \
                 CAST(SUM(tokens_reasoning) AS BIGINT) AS reasoning_tokens, \
                 CAST(SUM(tokens_cached) AS BIGINT) AS cached_tokens \
                 FROM generations WHERE account_id = $1 AND created_at >= $2 AND created_at < $3 \
                 AND ($4 = '' OR key_hash = $4) AND end_user = $5 \
                 GROUP BY CAST(created_at / 86400000 AS BIGINT), model, provider_slug, provider_name \
                 ORDER BY day DESC, model, provider_slug",
            )
            .bind(account_id)
            .bind(since_day.saturating_mul(DAY_MS))
            .bind(until_day.saturating_mul(DAY_MS))
            .bind(key_hash.unwrap_or(""))
            .bind(user)
            .fetch_all(&self.pool)
            .await?,
        };
        rows.iter()
            .map(|r| {
                let count = |c: &str| -> StoreResult<u64> {
                    Ok(u64::try_from(r.try_get::<i64, _>(c)?).unwrap_or(0))
                };
                Ok(ActivityRow {
                    day: r.try_get("day")?,
                    model: r.try_get("model")?,
                    provider_slug: r.try_get("provider_slug")?,
                    provider_name: r.try_get("provider_name")?,
                    requests: count("requests")?,
                    usage: money(r, "usage")?,
                    byok_usage: money(r, "byok_usage")?,
                    prompt_tokens: count("prompt_tokens")?,
                    completion_tokens: count("completion_tokens")?,
                    reasoning_tokens: count("reasoning_tokens")?,
                    cached_tokens: count("cached_tokens")?,
                })
            })
            .collect()
    }

    /// Number of generations of an account and the sum of their non-BYOK costs (what the
    /// account's `usage` must equal).
    pub async fn generation_totals(&self, account_id: &str) -> StoreResult<(i64, Money)> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(SUM(CASE WHEN is_byok = 0 THEN cost ELSE 0 END), 0) AS BIGINT) AS total \
             FROM generations WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("n")?, money(&row, "total")?))
    }

    /// The generations of an account matching `query`, newest first.
    pub async fn list_generations(
        &self,
        account_id: &str,
        query: &GenerationQuery,
    ) -> StoreResult<Vec<GenerationRecord>> {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let search = text(&query.search);
        let like = format!(
            "%{}%",
            search
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let rows = sqlx::query(
            "SELECT * FROM generations WHERE account_id = $1 \
             AND ($2 = '' OR key_hash = $2) AND ($3 = '' OR model = $3) \
             AND ($4 = '' OR provider_slug = $4) AND ($5 = '' OR end_user = $5) \
             AND ($6 = 0 OR ($6 = 1 AND status < 400) OR ($6 = 2 AND status >= 400)) \
             AND ($7 = '' OR id = $7 OR model LIKE $8 ESCAPE '\\' OR provider_name LIKE $8 ESCAPE '\\') \
             AND created_at >= $9 AND created_at < $10 \
             ORDER BY created_at DESC, id DESC LIMIT $11 OFFSET $12",
        )
        .bind(account_id)
        .bind(text(&query.key_hash))
        .bind(text(&query.model))
        .bind(text(&query.provider))
        .bind(text(&query.end_user))
        .bind(match query.succeeded {
            None => 0_i64,
            Some(true) => 1,
            Some(false) => 2,
        })
        .bind(search)
        .bind(like)
        .bind(query.since_ms.unwrap_or(i64::MIN))
        .bind(query.until_ms.unwrap_or(i64::MAX))
        .bind(query.limit.clamp(0, 1000))
        .bind(query.offset.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(generation_from_row).collect()
    }

    /// Spend, tokens and requests of an account in `[since_ms, until_ms)` per key and end
    /// user, optionally for one key; the same rows [`Store::activity`] sums per day, model and
    /// provider.
    pub async fn usage_by_key_and_user(
        &self,
        account_id: &str,
        since_ms: i64,
        until_ms: i64,
        key_hash: Option<&str>,
    ) -> StoreResult<Vec<UsageByKeyAndUser>> {
        let rows = sqlx::query(
            "SELECT key_hash, end_user, CAST(COUNT(*) AS BIGINT) AS requests, \
             CAST(SUM(CASE WHEN is_byok = 0 THEN cost ELSE 0 END) AS BIGINT) AS usage, \
             CAST(SUM(CASE WHEN is_byok = 1 THEN cost ELSE 0 END) AS BIGINT) AS byok_usage, \
             CAST(SUM(tokens_prompt) AS BIGINT) AS prompt_tokens, \
             CAST(SUM(tokens_completion) AS BIGINT) AS completion_tokens \
             FROM generations WHERE account_id = $1 AND created_at >= $2 AND created_at < $3 \
             AND ($4 = '' OR key_hash = $4) \
             GROUP BY key_hash, end_user ORDER BY key_hash, end_user",
        )
        .bind(account_id)
        .bind(since_ms)
        .bind(until_ms)
        .bind(key_hash.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let count = |c: &str| -> StoreResult<u64> {
                    Ok(u64::try_from(r.try_get::<i64, _>(c)?).unwrap_or(0))
                };
                Ok(UsageByKeyAndUser {
                    key_hash: r.try_get("key_hash")?,
                    end_user: r.try_get("end_user")?,
                    requests: count("requests")?,
                    usage: money(r, "usage")?,
                    byok_usage: money(r, "byok_usage")?,
                    prompt_tokens: count("prompt_tokens")?,
                    completion_tokens: count("completion_tokens")?,
                })
            })
            .collect()
    }

    /// A generation record.
    pub async fn generation(&self, id: &str) -> StoreResult<Option<GenerationRecord>> {
        let row = sqlx::query("SELECT * FROM generations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(generation_from_row).transpose()
    }
}

/// A generation record from a `SELECT *` row.
fn generation_from_row(r: &sqlx::any::AnyRow) -> StoreResult<GenerationRecord> {
    let u = |col: &str| -> StoreResult<u64> {
        Ok(u64::try_from(r.try_get::<i64, _>(col)?).unwrap_or(0))
    };
    Ok(GenerationRecord {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        key_hash: r.try_get("key_hash")?,
        created_at: r.try_get("created_at")?,
        model: r.try_get("model")?,
        provider_slug: r.try_get("provider_slug")?,
        provider_name: r.try_get("provider_name")?,
        upstream_id: r.try_get("upstream_id")?,
        streamed: r.try_get::<i64, _>("streamed")? != 0,
        cancelled: r.try_get::<i64, _>("cancelled")? != 0,
        finish_reason: r.try_get("finish_reason")?,
        native_finish_reason: r.try_get("native_finish_reason")?,
        tokens_prompt: u("tokens_prompt")?,
        tokens_completion: u("tokens_completion")?,
        tokens_reasoning: u("tokens_reasoning")?,
        tokens_cached: u("tokens_cached")?,
        cost: money(r, "cost")?,
        is_byok: r.try_get::<i64, _>("is_byok")? != 0,
        latency_ms: r.try_get("latency_ms")?,
        generation_time_ms: r.try_get("generation_time_ms")?,
        http_referer: r.try_get("http_referer")?,
        app_title: r.try_get("app_title")?,
        end_user: r.try_get("end_user")?,
        session_id: r.try_get("session_id")?,
        status: u16::try_from(r.try_get::<i64, _>("status")?).unwrap_or(0),
        error_message: r.try_get("error_message")?,
        preset_id: r.try_get("preset_id")?,
        router: r.try_get("router")?,
        api_type: r.try_get("api_type")?,
        user_agent: r.try_get("user_agent")?,
        provider_responses: r
            .try_get::<Option<String>, _>("provider_responses")?
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default(),
    })
}
