//! The payment calendar, in the back office and the distributor's portal: the open invoices
//! the distributor's system reported (`store::receivables`), overdue first, then week by week
//! of their due dates, for all outlets, one agent's (its position's territory) or one outlet.
//! Days are the key user's own (its time zone).
use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use fieldsync_protocol::dates;
use maud::{Markup, html};
use serde::Deserialize;

use super::{WebResult, WebUser, fmt_money, layout, picked, today, user_distributors};
use crate::AppState;
use crate::store::receivables::{CalendarEntry, CalendarFilter};

pub fn router() -> Router<AppState> {
    Router::new().route("/receivables", get(calendar))
}

#[derive(Deserialize, Default)]
struct CalendarQuery {
    #[serde(default)]
    position_id: String,
    #[serde(default)]
    outlet_id: String,
}

/// Most invoices one page shows.
const PAGE_LIMIT: i64 = 5_000;

/// The bucket of a due date: 0 overdue, then the Monday of its week (day number).
fn bucket(due: &str, today: i64) -> i64 {
    match dates::parse_day_number(due) {
        Some(d) if d < today => 0,
        Some(d) => d - (d + 3).rem_euclid(7),
        None => 0,
    }
}

async fn calendar(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<CalendarQuery>,
) -> WebResult<Markup> {
    let t = user.t();
    let filter = CalendarFilter {
        position_id: picked(&user, &q.position_id)?,
        outlet_id: picked(&user, &q.outlet_id)?,
        limit: PAGE_LIMIT,
    };
    let today_s = today(state.clock.now(), &user.timezone);
    let today_n = dates::parse_day_number(&today_s).unwrap_or(0);
    let mut positions = Vec::new();
    let mut entries: Vec<(String, CalendarEntry)> = Vec::new();
    for (d, _) in user_distributors(&state, &user).await? {
        for p in state.store.live_positions(d).await? {
            positions.push((p.id, format!("{} ({})", p.name, p.code)));
        }
        let currency = state.store.distributor_currency(d).await?;
        for e in state.store.payment_calendar(d, &filter).await? {
            let c = if e.currency.is_empty() {
                currency.clone()
            } else {
                e.currency.clone()
            };
            entries.push((c, e));
        }
    }
    // (bucket, currency) → invoices; totals per currency for the summary.
    let mut buckets: BTreeMap<i64, Vec<&(String, CalendarEntry)>> = BTreeMap::new();
    let mut totals: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    let week_end = today_n + (6 - (today_n + 3).rem_euclid(7));
    for entry in &entries {
        let (c, e) = entry;
        let b = bucket(&e.due_date, today_n);
        buckets.entry(b).or_default().push(entry);
        let due = dates::parse_day_number(&e.due_date).unwrap_or(today_n);
        let tot = totals.entry(c.as_str()).or_default();
        tot.0 += e.open_minor;
        if due < today_n {
            tot.1 += e.open_minor;
        } else if due <= week_end {
            tot.2 += e.open_minor;
        }
    }
    let chosen_position = filter.position_id.unwrap_or(0);
    let body = html! {
        form.inline #calendar-filter method="get" action="/receivables" {
            label { (t.s("col.position"))
                select #calendar-position name="position_id" {
                    option value="" { (t.s("receivables.all_agents")) }
                    @for (id, name) in &positions {
                        option value=(id) selected[*id == chosen_position] { (name) }
                    }
                }
            }
            @if let Some(o) = filter.outlet_id { input type="hidden" name="outlet_id" value=(o); }
            button #calendar-apply type="submit" { (t.s("list.apply")) }
            @if filter.outlet_id.is_some() { a href="/receivables" { (t.s("receivables.all_outlets")) } }
        }
        p.hint { (t.f("receivables.as_of", &[("today", &today_s)])) }
        @if entries.is_empty() {
            p.empty #calendar-empty { (t.s("receivables.none")) }
        } @else {
            table.list #calendar-totals {
                thead { tr {
                    th { (t.s("receivables.currency")) } th.num { (t.s("receivables.owed")) }
                    th.num { (t.s("receivables.overdue")) } th.num { (t.s("receivables.due_week")) }
                } }
                tbody {
                    @for (c, (owed, overdue, week)) in &totals {
                        tr data-currency=(c) {
                            td { (c) } td.num.owed { (fmt_money(*owed)) }
                            td.num.overdue { (fmt_money(*overdue)) } td.num.week { (fmt_money(*week)) }
                        }
                    }
                }
            }
            @for (b, list) in &buckets {
                @let title = if *b == 0 {
                    t.s("receivables.bucket_overdue").to_string()
                } else {
                    t.f("receivables.bucket_week", &[("monday", &dates::format_day_number(*b))])
                };
                @let bucket_id = if *b == 0 { "bucket-overdue".to_string() } else { format!("bucket-{}", dates::format_day_number(*b)) };
                section.bucket id=(bucket_id) {
                    h3 { (title) }
                    table.list {
                        thead { tr {
                            th { (t.s("receivables.due_date")) } th { (t.s("col.outlet")) }
                            th { (t.s("receivables.invoice")) } th { (t.s("receivables.invoice_date")) }
                            th.num { (t.s("receivables.amount")) } th.num { (t.s("receivables.paid")) }
                            th.num { (t.s("receivables.open")) } th { (t.s("receivables.currency")) }
                            th.num { (t.s("receivables.days_overdue")) }
                        } }
                        tbody {
                            @for (c, e) in list.iter().map(|x| (&x.0, &x.1)) {
                                @let late = dates::parse_day_number(&e.due_date).map(|d| (today_n - d).max(0)).unwrap_or(0);
                                tr.invoice data-invoice=(e.invoice_number) class=[(late > 0).then_some("overdue")] {
                                    td { (e.due_date) }
                                    td { a href={"/receivables?outlet_id=" (e.outlet_id)} { (e.outlet_code) " · " (e.outlet_name) } }
                                    td { (e.invoice_number) } td { (e.invoice_date) }
                                    td.num { (fmt_money(e.amount_minor)) } td.num { (fmt_money(e.paid_minor)) }
                                    td.num.open { (fmt_money(e.open_minor)) } td { (c) }
                                    td.num { @if late > 0 { (late) } }
                                }
                            }
                        }
                    }
                }
            }
            @if entries.len() as i64 >= PAGE_LIMIT {
                p.hint { (t.f("receivables.truncated", &[("limit", &PAGE_LIMIT.to_string())])) }
            }
        }
    };
    Ok(layout(&t, &user, &t.s("nav.receivables"), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_dates_fall_into_overdue_or_the_monday_of_their_week() {
        let today = dates::parse_day_number("2026-12-09").unwrap(); // a Wednesday
        assert_eq!(bucket("2026-12-08", today), 0);
        let monday = dates::parse_day_number("2026-12-07").unwrap();
        assert_eq!(bucket("2026-12-09", today), monday);
        assert_eq!(bucket("2026-12-13", today), monday);
        assert_eq!(
            bucket("2026-12-14", today),
            dates::parse_day_number("2026-12-14").unwrap()
        );
    }
}
