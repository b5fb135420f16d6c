//! Price lists in the back office: the list with a form to create one, and a price list's
//! card to rename it, change its payment form, make it the default for new outlets, and set
//! or remove prices one product at a time. What is saved reaches the phones with their next
//! pull; whole files of prices go through the `prices` import.
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
    Fields, WebError, WebResult, WebUser, csrf_field, distributor_field, fmt_money, layout,
    user_distributors,
};
use crate::AppState;
use crate::store::imports::parse_decimal;
use crate::store::pricing::{PAYMENT_FORMS, PriceListForm, PriceListHead};
use crate::store::{Problem, StoreError};

/// How many prices the card lists; the prices list has them all.
const CARD_PRICES: i64 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/price-lists", get(price_lists).post(create_price_list))
        .route("/price-lists/{id}", get(price_list_card))
        .route("/price-lists/{id}/{action}", post(card_action))
}

/// The payment form picker, with `current` selected.
fn payment_forms(user: &WebUser, current: &str) -> Markup {
    let t = user.t();
    html! {
        select #payment-form name="payment_form" {
            @for f in PAYMENT_FORMS {
                option value=(f) selected[*f == current] { (t.value("payment_form", f)) }
            }
        }
    }
}

async fn price_lists(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> WebResult<Markup> {
    let t = user.t();
    let distributors = user_distributors(&state, &user).await?;
    let extra = html! {
        @if user.can_write() && !distributors.is_empty() {
            details.create #create-price-list {
                summary { (t.s("price_lists.create")) }
                form method="post" action="/price-lists" {
                    (csrf_field(&user))
                    (distributor_field(&t, &distributors))
                    label { (t.s("col.name")) input #price-list-name name="name" required maxlength="120"; }
                    label { (t.s("col.payment_form")) (payment_forms(&user, PAYMENT_FORMS[0])) }
                    button #save-new-price-list type="submit" { (t.s("common.create")) }
                }
            }
        }
    };
    list_page(
        State(state),
        user,
        RawQuery(raw),
        &lists::PRICE_LISTS,
        extra,
    )
    .await
}

/// A new price list: its distributor, name and payment form.
async fn create_price_list(
    State(state): State<AppState>,
    Change(user, f): Change<Fields>,
) -> WebResult<Response> {
    let d = f.get("distributor_id").parse().unwrap_or(0);
    user.check_distributor(d)?;
    let form = PriceListForm {
        name: f.get("name"),
        payment_form: f.get("payment_form"),
    };
    let saved = state.store.save_price_list(d, None, &form).await;
    let id = saved.map_err(|e| WebError::store(&user.t(), e))?;
    Ok(Redirect::to(&format!("/price-lists/{id}")).into_response())
}

/// The price list `id` if the user may see it.
async fn visible(state: &AppState, user: &WebUser, id: i64) -> WebResult<PriceListHead> {
    let head = state.store.price_list_head(id).await?;
    user.found(head, |h| h.distributor_id)
}

async fn price_list_card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
) -> WebResult<Markup> {
    let t = user.t();
    let head = visible(&state, &user, id).await?;
    let lines = state.store.price_list_lines(id, CARD_PRICES).await?;
    let all_prices = format!(
        "/prices?f.price_list={}",
        form_urlencoded::byte_serialize(head.name.as_bytes()).collect::<String>()
    );
    let yes_no = |b: bool| t.s(if b { "common.yes" } else { "common.no" });
    let body = html! {
        dl.facts {
            dt { (t.s("col.distributor")) } dd { (head.distributor) }
            dt { (t.s("col.payment_form")) } dd #payment-form-value { (t.value("payment_form", &head.payment_form)) }
            dt { (t.s("price_lists.default")) } dd #is-default { (yes_no(head.is_default)) }
            dt { (t.s("nav.outlets")) } dd { (head.outlets) }
            dt { (t.s("col.prices")) } dd #price-count { a href=(all_prices) { (head.prices) } }
        }
        @if user.can_write() {
            h2 { (t.s("price_lists.edit")) }
            form.inline method="post" action={"/price-lists/" (id) "/save"} {
                (csrf_field(&user))
                label { (t.s("col.name")) input #price-list-name name="name" value=(head.name) required maxlength="120"; }
                label { (t.s("col.payment_form")) (payment_forms(&user, &head.payment_form)) }
                button #save-price-list type="submit" { (t.s("common.save")) }
            }
            @if !head.is_default {
                form.inline method="post" action={"/price-lists/" (id) "/default"} {
                    (csrf_field(&user))
                    button #make-default type="submit" { (t.s("price_lists.make_default")) }
                }
            }
            h2 { (t.s("price_lists.set_price")) }
            form.inline method="post" action={"/price-lists/" (id) "/price"} {
                (csrf_field(&user))
                label { (t.s("col.code")) input #price-product name="product_code" required; }
                label { (t.s("col.price")) input #price-amount name="price" required inputmode="decimal"; }
                label { (t.s("price_lists.valid_from")) input #price-valid-from type="date" name="valid_from"; }
                button #set-price type="submit" { (t.s("common.save")) }
            }
            p.hint { (t.s("price_lists.valid_from_hint")) }
        }
        h2 { (t.s("col.prices")) }
        @if head.prices > CARD_PRICES {
            p { a href=(all_prices) { (t.f("price_lists.first_prices", &[("n", &CARD_PRICES.to_string())])) } }
        }
        table.list #prices {
            thead { tr { th { (t.s("col.code")) } th { (t.s("col.name")) } th.num { (t.s("col.price")) } th { (t.s("col.valid_from")) } th {} } }
            tbody {
                @if lines.is_empty() { tr { td.empty colspan="5" { (t.s("list.empty")) } } }
                @for l in &lines { tr {
                    td { a href={"/products/" (l.product_id)} { (l.code) } }
                    td { (l.name) }
                    td.num { (fmt_money(l.price_minor)) }
                    td.valid-from { @if l.valid_from.is_empty() { (t.s("price_lists.since_always")) } @else { (l.valid_from) } }
                    td { @if user.can_write() {
                        form.inline method="post" action={"/price-lists/" (id) "/remove-price"} {
                            (csrf_field(&user))
                            input type="hidden" name="price_id" value=(l.id);
                            button.remove-price type="submit" { (t.s("price_lists.remove_price")) }
                        }
                    } }
                } }
            }
        }
    };
    Ok(layout(&t, &user, &head.name, body))
}

/// What one of the card's forms sends; each form fills the fields its action needs.
#[derive(Deserialize)]
struct CardForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    payment_form: String,
    #[serde(default)]
    product_code: String,
    #[serde(default)]
    price: String,
    #[serde(default)]
    valid_from: String,
    price_id: Option<i64>,
}

/// The card's actions (`POST /price-lists/{id}/{action}`): `save` (name and payment form),
/// `default`, `price` (set one product's price), `remove-price`; back to the card after.
async fn card_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(i64, String)>,
    Change(user, form): Change<CardForm>,
) -> WebResult<Response> {
    let head = visible(&state, &user, id).await?;
    let (store, d) = (&state.store, head.distributor_id);
    let done = match action.as_str() {
        "save" => {
            let form = PriceListForm {
                name: &form.name,
                payment_form: &form.payment_form,
            };
            store.save_price_list(d, Some(id), &form).await.map(drop)
        }
        "default" => store.set_default_price_list(d, id).await,
        "price" => match parse_decimal(form.price.trim(), 2).filter(|p| *p >= 0) {
            Some(price) => store
                .set_price_by_code(d, id, &form.product_code, price, &form.valid_from)
                .await
                .map(drop),
            None => Err(StoreError::Refused(Problem::BadPrice)),
        },
        "remove-price" => {
            let price = form.price_id.unwrap_or(0);
            store.remove_price(d, id, price).await.map(drop)
        }
        _ => Err(StoreError::NotFound),
    };
    done.map_err(|e| WebError::store(&user.t(), e))?;
    Ok(Redirect::to(&format!("/price-lists/{id}")).into_response())
}
