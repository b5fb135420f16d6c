//! Logging in and out, the session extractor, CSRF checks, the user's own settings.
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, RawForm, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, extract::Query};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::{T, WebError, WebResult, csrf_field, layout};
use crate::AppState;
use crate::store::StoreError;
use crate::store::keyusers::{LoginOutcome, PasswordChange, Role, SessionUser, new_form_token};

pub const SESSION_COOKIE: &str = "fs_session";
const LOGIN_CSRF_COOKIE: &str = "fs_login_csrf";

/// A cookie's value from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A logged-in key user of the back office: the session's user and what the pages may do
/// with it.
#[derive(Debug, Clone)]
pub struct WebUser(pub SessionUser);

impl std::ops::Deref for WebUser {
    type Target = SessionUser;
    fn deref(&self) -> &SessionUser {
        &self.0
    }
}

impl std::ops::DerefMut for WebUser {
    fn deref_mut(&mut self) -> &mut SessionUser {
        &mut self.0
    }
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> WebResult<WebUser> {
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(WebError::Login);
        };
        let user = WebUser(
            state
                .store
                .web_session(&token, state.clock.now())
                .await?
                .ok_or(WebError::Login)?,
        );
        if !user.may_open(parts.uri.path()) {
            return Err(WebError::forbidden(&user.t()));
        }
        Ok(user)
    }
}

impl WebUser {
    pub fn can_write(&self) -> bool {
        self.role != Role::ReadOnly
    }

    /// Whether the user may open a page at this path: a distributor's portal login reaches
    /// its orders, claims, payment calendar, imports and own settings only.
    pub fn may_open(&self, path: &str) -> bool {
        if self.role != Role::Distributor {
            return true;
        }
        [
            "/orders",
            "/claims",
            "/receivables",
            "/imports",
            "/settings",
            "/logout",
            "/assets",
        ]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
            || path == "/"
    }

    /// The translator in the user's language.
    pub fn t(&self) -> T {
        T::new(&self.lang)
    }

    /// Refuses a form whose CSRF token is not the session's.
    pub fn check_csrf(&self, token: &str) -> WebResult<()> {
        if constant_time_eq(token.as_bytes(), self.csrf_token.as_bytes()) {
            Ok(())
        } else {
            Err(WebError::Page(
                StatusCode::FORBIDDEN,
                self.t().s("error.csrf"),
            ))
        }
    }

    /// Refuses a change by a read-only user.
    pub fn check_write(&self) -> WebResult<()> {
        if self.can_write() {
            Ok(())
        } else {
            Err(WebError::forbidden(&self.t()))
        }
    }

    /// Refuses what belongs to a distributor outside the user's sync points. Answers "not
    /// found" rather than "forbidden" so that ids of other distributors reveal nothing.
    pub fn check_distributor(&self, distributor_id: i64) -> WebResult<()> {
        if self.scope.allows(distributor_id) {
            Ok(())
        } else {
            Err(WebError::not_found(&self.t()))
        }
    }

    /// What a lookup found, when the distributor it belongs to (`distributor` reads it) is
    /// in the user's scope; "not found" for nothing and for another distributor's row alike.
    pub fn found<R>(&self, row: Option<R>, distributor: impl FnOnce(&R) -> i64) -> WebResult<R> {
        let row = row.ok_or_else(|| WebError::not_found(&self.t()))?;
        self.check_distributor(distributor(&row))?;
        Ok(row)
    }

    /// The rows of distributors in the user's scope (`distributor` reads a row's).
    pub fn visible<R>(
        &self,
        rows: Vec<R>,
        distributor: impl Fn(&R) -> i64,
    ) -> impl Iterator<Item = R> {
        rows.into_iter()
            .filter(move |r| self.scope.allows(distributor(r)))
    }
}

/// A form posted by a logged-in user: its `csrf` field is checked against the session's
/// token before the handler runs; `F` is what else the form holds (the token is not in it).
pub struct Posted<F>(pub WebUser, pub F);

/// A posted form that changes what others see: a read-only user is refused as well.
/// `Change` alone is a button whose form has no other fields.
pub struct Change<F = IgnoredAny>(pub WebUser, pub F);

/// The CSRF token of a posted form.
#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

fn refuse(e: impl IntoResponse) -> Response {
    e.into_response()
}

impl<F: DeserializeOwned + Send> FromRequest<AppState> for Posted<F> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let user = WebUser::from_request_parts(&mut parts, state)
            .await
            .map_err(refuse)?;
        let RawForm(bytes) = RawForm::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(refuse)?;
        let again = |bytes: Bytes| Request::from_parts(parts.clone(), Body::from(bytes));
        let Form(token) = Form::<CsrfForm>::from_request(again(bytes.clone()), state)
            .await
            .map_err(refuse)?;
        let Form(fields) = Form::<F>::from_request(again(bytes), state)
            .await
            .map_err(refuse)?;
        user.check_csrf(&token.csrf).map_err(refuse)?;
        Ok(Posted(user, fields))
    }
}

impl<F: DeserializeOwned + Send> FromRequest<AppState> for Change<F> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let Posted(user, fields) = Posted::from_request(req, state).await?;
        user.check_write().map_err(refuse)?;
        Ok(Change(user, fields))
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    #[serde(default)]
    lang: String,
}

fn login_page(t: &T, csrf: &str, login: &str, message: Option<String>, forgot: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(t.lang()) {
            head {
                meta charset="utf-8";
                title { (t.s("login.title")) " · fieldsync" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body.login {
                main.login-box {
                    h1 { "fieldsync" }
                    @if let Some(m) = message { p.error #login-error { (m) } }
                    form method="post" action="/login" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="lang" value=(t.lang());
                        label { (t.s("login.login")) input #login name="login" value=(login) autofocus; }
                        label { (t.s("login.password")) input #password type="password" name="password"; }
                        button #submit type="submit" { (t.s("login.submit")) }
                    }
                    @if forgot { p { a #forgot href={"/password/forgot?lang=" (t.lang())} { (t.s("reset.forgot")) } } }
                    p.langs { @for (code, name) in super::i18n::LANGS { a href={"/login?lang=" (code)} { (name) } " " } }
                }
            }
        }
    }
}

fn with_login_csrf(state: &AppState, body: Markup, csrf: &str, status: StatusCode) -> Response {
    let cookie = format!(
        "{LOGIN_CSRF_COOKIE}={csrf}; Path=/login; HttpOnly; SameSite=Strict{}",
        state.web.cookie_secure()
    );
    (status, [(header::SET_COOKIE, cookie)], body).into_response()
}

pub async fn login_form(State(state): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    let t = T::new(&q.lang);
    let csrf = new_form_token();
    with_login_csrf(
        &state,
        login_page(&t, &csrf, "", None, state.mail_enabled),
        &csrf,
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    login: String,
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    lang: String,
}

pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> WebResult<Response> {
    let t = T::new(&form.lang);
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    let fresh = new_form_token();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        let page = login_page(
            &t,
            &fresh,
            &form.login,
            Some(t.s("login.expired")),
            state.mail_enabled,
        );
        return Ok(with_login_csrf(&state, page, &fresh, StatusCode::FORBIDDEN));
    }
    let now = state.clock.now();
    let outcome = match state.store.login(&form.login, &form.password, now).await {
        Err(StoreError::Busy(_)) => {
            let page = login_page(
                &t,
                &fresh,
                &form.login,
                Some(t.s("error.busy")),
                state.mail_enabled,
            );
            let mut resp = with_login_csrf(&state, page, &fresh, StatusCode::SERVICE_UNAVAILABLE);
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return Ok(resp);
        }
        other => other?,
    };
    match outcome {
        LoginOutcome::Ok { token } => {
            let cookie = format!(
                "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax{}",
                state.web.cookie_secure()
            );
            Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response())
        }
        LoginOutcome::Wrong => {
            let page = login_page(
                &t,
                &fresh,
                &form.login,
                Some(t.s("login.wrong")),
                state.mail_enabled,
            );
            Ok(with_login_csrf(
                &state,
                page,
                &fresh,
                StatusCode::UNAUTHORIZED,
            ))
        }
        LoginOutcome::Locked { until_ms } => {
            let message = t.f("login.locked", &[("minutes", &minutes_left(until_ms, now))]);
            let page = login_page(&t, &fresh, &form.login, Some(message), state.mail_enabled);
            Ok(with_login_csrf(
                &state,
                page,
                &fresh,
                StatusCode::TOO_MANY_REQUESTS,
            ))
        }
    }
}

/// Whole minutes until a lock ends, rounded up.
fn minutes_left(until_ms: i64, now: i64) -> String {
    (((until_ms - now).max(0) + 59_999) / 60_000).to_string()
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Posted(_, _): Posted<IgnoredAny>,
) -> WebResult<Response> {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        state.store.logout(&token).await?;
    }
    let expire = format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        state.web.cookie_secure()
    );
    Ok(([(header::SET_COOKIE, expire)], Redirect::to("/login")).into_response())
}

const TIMEZONES: [&str; 8] = [
    "Europe/Kyiv",
    "Europe/Sofia",
    "Europe/Warsaw",
    "Europe/Berlin",
    "Europe/London",
    "Asia/Tbilisi",
    "Asia/Almaty",
    "UTC",
];

fn settings_page(user: &WebUser, email: &str, message: Option<(bool, String)>) -> Markup {
    let t = user.t();
    let body = html! {
        @if let Some((ok, m)) = message { p class=(if ok { "notice" } else { "error" }) #settings-message { (m) } }
        section {
            h2 { (t.s("settings.preferences")) }
            form method="post" action="/settings" {
                (csrf_field(user))
                label { (t.s("settings.language"))
                    select #lang name="lang" {
                        @for (code, name) in super::i18n::LANGS {
                            option value=(code) selected[code == user.lang] { (name) }
                        }
                    }
                }
                label { (t.s("settings.timezone"))
                    input #timezone name="timezone" list="timezones" value=(user.timezone);
                    datalist #timezones { @for tz in TIMEZONES { option value=(tz) {} } }
                }
                button #save-settings type="submit" { (t.s("common.save")) }
            }
        }
        section {
            h2 { (t.s("settings.email")) }
            form #email-form method="post" action="/settings/email" {
                (csrf_field(user))
                label { (t.s("settings.email"))
                    input #email type="email" name="email" value=(email) maxlength="254";
                }
                label { (t.s("settings.current_password")) input #email-password type="password" name="current"; }
                p.hint { (t.s("settings.email_hint")) }
                button #save-email type="submit" { (t.s("common.save")) }
            }
        }
        section {
            h2 { (t.s("settings.password")) }
            form #password-form method="post" action="/settings/password" {
                (csrf_field(user))
                label { (t.s("settings.current_password")) input type="password" name="current"; }
                label { (t.s("settings.new_password")) input type="password" name="new"; }
                p.hint { (t.s("settings.password_rule")) }
                button #change-password type="submit" { (t.s("settings.change_password")) }
            }
        }
    };
    layout(&t, user, &t.s("nav.settings"), body)
}

pub async fn settings_form(State(state): State<AppState>, user: WebUser) -> WebResult<Markup> {
    let email = state.store.key_user_email(user.id).await?;
    Ok(settings_page(&user, &email, None))
}

#[derive(Deserialize)]
pub struct SettingsForm {
    lang: String,
    timezone: String,
}

pub async fn save_settings(
    State(state): State<AppState>,
    Posted(mut user, form): Posted<SettingsForm>,
) -> WebResult<Response> {
    if !super::i18n::LANGS.iter().any(|(c, _)| *c == form.lang) {
        return Err(WebError::bad(&user.t(), "settings.bad_language"));
    }
    let stored = state.store.key_user_email(user.id).await?;
    let email = stored.as_str();
    if !super::valid_timezone(form.timezone.trim()) {
        let page = settings_page(
            &user,
            email,
            Some((false, user.t().s("settings.bad_timezone"))),
        );
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    state
        .store
        .set_key_user_preferences(user.id, &form.lang, form.timezone.trim())
        .await?;
    user.lang = form.lang;
    user.timezone = form.timezone.trim().to_string();
    Ok(settings_page(&user, email, Some((true, user.t().s("settings.saved")))).into_response())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Posted(user, form): Posted<PasswordForm>,
) -> WebResult<Response> {
    let token = cookie(&headers, SESSION_COOKIE).unwrap_or_default();
    let now = state.clock.now();
    let email = state.store.key_user_email(user.id).await?;
    let outcome = state
        .store
        .change_password(user.id, &form.current, &form.new, &token, now)
        .await;
    after_checked_change(&user, &email, outcome, "settings.password_changed", now)
}

#[derive(Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    current: String,
}

/// A user's own mail address: the current password first (reset links go there), and the
/// old address is told.
pub async fn change_email(
    State(state): State<AppState>,
    Posted(user, form): Posted<EmailForm>,
) -> WebResult<Response> {
    let t = user.t();
    let now = state.clock.now();
    let email = form.email.trim();
    if !email.is_empty() && !crate::store::mail::valid_address(email) {
        let stored = state.store.key_user_email(user.id).await?;
        let page = settings_page(&user, &stored, Some((false, t.s("settings.bad_email"))));
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    let outcome = state
        .store
        .change_email(user.id, &form.current, email, now, |lang, to, login| {
            crate::mail::letters::email_changed(lang, to, login, email)
        })
        .await;
    after_checked_change(&user, email, outcome, "settings.email_saved", now)
}

/// The settings page after a change that needed the current password: `done` when it was
/// made, else why not (wrong password, locked, refused, busy).
fn after_checked_change(
    user: &WebUser,
    email: &str,
    outcome: crate::store::Result<PasswordChange>,
    done: &str,
    now: i64,
) -> WebResult<Response> {
    let t = user.t();
    let refused = |status: StatusCode, message: String| {
        Ok((status, settings_page(user, email, Some((false, message)))).into_response())
    };
    match outcome {
        Ok(PasswordChange::Changed) => {
            Ok(settings_page(user, email, Some((true, t.s(done)))).into_response())
        }
        Ok(PasswordChange::WrongCurrent) => {
            refused(StatusCode::BAD_REQUEST, t.s("wrong_current_password"))
        }
        Ok(PasswordChange::Locked { until_ms }) => refused(
            StatusCode::TOO_MANY_REQUESTS,
            t.f(
                "password_change_locked",
                &[("minutes", &minutes_left(until_ms, now))],
            ),
        ),
        Err(e @ (StoreError::Refused(_) | StoreError::Busy(_))) => match WebError::store(&t, e) {
            WebError::Page(status, message) => refused(status, message),
            other => Err(other),
        },
        Err(e) => Err(e.into()),
    }
}
