//! Outlets and products one at a time: their lists with a way to a new one, the form that
//! creates one and the form that edits one. Both go through the same patch as an import row
//! (see `store::editors`): phones follow with their next pull (an outlet moved to another
//! territory leaves the old territory's phones) and what a form does not show (an outlet's
//! reference location, a mapping) stays as stored. The head office also marks an item
//! global or local there; a distributor's key user neither does that nor opens a global
//! item's form (see `store::editors` for the rules).
use axum::Router;
use axum::extract::{Path, Query, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::Change;
use super::list::ListSpec;
use super::list::list_page;
use super::lists;
use super::{Fields, WebError, WebResult, WebUser, csrf_field, layout, picked, user_distributors};
use crate::AppState;
use crate::store::editors::{Choices, Coded, OutletForm, ProductForm};
use crate::store::{Problem, StoreError};

/// What is edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Outlet,
    Product,
}

impl Kind {
    /// The list's path; the forms are `{path}/new` and `{path}/{id}/edit`.
    fn path(self) -> &'static str {
        match self {
            Kind::Outlet => "/outlets",
            Kind::Product => "/products",
        }
    }

    /// The prefix of the editor's catalogue keys.
    fn key(self, what: &str) -> String {
        let prefix = match self {
            Kind::Outlet => "outlets",
            Kind::Product => "products",
        };
        format!("{prefix}.{what}")
    }

    fn spec(self) -> &'static ListSpec {
        match self {
            Kind::Outlet => &lists::OUTLETS,
            Kind::Product => &lists::PRODUCTS,
        }
    }
}

/// An item's form as stored or sent.
#[derive(Debug, Clone)]
enum Item {
    Outlet(OutletForm),
    Product(ProductForm),
}

impl Item {
    fn coded(&self) -> &dyn Coded {
        match self {
            Item::Outlet(f) => f,
            Item::Product(f) => f,
        }
    }
}

pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for kind in [Kind::Outlet, Kind::Product] {
        let path = kind.path();
        r = r
            .route(path, get(move |s, u, q| list(s, u, q, kind)))
            .route(
                &format!("{path}/new"),
                get(move |s, u, q| open_form(s, u, None, q, kind))
                    .post(move |s, c| save(s, None, c, kind)),
            )
            .route(
                &format!("{path}/{{id}}/edit"),
                get(move |s, u, Path(id): Path<i64>, q| open_form(s, u, Some(id), q, kind))
                    .post(move |s, Path(id): Path<i64>, c| save(s, Some(id), c, kind)),
            );
    }
    r
}

async fn list(
    state: State<AppState>,
    user: WebUser,
    raw: RawQuery,
    kind: Kind,
) -> WebResult<Markup> {
    let t = user.t();
    let extra = html! {
        @if user.can_write() {
            p { a.button #new-item href={(kind.path()) "/new"} { (t.s(&kind.key("new"))) } }
        }
    };
    list_page(state, user, raw, kind.spec(), extra).await
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

/// The inputs of an item's own fields (after its code and name).
async fn own_fields(state: &AppState, user: &WebUser, d: i64, item: &Item) -> WebResult<Markup> {
    let t = user.t();
    let field = |key: &str, name: &str, value: &str| {
        html! { label { (t.s(key)) input #(name) name=(name) value=(value); } }
    };
    Ok(match item {
        Item::Outlet(f) => {
            let territories = state.store.territory_choices(d).await?;
            let price_lists = state.store.price_list_choices(d).await?;
            html! {
                (field("col.address", "address", &f.address))
                (field("col.contact", "contact_name", &f.contact_name))
                (field("col.phone", "phone", &f.phone))
                (field("col.channel", "channel", &f.channel))
                label { (t.s("col.territory")) (picker(user, "territory_id", &territories, f.territory_id)) }
                label { (t.s("col.price_list")) (picker(user, "price_list_id", &price_lists, f.price_list_id)) }
            }
        }
        Item::Product(f) => {
            let mut channels = state.store.must_stock_channel_choices(d).await?;
            channels.retain(|c| !f.must_stock_channels.contains(c));
            channels.extend(f.must_stock_channels.iter().cloned());
            channels.sort();
            html! {
                (field("col.unit", "unit", &f.unit))
                (field("col.category", "category", &f.category))
                label.check { input #must_stock type="checkbox" name="must_stock" value="1" checked[f.must_stock]; (t.s("col.must_stock")) }
                fieldset #must-stock-channels {
                    legend { (t.s("products.must_stock_channels")) }
                    @for c in &channels {
                        label.check { input.must-stock-channel type="checkbox" name="must_stock_channel" value=(c) checked[f.must_stock_channels.contains(c)]; (c) }
                    }
                    label { (t.s("products.more_channels")) input #more_channels name="more_channels"; }
                    p.hint { (t.s("products.must_stock_channels_hint")) }
                }
            }
        }
    })
}

/// The form of `item` of distributor `d`, posting to `action`; the code is typed only for a
/// new item.
async fn form_page(
    state: &AppState,
    user: &WebUser,
    (kind, d): (Kind, i64),
    action: &str,
    title: &str,
    item: &Item,
) -> WebResult<Markup> {
    let t = user.t();
    let own = own_fields(state, user, d, item).await?;
    let coded = item.coded();
    let body = html! {
        form.editor #item-form method="post" action=(action) {
            (csrf_field(user))
            input type="hidden" name="distributor_id" value=(d);
            @if action.ends_with("/new") {
                label { (t.s("col.code")) input #code name="code" value=(coded.code()) required maxlength="64"; }
            } @else {
                p { (t.s("col.code")) ": " strong { (coded.code()) } }
            }
            label { (t.s("col.name")) input #name name="name" value=(coded.name()) required maxlength="200"; }
            (own)
            @if user.may_keep_globals() {
                label.check { input #is_global type="checkbox" name="is_global" value="1" checked[coded.is_global()]; (t.s("globals.mark")) }
                p.hint { (t.s("globals.mark_hint")) }
            }
            button #save-item type="submit" { (t.s("common.save")) }
        }
        p.hint { (t.s(&kind.key("form_hint"))) }
    };
    Ok(layout(&t, user, title, body))
}

#[derive(Deserialize)]
struct NewQuery {
    distributor_id: Option<i64>,
}

/// The form for a new item (`id` None) or for editing the item `id`.
async fn open_form(
    State(state): State<AppState>,
    user: WebUser,
    id: Option<i64>,
    Query(q): Query<NewQuery>,
    kind: Kind,
) -> WebResult<Markup> {
    user.check_write()?;
    if let Some(id) = id {
        let (d, item) = visible(&state, &user, kind, id).await?;
        if item.coded().is_global() && !user.may_keep_globals() {
            let refusal = StoreError::Refused(Problem::GlobalsHeadOfficeOnly);
            return Err(WebError::store(&user.t(), refusal));
        }
        let action = format!("{}/{id}/edit", kind.path());
        let title = item.coded().name().to_string();
        return form_page(&state, &user, (kind, d), &action, &title, &item).await;
    }
    let t = user.t();
    let title = t.s(&kind.key("new"));
    let distributors = user_distributors(&state, &user).await?;
    let chosen = match (q.distributor_id, distributors.as_slice()) {
        (Some(d), _) => Some(d),
        (None, [only]) => Some(only.0),
        _ => None,
    };
    let Some(d) = chosen else {
        // Several distributors: pick one first, its territories and price lists follow.
        let body = html! {
            form.inline method="get" action={(kind.path()) "/new"} {
                (super::distributor_select(&t, &distributors))
                button #choose-distributor type="submit" { (t.s("outlets.next")) }
            }
        };
        return Ok(layout(&t, &user, &title, body));
    };
    user.check_distributor(d)?;
    let item = match kind {
        Kind::Outlet => Item::Outlet(OutletForm {
            price_list_id: state.store.default_price_list(d).await?,
            ..OutletForm::default()
        }),
        Kind::Product => Item::Product(ProductForm {
            unit: "pcs".into(),
            ..ProductForm::default()
        }),
    };
    let action = format!("{}/new", kind.path());
    form_page(&state, &user, (kind, d), &action, &title, &item).await
}

/// The live item `id` with its distributor, if the user may see it.
async fn visible(state: &AppState, user: &WebUser, kind: Kind, id: i64) -> WebResult<(i64, Item)> {
    let found = match kind {
        Kind::Outlet => (state.store.outlet_form(id).await?).map(|(d, f)| (d, Item::Outlet(f))),
        Kind::Product => (state.store.product_form(id).await?).map(|(d, f)| (d, Item::Product(f))),
    };
    user.found(found, |(d, _)| *d)
}

/// What the form sent, as the item of `kind`.
fn sent_item(user: &WebUser, kind: Kind, f: &Fields) -> WebResult<Item> {
    let text = |name: &str| f.get(name).to_string();
    let is_global = f.get("is_global") == "1";
    Ok(match kind {
        Kind::Outlet => Item::Outlet(OutletForm {
            code: text("code"),
            name: text("name"),
            address: text("address"),
            contact_name: text("contact_name"),
            phone: text("phone"),
            channel: text("channel"),
            territory_id: picked(user, f.get("territory_id"))?,
            price_list_id: picked(user, f.get("price_list_id"))?,
            is_global,
        }),
        Kind::Product => Item::Product(ProductForm {
            code: text("code"),
            name: text("name"),
            unit: text("unit"),
            category: text("category"),
            must_stock: f.get("must_stock") == "1",
            must_stock_channels: f
                .0
                .iter()
                .filter(|(k, _)| k == "must_stock_channel")
                .map(|(_, v)| v.clone())
                .chain(f.get("more_channels").split([';', ',']).map(str::to_string))
                .collect(),
            is_global,
        }),
    })
}

/// Saves what a form sent (a new item when `existing` is None) and opens the item's card.
async fn save(
    State(state): State<AppState>,
    existing: Option<i64>,
    Change(user, fields): Change<Fields>,
    kind: Kind,
) -> WebResult<Response> {
    let d: i64 = fields
        .get("distributor_id")
        .parse()
        .map_err(|_| WebError::not_found(&user.t()))?;
    user.check_distributor(d)?;
    if let Some(id) = existing {
        let (stored, _) = visible(&state, &user, kind, id).await?;
        if stored != d {
            return Err(WebError::not_found(&user.t()));
        }
    }
    let globals = user.may_keep_globals();
    let saved = match sent_item(&user, kind, &fields)? {
        Item::Outlet(f) => state.store.save_outlet_as(globals, d, existing, &f).await,
        Item::Product(f) => state.store.save_product_as(globals, d, existing, &f).await,
    };
    let id = saved.map_err(|e| WebError::store(&user.t(), e))?;
    Ok(Redirect::to(&format!("{}/{id}", kind.path())).into_response())
}
