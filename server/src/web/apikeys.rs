//! API keys of the distributors' systems: a key user creates one (shown once) and revokes it.
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Change, WebError, WebResult, WebUser, csrf_field, fmt_time, layout};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api-keys", get(list).post(|s, c| give(s, c, Give::ApiKey)))
        .route("/api-keys/{id}/revoke", post(revoke))
        .route("/api-keys/webhook", post(|s, c| give(s, c, Give::Webhook)))
}

/// The distributors the user may act for: (id, code).
async fn page(state: &AppState, user: &WebUser, new_key: Option<String>) -> WebResult<Markup> {
    let t = user.t();
    let ds = super::user_distributors(state, user).await?;
    let mut hooks = Vec::new();
    for (id, code) in &ds {
        if let Some(h) = state.store.webhook(*id).await? {
            hooks.push((code.clone(), h));
        }
    }
    let ids: Vec<i64> = ds.iter().map(|(id, _)| *id).collect();
    let keys = state.store.api_keys(&ids).await?;
    let code = |id: i64| {
        ds.iter()
            .find(|d| d.0 == id)
            .map(|d| d.1.clone())
            .unwrap_or_default()
    };
    let tz = &user.timezone;
    let body = html! {
        @if let Some(k) = &new_key {
            div.notice #key-notice { p { (t.s("api_keys.shown_once")) } p.pin #new-key { (k) } }
        }
        p.hint { (t.s("api_keys.hint")) " " a href="/api/v1/openapi.json" { "OpenAPI" } }
        table.list #api-keys {
            thead { tr { th { (t.s("col.distributor")) } th { (t.s("api_keys.label")) } th { (t.s("api_keys.prefix")) }
                th { (t.s("col.created")) } th { (t.s("api_keys.last_used")) } th { (t.s("api_keys.revoked")) } th {} } }
            tbody {
                @if keys.is_empty() { tr { td.empty colspan="7" { (t.s("list.empty")) } } }
                @for k in &keys { tr {
                    td { (code(k.distributor_id)) } td { (k.label) } td { code { (k.key_prefix) "…" } }
                    td { (fmt_time(k.created_at_ms, tz)) }
                    td { (k.last_used_ms.map(|m| fmt_time(m, tz)).unwrap_or_default()) }
                    td { (k.revoked_at_ms.map(|m| fmt_time(m, tz)).unwrap_or_default()) }
                    td { @if user.can_write() && k.revoked_at_ms.is_none() {
                        form.inline method="post" action={"/api-keys/" (k.id) "/revoke"} {
                            (csrf_field(user)) button.revoke type="submit" { (t.s("api_keys.revoke")) }
                        }
                    } }
                } }
            }
        }
        @if user.can_write() && !ds.is_empty() {
            h2 { (t.s("api_keys.create")) }
            form.inline method="post" action="/api-keys" {
                (csrf_field(user))
                (super::distributor_select(&t, &ds))
                label { (t.s("api_keys.label")) input name="label"; }
                button #create-key type="submit" { (t.s("common.create")) }
            }
        }
        h2 { (t.s("webhooks.title")) }
        p.hint { (t.s("webhooks.hint")) }
        table.list #webhooks {
            thead { tr { th { (t.s("col.distributor")) } th { "URL" } th { (t.s("webhooks.delivered")) } th { (t.s("webhooks.attempts")) } th { (t.s("col.error")) } } }
            tbody {
                @if hooks.is_empty() { tr { td.empty colspan="5" { (t.s("list.empty")) } } }
                @for (code, h) in &hooks { tr {
                    td { (code) } td { (h.url) } td { (h.delivered) } td { (h.attempts) } td { (h.last_error) }
                } }
            }
        }
        @if user.can_write() && !ds.is_empty() {
            form.inline method="post" action="/api-keys/webhook" {
                (csrf_field(user))
                (super::distributor_select(&t, &ds))
                label { (t.s("webhooks.url")) input name="url" placeholder="https://"; }
                button #set-webhook type="submit" { (t.s("webhooks.set")) }
            }
        }
    };
    Ok(layout(&t, user, &t.s("nav.api_keys"), body))
}

async fn list(State(state): State<AppState>, user: WebUser) -> WebResult<Markup> {
    page(&state, &user, None).await
}

/// What the page's forms for a distributor post: the new key's label or the webhook's URL.
#[derive(Deserialize)]
struct DistributorForm {
    distributor_id: i64,
    #[serde(default)]
    label: String,
    #[serde(default)]
    url: String,
}

/// What a form for a distributor does; each gives out a secret that the page shows once.
#[derive(Clone, Copy)]
enum Give {
    /// A new API key with the form's label.
    ApiKey,
    /// The distributor's webhook at the form's URL (the signing secret is new), or none when
    /// the URL is empty.
    Webhook,
}

async fn give(
    State(state): State<AppState>,
    Change(user, form): Change<DistributorForm>,
    what: Give,
) -> WebResult<Markup> {
    let d = form.distributor_id;
    user.check_distributor(d)?;
    let now = state.clock.now();
    let secret = match what {
        Give::ApiKey => {
            let label: String = form.label.trim().chars().take(100).collect();
            Some(state.store.create_api_key(d, &label, now).await?.1)
        }
        Give::Webhook if form.url.trim().is_empty() => {
            state.store.remove_webhook(d).await?;
            None
        }
        Give::Webhook => Some(
            state
                .store
                .set_webhook(d, &form.url, state.webhook_targets, now)
                .await
                .map_err(|_| WebError::bad(&user.t(), "webhooks.bad_url"))?,
        ),
    };
    page(&state, &user, secret).await
}

async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Change(user, _): Change,
) -> WebResult<Response> {
    let d = user.found(state.store.api_key_distributor(id).await?, |d| *d)?;
    state
        .store
        .revoke_api_key(d, id, state.clock.now())
        .await
        .map_err(|e| WebError::store(&user.t(), e))?;
    Ok(Redirect::to("/api-keys").into_response())
}
