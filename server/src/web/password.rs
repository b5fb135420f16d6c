//! "Forgot your password?": a key user asks for a link by login, gets it by mail, and sets a
//! new password through it (see `store::password_reset`). The forms have no session; their
//! CSRF token is a cookie of their own path (as the login form's).
use axum::Form;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::T;
use super::auth::{constant_time_eq, cookie};
use crate::AppState;
use crate::mail::letters;
use crate::store::StoreError;
use crate::store::keyusers::new_form_token;
use crate::store::password_reset::ResetDone;

const RESET_CSRF_COOKIE: &str = "fs_reset_csrf";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/password/forgot", get(forgot_form).post(forgot))
        .route("/password/reset", get(reset_form).post(reset))
}

fn page(t: &T, title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(t.lang()) {
            head {
                meta charset="utf-8";
                title { (title) " · fieldsync" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body.login { main.login-box { h1 { "fieldsync" } h2 { (title) } (content) } }
        }
    }
}

/// A page with a fresh CSRF token in its cookie.
fn with_csrf(state: &AppState, status: StatusCode, csrf: &str, body: Markup) -> Response {
    let cookie = format!(
        "{RESET_CSRF_COOKIE}={csrf}; Path=/password; HttpOnly; SameSite=Strict{}",
        state.web.cookie_secure()
    );
    (status, [(header::SET_COOKIE, cookie)], body).into_response()
}

fn csrf_ok(headers: &HeaderMap, sent: &str) -> bool {
    let expected = cookie(headers, RESET_CSRF_COOKIE).unwrap_or_default();
    !expected.is_empty() && constant_time_eq(expected.as_bytes(), sent.as_bytes())
}

#[derive(Deserialize, Default)]
struct LangQuery {
    #[serde(default)]
    lang: String,
}

fn forgot_page(t: &T, csrf: &str, message: Option<(bool, String)>) -> Markup {
    page(
        t,
        &t.s("reset.title"),
        html! {
            @if let Some((ok, m)) = message { p class=(if ok { "notice" } else { "error" }) #reset-message { (m) } }
            form method="post" action="/password/forgot" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="lang" value=(t.lang());
                label { (t.s("login.login")) input #reset-login name="login" autofocus; }
                button #reset-ask type="submit" { (t.s("reset.send_link")) }
            }
            p { a href={"/login?lang=" (t.lang())} { (t.s("reset.back_to_login")) } }
        },
    )
}

async fn forgot_form(State(state): State<AppState>, Query(q): Query<LangQuery>) -> Response {
    let t = T::new(&q.lang);
    let csrf = new_form_token();
    let message = (!state.mail_enabled).then(|| (false, t.s("reset.no_mail")));
    with_csrf(
        &state,
        StatusCode::OK,
        &csrf,
        forgot_page(&t, &csrf, message),
    )
}

#[derive(Deserialize)]
struct ForgotForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    lang: String,
}

async fn forgot(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<ForgotForm>,
) -> super::WebResult<Response> {
    let t = T::new(&f.lang);
    let csrf = new_form_token();
    if !csrf_ok(&headers, &f.csrf) {
        let body = forgot_page(&t, &csrf, Some((false, t.s("login.expired"))));
        return Ok(with_csrf(&state, StatusCode::FORBIDDEN, &csrf, body));
    }
    if !state.mail_enabled {
        let body = forgot_page(&t, &csrf, Some((false, t.s("reset.no_mail"))));
        return Ok(with_csrf(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            &csrf,
            body,
        ));
    }
    let base = state.store.public_url().to_string();
    state
        .store
        .ask_password_reset(f.login.trim(), state.clock.now(), |target, token| {
            letters::password_reset(&target.lang, &target.email, &target.login, token, &base)
        })
        .await?;
    // The same answer whatever happened: it tells nothing about which logins exist.
    let body = forgot_page(&t, &csrf, Some((true, t.s("reset.sent"))));
    Ok(with_csrf(&state, StatusCode::OK, &csrf, body))
}

#[derive(Deserialize, Default)]
struct TokenQuery {
    #[serde(default)]
    token: String,
    #[serde(default)]
    lang: String,
}

fn reset_page(t: &T, csrf: &str, token: &str, login: &str, error: Option<String>) -> Markup {
    page(
        t,
        &t.s("reset.new_password"),
        html! {
            @if let Some(m) = error { p.error #reset-message { (m) } }
            p #reset-for { (t.f("reset.for", &[("login", login)])) }
            form method="post" action="/password/reset" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="lang" value=(t.lang());
                input type="hidden" name="token" value=(token);
                label { (t.s("settings.new_password")) input #reset-password type="password" name="password" autofocus; }
                label { (t.s("reset.repeat")) input #reset-repeat type="password" name="repeat"; }
                p.hint { (t.s("settings.password_rule")) }
                button #reset-submit type="submit" { (t.s("reset.set")) }
            }
        },
    )
}

fn bad_link(t: &T) -> Response {
    let body = page(
        t,
        &t.s("reset.title"),
        html! {
            p.error #reset-message { (t.s("reset.bad_link")) }
            p { a href={"/password/forgot?lang=" (t.lang())} { (t.s("reset.ask_again")) } }
        },
    );
    (StatusCode::BAD_REQUEST, body).into_response()
}

async fn reset_form(
    State(state): State<AppState>,
    Query(q): Query<TokenQuery>,
) -> super::WebResult<Response> {
    let t = T::new(&q.lang);
    let Some(login) = state
        .store
        .password_reset_target(&q.token, state.clock.now())
        .await?
    else {
        return Ok(bad_link(&t));
    };
    let csrf = new_form_token();
    let body = reset_page(&t, &csrf, &q.token, &login, None);
    Ok(with_csrf(&state, StatusCode::OK, &csrf, body))
}

#[derive(Deserialize)]
struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    repeat: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    lang: String,
}

async fn reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<ResetForm>,
) -> super::WebResult<Response> {
    let t = T::new(&f.lang);
    let now = state.clock.now();
    let Some(login) = state.store.password_reset_target(&f.token, now).await? else {
        return Ok(bad_link(&t));
    };
    let csrf = new_form_token();
    let again = |status: StatusCode, message: String| {
        let body = reset_page(&t, &csrf, &f.token, &login, Some(message));
        Ok(with_csrf(&state, status, &csrf, body))
    };
    if !csrf_ok(&headers, &f.csrf) {
        return again(StatusCode::FORBIDDEN, t.s("login.expired"));
    }
    if f.password != f.repeat {
        return again(StatusCode::BAD_REQUEST, t.s("reset.mismatch"));
    }
    match state
        .store
        .reset_password_with_link(&f.token, &f.password, now)
        .await
    {
        Ok(ResetDone::Changed(_)) => {
            let body = page(
                &t,
                &t.s("reset.title"),
                html! {
                    p.notice #reset-message { (t.s("reset.done")) }
                    p { a #to-login href={"/login?lang=" (t.lang())} { (t.s("reset.back_to_login")) } }
                },
            );
            Ok(body.into_response())
        }
        Ok(ResetDone::BadLink) => Ok(bad_link(&t)),
        Err(e @ (StoreError::Refused(_) | StoreError::Busy(_))) => {
            match super::WebError::store(&t, e) {
                super::WebError::Page(status, message) => again(status, message),
                other => Err(other),
            }
        }
        Err(e) => Err(e.into()),
    }
}
