//! The distributor portal's order inbox: tabs by state with their counts, a date filter, the
//! order card with lines ordered vs confirmed vs shipped and its history, and the actions of
//! the status flow (the same state machine as the JSON API).
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};

use super::list::{ListQuery, list_page, serve_export};
use super::{
    Change, Fields, WebError, WebResult, WebUser, csrf_field, fmt_money, fmt_time, layout,
};
use crate::AppState;
use crate::store::exchange::{LineQuantity, StatusRefusal, StatusUpdate};
use crate::store::list::specs::ORDERS;
use crate::store::orders::OrderCard;
use fieldsync_protocol::orders::{NAMES as STATES, transition_allowed};
use fieldsync_protocol::v1::OrderState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", get(inbox))
        .route(
            "/orders/export",
            get(|s, u, q| serve_export(s, u, q, &ORDERS)),
        )
        .route("/orders/{id}", get(order_card))
        .route("/orders/{id}/status", post(change_status))
}

/// The inbox: tabs by state (with counts within the date filter) over the order list.
async fn inbox(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> WebResult<Markup> {
    let t = user.t();
    let parsed = ListQuery::parse(raw.as_deref());
    super::list::check_query(&parsed, &t)?;
    let q = ORDERS.with_defaults(parsed, state.clock.now(), &user.timezone);
    let ids = super::user_distributor_ids(&state, &user).await?;
    let from = q
        .get("f.received.from")
        .and_then(|d| super::day_start_ms(d, &user.timezone))
        .unwrap_or(0);
    let to = q
        .get("f.received.to")
        .and_then(|d| super::day_end_ms(d, &user.timezone))
        .unwrap_or(i64::MAX);
    let counts = state.store.order_counts_by_state(&ids, from, to).await?;
    let count = |s: &str| counts.iter().find(|c| c.0 == s).map(|c| c.1).unwrap_or(0);
    let current = q.get("f.state").unwrap_or("");
    let all: i64 = counts.iter().map(|c| c.1).sum();
    let tab =
        |state: Option<&str>| q.with(&[("f.state", state.map(str::to_string)), ("page", None)]);
    let extra = html! {
        nav.tabs #order-tabs {
            a class=(if current.is_empty() { "active" } else { "" }) href={"/orders?" (tab(None))} {
                (t.s("orders.all")) " (" span.count { (all) } ")"
            }
            @for s in STATES {
                a class=(if current == s { "active" } else { "" }) data-state=(s) href={"/orders?" (tab(Some(s)))} {
                    (t.value("order_state", s)) " (" span.count { (count(s)) } ")"
                }
            }
        }
    };
    list_page(State(state), user, RawQuery(raw), &ORDERS, extra).await
}

async fn order_card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> WebResult<Markup> {
    let card = user.found(state.store.order_card(&id).await?, |c| c.distributor_id)?;
    let t = user.t();
    let OrderCard {
        number,
        visit_id: visit,
        outlet,
        price_list,
        warehouse,
        agent,
        total_minor: total,
        state: st,
        placed_device_ms: placed,
        comment,
        delivery_date: delivery,
        document_number: document,
        document_date,
        state_reason: reason,
        handed_over_at_ms: handed,
        overdue_reason,
        lines,
        ..
    } = card;
    let history = state.store.order_history(&id).await?;
    let tz = &user.timezone;
    let qty = |q: i64| format!("{}", q as f64 / 1000.0);
    let next: Vec<&str> = STATES
        .iter()
        .copied()
        .filter(|to| *to != OrderState::Placed.name() && transition_allowed(&st, to))
        .collect();
    let body = html! {
        dl.facts {
            dt { (t.s("col.outlet")) } dd { (outlet) }
            dt { (t.s("col.agent")) } dd { (agent) }
            dt { (t.s("col.price_list")) } dd { (price_list) }
            dt { (t.s("col.warehouse")) } dd { (warehouse) }
            dt { (t.s("col.placed")) } dd { (fmt_time(placed, tz)) }
            dt { (t.s("col.state")) } dd #order-state { (t.value("order_state", &st)) }
            @if !reason.is_empty() { dt { (t.s("col.reason")) } dd { (reason) } }
            dt { (t.s("col.total")) } dd #order-total { (fmt_money(total)) }
            dt { (t.s("col.delivery_date")) } dd { (delivery) }
            dt { (t.s("col.document_number")) } dd { (document) " " (document_date) }
            dt { (t.s("col.handed_over")) } dd { (handed.map(|h| fmt_time(h, tz)).unwrap_or_default()) }
            dt { (t.s("col.comment")) } dd { (comment) }
            @if !overdue_reason.is_empty() { dt { (t.s("orders.overdue_reason")) } dd #order-overdue-reason { (overdue_reason) } }
            dt { (t.s("col.visit")) } dd { @if let Some(v) = &visit { a href={"/visits/" (v)} { (v) } } }
        }
        table.list #order-lines {
            thead { tr { th { "#" } th { (t.s("col.code")) } th { (t.s("col.name")) } th { (t.s("col.quantity")) }
                th { (t.s("col.confirmed")) } th { (t.s("col.shipped")) } th { (t.s("col.price")) } th { (t.s("col.sum")) } } }
            tbody { @for l in &lines { tr {
                td { (l.line_no) } td { (l.product_code) } td { (l.product_name) } td { (qty(l.quantity_milli)) }
                td.confirmed { (l.confirmed_quantity_milli.map(qty).unwrap_or_default()) } td.shipped { (l.shipped_quantity_milli.map(qty).unwrap_or_default()) }
                td { (fmt_money(l.price_minor)) } td { (fmt_money(l.sum_minor)) }
            } } }
        }
        @if user.can_write() && !next.is_empty() {
            h2 { (t.s("orders.next_step")) }
            form #status-form method="post" action={"/orders/" (id) "/status"} {
                (csrf_field(&user))
                label { (t.s("col.state"))
                    select #next-state name="state" { @for s in &next { option value=(s) { (t.value("order_state", s)) } } }
                }
                label { (t.s("col.reason")) input name="reason"; }
                label { (t.s("col.delivery_date")) input type="date" name="delivery_date"; }
                label { (t.s("col.document_number")) input name="document_number"; }
                label { (t.s("orders.document_date")) input type="date" name="document_date"; }
                p.hint { (t.s("orders.quantities_hint")) }
                table {
                    @for l in &lines { tr {
                        td { (l.line_no) ". " (l.product_code) } td { input.qty name={"qty." (l.line_no)} value=(qty(l.confirmed_quantity_milli.unwrap_or(l.quantity_milli))); }
                    } }
                }
                button #change-status type="submit" { (t.s("orders.apply_step")) }
            }
        }
        h2 { (t.s("orders.history")) }
        table.list #order-history {
            tbody {
                @if history.is_empty() { tr { td.empty { (t.s("list.empty")) } } }
                @for (s, r, source, at) in &history { tr {
                    td { (fmt_time(*at, tz)) } td { (t.value("order_state", s)) } td { (r) } td { (source) }
                } }
            }
        }
    };
    Ok(layout(
        &t,
        &user,
        &t.f("order.card", &[("number", &number.to_string())]),
        body,
    ))
}

/// Parses a quantity typed by a person ("2", "1.5", "1,5") into thousandths.
fn parse_qty(s: &str) -> Option<i64> {
    let v: f64 = s.trim().replace(',', ".").parse().ok()?;
    (v.is_finite() && (0.0..1e9).contains(&v)).then(|| (v * 1000.0).round() as i64)
}

async fn change_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Change(user, form): Change<Fields>,
) -> WebResult<Response> {
    let field = |k: &str| form.get(k).trim().to_string();
    let t = user.t();
    let d = user.found(state.store.order_distributor(&id).await?, |d| *d)?;
    let to = field("state");
    let mut lines = Vec::new();
    if OrderState::from_name(&to).is_some_and(|s| s.reported_quantity().is_some()) {
        for (k, v) in &form.0 {
            if let Some(no) = k.strip_prefix("qty.").and_then(|n| n.parse::<i64>().ok()) {
                let Some(q) = parse_qty(v) else {
                    return Err(WebError::bad(&t, "orders.bad_quantity"));
                };
                lines.push(LineQuantity {
                    line_no: no,
                    quantity_milli: q,
                });
            }
        }
    }
    let update = StatusUpdate {
        state: to,
        reason: field("reason"),
        lines,
        delivery_date: field("delivery_date"),
        document_number: field("document_number"),
        document_date: field("document_date"),
        total_minor: None,
    };
    let source = format!("portal:{}", user.login);
    match state
        .store
        .set_order_status(d, &id, &update, &source, state.clock.now())
        .await?
    {
        Ok(_) => Ok(Redirect::to(&format!("/orders/{id}")).into_response()),
        Err(StatusRefusal::UnknownOrder) => Err(WebError::not_found(&t)),
        Err(StatusRefusal::Illegal { from, to }) => Err(WebError::Page(
            axum::http::StatusCode::CONFLICT,
            t.f(
                "orders.illegal",
                &[
                    ("from", &t.value("order_state", &from)),
                    ("to", &t.value("order_state", &to)),
                ],
            ),
        )),
        Err(StatusRefusal::UnknownState(_)) => Err(WebError::bad(&t, "orders.bad_state")),
        Err(StatusRefusal::Invalid(m)) => Err(WebError::Page(
            axum::http::StatusCode::BAD_REQUEST,
            format!("{} {m}", t.s("orders.invalid")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_quantities_become_thousandths() {
        assert_eq!(parse_qty("2"), Some(2000));
        assert_eq!(parse_qty("1,5"), Some(1500));
        assert_eq!(parse_qty(" 0.001 "), Some(1));
        assert_eq!(parse_qty("-1"), None);
        assert_eq!(parse_qty("many"), None);
    }
}
