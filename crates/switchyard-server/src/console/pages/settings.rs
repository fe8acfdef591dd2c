//! Account privacy settings: training, zero data retention, provider lists, prompt logging and
//! the data classification, changed through [`AccountSettings::apply`] as the CLI changes them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use crate::console::view::{csrf_field, html_response, shell, Nav, Notice};
use crate::console::{Change, Signed};
use crate::error::ApiError;
use crate::settings::{AccountSettings, SettingsChange};
use crate::state::SharedState;

async fn current(state: &SharedState, account: &str) -> Result<AccountSettings, ApiError> {
    let doc = state.store.account_settings(account).await?;
    AccountSettings::from_json(&doc).map_err(|e| ApiError::internal(&e))
}

/// `GET settings`.
pub async fn page(State(state): State<SharedState>, signed: Signed) -> Response {
    render(&state, &signed, StatusCode::OK, Notice::None).await
}

async fn render(
    state: &SharedState,
    signed: &Signed,
    status: StatusCode,
    notice: Notice,
) -> Response {
    let mut notice = notice;
    let settings = current(state, &signed.auth.key.account_id)
        .await
        .unwrap_or_else(|e| {
            notice = Notice::Failed(e.message);
            AccountSettings::default()
        });
    let known = state.classifications.names();
    let content_key = state.content_cipher.is_some();
    let body = html! {
        form.stack method="post" action=(signed.console.link("settings")) {
            (csrf_field(signed))
            fieldset {
                legend { "Training on prompts" }
                label.check { input type="checkbox" name="allow_training_paid" value="true" checked[settings.allow_training_paid]; " Allow paid endpoints whose provider may train on prompts" }
                label.check { input type="checkbox" name="allow_training_free" value="true" checked[settings.allow_training_free]; " Allow free endpoints whose provider may train on prompts" }
                label.check { input type="checkbox" name="zdr_only" value="true" checked[settings.zdr_only]; " Zero-data-retention endpoints only" }
            }
            fieldset {
                legend { "Providers" }
                label for="allowed_providers" { "Only these providers (comma-separated slugs; empty for all)" }
                input id="allowed_providers" name="allowed_providers" type="text"
                    value=(settings.allowed_providers.as_deref().map(|l| l.join(", ")).unwrap_or_default());
                label for="ignored_providers" { "Never these providers (comma-separated slugs)" }
                input id="ignored_providers" name="ignored_providers" type="text" value=(settings.ignored_providers.join(", "));
            }
            fieldset {
                legend { "Data" }
                label for="data_classification" { "Data classification of every request" }
                select id="data_classification" name="data_classification" {
                    option value="" { "None" }
                    @for name in &known {
                        option value=(name) selected[settings.data_classification.as_deref() == Some(*name)] { (name) }
                    }
                }
                label.check { input type="checkbox" name="prompt_logging" value="true" checked[settings.prompt_logging]; " Log prompts and completions, encrypted, for the generation pages and " code { "/api/v1/generation/content" } }
                @if !content_key {
                    p.help { "No content key is configured (" code { "[prompt_logging] key_env" } "): nothing is logged whatever this says." }
                }
            }
            button type="submit" { "Save" }
        }
    };
    html_response(
        status,
        shell(signed, Nav::Settings, "Privacy settings", &notice, body),
    )
}

/// `POST settings`.
pub async fn save(State(state): State<SharedState>, Change { signed, fields }: Change) -> Response {
    let account = signed.auth.key.account_id.clone();
    let result = async {
        let mut settings = current(&state, &account).await?;
        let text = |name: &str| Some(fields.get(name).unwrap_or("").to_owned());
        settings
            .apply(
                SettingsChange {
                    allow_training_paid: Some(fields.checked("allow_training_paid")),
                    allow_training_free: Some(fields.checked("allow_training_free")),
                    zdr_only: Some(fields.checked("zdr_only")),
                    allowed_providers: text("allowed_providers"),
                    ignored_providers: text("ignored_providers"),
                    prompt_logging: Some(fields.checked("prompt_logging")),
                    data_classification: text("data_classification"),
                },
                &state.classifications,
            )
            .map_err(ApiError::bad_request)?;
        let doc = serde_json::to_value(&settings).map_err(|e| ApiError::internal(&e))?;
        state.store.set_account_settings(&account, &doc).await?;
        state.settings.invalidate(&account).await;
        Ok::<_, ApiError>(())
    }
    .await;
    match result {
        Ok(()) => {
            render(
                &state,
                &signed,
                StatusCode::OK,
                Notice::Done("Settings saved.".into()),
            )
            .await
        }
        Err(e) => {
            render(
                &state,
                &signed,
                StatusCode::BAD_REQUEST,
                Notice::Failed(e.message),
            )
            .await
        }
    }
}
