//! Distributors (sync points) and key-user accounts in the back office.
//!
//! `/distributors` is the head office's: create one, edit it (the code stays), deactivate and
//! reactivate it. `/key-users` is the head office's for every account and a key user's for
//! the accounts within its own sync points: create one with an initial password, change its
//! role and sync points, disable and enable it, reset its password. Who may do what is decided
//! in `store::tenants`; the pages only offer what it allows.
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};

use super::{
    Change, Fields, WebError, WebResult, WebUser, create_block, csrf_field, facts, fmt_time,
    layout, text,
};
use crate::AppState;
use crate::store::keyusers::Role;
use crate::store::tenants::{
    Account, AccountForm, Actor, DistributorForm, DistributorRow, OVERDUE_POLICIES,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/distributors", get(distributors).post(create_distributor))
        .route("/distributors/{id}", get(distributor_card))
        .route("/distributors/{id}/{action}", post(distributor_action))
        .route("/key-users", get(accounts).post(create_account))
        .route("/key-users/{id}", get(account_card))
        .route("/key-users/{id}/{action}", post(account_action))
}

/// Refuses a user who does not keep distributors.
fn distributors_keeper(user: &WebUser) -> WebResult<()> {
    if user.may_keep_distributors() {
        Ok(())
    } else {
        Err(WebError::forbidden(&user.t()))
    }
}

/// The user as an actor on accounts; refused when it keeps none.
async fn accounts_keeper(state: &AppState, user: &WebUser) -> WebResult<Actor> {
    if !user.may_keep_accounts() {
        return Err(WebError::forbidden(&user.t()));
    }
    Ok(state.store.actor(user).await?)
}

/// A state: active, or `key` ("... since {time}") when `off` says since when.
fn state_since(user: &WebUser, off: Option<i64>, key: &str) -> String {
    let t = user.t();
    match off {
        None => t.s("distributors.active"),
        Some(ms) => t.f(key, &[("time", &fmt_time(ms, &user.timezone))]),
    }
}

/// A distributor's state: active, or deactivated since when.
fn state_text(user: &WebUser, off: Option<i64>) -> String {
    state_since(user, off, "distributors.deactivated_since")
}

/// The inputs of a distributor's form; the code is typed only for a new one.
fn distributor_fields(user: &WebUser, f: &DistributorForm, new: bool) -> Markup {
    let t = user.t();
    let number = |key: &str, name: &str, value: i64| {
        html! { label { (t.s(key)) input #(name) name=(name) type="number" min="1" value=(value) required; } }
    };
    html! {
        (csrf_field(user))
        @if new {
            label { (t.s("col.code")) input #distributor-code name="code" value=(f.code) required maxlength="64"; }
        }
        label { (t.s("col.name")) input #distributor-name name="name" value=(f.name) required maxlength="200"; }
        label { (t.s("distributors.currency")) input #currency name="currency" value=(f.currency) required maxlength="3"; }
        label { (t.s("settings.timezone")) input #distributor-timezone name="timezone" value=(f.timezone) required; }
        (number("distributors.band_near", "band_near_m", f.band_near_m))
        (number("distributors.band_mid", "band_mid_m", f.band_mid_m))
        (number("distributors.band_far", "band_far_m", f.band_far_m))
        p.hint { (t.s("distributors.bands_hint")) }
        label { (t.s("distributors.overdue_policy"))
            select #overdue-policy name="overdue_policy" {
                @for p in OVERDUE_POLICIES {
                    option value=(p) selected[f.overdue_policy == p] {
                        (t.s(if p == "warn" { "distributors.overdue_warn" } else { "distributors.overdue_require_reason" }))
                    }
                }
            }
        }
    }
}

async fn distributors(State(state): State<AppState>, user: WebUser) -> WebResult<Markup> {
    distributors_keeper(&user)?;
    let t = user.t();
    let rows = state.store.distributor_rows().await?;
    let body = html! {
        table.list #distributors {
            thead { tr {
                th { (t.s("col.code")) } th { (t.s("col.name")) } th { (t.s("distributors.currency")) }
                th { (t.s("settings.timezone")) } th { (t.s("distributors.bands")) } th { (t.s("col.state")) }
                th.num { (t.s("nav.mobile_users")) } th.num { (t.s("nav.key_users")) }
            } }
            tbody {
                @if rows.is_empty() { tr { td.empty colspan="8" { (t.s("list.empty")) } } }
                @for d in &rows { tr data-code=(d.form.code) {
                    td { a href={"/distributors/" (d.id)} { (d.form.code) } }
                    td { (d.form.name) } td { (d.form.currency) } td { (d.form.timezone) }
                    td { (d.form.band_near_m) " / " (d.form.band_mid_m) " / " (d.form.band_far_m) }
                    td.state { (state_text(&user, d.deactivated_at_ms)) }
                    td.num { (d.mobile_users) } td.num { (d.key_users) }
                } }
            }
        }
        (create_block(&t, &user, "create-distributor", "distributors.create", html! {
            form.editor method="post" action="/distributors" {
                (distributor_fields(&user, &DistributorForm::default(), true))
                button #save-new-distributor type="submit" { (t.s("common.create")) }
            }
        }))
    };
    Ok(layout(&t, &user, &t.s("nav.distributors"), body))
}

/// What a distributor's form sent; a number that does not parse is 0 (refused as a band).
fn sent_distributor(f: &Fields) -> DistributorForm {
    let number = |name: &str| f.get(name).trim().parse().unwrap_or(0);
    DistributorForm {
        code: f.get("code").to_string(),
        name: f.get("name").to_string(),
        currency: f.get("currency").to_string(),
        timezone: f.get("timezone").to_string(),
        band_near_m: number("band_near_m"),
        band_mid_m: number("band_mid_m"),
        band_far_m: number("band_far_m"),
        overdue_policy: match f.get("overdue_policy") {
            "" => "warn".to_string(),
            p => p.to_string(),
        },
    }
}

async fn create_distributor(
    State(state): State<AppState>,
    Change(user, f): Change<Fields>,
) -> WebResult<Response> {
    distributors_keeper(&user)?;
    let saved = state
        .store
        .save_distributor(&user, None, &sent_distributor(&f))
        .await;
    let id = saved.map_err(|e| WebError::store(&user.t(), e))?;
    Ok(Redirect::to(&format!("/distributors/{id}")).into_response())
}

async fn distributor(state: &AppState, user: &WebUser, id: i64) -> WebResult<DistributorRow> {
    distributors_keeper(user)?;
    let row = state.store.distributor_row(id).await?;
    row.ok_or_else(|| WebError::not_found(&user.t()))
}

async fn distributor_card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
) -> WebResult<Markup> {
    let d = distributor(&state, &user, id).await?;
    let t = user.t();
    let body = html! {
        (facts(&[
            (t.s("col.code"), text(d.form.code.clone())),
            (t.s("col.state"), html! { span #distributor-state { (state_text(&user, d.deactivated_at_ms)) } }),
            (t.s("nav.mobile_users"), text(d.mobile_users.to_string())),
            (t.s("nav.key_users"), text(d.key_users.to_string())),
        ]))
        @if user.can_write() {
            h2 { (t.s("distributors.edit")) }
            form.editor method="post" action={"/distributors/" (id) "/save"} {
                (distributor_fields(&user, &d.form, false))
                button #save-distributor type="submit" { (t.s("common.save")) }
            }
            @let (action, button_id, key) = match d.deactivated_at_ms {
                None => ("deactivate", "deactivate-distributor", "distributors.deactivate"),
                Some(_) => ("activate", "activate-distributor", "distributors.activate"),
            };
            form.inline method="post" action={"/distributors/" (id) "/" (action)} {
                (csrf_field(&user))
                button id=(button_id) type="submit" { (t.s(key)) }
            }
            p.hint { (t.s("distributors.deactivate_hint")) }
        }
    };
    Ok(layout(&t, &user, &d.form.name, body))
}

/// `POST /distributors/{id}/{save|deactivate|activate}`, back to the card after.
async fn distributor_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(i64, String)>,
    Change(user, f): Change<Fields>,
) -> WebResult<Response> {
    distributor(&state, &user, id).await?;
    let (store, now) = (&state.store, state.clock.now());
    let done = match action.as_str() {
        "save" => store
            .save_distributor(&user, Some(id), &sent_distributor(&f))
            .await
            .map(drop),
        "deactivate" => store.set_distributor_active(&user, id, false, now).await,
        "activate" => store.set_distributor_active(&user, id, true, now).await,
        _ => return Err(WebError::not_found(&user.t())),
    };
    done.map_err(|e| WebError::store(&user.t(), e))?;
    Ok(Redirect::to(&format!("/distributors/{id}")).into_response())
}

/// An account's state: active, or disabled since when.
fn account_state(user: &WebUser, off: Option<i64>) -> String {
    state_since(user, off, "key_users.disabled_since")
}

/// The role select and sync point boxes of an account form, with `role` and `ticked` set.
fn grant_fields(
    user: &WebUser,
    actor: &Actor,
    grantable: &[(i64, String)],
    role: Role,
    ticked: &[i64],
) -> Markup {
    let t = user.t();
    html! {
        label { (t.s("key_users.role"))
            select #role name="role" {
                @for r in actor.grantable_roles() {
                    option value=(r.as_str()) selected[*r == role] { (t.value("role", r.as_str())) }
                }
            }
        }
        fieldset #sync-points {
            legend { (t.s("key_users.sync_points")) }
            @if grantable.is_empty() { span.hint { (t.s("list.empty")) } }
            @for (d, code) in grantable {
                label.check {
                    input type="checkbox" name="sync_point" value=(d) id={"sync-point-" (code)} checked[ticked.contains(d)];
                    (code)
                }
            }
        }
        p.hint { (t.s("key_users.roles_hint")) }
    }
}

/// The codes of an account's sync points, inactive ones marked.
fn sync_point_codes(user: &WebUser, a: &Account) -> String {
    let t = user.t();
    if a.sync_points.is_empty() {
        return t.s("key_users.all_distributors");
    }
    a.sync_points
        .iter()
        .map(|(_, code, active)| match active {
            true => code.clone(),
            false => format!("{code} ({})", t.s("distributors.inactive")),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn accounts(State(state): State<AppState>, user: WebUser) -> WebResult<Markup> {
    let actor = accounts_keeper(&state, &user).await?;
    let t = user.t();
    let rows = state.store.accounts(&actor).await?;
    let grantable = state.store.grantable_sync_points(&actor).await?;
    let body = html! {
        table.list #key-users {
            thead { tr {
                th { (t.s("login.login")) } th { (t.s("key_users.role")) }
                th { (t.s("key_users.sync_points")) } th { (t.s("col.state")) }
            } }
            tbody {
                @if rows.is_empty() { tr { td.empty colspan="4" { (t.s("list.empty")) } } }
                @for a in &rows { tr data-login=(a.login) {
                    td { a href={"/key-users/" (a.id)} { (a.login) } }
                    td.role { (t.value("role", a.role.as_str())) }
                    td.sync-points { (sync_point_codes(&user, a)) }
                    td.state { (account_state(&user, a.disabled_at_ms)) }
                } }
            }
        }
        (create_block(&t, &user, "create-key-user", "key_users.create", html! {
            form.editor method="post" action="/key-users" {
                (csrf_field(&user))
                label { (t.s("login.login")) input #new-login name="login" required maxlength="64"; }
                label { (t.s("key_users.initial_password")) input #new-password type="password" name="password" required; }
                p.hint { (t.s("settings.password_rule")) }
                (grant_fields(&user, &actor, &grantable, Role::KeyUser, &[]))
                button #save-new-key-user type="submit" { (t.s("common.create")) }
            }
        }))
    };
    Ok(layout(&t, &user, &t.s("nav.key_users"), body))
}

/// What an account form sent.
fn sent_account(f: &Fields) -> AccountForm {
    AccountForm {
        login: f.get("login").to_string(),
        password: f.get("password").to_string(),
        role: f.get("role").to_string(),
        sync_points: f
            .0
            .iter()
            .filter(|(k, _)| k == "sync_point")
            .filter_map(|(_, v)| v.trim().parse().ok())
            .collect(),
    }
}

async fn create_account(
    State(state): State<AppState>,
    Change(user, f): Change<Fields>,
) -> WebResult<Response> {
    let actor = accounts_keeper(&state, &user).await?;
    let created = state
        .store
        .create_account(&actor, &sent_account(&f), state.clock.now())
        .await;
    let id = created.map_err(|e| WebError::store(&user.t(), e))?;
    Ok(Redirect::to(&format!("/key-users/{id}")).into_response())
}

async fn account_card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
) -> WebResult<Markup> {
    let actor = accounts_keeper(&state, &user).await?;
    let t = user.t();
    let found = state.store.account(&actor, id).await;
    let a = found.map_err(|e| WebError::store(&t, e))?;
    let grantable = state.store.grantable_sync_points(&actor).await?;
    let ticked: Vec<i64> = a.sync_points.iter().map(|(d, _, _)| *d).collect();
    let body = html! {
        (facts(&[
            (t.s("key_users.role"), html! { span #account-role { (t.value("role", a.role.as_str())) } }),
            (t.s("key_users.sync_points"), html! { span #account-sync-points { (sync_point_codes(&user, &a)) } }),
            (t.s("col.state"), html! { span #account-state { (account_state(&user, a.disabled_at_ms)) } }),
        ]))
        @if user.can_write() {
            h2 { (t.s("key_users.access")) }
            form.editor method="post" action={"/key-users/" (id) "/save"} {
                (csrf_field(&user))
                (grant_fields(&user, &actor, &grantable, a.role, &ticked))
                button #save-key-user type="submit" { (t.s("common.save")) }
            }
            @let (action, button_id, key) = match a.disabled_at_ms {
                None => ("disable", "disable-key-user", "key_users.disable"),
                Some(_) => ("enable", "enable-key-user", "key_users.enable"),
            };
            form.inline method="post" action={"/key-users/" (id) "/" (action)} {
                (csrf_field(&user))
                button id=(button_id) type="submit" { (t.s(key)) }
            }
            h2 { (t.s("key_users.reset_password")) }
            form.inline method="post" action={"/key-users/" (id) "/password"} {
                (csrf_field(&user))
                label { (t.s("settings.new_password")) input #reset-password type="password" name="password" required; }
                button #save-password type="submit" { (t.s("key_users.reset_password")) }
            }
            p.hint { (t.s("key_users.reset_hint")) }
        }
    };
    Ok(layout(&t, &user, &a.login, body))
}

/// `POST /key-users/{id}/{save|disable|enable|password}`, back to the card after.
async fn account_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(i64, String)>,
    Change(user, f): Change<Fields>,
) -> WebResult<Response> {
    let actor = accounts_keeper(&state, &user).await?;
    let (store, now) = (&state.store, state.clock.now());
    let done = match action.as_str() {
        "save" => store.update_account(&actor, id, &sent_account(&f)).await,
        "disable" => store.set_account_enabled(&actor, id, false, now).await,
        "enable" => store.set_account_enabled(&actor, id, true, now).await,
        "password" => {
            store
                .reset_account_password(&actor, id, f.get("password"))
                .await
        }
        _ => return Err(WebError::not_found(&user.t())),
    };
    done.map_err(|e| WebError::store(&user.t(), e))?;
    Ok(Redirect::to(&format!("/key-users/{id}")).into_response())
}
