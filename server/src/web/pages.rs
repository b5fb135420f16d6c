//! Cards and actions of the back office: mobile users and PINs, visits and orders, sync
//! sessions, outlets (reference location, mapping), products (mapping) and a route's card
//! (questionnaires are in `questionnaires`, warehouses in `warehouses`, week plans in
//! `routes`).
use axum::Router;
use axum::extract::{Path, Query, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::list::list_page;
use super::lists;
use super::{
    Change, WebError, WebResult, WebUser, create_block, csrf_field, facts, fmt_money, fmt_time,
    layout, position_select, text,
};
use crate::AppState;
use crate::store::cards::Mapped;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mobile-users", get(mobile_users).post(create_mobile_user))
        .route(
            "/mobile-users/{id}",
            get(|s, u, p| mobile_user_card(s, u, p, None)),
        )
        .route("/mobile-users/{id}/pin", post(generate_pin))
        .route("/mobile-users/{id}/delete", post(delete_mobile_user))
        .route(
            "/mobile-users/{id}/disable",
            post(|s, p, c| set_enabled(s, p, c, false)),
        )
        .route(
            "/mobile-users/{id}/enable",
            post(|s, p, c| set_enabled(s, p, c, true)),
        )
        .route("/visits/{id}", get(visit_card))
        .route("/sync-sessions/{id}", get(session_card))
        .route("/outlets/{id}", get(outlet_card))
        .route("/outlets/{id}/location", post(set_outlet_location))
        .route("/outlets/{id}/adopt", post(adopt_fix))
        .route(
            "/outlets/{id}/mapping",
            post(|s, p, c| set_mapping(s, p, c, Mapped::Outlet)),
        )
        .route("/products/{id}", get(product_card))
        .route(
            "/products/{id}/mapping",
            post(|s, p, c| set_mapping(s, p, c, Mapped::Product)),
        )
        .route("/routes/{id}", get(route_card))
}

// --- Mobile users -------------------------------------------------------------------------

/// Positions in the user's scope that have no mobile user yet.
async fn free_positions(state: &AppState, user: &WebUser) -> WebResult<Vec<(i64, String, String)>> {
    let rows = state.store.positions_without_mobile_user().await?;
    Ok(user
        .visible(rows, |r| r.1)
        .map(|(id, _, name, code)| (id, name, code))
        .collect())
}

async fn mobile_users(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> WebResult<Markup> {
    let positions = free_positions(&state, &user).await?;
    let t = user.t();
    let form = html! {
        @if positions.is_empty() { p { (t.s("mobile_users.no_free_positions")) } }
        @else {
            form method="post" action="/mobile-users" {
                (csrf_field(&user))
                label { (t.s("col.position")) (position_select(&positions)) }
                label { (t.s("col.login")) input name="login" required; }
                button #create-user type="submit" { (t.s("common.create")) }
            }
        }
    };
    let extra = create_block(&t, &user, "create-mobile-user", "mobile_users.create", form);
    list_page(
        State(state),
        user,
        RawQuery(raw),
        &lists::MOBILE_USERS,
        extra,
    )
    .await
}

#[derive(Deserialize)]
struct CreateMobileUser {
    position_id: i64,
    login: String,
}

async fn create_mobile_user(
    State(state): State<AppState>,
    Change(user, form): Change<CreateMobileUser>,
) -> WebResult<Response> {
    let t = user.t();
    let login = form.login.trim();
    if login.is_empty() || login.len() > 64 || login.chars().any(char::is_whitespace) {
        return Err(WebError::bad(&t, "mobile_users.bad_login"));
    }
    let pos = state.store.org_unit_kind(form.position_id).await?;
    let (distributor_id, kind) = user.found(pos, |p| p.0)?;
    if kind != "position" {
        return Err(WebError::bad(&t, "mobile_users.not_a_position"));
    }
    match state
        .store
        .create_mobile_user(distributor_id, form.position_id, login)
        .await
    {
        Ok(id) => Ok(Redirect::to(&format!("/mobile-users/{id}")).into_response()),
        Err(crate::store::StoreError::Conflict(_)) => Err(WebError::bad(&t, "mobile_users.taken")),
        Err(e) => Err(e.into()),
    }
}

/// A mobile user's card, with the PIN just generated when there is one.
async fn mobile_user_card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
    new_pin: Option<String>,
) -> WebResult<Markup> {
    let t = user.t();
    let row = state.store.mobile_user_head(id).await?;
    let (_, login, position, distributor, created, disabled, deleted) = user.found(row, |r| r.0)?;
    let device = state.store.mobile_user_device(id).await?;
    let tz = &user.timezone;
    let body = html! {
        @if let Some(pin) = &new_pin {
            div.notice #pin-notice {
                p { (t.s("mobile_users.pin_generated")) }
                p.pin #new-pin { (pin) }
            }
        }
        (facts(&[
            (t.s("col.login"), text(login.clone())),
            (t.s("col.position"), text(position)),
            (t.s("col.distributor"), text(distributor)),
            (t.s("col.created"), text(fmt_time(created, tz))),
            (t.s("col.state"), html! { span #user-state { (match (deleted, disabled) {
                (Some(at), _) => t.f("mobile_users.deleted_since", &[("time", &fmt_time(at, tz))]),
                (None, Some(at)) => t.f("mobile_users.disabled_since", &[("time", &fmt_time(at, tz))]),
                (None, None) => t.s("mobile_users.enabled"),
            }) } }),
        ]))
        h2 { (t.s("mobile_users.device")) }
        @match &device {
            Some((uid, model, version, activated, last_sync)) => {
                (facts(&[
                    (t.s("col.device_uid"), html! { span #device-uid { (uid) } }),
                    (t.s("col.device"), text(model.clone())),
                    (t.s("col.app_version"), text(version.clone())),
                    (t.s("col.activated"), text(fmt_time(*activated, tz))),
                    (t.s("col.last_sync"), text(last_sync.map(|m| fmt_time(m, tz)).unwrap_or_default())),
                ]))
            }
            None => { p #no-device { (t.s("mobile_users.no_device")) } }
        }
        @if user.can_write() && disabled.is_none() && deleted.is_none() {
            form method="post" action={"/mobile-users/" (id) "/pin"} {
                (csrf_field(&user))
                p.hint { (t.s("mobile_users.pin_hint")) }
                button #generate-pin type="submit" { (t.s("mobile_users.generate_pin")) }
            }
            form method="post" action={"/mobile-users/" (id) "/disable"} {
                (csrf_field(&user))
                p.hint { (t.s("mobile_users.disable_hint")) }
                button #disable-user type="submit" { (t.s("mobile_users.disable")) }
            }
        }
        @if user.can_write() && disabled.is_some() && deleted.is_none() {
            form method="post" action={"/mobile-users/" (id) "/enable"} {
                (csrf_field(&user))
                button #enable-user type="submit" { (t.s("mobile_users.enable")) }
            }
        }
        @if user.can_write() && deleted.is_none() {
            form method="post" action={"/mobile-users/" (id) "/delete"} {
                (csrf_field(&user))
                p.hint { (t.s("mobile_users.delete_hint")) }
                button #delete-user type="submit" { (t.s("mobile_users.delete")) }
            }
        }
        p { a href={"/sync-sessions?f.agent=" (login)} { (t.s("mobile_users.sessions")) } " · "
            a href={"/visits?f.agent=" (login)} { (t.s("nav.visits")) } }
    };
    Ok(layout(
        &t,
        &user,
        &t.f("mobile_users.card", &[("login", &login)]),
        body,
    ))
}

async fn generate_pin(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Change(user, _): Change,
) -> WebResult<Markup> {
    let (_, login) = user.found(state.store.mobile_user_login(id).await?, |r| r.0)?;
    let pin = state.store.generate_pin(&login).await?;
    mobile_user_card(State(state), user, Path(id), Some(pin)).await
}

/// Deletes a mobile user: its phone is refused at its next request, its position can get a
/// new mobile user; back to the card, which says since when it is deleted.
async fn delete_mobile_user(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Change(user, _): Change,
) -> WebResult<Markup> {
    let (distributor_id, _) = user.found(state.store.mobile_user_login(id).await?, |r| r.0)?;
    state
        .store
        .delete_mobile_user(distributor_id, id, state.clock.now())
        .await
        .map_err(|e| WebError::store(&user.t(), e))?;
    mobile_user_card(State(state), user, Path(id), None).await
}

async fn set_enabled(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Change(user, _): Change,
    enabled: bool,
) -> WebResult<Markup> {
    let (distributor_id, _) = user.found(state.store.mobile_user_login(id).await?, |r| r.0)?;
    state
        .store
        .set_mobile_user_enabled(distributor_id, id, enabled, state.clock.now())
        .await
        .map_err(|e| WebError::store(&user.t(), e))?;
    mobile_user_card(State(state), user, Path(id), None).await
}

// --- Visits and orders ---------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct TabQuery {
    #[serde(default)]
    tab: String,
}

/// What the visit card shows of a visit.
pub struct VisitRow {
    pub distributor_id: i64,
    pub outlet_id: i64,
    pub outlet_code: String,
    pub outlet_name: String,
    pub outlet_address: String,
    pub agent: String,
    pub mobile_user_id: i64,
    pub started: i64,
    pub ended: Option<i64>,
    pub received: i64,
    pub band: String,
    pub distance: Option<f64>,
    pub accuracy: Option<f64>,
    pub mock: i64,
    pub ref_lat_e7: Option<i64>,
    pub ref_lon_e7: Option<i64>,
}

pub async fn load_visit(state: &AppState, id: &str) -> WebResult<Option<VisitRow>> {
    let row = state.store.visit_head(id).await?;
    let Some(r) = row else { return Ok(None) };
    let (distance, accuracy, mock, lat, lon) = state.store.visit_location(id).await?;
    Ok(Some(VisitRow {
        distributor_id: r.0,
        outlet_id: r.1,
        outlet_code: r.2,
        outlet_name: r.3,
        outlet_address: r.4,
        agent: r.5,
        mobile_user_id: r.6,
        started: r.7,
        ended: r.8,
        received: r.9,
        band: r.10,
        distance,
        accuracy,
        mock,
        ref_lat_e7: lat,
        ref_lon_e7: lon,
    }))
}

/// A visit's GPS fixes: (phase, lat_e7, lon_e7, accuracy in dm, provider, mock, device time).
pub async fn visit_fixes(
    state: &AppState,
    id: &str,
) -> WebResult<Vec<(String, i64, i64, i64, String, i64, i64)>> {
    Ok(state.store.visit_fix_rows(id).await?)
}

async fn visit_card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Query(q): Query<TabQuery>,
) -> WebResult<Markup> {
    let v = user.found(load_visit(&state, &id).await?, |v| v.distributor_id)?;
    let t = user.t();
    let tz = &user.timezone;
    let map_tab = q.tab == "map";
    let tabs = html! {
        nav.tabs {
            a #tab-visit class=(if map_tab { "" } else { "active" }) href={"/visits/" (id)} { (t.s("visit.tab_visit")) }
            a #tab-map class=(if map_tab { "active" } else { "" }) href={"/visits/" (id) "?tab=map"} { (t.s("visit.tab_map")) }
        }
    };
    let head = facts(&[
        (
            t.s("col.outlet"),
            html! { a href={"/outlets/" (v.outlet_id)} { (v.outlet_code) " · " (v.outlet_name) } },
        ),
        (t.s("col.address"), text(v.outlet_address.clone())),
        (t.s("col.agent"), text(v.agent.clone())),
        (t.s("col.started"), text(fmt_time(v.started, tz))),
        (
            t.s("col.ended"),
            text(
                v.ended
                    .map(|e| fmt_time(e, tz))
                    .unwrap_or_else(|| t.s("visit.in_progress")),
            ),
        ),
        (t.s("col.received"), text(fmt_time(v.received, tz))),
        (
            t.s("col.band"),
            html! { span #visit-band class={"band band-" (v.band)} { (t.value("band", &v.band)) } },
        ),
        (
            t.s("col.distance_m"),
            text(v.distance.map(|d| format!("{d:.0}")).unwrap_or_default()),
        ),
        (
            t.s("col.accuracy_m"),
            text(v.accuracy.map(|d| format!("{d:.0}")).unwrap_or_default()),
        ),
        (
            t.s("col.mock"),
            text(if v.mock != 0 {
                t.s("common.yes")
            } else {
                t.s("common.no")
            }),
        ),
    ]);
    let body = if map_tab {
        let fixes = visit_fixes(&state, &id).await?;
        let signals = state.store.visit_signal_rows(&id).await?;
        let previous = state.store.visit_previous(&id).await?;
        let travel = super::map::travel_evidence(&t, tz, &signals, previous.as_ref());
        html! { (tabs) (super::map::visit_map(&state, &t, &v, &fixes, travel)) }
    } else {
        let orders = state.store.visit_orders(&id).await?;
        let checks = state.store.visit_checks(&id).await?;
        let answers = state.store.visit_answers(&id).await?;
        let labels = state.store.visit_choice_labels(&id).await?;
        let labels: std::collections::HashMap<String, String> = labels
            .into_iter()
            .map(|(cid, label)| (cid.to_string(), label))
            .collect();
        let signals = state.store.visit_signal_rows(&id).await?;
        let previous = state.store.visit_previous(&id).await?;
        html! {
            (tabs)
            (head)
            (signal_list(&t, tz, &signals, previous.as_ref()))
            h2 { (t.s("visit.orders")) }
            @if orders.is_empty() { p.empty { (t.s("visit.no_orders")) } }
            @else { table.list #visit-orders {
                thead { tr { th { (t.s("col.order_number")) } th { (t.s("col.lines")) } th { (t.s("col.total")) } th { (t.s("col.state")) } } }
                tbody { @for (oid, number, total, lines, st) in &orders { tr {
                    td { a href={"/orders/" (oid)} { (number) } } td { (lines) } td { (fmt_money(*total)) } td { (t.value("order_state", st)) }
                } } }
            } }
            h2 { (t.s("visit.distribution")) }
            @if checks.is_empty() { p.empty { (t.s("visit.no_distribution")) } }
            @else { table.list #visit-distribution {
                thead { tr { th { (t.s("col.code")) } th { (t.s("col.name")) } th { (t.s("col.present")) } } }
                tbody { @for (code, name, present) in &checks { tr {
                    td { (code) } td { (name) } td { (if *present != 0 { t.s("common.yes") } else { t.s("common.no") }) }
                } } }
            } }
            h2 { (t.s("visit.answers")) }
            @if answers.is_empty() { p.empty { (t.s("visit.no_answers")) } }
            @else { table.list #visit-answers {
                thead { tr { th { (t.s("col.questionnaire")) } th { (t.s("col.question")) } th { (t.s("col.answer")) } } }
                tbody { @for (qn, question, kind, vt, vn) in &answers { tr {
                    td { (qn) } td { (question) }
                    td { (answer_text(&t, kind, vt.as_deref(), *vn, &labels)) }
                } } }
            } }
        }
    };
    let title = t.f("visit.card", &[("outlet", &v.outlet_name)]);
    Ok(layout(&t, &user, &title, body))
}

/// The signals a visit raised, most telling first ([`Signal::ALL`] order): each with its
/// name, what it means and the evidence, the previous visit linked where the evidence is
/// about it.
fn signal_list(
    t: &super::T,
    tz: &str,
    rows: &[(String, String, String)],
    previous: Option<&(String, i64, String)>,
) -> Markup {
    use fieldsync_protocol::signals::{Signal, decode_args};
    let mut found: Vec<(usize, &str, &str, Vec<(String, String)>)> = rows
        .iter()
        .filter_map(|(name, variant, args)| {
            let at = Signal::ALL.iter().position(|s| s.as_str() == name)?;
            Some((at, name.as_str(), variant.as_str(), decode_args(args)))
        })
        .collect();
    found.sort_by_key(|f| f.0);
    html! {
        h2 { (t.s("visit.signals")) }
        @if found.is_empty() { p.empty #visit-no-signals { (t.s("visit.no_signals")) } }
        @else { ul.signals #visit-signals {
            @for (_, name, variant, args) in &found {
                @let pairs: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                li.signal data-signal=(name) {
                    strong.signal-name { (t.s(&format!("signal.{name}"))) }
                    " · " span.signal-evidence { (t.f(&format!("signal.{name}.{variant}"), &pairs)) }
                    @if let Some((pid, started, outlet)) = previous.filter(|_| *name == "implausible_travel" || *variant == "previous_visit") {
                        " · " a.signal-previous href={"/visits/" (pid)} {
                            (t.f("visit.previous", &[("outlet", outlet), ("time", &fmt_time(*started, tz))]))
                        }
                    }
                    br;
                    small.signal-explain { (t.s(&format!("signal.{name}.explain"))) }
                }
            }
        } }
    }
}

fn answer_text(
    t: &super::T,
    kind: &str,
    text: Option<&str>,
    number: Option<f64>,
    labels: &std::collections::HashMap<String, String>,
) -> String {
    match kind {
        "single_choice" | "multiple_choice" => text
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|c| {
                labels
                    .get(c.trim())
                    .cloned()
                    .unwrap_or_else(|| c.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
        "yes_no" | "bool" => match number {
            Some(n) if n != 0.0 => t.s("common.yes"),
            Some(_) => t.s("common.no"),
            None => text.unwrap_or_default().to_string(),
        },
        _ => match (text, number) {
            (Some(s), _) if !s.is_empty() => s.to_string(),
            (_, Some(n)) => format!("{n}"),
            _ => String::new(),
        },
    }
}

// --- Sync sessions ---------------------------------------------------------------------------

async fn session_card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> WebResult<Markup> {
    let row = state.store.sync_session_head(&id).await?;
    let (_, mode, agent, model, version, started, finished, last) = user.found(row, |r| r.0)?;
    let t = user.t();
    let counts = state.store.sync_session_counts(&id).await?;
    let items = state.store.sync_session_items(&id).await?;
    let tz = &user.timezone;
    let duration = (finished.unwrap_or(last) - started) / 1000;
    let body = html! {
        (facts(&[
            (t.s("col.sync_date"), text(fmt_time(started, tz))),
            (t.s("col.mode"), text(t.value("mode", &mode))),
            (t.s("col.mobile_user"), text(agent.clone())),
            (t.s("col.device"), text(model)),
            (t.s("col.app_version"), text(version)),
            (t.s("col.duration_s"), text(duration.to_string())),
            (t.s("col.requests"), text(counts.0.to_string())),
            (t.s("col.applied"), text(counts.1.to_string())),
            (t.s("col.duplicates"), text(counts.2.to_string())),
            (t.s("col.refused"), html! { @if counts.3 > 0 { a #session-refused href={"/refused?f.agent=" (agent)} { (counts.3) } } @else { (counts.3) } }),
            (t.s("col.pulled"), text(counts.4.to_string())),
            (t.s("col.bytes_up"), text(counts.5.to_string())),
            (t.s("col.bytes_down"), text(counts.6.to_string())),
            (t.s("col.skew_s"), text((counts.7 / 1000).to_string())),
            (t.s("col.error"), text(counts.8.unwrap_or_default())),
        ]))
        h2 { (t.s("session.items")) }
        table.list #session-items {
            thead { tr { th { (t.s("col.item_kind")) } th { (t.s("col.visit_id")) } th { (t.s("col.outlet_code")) } th { (t.s("col.outlet")) } th { (t.s("col.address")) } th { (t.s("col.order_sum")) } } }
            tbody {
                @if items.is_empty() { tr { td.empty colspan="6" { (t.s("list.empty")) } } }
                @for (kind, visit, code, name, address, sum) in &items { tr {
                    td { (t.value("item", kind)) }
                    td { @if let Some(v) = visit { a href={"/visits/" (v)} { (v) } } }
                    td { (code.clone().unwrap_or_default()) } td { (name.clone().unwrap_or_default()) } td { (address.clone().unwrap_or_default()) }
                    td { (sum.map(fmt_money).unwrap_or_default()) }
                } }
            }
        }
    };
    Ok(layout(&t, &user, &t.s("session.card"), body))
}

// --- Outlets ---------------------------------------------------------------------------------

async fn outlet_distributor(state: &AppState, user: &WebUser, id: i64) -> WebResult<i64> {
    let (d,) = user.found(state.store.outlet_distributor(id).await?, |r| r.0)?;
    Ok(d)
}

/// The distributor of an outlet whose shared card the user may edit (any outlet of the
/// user's distributors, global ones included: the card is the field's, not master data).
pub(super) async fn writable_outlet(state: &AppState, user: &WebUser, id: i64) -> WebResult<i64> {
    outlet_distributor(state, user, id).await
}

/// The distributor of an outlet whose reference location the user may change: a global
/// outlet's only when the user keeps globals (the head office).
async fn changeable_outlet(state: &AppState, user: &WebUser, id: i64) -> WebResult<i64> {
    let d = outlet_distributor(state, user, id).await?;
    let global = state.store.mapping_subject(Mapped::Outlet, id).await?;
    if global.is_some_and(|(_, g)| g) && !user.may_keep_globals() {
        let refusal =
            crate::store::StoreError::Refused(crate::store::Problem::GlobalsHeadOfficeOnly);
        return Err(WebError::store(&user.t(), refusal));
    }
    Ok(d)
}

async fn outlet_card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
) -> WebResult<Markup> {
    outlet_distributor(&state, &user, id).await?;
    let t = user.t();
    let (code, name, address, contact, phone, channel, lat, lon, is_global, global_code) =
        state.store.outlet_card_head(id).await?;
    let (distributor,) = state.store.outlet_distributor_code(id).await?;
    let visits = state.store.outlet_recent_visits(id).await?;
    let card = state.store.outlet_card(id).await?;
    let coord = |e7: Option<i64>| {
        e7.map(|v| format!("{:.7}", v as f64 / 1e7))
            .unwrap_or_default()
    };
    let tz = &user.timezone;
    let body = html! {
        (facts(&[
            (t.s("col.distributor"), text(distributor)),
            (t.s("col.code"), text(code)),
            (t.s("col.name"), html! { span #outlet-name { (name.clone()) } }),
            (t.s("col.address"), text(address)),
            (t.s("col.contact"), text(contact)),
            (t.s("col.phone"), text(phone)),
            (t.s("col.channel"), text(channel)),
            (t.s("col.outlet_kind"), text(t.value("kind", if is_global != 0 { "global" } else { "local" }))),
            (t.s("col.reference_location"), html! { span #reference-location { (coord(lat)) " " (coord(lon)) } }),
        ]))
        p { a #outlet-payment-calendar href={"/receivables?outlet_id=" (id)} { (t.s("nav.receivables")) } }
        @if user.can_write() && (is_global == 0 || user.may_keep_globals()) {
            p { a.button #edit-outlet href={"/outlets/" (id) "/edit"} { (t.s("outlets.edit")) } }
            h2 { (t.s("outlet.reference_location")) }
            form.inline method="post" action={"/outlets/" (id) "/location"} {
                (csrf_field(&user))
                label { (t.s("outlet.lat")) input #lat name="lat" value=(coord(lat)); }
                label { (t.s("outlet.lon")) input #lon name="lon" value=(coord(lon)); }
                button #save-location type="submit" { (t.s("common.save")) }
            }
            @if is_global == 0 {
                h2 { (t.s("outlet.mapping")) }
                form.inline method="post" action={"/outlets/" (id) "/mapping"} {
                    (csrf_field(&user))
                    label { (t.s("outlet.global_code")) input #global-code name="global_code" value=(global_code.clone().unwrap_or_default()); }
                    button #save-mapping type="submit" { (t.s("common.save")) }
                }
            }
        } @else if is_global == 0 {
            p { (t.s("col.mapping")) ": " (global_code.unwrap_or_default()) }
        }
        (super::outlet_card::section(&t, &user, id, &card))
        h2 { (t.s("outlet.last_visits")) }
        table.list #outlet-visits {
            thead { tr { th { (t.s("col.started")) } th { (t.s("col.agent")) } th { (t.s("col.band")) } th { (t.s("col.distance_m")) } th {} } }
            tbody { @for (vid, started, band, dist, agent) in &visits { tr {
                td { a href={"/visits/" (vid)} { (fmt_time(*started, tz)) } }
                td { (agent) } td { (t.value("band", band)) } td { (dist.map(|d| format!("{d:.0}")).unwrap_or_default()) }
                td { @if user.can_write() {
                    form.inline method="post" action={"/outlets/" (id) "/adopt"} {
                        (csrf_field(&user))
                        input type="hidden" name="visit_id" value=(vid);
                        button.adopt type="submit" { (t.s("outlet.adopt_fix")) }
                    }
                } }
            } } }
        }
    };
    Ok(layout(&t, &user, &name, body))
}

#[derive(Deserialize)]
struct LocationForm {
    lat: String,
    lon: String,
}

fn parse_coord(s: &str, limit: f64) -> Option<i32> {
    let v: f64 = s.trim().replace(',', ".").parse().ok()?;
    (v.is_finite() && v.abs() <= limit).then(|| (v * 1e7).round() as i32)
}

async fn set_outlet_location(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Change(user, form): Change<LocationForm>,
) -> WebResult<Response> {
    let d = changeable_outlet(&state, &user, id).await?;
    let (Some(lat), Some(lon)) = (parse_coord(&form.lat, 90.0), parse_coord(&form.lon, 180.0))
    else {
        return Err(WebError::bad(&user.t(), "outlet.bad_coordinates"));
    };
    state.store.set_outlet_location(d, id, lat, lon).await?;
    Ok(Redirect::to(&format!("/outlets/{id}")).into_response())
}

#[derive(Deserialize)]
struct AdoptForm {
    visit_id: String,
}

/// Adopts a visit's best fix (the start fix with the smallest accuracy radius) as the
/// outlet's reference location.
async fn adopt_fix(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Change(user, form): Change<AdoptForm>,
) -> WebResult<Response> {
    let d = changeable_outlet(&state, &user, id).await?;
    let fix = state.store.visit_fix_for_outlet(&form.visit_id, id).await?;
    let Some((lat, lon)) = fix else {
        return Err(WebError::bad(&user.t(), "outlet.no_fix"));
    };
    state
        .store
        .set_outlet_location(d, id, lat as i32, lon as i32)
        .await?;
    Ok(Redirect::to(&format!("/outlets/{id}")).into_response())
}

#[derive(Deserialize)]
struct MappingForm {
    global_code: String,
}

/// Maps a local outlet or product to a global one by the global one's code (empty: unmap),
/// back to its card.
async fn set_mapping(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Change(user, form): Change<MappingForm>,
    kind: Mapped,
) -> WebResult<Response> {
    let t = user.t();
    let (_, is_global) = user.found(state.store.mapping_subject(kind, id).await?, |r| r.0)?;
    if is_global {
        return Err(WebError::bad(&t, "mapping.global_itself"));
    }
    let code = form.global_code.trim();
    let global: Option<i64> = if code.is_empty() {
        None
    } else {
        match state.store.global_by_code(kind, code).await? {
            Some(g) => Some(g),
            None => return Err(WebError::bad(&t, "mapping.no_global")),
        }
    };
    state.store.set_global_mapping(kind, id, global).await?;
    let card = match kind {
        Mapped::Outlet => "outlets",
        Mapped::Product => "products",
    };
    Ok(Redirect::to(&format!("/{card}/{id}")).into_response())
}

// --- Products --------------------------------------------------------------------------------

async fn product_card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
) -> WebResult<Markup> {
    let row = state.store.product_card(id).await?;
    let (_, code, name, unit, category, must, is_global, global_code) = user.found(row, |r| r.0)?;
    let t = user.t();
    let channels = state.store.product_must_stock_channels(id).await?;
    let channels = match (must != 0, channels.is_empty()) {
        (false, _) => "—".to_string(),
        (true, true) => t.s("products.every_channel"),
        (true, false) => channels.join(", "),
    };
    let body = html! {
        (facts(&[
            (t.s("col.code"), text(code)),
            (t.s("col.name"), text(name.clone())),
            (t.s("col.unit"), text(unit)),
            (t.s("col.category"), text(category)),
            (t.s("col.must_stock"), text(if must != 0 { t.s("common.yes") } else { t.s("common.no") })),
            (t.s("products.must_stock_channels"), html! { span #must-stock-channels { (channels) } }),
            (t.s("col.product_kind"), text(t.value("kind", if is_global != 0 { "global" } else { "local" }))),
        ]))
        p.hint { (t.s("product.source_of_truth")) }
        @if user.can_write() && (is_global == 0 || user.may_keep_globals()) {
            p { a.button #edit-product href={"/products/" (id) "/edit"} { (t.s("products.edit")) } }
        }
        @if is_global == 0 {
            h2 { (t.s("outlet.mapping")) }
            @if user.can_write() {
                form.inline method="post" action={"/products/" (id) "/mapping"} {
                    (csrf_field(&user))
                    label { (t.s("outlet.global_code")) input name="global_code" value=(global_code.clone().unwrap_or_default()); }
                    button type="submit" { (t.s("common.save")) }
                }
            } @else { p { (global_code.unwrap_or_default()) } }
        }
    };
    Ok(layout(&t, &user, &name, body))
}

// --- Routes -----------------------------------------------------------------------

async fn route_card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
) -> WebResult<Markup> {
    let (_, date, position, position_id) =
        user.found(state.store.route_head(id).await?, |r| r.0)?;
    let t = user.t();
    let stops = state.store.route_stops(id).await?;
    let body = html! {
        p { a #week-plan href={"/routes/week-plan/" (position_id)} { (t.s("week_plan.open")) } }
        table.list #route-stops {
            thead { tr { th { "#" } th { (t.s("col.code")) } th { (t.s("col.name")) } th { (t.s("col.address")) } } }
            tbody { @for (n, oid, code, name, address) in &stops { tr {
                td { (n) } td { (code) } td { a href={"/outlets/" (oid)} { (name) } } td { (address) }
            } } }
        }
    };
    Ok(layout(&t, &user, &format!("{position} · {date}"), body))
}
