//! Routes in the back office: the list with a way to a position's week plan, and the week
//! plan page. A key user sets, for each weekday, the outlets of the position's territory in
//! visiting order (their codes, one a line) and a range of dates (a start date and 1 to 13
//! weeks); saving generates the position's routes of those dates, keeps a route that has
//! visits and says so. The rules are the store's (`store::routes`); the phone gets the
//! routes with its next pull.
use axum::Router;
use axum::extract::{Path, Query, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;

use fieldsync_protocol::dates;

use super::auth::Change;
use super::list::list_page;
use super::lists;
use super::{
    Fields, WebError, WebResult, WebUser, csrf_field, facts, layout, position_select, text, today,
    user_distributors,
};
use crate::AppState;
use crate::store::routes::{MAX_WEEKS, PlanOutcome, PlanPosition, WeekPlan, weekday};
use crate::store::{Problem, StoreError};

/// How many of the position's coming routes the plan page lists.
const LISTED_ROUTES: i64 = 100;

/// The catalogue keys of the weekdays, Monday first.
const WEEKDAYS: [&str; 7] = [
    "weekday.mon",
    "weekday.tue",
    "weekday.wed",
    "weekday.thu",
    "weekday.fri",
    "weekday.sat",
    "weekday.sun",
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/routes", get(routes))
        .route("/routes/week-plan", get(choose_position))
        .route("/routes/week-plan/{id}", get(plan_page).post(save_plan))
}

async fn routes(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> WebResult<Markup> {
    let t = user.t();
    let mut positions = Vec::new();
    for (d, code) in user_distributors(&state, &user).await? {
        for p in state.store.live_positions(d).await? {
            positions.push((p.id, format!("{} ({})", p.name, p.code), code.clone()));
        }
    }
    let extra = html! {
        @if !positions.is_empty() {
            form.inline #open-week-plan method="get" action="/routes/week-plan" {
                label { (t.s("col.position")) (position_select(&positions)) }
                button #choose-position type="submit" { (t.s("week_plan.open")) }
            }
        }
    };
    list_page(State(state), user, RawQuery(raw), &lists::ROUTES, extra).await
}

#[derive(Deserialize)]
struct PositionQuery {
    #[serde(default)]
    position_id: String,
}

/// The picker's choice: on to the position's week plan.
async fn choose_position(user: WebUser, Query(q): Query<PositionQuery>) -> WebResult<Redirect> {
    let id = super::picked(&user, &q.position_id)?.ok_or_else(|| WebError::not_found(&user.t()))?;
    Ok(Redirect::to(&format!("/routes/week-plan/{id}")))
}

/// The position `id` if the user may see it.
async fn visible(state: &AppState, user: &WebUser, id: i64) -> WebResult<PlanPosition> {
    user.found(state.store.plan_position(id).await?, |p| p.distributor_id)
}

/// What the last save did, as its redirect tells the page.
#[derive(Deserialize, Default)]
struct OutcomeQuery {
    written: Option<usize>,
    removed: Option<usize>,
    #[serde(default)]
    kept: String,
}

impl OutcomeQuery {
    fn of(outcome: &PlanOutcome) -> String {
        format!(
            "written={}&removed={}&kept={}",
            outcome.written.len(),
            outcome.removed.len(),
            outcome.kept.join(",")
        )
    }
}

async fn plan_page(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
    Query(done): Query<OutcomeQuery>,
) -> WebResult<Markup> {
    let t = user.t();
    let p = visible(&state, &user, id).await?;
    let outlets = match p.territory_id {
        Some(territory) => state.store.territory_outlets(territory).await?,
        None => Vec::new(),
    };
    let current = state.store.current_week_plan(id).await?;
    let from = today(state.clock.now(), &user.timezone);
    let planned = state
        .store
        .position_routes(id, &from, LISTED_ROUTES)
        .await?;
    let kept: Vec<&str> = done.kept.split(',').filter(|d| dates::is_date(d)).collect();
    let body = html! {
        (facts(&[
            (t.s("col.distributor"), text(p.distributor.clone())),
            (t.s("col.position"), html! { a href={"/org/" (p.id)} { (p.name) " (" (p.code) ")" } }),
            (t.s("col.territory"), text(p.territory.clone())),
        ]))
        @if let Some(written) = done.written {
            div #plan-outcome {
                p #plan-written { (t.f("week_plan.written", &[
                    ("n", &written.to_string()),
                    ("removed", &done.removed.unwrap_or(0).to_string()),
                ])) }
                @if !kept.is_empty() {
                    p #plan-kept { (t.f("week_plan.kept", &[("dates", &kept.join(", "))])) }
                }
            }
        }
        @if !p.live {
            p #plan-ended { (t.s("week_plan.ended")) }
        } @else if user.can_write() {
            form.editor #week-plan-form method="post" action={"/routes/week-plan/" (id)} {
                (csrf_field(&user))
                div.plan-days {
                    @for (n, key) in WEEKDAYS.iter().enumerate() {
                        label { (t.s(key))
                            textarea id={"day-" (n)} name={"day" (n)} rows="8" {
                                @for o in &current[n] { (o.code) "\n" }
                            }
                        }
                    }
                }
                label { (t.s("week_plan.from")) input #plan-from name="from" value=(from) required placeholder="YYYY-MM-DD" maxlength="10"; }
                label { (t.s("week_plan.weeks")) input #plan-weeks name="weeks" type="number" value="4" min="1" max=(MAX_WEEKS) required; }
                button #save-week-plan type="submit" { (t.s("week_plan.generate")) }
            }
            p.hint { (t.s("week_plan.hint")) }
        }
        h2 { (t.s("week_plan.coming")) }
        table.list #planned-routes {
            thead { tr { th { (t.s("col.date")) } th { (t.s("week_plan.weekday")) } th.num { (t.s("col.stops")) } th.num { (t.s("nav.visits")) } } }
            tbody {
                @if planned.is_empty() { tr { td.empty colspan="4" { (t.s("list.empty")) } } }
                @for r in &planned { tr id={"route-" (r.date)} {
                    td { a href={"/routes/" (r.id)} { (r.date) } }
                    td { @if let Some(day) = dates::parse_day_number(&r.date) { (t.s(WEEKDAYS[weekday(day)])) } }
                    td.num { (r.stops) }
                    td.num { (r.visits) }
                } }
            }
        }
        h2 { (t.s("week_plan.outlets")) }
        table.list #territory-outlets {
            thead { tr { th { (t.s("col.code")) } th { (t.s("col.name")) } th { (t.s("col.address")) } } }
            tbody {
                @if outlets.is_empty() { tr { td.empty colspan="3" { (t.s("list.empty")) } } }
                @for o in &outlets { tr {
                    td.code { (o.code) } td { a href={"/outlets/" (o.id)} { (o.name) } } td { (o.address) }
                } }
            }
        }
        p { a href="/routes" { (t.s("nav.routes")) } }
    };
    let title = t.f("week_plan.title", &[("position", &p.name)]);
    Ok(layout(&t, &user, &title, body))
}

/// The outlet codes of a day's text box: one a line (commas, semicolons and spaces also
/// separate them), in visiting order.
fn codes(s: &str) -> Vec<String> {
    s.split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// Saves the week plan and generates its routes; back to the page with what was done.
async fn save_plan(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Change(user, f): Change<Fields>,
) -> WebResult<Response> {
    let t = user.t();
    let p = visible(&state, &user, id).await?;
    let plan = WeekPlan {
        from: f.get("from").trim().to_string(),
        weeks: f.get("weeks").trim().parse().unwrap_or(0),
        days: std::array::from_fn(|n| codes(f.get(&format!("day{n}")))),
    };
    let saved = state
        .store
        .save_week_plan(p.distributor_id, id, &plan)
        .await;
    let outcome = saved.map_err(|e| match e {
        StoreError::Refused(Problem::WeekPlanOutlet(code)) => WebError::Page(
            crate::error::status_of(&StoreError::Refused(Problem::WeekPlanStops)),
            t.f("week_plan.unknown_outlet", &[("code", &code)]),
        ),
        e => WebError::store(&t, e),
    })?;
    let query = OutcomeQuery::of(&outcome);
    Ok(Redirect::to(&format!("/routes/week-plan/{id}?{query}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_box_reads_codes_in_order_whatever_separates_them() {
        assert_eq!(codes("O1\r\nO2, O3;O4\n\n"), ["O1", "O2", "O3", "O4"]);
        assert!(codes("  \n").is_empty());
    }
}
