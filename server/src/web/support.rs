//! Support requests in the back office: the list (the list engine) with the form that opens
//! one, the request's page with its thread, head office's answer, and the requester's
//! confirmation or reopening. Every step is mailed (see `store::support`).
use axum::Router;
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::list::list_page;
use super::lists;
use super::{Posted, T, WebError, WebResult, WebUser, create_block, csrf_field, fmt_time, layout};
use crate::AppState;
use crate::mail::letters;
use crate::store::keyusers::Role;
use crate::store::support::{
    MAX_ATTACHMENT, MAX_SUBJECT, MAX_TEXT, NewRequest, Step, SupportRequest, clean,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/support",
            get(list)
                .post(open)
                .layer(axum::extract::DefaultBodyLimit::max(
                    MAX_ATTACHMENT + 64 * 1024,
                )),
        )
        .route("/support/{id}", get(card))
        .route("/support/{id}/file", get(file))
        .route("/support/{id}/answer", post(answer))
        .route("/support/{id}/confirm", post(confirm))
        .route("/support/{id}/reopen", post(reopen))
        .route("/mail", get(outbox))
}

/// A page of this server the request may name: a path, never another site or a script
/// (browsers drop tabs and line breaks from a link, so `/\t/site` would be `//site`).
fn own_page(page: &str) -> Option<&str> {
    (page.starts_with('/')
        && !page.starts_with("//")
        && !page
            .chars()
            .any(|c| c == '\\' || c.is_whitespace() || c.is_control()))
    .then_some(page)
}

/// The page the user came from (the request is probably about it), when it is ours.
fn came_from(headers: &HeaderMap) -> String {
    let Some(referer) = headers.get(header::REFERER).and_then(|v| v.to_str().ok()) else {
        return String::new();
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let path = referer
        .split_once("://")
        .and_then(|(_, rest)| rest.strip_prefix(host))
        .unwrap_or_default();
    match own_page(path) {
        Some(p) if !p.starts_with("/support") => p.chars().take(500).collect(),
        _ => String::new(),
    }
}

async fn list(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> WebResult<Markup> {
    let t = user.t();
    let ds = super::user_distributors(&state, &user).await?;
    let form = html! {
        form.step #support-form method="post" action="/support" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(user.csrf_token);
            (super::distributor_select(&t, &ds))
            label { (t.s("support.subject")) input #support-subject name="subject" maxlength="200" required; }
            label { (t.s("support.text")) textarea #support-text name="text" rows="6" maxlength="10000" required {} }
            label { (t.s("support.page")) input #support-page name="page" value=(came_from(&headers)) maxlength="500"; }
            label { (t.s("support.file")) input #support-file type="file" name="file"; }
            p.hint { (t.s("support.file_hint")) }
            button #support-submit type="submit" { (t.s("support.open")) }
        }
    };
    let extra = html! {
        p.hint { (t.s("support.intro")) }
        @if !ds.is_empty() { (create_block(&t, &user, "new-request", "support.new", form)) }
    };
    list_page(State(state), user, RawQuery(raw), &lists::SUPPORT, extra).await
}

/// Opens a request from the multipart form (CSRF token, distributor, subject, text, page,
/// file).
async fn open(
    State(state): State<AppState>,
    user: WebUser,
    mut form: Multipart,
) -> WebResult<Response> {
    let t = user.t();
    let mut csrf = String::new();
    let mut r = NewRequest::default();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|_| WebError::bad(&t, "support.bad_upload"))?
    {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            let file_name = field.file_name().unwrap_or_default().to_string();
            let kind = field.content_type().unwrap_or_default().to_string();
            let bytes = field
                .bytes()
                .await
                .map_err(|_| WebError::bad(&t, "support.file_too_large"))?;
            if !file_name.is_empty() && !bytes.is_empty() {
                r.attachment = Some((file_name, kind, bytes.to_vec()));
            }
            continue;
        }
        let value = field.text().await.unwrap_or_default();
        match name.as_str() {
            "csrf" => csrf = value,
            "distributor_id" => r.distributor_id = value.trim().parse().unwrap_or(0),
            "subject" => r.subject = value,
            "text" => r.text = value,
            "page" => r.page = value,
            _ => {}
        }
    }
    user.check_csrf(&csrf)?;
    user.check_write()?;
    user.check_distributor(r.distributor_id)?;
    // A distributor that exists and is active (head office's scope admits any id).
    let ds = super::user_distributors(&state, &user).await?;
    if !ds.iter().any(|d| d.0 == r.distributor_id) {
        return Err(WebError::not_found(&t));
    }
    if own_page(r.page.trim()).is_none() {
        r.page.clear();
    }
    let base = state.store.public_url().to_string();
    // The letter says what is stored: the same limits.
    let subject = clean(&r.subject, MAX_SUBJECT);
    let text = clean(&r.text, MAX_TEXT);
    let (subject, text, login) = (subject.as_str(), text.as_str(), user.login.clone());
    let letter = |id: i64, lang: &str, to: &str| {
        letters::support_step(lang, to, id, subject, "opened", &login, text, &base)
    };
    let id = state
        .store
        .open_support_request(user.id, &r, state.clock.now(), &letter)
        .await
        .map_err(|e| WebError::store(&t, e))?;
    Ok(Redirect::to(&format!("/support/{id}")).into_response())
}

/// The request, if the user may see it.
async fn visible(state: &AppState, user: &WebUser, id: i64) -> WebResult<SupportRequest> {
    let r = state.store.support_request(id).await?;
    user.found(r, |r| r.distributor_id)
}

async fn card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
) -> WebResult<Markup> {
    let t = user.t();
    let r = visible(&state, &user, id).await?;
    let thread = state.store.support_messages(id).await?;
    let tz = &user.timezone;
    let head_office = user.role == Role::HeadOffice && user.can_write();
    let requester = user.id == r.opened_by;
    let body = html! {
        p { a href="/support" { "← " (t.s("nav.support")) } }
        dl.facts #support-facts {
            dt { (t.s("col.state")) } dd #support-state { span class={"support support-" (r.state)} { (t.value("support_state", &r.state)) } }
            dt { (t.s("col.distributor")) } dd { (r.distributor_code) }
            dt { (t.s("col.opened_by")) } dd #support-opened-by { (r.opened_by_login) }
            dt { (t.s("col.created")) } dd { (fmt_time(r.created_at_ms, tz)) }
            dt { (t.s("col.updated")) } dd { (fmt_time(r.updated_at_ms, tz)) }
            @if !r.page.is_empty() {
                dt { (t.s("support.page")) }
                dd { @if let Some(p) = own_page(&r.page) { a #support-page-link href=(p) { (p) } } @else { (r.page) } }
            }
            @if !r.attachment_name.is_empty() {
                dt { (t.s("support.file")) }
                dd { a #support-attachment href={"/support/" (r.id) "/file"} { (r.attachment_name) } }
            }
        }
        ol.thread #support-thread {
            @for m in &thread {
                li class={"message message-" (m.kind)} {
                    p.meta { strong { (m.author) } " · " (t.value("support_step", &m.kind)) " · " (fmt_time(m.at_ms, tz)) }
                    @if !m.body.is_empty() { p.body style="white-space: pre-wrap" { (m.body) } }
                }
            }
        }
        @if head_office && r.state != "closed" {
            form.step #answer-form method="post" action={"/support/" (r.id) "/answer"} {
                (csrf_field(&user))
                label { (t.s("support.answer")) textarea #answer-text name="text" rows="5" maxlength="10000" required {} }
                button #answer-submit type="submit" { (t.s("support.send_answer")) }
            }
        }
        @if requester && r.state == "answered" {
            form.step #confirm-form method="post" action={"/support/" (r.id) "/confirm"} {
                (csrf_field(&user))
                label { (t.s("support.comment_optional")) textarea #confirm-text name="text" rows="2" maxlength="10000" {} }
                button #confirm-submit type="submit" { (t.s("support.confirm")) }
            }
        }
        @if requester && (r.state == "answered" || r.state == "closed") {
            form.step #reopen-form method="post" action={"/support/" (r.id) "/reopen"} {
                (csrf_field(&user))
                label { (t.s("support.reopen_why")) textarea #reopen-text name="text" rows="3" maxlength="10000" required {} }
                button #reopen-submit type="submit" { (t.s("support.reopen")) }
            }
        }
    };
    Ok(layout(
        &t,
        &user,
        &format!("#{} · {}", r.id, r.subject),
        body,
    ))
}

/// The attached file, always as a download (never shown inline as a page of this site).
async fn file(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
) -> WebResult<Response> {
    visible(&state, &user, id).await?;
    let Some((name, _, bytes)) = state.store.support_attachment(id).await? else {
        return Err(WebError::not_found(&user.t()));
    };
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize)]
struct StepForm {
    #[serde(default)]
    text: String,
}

async fn step(
    state: &AppState,
    user: &WebUser,
    id: i64,
    step: Step,
    text: &str,
) -> WebResult<Response> {
    let t = user.t();
    user.check_write()?;
    let r = visible(state, user, id).await?;
    let allowed = match step {
        Step::Answer => user.role == Role::HeadOffice,
        Step::Confirm | Step::Reopen => user.id == r.opened_by,
    };
    if !allowed {
        return Err(WebError::forbidden(&t));
    }
    let base = state.store.public_url().to_string();
    let login = user.login.clone();
    let text = clean(text, MAX_TEXT);
    let text = text.as_str();
    let letter = |id: i64, lang: &str, to: &str| {
        letters::support_step(lang, to, id, &r.subject, step.kind(), &login, text, &base)
    };
    state
        .store
        .support_step(id, user.id, step, text, state.clock.now(), &letter)
        .await
        .map_err(|e| WebError::store(&t, e))?;
    Ok(Redirect::to(&format!("/support/{id}")).into_response())
}

async fn answer(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Posted(user, f): Posted<StepForm>,
) -> WebResult<Response> {
    step(&state, &user, id, Step::Answer, &f.text).await
}

async fn confirm(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Posted(user, f): Posted<StepForm>,
) -> WebResult<Response> {
    step(&state, &user, id, Step::Confirm, &f.text).await
}

async fn reopen(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Posted(user, f): Posted<StepForm>,
) -> WebResult<Response> {
    step(&state, &user, id, Step::Reopen, &f.text).await
}

/// Head office's view of the mail outbox: what went out, what waits, what failed and why.
pub async fn outbox(State(state): State<AppState>, user: WebUser) -> WebResult<Markup> {
    let t: T = user.t();
    if user.role != Role::HeadOffice {
        return Err(WebError::forbidden(&t));
    }
    let rows = state.store.mail_outbox(200).await?;
    let tz = &user.timezone;
    let body = html! {
        p.hint #mail-status { @if state.mail_enabled { (t.s("mail.enabled")) } @else { (t.s("mail.disabled")) } }
        table.list #outbox {
            thead { tr { th { "#" } th { (t.s("mail.kind")) } th { (t.s("mail.to")) } th { (t.s("support.subject")) }
                th { (t.s("col.state")) } th { (t.s("mail.attempts")) } th { (t.s("mail.error")) } th { (t.s("col.created")) } th { (t.s("mail.sent")) } } }
            tbody {
                @if rows.is_empty() { tr { td.empty colspan="9" { (t.s("list.empty")) } } }
                @for m in &rows { tr {
                    td { (m.id) } td { (t.value("mail_kind", &m.kind)) } td { (m.to) } td { (m.subject) }
                    td { (t.value("mail_state", &m.state)) } td { (m.attempts) } td { (m.last_error) }
                    td { (fmt_time(m.created_at_ms, tz)) } td { @if let Some(s) = m.sent_at_ms { (fmt_time(s, tz)) } }
                } }
            }
        }
    };
    Ok(layout(&t, &user, &t.s("nav.mail"), body))
}

#[cfg(test)]
mod tests {
    use super::own_page;

    #[test]
    fn only_a_path_of_this_site_is_linked() {
        assert_eq!(
            own_page("/products?f.code=P-1"),
            Some("/products?f.code=P-1")
        );
        for other in [
            "//evil.example/x",
            "/\t/evil.example/x",
            "/\n/evil.example",
            "/\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "products",
            "/a b",
        ] {
            assert_eq!(own_page(other), None, "{other:?}");
        }
    }
}
