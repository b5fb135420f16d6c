//! Warehouses in the back office: the list with a form to create one, and a warehouse's card
//! to rename it, deactivate or reactivate it, and bind or unbind the positions that may order
//! from it. The rules (unique codes, what each change sends to which phone) are the store's
//! (`store::warehouses`); the phones follow with their next pull.
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::Change;
use super::list::list_page;
use super::lists;
use super::{
    WebError, WebResult, WebUser, csrf_field, distributor_field, facts, layout, picked, text,
    user_distributors,
};
use crate::AppState;
use crate::store::StoreError;
use crate::store::warehouses::Warehouse;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/warehouses", get(warehouses).post(create_warehouse))
        .route("/warehouses/{id}", get(warehouse_card))
        .route("/warehouses/{id}/{action}", post(card_action))
}

async fn warehouses(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> WebResult<Markup> {
    let t = user.t();
    let distributors = user_distributors(&state, &user).await?;
    let extra = html! {
        @if user.can_write() && !distributors.is_empty() {
            details.create #create-warehouse {
                summary { (t.s("warehouses.create")) }
                form method="post" action="/warehouses" {
                    (csrf_field(&user))
                    (distributor_field(&t, &distributors))
                    label { (t.s("col.code")) input #warehouse-code name="code" required maxlength="64"; }
                    label { (t.s("col.name")) input #warehouse-name name="name" required maxlength="200"; }
                    button #save-new-warehouse type="submit" { (t.s("common.create")) }
                }
            }
        }
    };
    list_page(State(state), user, RawQuery(raw), &lists::WAREHOUSES, extra).await
}

/// A new warehouse: its distributor, code and name.
#[derive(Deserialize)]
struct NewWarehouse {
    #[serde(default)]
    distributor_id: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
}

async fn create_warehouse(
    State(state): State<AppState>,
    Change(user, f): Change<NewWarehouse>,
) -> WebResult<Response> {
    let d = picked(&user, &f.distributor_id)?.ok_or_else(|| WebError::not_found(&user.t()))?;
    user.check_distributor(d)?;
    let created = state.store.create_warehouse(d, &f.code, &f.name).await;
    let id = created.map_err(|e| WebError::store(&user.t(), e))?;
    Ok(Redirect::to(&format!("/warehouses/{id}")).into_response())
}

/// The warehouse `id` if the user may see it.
async fn visible(state: &AppState, user: &WebUser, id: i64) -> WebResult<Warehouse> {
    user.found(state.store.warehouse(id).await?, |w| w.distributor_id)
}

async fn warehouse_card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
) -> WebResult<Markup> {
    let t = user.t();
    let w = visible(&state, &user, id).await?;
    let bound = state.store.warehouse_positions(id).await?;
    let free: Vec<_> = state
        .store
        .live_positions(w.distributor_id)
        .await?
        .into_iter()
        .filter(|p| !bound.iter().any(|b| b.id == p.id))
        .collect();
    let state_text = t.s(if w.active {
        "warehouses.active"
    } else {
        "warehouses.inactive"
    });
    let body = html! {
        (facts(&[
            (t.s("col.distributor"), text(w.distributor.clone())),
            (t.s("col.code"), html! { span #warehouse-code { (w.code) } }),
            (t.s("col.state"), html! { span #warehouse-state { (state_text) } }),
        ]))
        @if user.can_write() {
            h2 { (t.s("warehouses.edit")) }
            form.inline method="post" action={"/warehouses/" (id) "/rename"} {
                (csrf_field(&user))
                label { (t.s("col.name")) input #warehouse-name name="name" value=(w.name) required maxlength="200"; }
                button #rename-warehouse type="submit" { (t.s("common.save")) }
            }
            @let (action, button, key) = if w.active {
                ("deactivate", "deactivate-warehouse", "warehouses.deactivate")
            } else {
                ("reactivate", "reactivate-warehouse", "warehouses.reactivate")
            };
            form.inline method="post" action={"/warehouses/" (id) "/" (action)} {
                (csrf_field(&user))
                button id=(button) type="submit" { (t.s(key)) }
            }
            p.hint { (t.s("warehouses.active_hint")) }
        }
        h2 { (t.s("warehouse.bound_for_orders")) }
        table.list #warehouse-positions {
            tbody {
                @if bound.is_empty() { tr.empty-row { td.empty { (t.s("list.empty")) } } }
                @for p in &bound { tr id={"bound-" (p.id)} {
                    td { a href={"/org/" (p.id)} { (p.code) } } td { (p.name) } td {
                        @if user.can_write() {
                            form.inline method="post" action={"/warehouses/" (id) "/unbind"} {
                                (csrf_field(&user)) input type="hidden" name="position_id" value=(p.id);
                                button.unbind-position type="submit" { (t.s("warehouse.unbind")) }
                            }
                        }
                    }
                } }
            }
        }
        @if user.can_write() && !free.is_empty() {
            form.inline method="post" action={"/warehouses/" (id) "/bind"} {
                (csrf_field(&user))
                select name="position_id" { @for p in &free { option value=(p.id) { (p.code) " · " (p.name) } } }
                button #bind-position type="submit" { (t.s("warehouse.bind")) }
            }
        }
        p.hint { (t.s("warehouses.bind_hint")) }
        p { a href="/warehouses" { (t.s("nav.warehouses")) } }
    };
    Ok(layout(&t, &user, &w.name, body))
}

/// What one of the card's forms sends.
#[derive(Deserialize)]
struct CardForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    position_id: String,
}

/// The card's actions (`POST /warehouses/{id}/{action}`): `rename`, `deactivate`,
/// `reactivate`, `bind` and `unbind` (a `position_id`); back to the card after.
async fn card_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(i64, String)>,
    Change(user, form): Change<CardForm>,
) -> WebResult<Response> {
    let w = visible(&state, &user, id).await?;
    let (store, d) = (&state.store, w.distributor_id);
    let position =
        || picked(&user, &form.position_id)?.ok_or_else(|| WebError::not_found(&user.t()));
    let done = match action.as_str() {
        "rename" => store.rename_warehouse(d, id, &form.name).await,
        "deactivate" => store.set_warehouse_active(d, id, false).await,
        "reactivate" => store.set_warehouse_active(d, id, true).await,
        "bind" => store.bind_warehouse(d, id, position()?, true).await,
        "unbind" => store.bind_warehouse(d, id, position()?, false).await,
        _ => Err(StoreError::NotFound),
    };
    done.map_err(|e| WebError::store(&user.t(), e))?;
    Ok(Redirect::to(&format!("/warehouses/{id}")).into_response())
}
