//! Outlets one at a time: the outlets list with a way to a new outlet, the form that creates
//! one, and the form that edits an outlet's requisites, territory and price list. Both go
//! through the same patch as an import row (see `store::editors`), so phones follow a
//! territory move and what the form does not show stays as stored.
use axum::Router;
use axum::extract::{Path, Query, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::Change;
use super::list::list_page;
use super::lists;
use super::{WebError, WebResult, WebUser, csrf_field, layout, user_distributors};
use crate::AppState;
use crate::store::editors::{Choices, OutletForm};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/outlets", get(outlets))
        .route("/outlets/new", get(new_outlet).post(create_outlet))
        .route("/outlets/{id}/edit", get(edit_outlet).post(save_outlet))
}

async fn outlets(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> WebResult<Markup> {
    let t = user.t();
    let extra = html! {
        @if user.can_write() {
            p { a.button #new-outlet href="/outlets/new" { (t.s("outlets.new")) } }
        }
    };
    list_page(State(state), user, RawQuery(raw), &lists::OUTLETS, extra).await
}

/// A picker of `choices` named `name`, with "none" first and `current` selected.
fn picker(user: &WebUser, name: &str, choices: &Choices, current: Option<i64>) -> Markup {
    html! {
        select #(name) name=(name) {
            option value="" selected[current.is_none()] { "—" }
            @for (id, label) in choices {
                option value=(id) selected[current == Some(*id)] { (label) }
            }
        }
        @if choices.is_empty() { span.hint { " " (user.t().s("list.empty")) } }
    }
}

/// The outlet form for `distributor_id`, posting to `action`; the code is typed only for a
/// new outlet.
async fn form_page(
    state: &AppState,
    user: &WebUser,
    distributor_id: i64,
    action: &str,
    title: &str,
    form: &OutletForm,
) -> WebResult<Markup> {
    let t = user.t();
    let territories = state.store.territory_choices(distributor_id).await?;
    let price_lists = state.store.price_list_choices(distributor_id).await?;
    let is_new = action == "/outlets/new";
    let field = |key: &str, name: &str, value: &str| {
        html! { label { (t.s(key)) input #(name) name=(name) value=(value); } }
    };
    let body = html! {
        form.editor #outlet-form method="post" action=(action) {
            (csrf_field(user))
            input type="hidden" name="distributor_id" value=(distributor_id);
            @if is_new {
                label { (t.s("col.code")) input #code name="code" value=(form.code) required maxlength="64"; }
            } @else {
                p { (t.s("col.code")) ": " strong { (form.code) } }
            }
            label { (t.s("col.name")) input #name name="name" value=(form.name) required maxlength="200"; }
            (field("col.address", "address", &form.address))
            (field("col.contact", "contact_name", &form.contact_name))
            (field("col.phone", "phone", &form.phone))
            (field("col.channel", "channel", &form.channel))
            label { (t.s("col.territory")) (picker(user, "territory_id", &territories, form.territory_id)) }
            label { (t.s("col.price_list")) (picker(user, "price_list_id", &price_lists, form.price_list_id)) }
            button #save-outlet type="submit" { (t.s("common.save")) }
        }
        p.hint { (t.s("outlets.form_hint")) }
    };
    Ok(layout(&t, user, title, body))
}

#[derive(Deserialize)]
struct NewQuery {
    distributor_id: Option<i64>,
}

async fn new_outlet(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<NewQuery>,
) -> WebResult<Markup> {
    user.check_write()?;
    let t = user.t();
    let distributors = user_distributors(&state, &user).await?;
    let chosen = match (q.distributor_id, distributors.as_slice()) {
        (Some(d), _) => Some(d),
        (None, [only]) => Some(only.0),
        _ => None,
    };
    let Some(d) = chosen else {
        // Several distributors: pick one first, its territories and price lists follow.
        let body = html! {
            form.inline method="get" action="/outlets/new" {
                label { (t.s("col.distributor"))
                    select name="distributor_id" { @for (id, code) in &distributors { option value=(id) { (code) } } }
                }
                button #choose-distributor type="submit" { (t.s("outlets.next")) }
            }
        };
        return Ok(layout(&t, &user, &t.s("outlets.new"), body));
    };
    user.check_distributor(d)?;
    let form = OutletForm {
        price_list_id: state.store.default_price_list(d).await?,
        ..OutletForm::default()
    };
    form_page(&state, &user, d, "/outlets/new", &t.s("outlets.new"), &form).await
}

/// What the outlet form sends; an empty picker is "none".
#[derive(Deserialize)]
struct SentOutlet {
    distributor_id: i64,
    #[serde(default)]
    code: String,
    name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    contact_name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    territory_id: String,
    #[serde(default)]
    price_list_id: String,
}

impl SentOutlet {
    fn form(self, user: &WebUser) -> WebResult<(i64, OutletForm)> {
        let pick = |s: &str| -> WebResult<Option<i64>> {
            match s.trim() {
                "" => Ok(None),
                v => v
                    .parse()
                    .map(Some)
                    .map_err(|_| WebError::not_found(&user.t())),
            }
        };
        let form = OutletForm {
            territory_id: pick(&self.territory_id)?,
            price_list_id: pick(&self.price_list_id)?,
            code: self.code,
            name: self.name,
            address: self.address,
            contact_name: self.contact_name,
            phone: self.phone,
            channel: self.channel,
        };
        Ok((self.distributor_id, form))
    }
}

/// Saves what the form sent (a new outlet when `existing` is None) and opens its card.
async fn save(
    state: &AppState,
    user: &WebUser,
    existing: Option<i64>,
    sent: SentOutlet,
) -> WebResult<Response> {
    let (d, form) = sent.form(user)?;
    user.check_distributor(d)?;
    let id = state
        .store
        .save_outlet(d, existing, &form)
        .await
        .map_err(|e| WebError::store(&user.t(), e))?;
    Ok(Redirect::to(&format!("/outlets/{id}")).into_response())
}

async fn create_outlet(
    State(state): State<AppState>,
    Change(user, sent): Change<SentOutlet>,
) -> WebResult<Response> {
    save(&state, &user, None, sent).await
}

/// The live outlet `id` with its distributor, if the user may see it.
async fn visible(state: &AppState, user: &WebUser, id: i64) -> WebResult<(i64, OutletForm)> {
    let found = state.store.outlet_form(id).await?;
    user.found(found, |(d, _)| *d)
}

async fn edit_outlet(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
) -> WebResult<Markup> {
    user.check_write()?;
    let (d, form) = visible(&state, &user, id).await?;
    let action = format!("/outlets/{id}/edit");
    form_page(&state, &user, d, &action, &form.name, &form).await
}

async fn save_outlet(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Change(user, sent): Change<SentOutlet>,
) -> WebResult<Response> {
    let (d, _) = visible(&state, &user, id).await?;
    if sent.distributor_id != d {
        return Err(WebError::not_found(&user.t()));
    }
    save(&state, &user, Some(id), sent).await
}
