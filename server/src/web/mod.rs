//! The key-user back office: server-rendered pages (maud escapes every value), sessions with
//! CSRF tokens, one list engine for every directory and document list, visit maps with
//! Leaflet.
//!
//! Access: every handler takes a [`WebUser`] (the session extractor), every list and card is
//! limited to the user's [`Scope`], and every form that changes something carries the
//! session's CSRF token, checked by the [`Posted`] and [`Change`] extractors.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use fieldsync_protocol::dates;

use crate::AppState;
use crate::store::StoreError;
pub use crate::store::keyusers::{Role, Scope};
pub use auth::{Change, Posted, WebUser};

pub mod accounts;
pub mod apikeys;
pub mod auth;
pub mod claims;
pub mod editors;
pub mod i18n;
pub mod imports;
pub mod list;
pub mod lists;
pub mod map;
pub mod orders;
pub mod org;
pub mod outlet_card;
pub mod pages;
pub mod password;
pub mod plans;
pub mod pricing;
pub mod questionnaires;
pub mod rdc;
pub mod receivables;
pub mod reports;
pub mod routes;
pub mod staff;
pub mod support;
pub mod truth;
pub mod warehouses;

pub use i18n::T;

/// The server's clock for the back office: real time plus an offset that tests can move
/// forward (a lockout that ends after 15 minutes is tested without waiting).
#[derive(Debug, Clone, Default)]
pub struct Clock(Arc<AtomicI64>);

impl Clock {
    pub fn now(&self) -> i64 {
        crate::store::now_ms() + self.0.load(Ordering::Relaxed)
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::Relaxed);
    }
}

/// Where pages load Chart.js from when its npm package is not installed beside Leaflet's.
pub const CHART_URL: &str = "https://cdn.jsdelivr.net/npm/chart.js@4.4.7/dist";

/// Settings of the back office's pages.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// A directory holding Leaflet's `dist` files (from its npm package), served under
    /// `/assets/leaflet/`. When absent, pages load Leaflet from `leaflet_url`.
    pub leaflet_dir: Option<std::path::PathBuf>,
    /// Where Leaflet's `leaflet.js` and `leaflet.css` are when not served locally.
    pub leaflet_url: String,
    /// The map tile layer, `{z}/{x}/{y}` style.
    pub tile_url: String,
    /// Mark cookies `Secure` (set when the server is reached over TLS, behind a proxy).
    pub secure_cookies: bool,
}

impl Default for WebSettings {
    fn default() -> Self {
        let local =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web/node_modules/leaflet/dist");
        WebSettings {
            leaflet_dir: local.join("leaflet.js").exists().then_some(local),
            leaflet_url: "https://unpkg.com/leaflet@1.9.4/dist".into(),
            tile_url: "https://tile.openstreetmap.org/{z}/{x}/{y}.png".into(),
            secure_cookies: false,
        }
    }
}

impl WebSettings {
    /// The `Content-Security-Policy` of every answer: scripts and styles from this server
    /// (and Leaflet's origin when it is loaded from elsewhere), no inline script, images
    /// from anywhere (map tiles), no framing.
    pub fn content_security_policy(&self) -> String {
        let leaflet = if self.leaflet_dir.is_some() {
            String::new()
        } else {
            [self.leaflet_url.as_str(), CHART_URL]
                .iter()
                .filter_map(|u| origin(u))
                .map(|o| format!(" {o}"))
                .collect::<String>()
        };
        format!(
            "default-src 'self'; script-src 'self'{leaflet}; style-src 'self' 'unsafe-inline'{leaflet}; \
             img-src 'self' data: blob: https: http:; connect-src 'self'; object-src 'none'; \
             base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )
    }

    /// `; Secure` when cookies are to be sent over TLS only.
    pub fn cookie_secure(&self) -> &'static str {
        if self.secure_cookies { "; Secure" } else { "" }
    }

    /// Chart.js's `dist` directory (from its npm package, installed beside Leaflet's), when
    /// Leaflet is served locally.
    pub fn chart_dir(&self) -> Option<std::path::PathBuf> {
        let dir = self
            .leaflet_dir
            .as_ref()?
            .parent()?
            .parent()?
            .join("chart.js/dist");
        dir.join("chart.umd.js").exists().then_some(dir)
    }

    /// The base URL pages load Chart.js from.
    pub fn chart_base(&self) -> String {
        if self.chart_dir().is_some() {
            "/assets/chart".into()
        } else {
            CHART_URL.into()
        }
    }

    /// The base URL pages load Leaflet from.
    pub fn leaflet_base(&self) -> String {
        if self.leaflet_dir.is_some() {
            "/assets/leaflet".into()
        } else {
            self.leaflet_url.trim_end_matches('/').to_string()
        }
    }
}

/// The back office's routes.
/// `scheme://host[:port]` of a URL, for a content security policy.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    (!host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')))
    .then(|| format!("{scheme}://{host}"))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route(
            "/settings",
            get(auth::settings_form).post(auth::save_settings),
        )
        .route("/settings/password", post(auth::change_password))
        .route("/settings/email", post(auth::change_email))
        .route("/assets/app.css", get(app_css))
        .route("/assets/map.js", get(map::map_js))
        .route("/assets/leaflet/{*file}", get(map::leaflet_file))
        .route("/views", post(list::save_view))
        .merge(lists::router())
        .merge(truth::router())
        .merge(pages::router())
        .merge(outlet_card::router())
        .merge(pricing::router())
        .merge(questionnaires::router())
        .merge(editors::router())
        .merge(warehouses::router())
        .merge(routes::router())
        .merge(staff::router())
        .merge(org::router())
        .merge(apikeys::router())
        .merge(accounts::router())
        .merge(orders::router())
        .merge(imports::router())
        .merge(receivables::router())
        .merge(plans::router())
        .merge(claims::router())
        .merge(rdc::router())
        .merge(reports::router())
        .merge(support::router())
        .merge(password::router())
        .merge(map::router())
}

/// The first page after login: the portal's inbox for distributors, visits for key users.
async fn home(user: WebUser) -> Redirect {
    if user.role == Role::Distributor {
        Redirect::to("/orders")
    } else {
        Redirect::to("/visits")
    }
}

async fn app_css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("app.css"),
    )
}

/// An error page, or a redirect to the login form.
#[derive(Debug)]
pub enum WebError {
    /// Not logged in (or the session ended): go to the login form.
    Login,
    /// A page with a status and a message already in the user's language.
    Page(StatusCode, String),
    /// Something failed inside; the detail went to the log.
    Internal,
}

impl WebError {
    pub fn not_found(t: &T) -> WebError {
        WebError::Page(StatusCode::NOT_FOUND, t.s("error.not_found"))
    }
    pub fn forbidden(t: &T) -> WebError {
        WebError::Page(StatusCode::FORBIDDEN, t.s("error.forbidden"))
    }
    pub fn bad(t: &T, key: &str) -> WebError {
        WebError::Page(StatusCode::BAD_REQUEST, t.s(key))
    }
    /// A store error as the user reads it, in their language.
    pub fn store(t: &T, e: StoreError) -> WebError {
        let status = crate::error::status_of(&e);
        let message = match &e {
            StoreError::NotFound => return WebError::not_found(t),
            // The catalogue has the problem's code as key; the English text otherwise.
            StoreError::Refused(p @ crate::store::Problem::GlobalStillMapped(n)) => {
                t.f(p.code(), &[("n", &n.to_string())])
            }
            StoreError::Refused(p) => match t.s(p.code()) {
                s if s == p.code() => p.to_string(),
                s => s,
            },
            StoreError::Conflict(_) => t.s("error.conflict"),
            StoreError::Busy(_) => t.s("error.busy"),
            StoreError::Invalid(_) | StoreError::Other(_) => {
                tracing::error!(error = %e, "back office storage error");
                t.s("error.internal")
            }
        };
        WebError::Page(status, message)
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        WebError::store(&T::new("en"), e)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::Login => Redirect::to("/login").into_response(),
            WebError::Page(status, message) => {
                let body = html! {
                    (DOCTYPE)
                    html { head { meta charset="utf-8"; title { (status.as_u16()) }
                        link rel="stylesheet" href="/assets/app.css"; }
                    body { main.error-page {
                        h1 { (status.as_u16()) }
                        p #error-message { (message) }
                        p { a href="/" { "fieldsync" } }
                    } } }
                };
                (status, body).into_response()
            }
            WebError::Internal => {
                let t = [T::new("en"), T::new("uk"), T::new("ru")];
                let body = html! {
                    (DOCTYPE)
                    html { head { meta charset="utf-8"; title { "500" } }
                    body { h1 { "500" } @for t in &t { p { (t.s("error.internal")) } } } }
                };
                (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
            }
        }
    }
}

pub type WebResult<T> = std::result::Result<T, WebError>;

/// Formats a time (ms since the epoch) in a time zone as `YYYY-MM-DD HH:MM`.
pub fn fmt_time(ms: i64, tz: &str) -> String {
    let Ok(ts) = jiff::Timestamp::from_millisecond(ms) else {
        return String::new();
    };
    ts.to_zoned(dates::zone(tz))
        .strftime("%Y-%m-%d %H:%M")
        .to_string()
}

/// The start of a calendar day (`YYYY-MM-DD`) in a time zone, in ms since the epoch.
pub fn day_start_ms(date: &str, tz: &str) -> Option<i64> {
    dates::day_start_ms(dates::parse(date.trim())?, tz)
}

/// The end of a calendar day (`YYYY-MM-DD`) in a time zone: the start of the next one.
pub fn day_end_ms(date: &str, tz: &str) -> Option<i64> {
    dates::day_start_ms(dates::parse(date.trim())?.tomorrow().ok()?, tz)
}

/// Today's date in a time zone.
pub fn today(now_ms: i64, tz: &str) -> String {
    dates::format(dates::date_at(now_ms, tz))
}

/// Whether a time zone name is known to the time zone database.
pub fn valid_timezone(tz: &str) -> bool {
    jiff::tz::TimeZone::get(tz).is_ok()
}

/// A quantity in thousandths as people write it: `2.5`, `3`, `-0.125`.
pub fn fmt_qty(milli: i64) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let m = milli.abs();
    match m % 1000 {
        0 => format!("{sign}{}", m / 1000),
        r => format!(
            "{sign}{}.{}",
            m / 1000,
            format!("{r:03}").trim_end_matches('0')
        ),
    }
}

/// Money in minor units as `1234.50`.
pub fn fmt_money(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.abs();
    format!("{sign}{}.{:02}", m / 100, m % 100)
}

/// The whole page around a body: navigation, the user's menu, the logout form.
pub fn layout(t: &T, user: &WebUser, title: &str, body: Markup) -> Markup {
    let full: [(&str, &str); 23] = [
        ("/visits", "nav.visits"),
        ("/visits/day-map", "nav.day_map"),
        ("/visits/signals", "nav.signals"),
        ("/sync-sessions", "nav.sync_results"),
        ("/refused", "nav.refused"),
        ("/mobile-users", "nav.mobile_users"),
        ("/org", "nav.org_units"),
        ("/staff", "nav.staff"),
        ("/outlets", "nav.outlets"),
        ("/products", "nav.products"),
        ("/price-lists", "nav.price_lists"),
        ("/warehouses", "nav.warehouses"),
        ("/routes", "nav.routes"),
        ("/questionnaires", "nav.questionnaires"),
        ("/orders", "nav.orders"),
        ("/claims", "nav.claims"),
        ("/receivables", "nav.receivables"),
        ("/plans", "nav.plans"),
        ("/rdcs", "nav.rdcs"),
        ("/reports", "nav.reports"),
        ("/imports", "nav.imports"),
        ("/api-keys", "nav.api_keys"),
        ("/support", "nav.support"),
    ];
    let portal: [(&str, &str); 4] = [
        ("/orders", "nav.orders"),
        ("/claims", "nav.claims"),
        ("/receivables", "nav.receivables"),
        ("/imports", "nav.imports"),
    ];
    let mut nav: Vec<(&str, &str)> = if user.role == Role::Distributor {
        portal.to_vec()
    } else {
        full.to_vec()
    };
    if user.may_keep_distributors() {
        nav.push(("/distributors", "nav.distributors"));
    }
    if user.may_keep_accounts() {
        nav.push(("/key-users", "nav.key_users"));
    }
    if user.role == Role::HeadOffice {
        nav.push(("/mail", "nav.mail"));
    }
    html! {
        (DOCTYPE)
        html lang=(t.lang()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · fieldsync" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                header.top {
                    a.brand href="/" { "fieldsync" }
                    nav { @for (href, key) in &nav { a href=(*href) { (t.s(key)) } } }
                    div.me {
                        span #me { (user.login) " · " (t.value("role", user.role.as_str())) }
                        a href="/settings" { (t.s("nav.settings")) }
                        form method="post" action="/logout" {
                            (csrf_field(user))
                            button #logout type="submit" { (t.s("nav.logout")) }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// A form's `distributor_id` picker over `distributors` (id, code).
pub fn distributor_select(t: &T, distributors: &[(i64, String)]) -> Markup {
    html! {
        label { (t.s("col.distributor"))
            select name="distributor_id" { @for (id, code) in distributors { option value=(id) { (code) } } }
        }
    }
}

/// [`distributor_select`], or the only distributor as a hidden field.
pub fn distributor_field(t: &T, distributors: &[(i64, String)]) -> Markup {
    match distributors {
        [(id, _)] => html! { input type="hidden" name="distributor_id" value=(id); },
        _ => distributor_select(t, distributors),
    }
}

/// A picker's choice of an id: empty is "none"; anything else that is not a number is
/// answered as not found.
pub fn picked(user: &WebUser, s: &str) -> WebResult<Option<i64>> {
    match s.trim() {
        "" => Ok(None),
        v => v
            .parse()
            .map(Some)
            .map_err(|_| WebError::not_found(&user.t())),
    }
}

/// The distributors (id, code) a user may pick, by code: those it may see that are active
/// (a deactivated distributor leaves every picker).
pub async fn user_distributors(state: &AppState, user: &WebUser) -> WebResult<Vec<(i64, String)>> {
    let all = state.store.distributor_states().await?;
    Ok(user
        .visible(all, |d| d.0)
        .filter(|(_, _, active)| *active)
        .map(|(id, code, _)| (id, code))
        .collect())
}

/// The ids of every distributor a user may see, deactivated ones too (the head office still
/// reads their history).
pub async fn user_distributor_ids(state: &AppState, user: &WebUser) -> WebResult<Vec<i64>> {
    let all = state.store.distributors().await?;
    Ok(user.visible(all, |d| d.id).map(|d| d.id).collect())
}

/// A form's fields in the order sent (a name that is repeated stands several times).
#[derive(serde::Deserialize)]
#[serde(transparent)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of a field; empty when the form lacks it.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }
}

/// A definition list of label / value pairs, as cards show their facts.
pub fn facts(rows: &[(String, Markup)]) -> Markup {
    html! { dl.facts { @for (k, v) in rows { dt { (k) } dd { (v) } } } }
}

/// Plain text as a fact's value.
pub fn text(s: impl Into<String>) -> Markup {
    let s: String = s.into();
    html! { (s) }
}

/// A folded block under a list that creates a row, shown to users who may write: `id` names
/// it, `summary` is its title's catalogue key, `content` its form.
pub fn create_block(t: &T, user: &WebUser, id: &str, summary: &str, content: Markup) -> Markup {
    html! {
        @if user.can_write() {
            details.create id=(id) {
                summary { (t.s(summary)) }
                (content)
            }
        }
    }
}

/// The `position_id` select of a form: positions (id, name, distributor code) as
/// `CODE · name`.
pub fn position_select(positions: &[(i64, String, String)]) -> Markup {
    html! {
        select name="position_id" { @for (id, name, code) in positions { option value=(id) { (code) " · " (name) } } }
    }
}

/// The hidden CSRF field every state-changing form carries.
pub fn csrf_field(user: &WebUser) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.csrf_token); }
}

/// JSON for a `<script type="application/json">` block: `<` is escaped so that no string
/// can close the script element.
pub fn json_script(value: &serde_json::Value) -> PreEscaped<String> {
    PreEscaped(value.to_string().replace('<', "\\u003c"))
}
