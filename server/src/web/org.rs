//! The org structure editor: each distributor's tree of regions, teams, territories and
//! positions with a form to create a unit, and a unit's card to rename it, move it under
//! another parent, end it, add a unit under it and, for a position, create its mobile user.
//! The rules (kinds, no loops, ending only what has nothing active below, a moved position
//! taking its phone along) are the store's (`store::org`).
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::Change;
use super::{
    WebError, WebResult, WebUser, csrf_field, facts, fmt_time, layout, picked, text,
    user_distributors,
};
use crate::AppState;
use crate::store::StoreError;
use crate::store::org::{KINDS, OrgUnit, parent_kinds};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/org", get(tree_page).post(create_unit))
        // The older read-only tree's address.
        .route("/org-units", get(|| async { Redirect::permanent("/org") }))
        .route("/org/{id}", get(unit_card))
        .route("/org/{id}/{action}", post(unit_action))
}

/// `kind · name (code)`, as pickers show a unit.
fn label(user: &WebUser, u: &OrgUnit) -> String {
    format!(
        "{} · {} ({})",
        user.t().value("org_kind", &u.kind),
        u.name,
        u.code
    )
}

/// The tree of `units` below `parent`, each unit linking to its card.
fn tree(
    user: &WebUser,
    units: &[OrgUnit],
    staff: &[(i64, String, String, i64)],
    parent: Option<i64>,
) -> Markup {
    let t = user.t();
    let children: Vec<&OrgUnit> = units.iter().filter(|u| u.parent_id == parent).collect();
    html! {
        @if !children.is_empty() {
            ul.tree {
                @for u in children {
                    li id={"unit-" (u.id)} class=[u.ended_at_ms.map(|_| "ended")] {
                        span.kind { (t.value("org_kind", &u.kind)) } " "
                        a.unit-name href={"/org/" (u.id)} { b { (u.name) } } " "
                        span.code { (u.code) }
                        @if u.ended_at_ms.is_some() { " " span.ended { (t.s("org.ended_mark")) } }
                        @for (_, first, last, main) in staff.iter().filter(|s| s.0 == u.id) {
                            " · " (first) " " (last) @if *main != 0 { " (" (t.s("col.main")) ")" }
                        }
                        (tree(user, units, staff, Some(u.id)))
                    }
                }
            }
        }
    }
}

/// The kind picker of a new unit, offering the kinds that may sit under `parent_kind`.
fn kind_select(user: &WebUser, parent_kind: Option<&str>) -> Markup {
    let t = user.t();
    let fits = |k: &&&str| match parent_kind {
        Some(p) => parent_kinds(k).contains(&p),
        None => true,
    };
    html! {
        select name="kind" { @for k in KINDS.iter().filter(fits) { option value=(k) { (t.value("org_kind", k)) } } }
    }
}

/// The form that creates a unit of distributor `d`: under `parent` when given (a unit's
/// card), else under a picked unit of `units` or at the top.
fn create_form(user: &WebUser, d: i64, units: &[OrgUnit], parent: Option<&OrgUnit>) -> Markup {
    let t = user.t();
    html! {
        form.inline.create-unit id={"create-unit-" (d)} method="post" action="/org" {
            (csrf_field(user))
            input type="hidden" name="distributor_id" value=(d);
            @match parent {
                Some(p) => { input type="hidden" name="parent_id" value=(p.id); }
                None => {
                    label { (t.s("org.parent"))
                        select name="parent_id" {
                            option value="" { (t.s("org.top")) }
                            @for u in units.iter().filter(|u| u.ended_at_ms.is_none() && u.kind != "position") {
                                option value=(u.id) { (label(user, u)) }
                            }
                        }
                    }
                }
            }
            label { (t.s("org.kind")) (kind_select(user, parent.map(|p| p.kind.as_str()))) }
            label { (t.s("col.code")) input name="code" required maxlength="64"; }
            label { (t.s("col.name")) input name="name" required maxlength="200"; }
            button.create-unit-submit type="submit" { (t.s("common.create")) }
        }
    }
}

async fn tree_page(State(state): State<AppState>, user: WebUser) -> WebResult<Markup> {
    let t = user.t();
    let staff = state.store.org_staff_rows().await?;
    let mut sections = Vec::new();
    for (d, code) in user_distributors(&state, &user).await? {
        let units = state.store.org_tree(d).await?;
        sections.push(html! {
            section.org id={"org-" (code)} {
                h2 { (code) }
                div.org-tree { (tree(&user, &units, &staff, None)) }
                @if units.is_empty() { p { (t.s("list.empty")) } }
                @if user.can_write() {
                    details.create open[units.is_empty()] {
                        summary { (t.s("org.create")) }
                        (create_form(&user, d, &units, None))
                    }
                }
            }
        });
    }
    let body = html! {
        p.hint { (t.s("org.hint")) }
        @for s in &sections { (s) }
        p { a href="/staff" { (t.s("nav.staff")) } " · " a href="/mobile-users" { (t.s("nav.mobile_users")) } }
    };
    Ok(layout(&t, &user, &t.s("nav.org_units"), body))
}

/// A new unit: its distributor, parent (empty: at the top), kind, code and name.
#[derive(Deserialize)]
struct NewUnit {
    distributor_id: i64,
    #[serde(default)]
    parent_id: String,
    kind: String,
    code: String,
    name: String,
}

async fn create_unit(
    State(state): State<AppState>,
    Change(user, f): Change<NewUnit>,
) -> WebResult<Response> {
    user.check_distributor(f.distributor_id)?;
    let parent = picked(&user, &f.parent_id)?;
    let created = state
        .store
        .add_org_unit(f.distributor_id, parent, &f.kind, &f.code, &f.name)
        .await;
    let id = created.map_err(|e| WebError::store(&user.t(), e))?;
    Ok(Redirect::to(&format!("/org/{id}")).into_response())
}

/// The unit `id` if the user may see it.
async fn visible(state: &AppState, user: &WebUser, id: i64) -> WebResult<OrgUnit> {
    user.found(state.store.org_unit(id).await?, |u| u.distributor_id)
}

async fn unit_card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
) -> WebResult<Markup> {
    let t = user.t();
    let unit = visible(&state, &user, id).await?;
    let units = state.store.org_tree(unit.distributor_id).await?;
    let parent = units.iter().find(|u| Some(u.id) == unit.parent_id);
    let staff: Vec<_> = state
        .store
        .org_staff_rows()
        .await?
        .into_iter()
        .filter(|s| s.0 == id)
        .collect();
    let mobile_user = match unit.kind.as_str() {
        "position" => state.store.position_mobile_user(id).await?,
        _ => None,
    };
    let live = unit.ended_at_ms.is_none();
    let tz = &user.timezone;
    let body = html! {
        (facts(&[
            (t.s("org.kind"), text(t.value("org_kind", &unit.kind))),
            (t.s("col.code"), text(unit.code.clone())),
            (t.s("org.parent"), match parent {
                Some(p) => html! { a #unit-parent href={"/org/" (p.id)} { (label(&user, p)) } },
                None => html! { span #unit-parent { (t.s("org.top")) } },
            }),
            (t.s("col.state"), html! { span #unit-state { (match unit.ended_at_ms {
                Some(at) => t.f("org.ended_since", &[("time", &fmt_time(at, tz))]),
                None => t.s("org.active"),
            }) } }),
        ]))
        @if !staff.is_empty() {
            h2 { (t.s("nav.staff")) }
            ul #unit-staff { @for (_, first, last, main) in &staff {
                li { (first) " " (last) @if *main != 0 { " (" (t.s("col.main")) ")" } }
            } }
        }
        @if unit.kind == "position" {
            p { a #unit-week-plan href={"/routes/week-plan/" (id)} { (t.s("week_plan.open")) } }
            h2 { (t.s("nav.mobile_users")) }
            @match &mobile_user {
                Some((mu, login)) => { p { a #unit-mobile-user href={"/mobile-users/" (mu)} { (login) } } }
                None => {
                    p #no-mobile-user { (t.s("org.no_mobile_user")) }
                    @if user.can_write() && live {
                        form.inline method="post" action="/mobile-users" {
                            (csrf_field(&user))
                            input type="hidden" name="position_id" value=(id);
                            label { (t.s("col.login")) input #mobile-user-login name="login" required maxlength="64"; }
                            button #create-mobile-user type="submit" { (t.s("mobile_users.create")) }
                        }
                    }
                }
            }
        }
        @if user.can_write() && live {
            h2 { (t.s("org.edit")) }
            form.inline method="post" action={"/org/" (id) "/rename"} {
                (csrf_field(&user))
                label { (t.s("col.name")) input #unit-name name="name" value=(unit.name) required maxlength="200"; }
                button #rename-unit type="submit" { (t.s("common.save")) }
            }
            form.inline method="post" action={"/org/" (id) "/move"} {
                (csrf_field(&user))
                label { (t.s("org.move_under"))
                    select #move-parent name="parent_id" {
                        option value="" selected[unit.parent_id.is_none()] { (t.s("org.top")) }
                        @for u in units.iter().filter(|u| u.id != id && u.ended_at_ms.is_none()) {
                            option value=(u.id) selected[unit.parent_id == Some(u.id)] { (label(&user, u)) }
                        }
                    }
                }
                button #move-unit type="submit" { (t.s("org.move")) }
            }
            @if unit.kind == "position" { p.hint { (t.s("org.move_hint")) } }
            form.inline method="post" action={"/org/" (id) "/end"} {
                (csrf_field(&user))
                button #end-unit type="submit" { (t.s("org.end")) }
            }
            p.hint { (t.s("org.end_hint")) }
            @if unit.kind != "position" {
                h2 { (t.s("org.create_under")) }
                (create_form(&user, unit.distributor_id, &units, Some(&unit)))
            }
        }
        p { a href="/org" { (t.s("nav.org_units")) } }
    };
    Ok(layout(&t, &user, &label(&user, &unit), body))
}

/// What one of the card's forms sends.
#[derive(Deserialize)]
struct CardForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    parent_id: String,
}

/// The card's actions (`POST /org/{id}/{action}`): `rename`, `move` (under `parent_id`,
/// empty: to the top), `end`; back to the card after.
async fn unit_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(i64, String)>,
    Change(user, form): Change<CardForm>,
) -> WebResult<Response> {
    let unit = visible(&state, &user, id).await?;
    let (store, d) = (&state.store, unit.distributor_id);
    let done = match action.as_str() {
        "rename" => store.rename_org_unit(d, id, &form.name).await,
        "move" => {
            let parent = picked(&user, &form.parent_id)?;
            store.move_org_unit(d, id, parent).await
        }
        "end" => store.end_org_unit(d, id, state.clock.now()).await,
        _ => Err(StoreError::NotFound),
    };
    done.map_err(|e| WebError::store(&user.t(), e))?;
    Ok(Redirect::to(&format!("/org/{id}")).into_response())
}
