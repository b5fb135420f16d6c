//! Purchase plans in the back office: a month's plans of outlets and positions with how far
//! each is met (from actual sales where imported, else from orders), a form to set one (the
//! same month, outlet or position, category or brand and measure replaces the target) and
//! deletion. Imports of kind `plans` set many at once. Phones get them with their next sync.
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Change, Fields, WebError, WebResult, WebUser, create_block, csrf_field, distributor_field,
    fmt_money, layout, today, user_distributors,
};
use crate::AppState;
use crate::store::plans::{PlanForm, is_period};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/plans", get(plans_page).post(save_plan))
        .route("/plans/{id}/delete", post(delete_plan))
}

#[derive(Deserialize, Default)]
struct PlansQuery {
    #[serde(default)]
    period: String,
}

fn amount(measure: &str, v: i64) -> String {
    if measure == "quantity" {
        super::fmt_qty(v)
    } else {
        fmt_money(v)
    }
}

async fn plans_page(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<PlansQuery>,
) -> WebResult<Markup> {
    let t = user.t();
    let period = if is_period(q.period.trim()) {
        q.period.trim().to_string()
    } else {
        today(state.clock.now(), &user.timezone)[..7].to_string()
    };
    let distributors = user_distributors(&state, &user).await?;
    let ids: Vec<i64> = distributors.iter().map(|d| d.0).collect();
    let rows = state.store.plan_rows(&ids, &period).await?;
    let mut positions = Vec::new();
    for (d, _) in &distributors {
        for p in state.store.live_positions(*d).await? {
            positions.push((p.id, format!("{} · {}", p.code, p.name)));
        }
    }
    let body = html! {
        form.inline #plan-period method="get" action="/plans" {
            label { (t.s("plans.period")) input #period type="month" name="period" value=(period); }
            button type="submit" { (t.s("list.apply")) }
        }
        p.hint { (t.s("plans.hint")) }
        table.list #plans {
            thead { tr {
                th { (t.s("plans.scope")) } th { (t.s("plans.what")) } th { (t.s("plans.measure")) }
                th.num { (t.s("plans.target")) } th.num { (t.s("plans.achieved")) } th.num { "%" }
                th { (t.s("plans.source")) } th {}
            } }
            tbody {
                @if rows.is_empty() { tr { td.empty colspan="8" { (t.s("plans.none")) } } }
                @for r in &rows {
                    tr.plan data-plan=(r.id) data-percent=(r.percent()) {
                        td {
                            (t.s(if r.form.scope == "outlet" { "plans.scope_outlet" } else { "plans.scope_position" }))
                            ": "
                            @if r.form.scope == "outlet" {
                                a href={"/outlets/" (r.form.scope_id)} { (r.scope_code) " · " (r.scope_name) }
                            } @else { (r.scope_code) " · " (r.scope_name) }
                        }
                        td {
                            @if !r.form.category.is_empty() { (t.s("plans.category")) ": " (r.form.category) }
                            @else if !r.form.brand.is_empty() { (t.s("plans.brand")) ": " (r.form.brand) }
                            @else { (t.s("plans.all_products")) }
                        }
                        td { (t.s(if r.form.measure == "money" { "plans.money" } else { "plans.quantity" })) }
                        td.num.target { (amount(&r.form.measure, r.form.target)) }
                        td.num.achieved { (amount(&r.form.measure, r.achieved)) }
                        td.num {
                            progress max="100" value=(r.percent().clamp(0, 100)) {}
                            " " span.percent { (r.percent()) }
                        }
                        td { (t.s(if r.achieved_from == "sales" { "plans.from_sales" } else { "plans.from_orders" })) }
                        td {
                            @if user.can_write() {
                                form method="post" action={"/plans/" (r.id) "/delete"} {
                                    (csrf_field(&user))
                                    input type="hidden" name="period" value=(period);
                                    button.danger.delete-plan type="submit" { (t.s("common.delete")) }
                                }
                            }
                        }
                    }
                }
            }
        }
        (create_block(&t, &user, "create-plan", "plans.create", html! {
            form.editor #plan-form method="post" action="/plans" {
                (csrf_field(&user))
                (distributor_field(&t, &distributors))
                label { (t.s("plans.period")) input #plan-period-input type="month" name="period" value=(period) required; }
                label { (t.s("plans.scope"))
                    select #plan-scope name="scope" {
                        option value="outlet" { (t.s("plans.scope_outlet")) }
                        option value="position" { (t.s("plans.scope_position")) }
                    }
                }
                label { (t.s("plans.outlet_code")) input #plan-outlet name="outlet_code" maxlength="64"; }
                label { (t.s("plans.position"))
                    select #plan-position name="position_id" {
                        option value="" { "—" }
                        @for (id, name) in &positions { option value=(id) { (name) } }
                    }
                }
                label { (t.s("plans.category")) input #plan-category name="category" maxlength="100"; }
                label { (t.s("plans.brand")) input #plan-brand name="brand" maxlength="100"; }
                label { (t.s("plans.measure"))
                    select #plan-measure name="measure" {
                        option value="money" { (t.s("plans.money")) }
                        option value="quantity" { (t.s("plans.quantity")) }
                    }
                }
                label { (t.s("plans.target")) input #plan-target name="target" required inputmode="decimal"; }
                button #save-plan type="submit" { (t.s("common.save")) }
            }
        }))
    };
    Ok(layout(&t, &user, &t.s("nav.plans"), body))
}

/// A decimal as an integer of `scale` decimals; `None` unless positive.
fn positive(s: &str, scale: u32) -> Option<i64> {
    crate::store::imports::parse_decimal(&s.trim().replace(',', "."), scale).filter(|v| *v > 0)
}

async fn save_plan(
    State(state): State<AppState>,
    Change(user, f): Change<Fields>,
) -> WebResult<Response> {
    let t = user.t();
    let d =
        super::picked(&user, f.get("distributor_id"))?.ok_or_else(|| WebError::not_found(&t))?;
    user.check_distributor(d)?;
    let period = f.get("period").trim().to_string();
    if !is_period(&period) {
        return Err(WebError::bad(&t, "plans.bad_period"));
    }
    let measure = match f.get("measure") {
        "quantity" => "quantity",
        _ => "money",
    };
    let target = positive(f.get("target"), if measure == "money" { 2 } else { 3 })
        .ok_or_else(|| WebError::bad(&t, "plans.bad_target"))?;
    let (scope, scope_id) = if f.get("scope") == "position" {
        let id = super::picked(&user, f.get("position_id"))?
            .ok_or_else(|| WebError::bad(&t, "plans.pick_position"))?;
        ("position", id)
    } else {
        let code = f.get("outlet_code").trim();
        let id = state
            .store
            .outlet_id_by_code(d, code)
            .await?
            .ok_or_else(|| WebError::bad(&t, "plans.no_outlet"))?;
        ("outlet", id)
    };
    let form = PlanForm {
        period: period.clone(),
        scope: scope.into(),
        scope_id,
        category: f.get("category").trim().to_string(),
        brand: f.get("brand").trim().to_string(),
        measure: measure.into(),
        target,
    };
    match state.store.save_plan(d, &form, state.clock.now()).await? {
        Ok(_) => Ok(Redirect::to(&format!("/plans?period={period}")).into_response()),
        Err(reason) => Err(WebError::Page(
            axum::http::StatusCode::BAD_REQUEST,
            format!("{} {reason}", t.s("plans.refused")),
        )),
    }
}

async fn delete_plan(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Change(user, f): Change<Fields>,
) -> WebResult<Response> {
    let t = user.t();
    let d = user.found(state.store.plan_distributor(id).await?, |d| *d)?;
    state
        .store
        .delete_plan(d, id)
        .await
        .map_err(|e| WebError::store(&t, e))?;
    let period = f.get("period");
    let back = if is_period(period) {
        format!("/plans?period={period}")
    } else {
        "/plans".to_string()
    };
    Ok(Redirect::to(&back).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quantities_show_without_trailing_zeros_and_money_with_cents() {
        assert_eq!(super::amount("quantity", 2_500), "2.5");
        assert_eq!(super::amount("quantity", 3_000), "3");
        assert_eq!(super::amount("money", 123_450), "1234.50");
    }
}
