//! Presets and their versions. A preset is an account's named set of request settings; every
//! save is a new version (never changed afterwards) that becomes the designated one. The
//! version's configuration is the JSON the gateway validated before storing it.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Store, StoreError, StoreResult};

/// A stored preset, without its versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetRow {
    /// Id (a UUID).
    pub id: String,
    /// The slug requests name it by, unique in its account.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// `active`, `disabled` or `archived`.
    pub status: String,
    /// The version applied to requests.
    pub designated_version_id: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// Unix ms of the last status change.
    pub status_updated_at: Option<i64>,
}

/// One version of a preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetVersionRow {
    /// Id (a UUID).
    pub id: String,
    /// The preset.
    pub preset_id: String,
    /// 1, 2, ... in the order they were saved.
    pub version: i64,
    /// The system prompt put before the request's messages.
    pub system_prompt: Option<String>,
    /// The request settings, a JSON object.
    pub config: String,
    /// Who saved it (the hash of the management key).
    pub creator_id: String,
    /// Unix ms.
    pub created_at: i64,
}

/// A preset with its designated version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetWithVersion {
    /// The preset.
    pub preset: PresetRow,
    /// Its designated version (`None` only for a preset whose designated version is gone).
    pub version: Option<PresetVersionRow>,
}

/// What a new version holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPresetVersion<'a> {
    /// System prompt.
    pub system_prompt: Option<&'a str>,
    /// Request settings, a JSON object.
    pub config: &'a str,
    /// Who saves it.
    pub creator_id: &'a str,
}

const PRESET_COLUMNS: &str = "p.id, p.slug, p.name, p.description, p.status, \
     p.designated_version_id, p.created_at, p.updated_at, p.status_updated_at";
const VERSION_COLUMNS: &str =
    "v.id, v.preset_id, v.version, v.system_prompt, v.config, v.creator_id, v.created_at";

fn preset_row(r: &AnyRow) -> StoreResult<PresetRow> {
    Ok(PresetRow {
        id: r.try_get("id")?,
        slug: r.try_get("slug")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        status: r.try_get("status")?,
        designated_version_id: r.try_get("designated_version_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        status_updated_at: r.try_get("status_updated_at")?,
    })
}

fn version_row(r: &AnyRow, prefix: &str) -> StoreResult<PresetVersionRow> {
    let col = |name: &str| format!("{prefix}{name}");
    Ok(PresetVersionRow {
        id: r.try_get(col("id").as_str())?,
        preset_id: r.try_get(col("preset_id").as_str())?,
        version: r.try_get(col("version").as_str())?,
        system_prompt: r.try_get(col("system_prompt").as_str())?,
        config: r.try_get(col("config").as_str())?,
        creator_id: r.try_get(col("creator_id").as_str())?,
        created_at: r.try_get(col("created_at").as_str())?,
    })
}

/// A unique constraint failed: another save of the same preset won the race.
fn conflict(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(e) if e.is_unique_violation() => {
            StoreError::Conflict("the preset was saved concurrently; try again".into())
        }
        _ => StoreError::Database(err),
    }
}

fn page(offset: u64, limit: u64) -> (i64, i64) {
    (crate::to_i64(offset), crate::to_i64(limit))
}

impl Store {
    /// Saves a new version of the account's preset `slug`, creating the preset when it does not
    /// exist, and designates it. Versions are numbered 1, 2, ... per preset. Two saves racing on
    /// one preset: one of them is [`StoreError::Conflict`], nothing of it stored.
    pub async fn save_preset_version(
        &self,
        account: &str,
        slug: &str,
        new: &NewPresetVersion<'_>,
        now_ms: i64,
    ) -> StoreResult<PresetWithVersion> {
        let mut tx = self.pool.begin().await?;
        // A write first: it takes the preset's row lock (PostgreSQL) or the database's write
        // lock (SQLite) before anything is read, so concurrent saves of one preset queue up
        // and number their versions one after the other.
        let touched =
            sqlx::query("UPDATE presets SET updated_at = $1 WHERE account_id = $2 AND slug = $3")
                .bind(now_ms)
                .bind(account)
                .bind(slug)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if touched == 0 {
            sqlx::query(
                "INSERT INTO presets (id, account_id, slug, name, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $3, 'active', $4, $4)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(account)
            .bind(slug)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(conflict)?;
        }
        let preset_id: String =
            sqlx::query_scalar("SELECT id FROM presets WHERE account_id = $1 AND slug = $2")
                .bind(account)
                .bind(slug)
                .fetch_one(&mut *tx)
                .await?;
        let last: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM preset_versions WHERE preset_id = $1")
                .bind(&preset_id)
                .fetch_one(&mut *tx)
                .await?;
        let version_id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO preset_versions \
             (id, preset_id, version, system_prompt, config, creator_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&version_id)
        .bind(&preset_id)
        .bind(last.unwrap_or(0).saturating_add(1))
        .bind(new.system_prompt)
        .bind(new.config)
        .bind(new.creator_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(conflict)?;
        sqlx::query("UPDATE presets SET designated_version_id = $1, updated_at = $2 WHERE id = $3")
            .bind(&version_id)
            .bind(now_ms)
            .bind(&preset_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await.map_err(conflict)?;
        self.notify(crate::Change::Preset {
            account: account.to_owned(),
            slug: slug.to_owned(),
        })
        .await;
        self.preset(account, slug)
            .await?
            .ok_or_else(|| StoreError::Corrupt("saved preset not found".into()))
    }

    /// The account's preset `slug` with its designated version: one indexed read.
    pub async fn preset(
        &self,
        account: &str,
        slug: &str,
    ) -> StoreResult<Option<PresetWithVersion>> {
        let sql = format!(
            "SELECT {PRESET_COLUMNS}, v.id AS v_id, v.preset_id AS v_preset_id, \
             v.version AS v_version, v.system_prompt AS v_system_prompt, v.config AS v_config, \
             v.creator_id AS v_creator_id, v.created_at AS v_created_at \
             FROM presets p LEFT JOIN preset_versions v ON v.id = p.designated_version_id \
             WHERE p.account_id = $1 AND p.slug = $2"
        );
        let row = sqlx::query(&sql)
            .bind(account)
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let has_version = r.try_get::<Option<String>, _>("v_id")?.is_some();
        Ok(Some(PresetWithVersion {
            preset: preset_row(&r)?,
            version: if has_version {
                Some(version_row(&r, "v_")?)
            } else {
                None
            },
        }))
    }

    /// A page of the account's presets, most recently updated first, and how many there are.
    pub async fn list_presets(
        &self,
        account: &str,
        offset: u64,
        limit: u64,
    ) -> StoreResult<(Vec<PresetRow>, u64)> {
        let (offset, limit) = page(offset, limit);
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM presets WHERE account_id = $1")
            .bind(account)
            .fetch_one(&self.pool)
            .await?;
        let sql = format!(
            "SELECT {PRESET_COLUMNS} FROM presets p WHERE p.account_id = $1 \
             ORDER BY p.updated_at DESC, p.id LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(&sql)
            .bind(account)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        let rows = rows.iter().map(preset_row).collect::<StoreResult<_>>()?;
        Ok((rows, u64::try_from(total).unwrap_or(0)))
    }

    /// A page of the versions of the account's preset `slug`, oldest first, and how many there
    /// are; `None` when the preset does not exist.
    pub async fn preset_versions(
        &self,
        account: &str,
        slug: &str,
        offset: u64,
        limit: u64,
    ) -> StoreResult<Option<(Vec<PresetVersionRow>, u64)>> {
        let id: Option<String> =
            sqlx::query_scalar("SELECT id FROM presets WHERE account_id = $1 AND slug = $2")
                .bind(account)
                .bind(slug)
                .fetch_optional(&self.pool)
                .await?;
        let Some(id) = id else {
            return Ok(None);
        };
        let (offset, limit) = page(offset, limit);
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM preset_versions WHERE preset_id = $1")
                .bind(&id)
                .fetch_one(&self.pool)
                .await?;
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM preset_versions v WHERE v.preset_id = $1 \
             ORDER BY v.version LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(&sql)
            .bind(&id)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        let rows = rows
            .iter()
            .map(|r| version_row(r, ""))
            .collect::<StoreResult<_>>()?;
        Ok(Some((rows, u64::try_from(total).unwrap_or(0))))
    }

    /// Version `version` of the account's preset `slug`.
    pub async fn preset_version(
        &self,
        account: &str,
        slug: &str,
        version: i64,
    ) -> StoreResult<Option<PresetVersionRow>> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM preset_versions v \
             JOIN presets p ON p.id = v.preset_id \
             WHERE p.account_id = $1 AND p.slug = $2 AND v.version = $3"
        );
        let row = sqlx::query(&sql)
            .bind(account)
            .bind(slug)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|r| version_row(r, "")).transpose()
    }
}
