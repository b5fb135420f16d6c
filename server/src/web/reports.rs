//! Reports in the back office. The sales report: a date range (the user's days), the source
//! (orders, or the distributor's imported invoices) and a grouping (agent, outlet, brand,
//! category, day); a table with a totals row over everything the filter covers, a bar chart
//! (Chart.js from its npm package, served like Leaflet), and CSV / XLSX export under the same
//! 10,000-row rule as the lists. It covers the distributors the user may see.
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::{
    WebError, WebResult, WebUser, fmt_money, json_script, layout, today, user_distributor_ids,
};
use crate::AppState;
use crate::store::reports::{GroupBy, SalesParams, SalesReport, Source};

/// Rows a report shows or exports at most.
pub const MAX_ROWS: i64 = 10_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reports", get(index))
        .route("/reports/sales", get(sales_page))
        .route("/reports/sales/export", get(sales_export))
        .route("/reports/reconciliation", get(recon_page))
        .route("/reports/coverage", get(coverage_page))
        .route("/reports/reconciliation/export", get(recon_export))
        .route("/assets/reports.js", get(reports_js))
        .route("/assets/chart/{*file}", get(chart_file))
}

async fn reports_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("reports.js"),
    )
}

/// Chart.js from its npm package (`node_modules/chart.js/dist`, beside Leaflet's).
async fn chart_file(
    State(state): State<AppState>,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Response {
    match state.web.chart_dir() {
        Some(dir) => super::map::library_file(&dir, &file).await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn index(user: WebUser) -> WebResult<Markup> {
    let t = user.t();
    let body = html! {
        ul.reports {
            li { a #report-sales href="/reports/sales" { (t.s("reports.sales")) } " — " (t.s("reports.sales_hint")) }
            li { a #report-recon href="/reports/reconciliation" { (t.s("reports.recon")) } " — " (t.s("reports.recon_hint")) }
            li { a #report-coverage href="/reports/coverage" { (t.s("reports.coverage")) } " — " (t.s("reports.coverage_hint")) }
        }
    };
    Ok(layout(&t, &user, &t.s("nav.reports"), body))
}

#[derive(Deserialize, Default, Clone)]
struct SalesQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    format: String,
}

/// The parameters as the user gave them, with defaults: this month, orders, by agent.
async fn params(state: &AppState, user: &WebUser, q: &SalesQuery) -> WebResult<SalesParams> {
    let t = user.t();
    let today = today(state.clock.now(), &user.timezone);
    let from = if q.from.is_empty() {
        format!("{}-01", &today[..7])
    } else {
        q.from.clone()
    };
    let to = if q.to.is_empty() { today } else { q.to.clone() };
    let (Some(from_ms), Some(to_ms)) = (
        super::day_start_ms(&from, &user.timezone),
        super::day_end_ms(&to, &user.timezone),
    ) else {
        return Err(WebError::bad(&t, "reports.bad_dates"));
    };
    if from > to {
        return Err(WebError::bad(&t, "reports.bad_dates"));
    }
    let offset = jiff::Timestamp::from_millisecond(from_ms)
        .map(|ts| {
            fieldsync_protocol::dates::zone(&user.timezone)
                .to_offset(ts)
                .seconds()
        })
        .unwrap_or(0) as i64
        / 60;
    Ok(SalesParams {
        distributors: user_distributor_ids(state, user).await?,
        source: if q.source == "sales" {
            Source::Sales
        } else {
            Source::Orders
        },
        group: GroupBy::ALL
            .iter()
            .find(|g| g.0 == q.group)
            .map(|g| g.1)
            .unwrap_or(GroupBy::Agent),
        from,
        to,
        from_ms,
        to_ms,
        utc_offset_min: offset,
        limit: MAX_ROWS,
    })
}

async fn sales_page(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<SalesQuery>,
) -> WebResult<Markup> {
    let t = user.t();
    let p = params(&state, &user, &q).await?;
    let report = state.store.sales_report(&p).await?;
    let source = if p.source == Source::Sales {
        "sales"
    } else {
        "orders"
    };
    let group = GroupBy::ALL
        .iter()
        .find(|g| g.1 == p.group)
        .map(|g| g.0)
        .unwrap_or("agent");
    // The chart: the 20 largest rows.
    let chart = json!({
        "labels": report.rows.iter().take(20).map(|r| r.label.clone()).collect::<Vec<_>>(),
        "values": report.rows.iter().take(20).map(|r| r.amount_minor as f64 / 100.0).collect::<Vec<_>>(),
        "title": t.s("reports.amount"),
    });
    let query = format!("from={}&to={}&source={source}&group={group}", p.from, p.to);
    let body = html! {
        form.inline #report-params method="get" action="/reports/sales" {
            (date_inputs(&t, &p))
            label { (t.s("reports.source"))
                select #report-source name="source" {
                    option value="orders" selected[source == "orders"] { (t.s("reports.source_orders")) }
                    option value="sales" selected[source == "sales"] { (t.s("reports.source_sales")) }
                }
            }
            label { (t.s("reports.group"))
                select #report-group name="group" {
                    @for (g, _) in GroupBy::ALL {
                        option value=(g) selected[group == g] { (t.s(group_key(g))) }
                    }
                }
            }
            button #report-apply type="submit" { (t.s("list.apply")) }
            a #report-csv href={"/reports/sales/export?format=csv&" (query)} { "CSV" }
            " "
            a #report-xlsx href={"/reports/sales/export?format=xlsx&" (query)} { "XLSX" }
        }
        @if report.rows.is_empty() {
            p.empty #report-empty { (t.s("reports.empty")) }
        } @else {
            div.chart { canvas #report-chart height="260" {} }
            script #report-data type="application/json" { (json_script(&chart)) }
            script src=(state.web.chart_base() + "/chart.umd.js") {}
            script src="/assets/reports.js" {}
        }
        @if report.truncated { p.hint #report-truncated { (t.f("reports.truncated", &[("limit", &MAX_ROWS.to_string())])) } }
        table.list #report {
            thead { tr {
                th { (t.s(group_key(group))) }
                th.num { (t.s("reports.quantity")) } th.num { (t.s("reports.amount")) }
                th.num { (t.s("reports.lines")) } th.num { "%" }
            } }
            tbody {
                @for r in &report.rows {
                    tr.row data-key=(r.key) {
                        td { (r.label) }
                        td.num.qty { (super::fmt_qty(r.quantity_milli)) }
                        td.num.amount { (fmt_money(r.amount_minor)) }
                        td.num.lines { (r.lines) }
                        td.num { (share(r.amount_minor, report.total.amount_minor)) }
                    }
                }
            }
            tfoot { tr.total #report-total {
                td { (t.s("list.total")) }
                td.num.qty { (super::fmt_qty(report.total.quantity_milli)) }
                td.num.amount { (fmt_money(report.total.amount_minor)) }
                td.num.lines { (report.total.lines) }
                td.num { "100" }
            } }
        }
    };
    Ok(layout(&t, &user, &t.s("reports.sales"), body))
}

/// The first and last day of a report's form.
fn date_inputs(t: &crate::web::i18n::T, p: &SalesParams) -> Markup {
    html! {
        label { (t.s("reports.from")) input #report-from type="date" name="from" value=(p.from); }
        label { (t.s("reports.to")) input #report-to type="date" name="to" value=(p.to); }
    }
}

/// Most days the coverage report spans: it reads every route stop and visit of its range.
pub const MAX_COVERAGE_DAYS: i64 = 93;

/// The catalogue key of a grouping's name.
fn group_key(g: &str) -> &'static str {
    match g {
        "outlet" => "reports.group_outlet",
        "brand" => "reports.group_brand",
        "category" => "reports.group_category",
        "day" => "reports.group_day",
        _ => "reports.group_agent",
    }
}

/// A row's share of the total, in percent with one decimal.
fn share(part: i64, total: i64) -> String {
    if total == 0 {
        return String::new();
    }
    let tenths = (i128::from(part) * 1000 / i128::from(total)) as i64;
    format!("{}.{}", tenths / 10, (tenths % 10).abs())
}

async fn sales_export(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<SalesQuery>,
) -> WebResult<Response> {
    let t = user.t();
    let p = params(&state, &user, &q).await?;
    let report: SalesReport = state.store.sales_report(&p).await?;
    if report.truncated {
        return Err(WebError::Page(
            StatusCode::UNPROCESSABLE_ENTITY,
            t.f("reports.too_many", &[("limit", &MAX_ROWS.to_string())]),
        ));
    }
    let header_row = [
        t.s("reports.key").to_string(),
        t.s(group_key(
            GroupBy::ALL
                .iter()
                .find(|g| g.1 == p.group)
                .map(|g| g.0)
                .unwrap_or("agent"),
        ))
        .to_string(),
        t.s("reports.quantity").to_string(),
        t.s("reports.amount").to_string(),
        t.s("reports.lines").to_string(),
    ];
    let mut rows: Vec<[String; 5]> = report
        .rows
        .iter()
        .map(|r| {
            [
                r.key.clone(),
                r.label.clone(),
                super::fmt_qty(r.quantity_milli),
                fmt_money(r.amount_minor),
                r.lines.to_string(),
            ]
        })
        .collect();
    rows.push([
        String::new(),
        t.s("list.total").to_string(),
        super::fmt_qty(report.total.quantity_milli),
        fmt_money(report.total.amount_minor),
        report.total.lines.to_string(),
    ]);
    let name = format!("sales-{}-{}", p.from, p.to);
    if q.format == "xlsx" {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        let cell_err = |_| WebError::bad(&t, "error.internal");
        for (c, h) in header_row.iter().enumerate() {
            sheet.write_string(0, c as u16, h).map_err(cell_err)?;
        }
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                let at = (r as u32 + 1, c as u16);
                match (c, v.parse::<f64>()) {
                    (2..=4, Ok(n)) => sheet.write_number(at.0, at.1, n).map(|_| ()),
                    _ => sheet.write_string(at.0, at.1, v).map(|_| ()),
                }
                .map_err(cell_err)?;
            }
        }
        let bytes = book.save_to_buffer().map_err(cell_err)?;
        return Ok((
            [
                (
                    header::CONTENT_TYPE,
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}.xlsx\""),
                ),
            ],
            bytes,
        )
            .into_response());
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let defuse = |v: &str| {
        if crate::store::imports::formula_like(v) {
            format!("'{v}")
        } else {
            v.to_string()
        }
    };
    let _ = w.write_record(header_row.iter().map(|h| defuse(h)));
    for row in &rows {
        let _ = w.write_record(row.iter().map(|v| defuse(v)));
    }
    let bytes = w.into_inner().unwrap_or_default();
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

async fn recon_page(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<SalesQuery>,
) -> WebResult<Markup> {
    let t = user.t();
    let p = params(&state, &user, &q).await?;
    let r = state.store.reconciliation(&p).await?;
    let query = format!("from={}&to={}", p.from, p.to);
    let cells = |row: &crate::store::reports::ReconRow| {
        html! {
            td.num.ordered-qty { (super::fmt_qty(row.ordered_milli)) }
            td.num.confirmed-qty { (super::fmt_qty(row.confirmed_milli)) }
            td.num.shipped-qty { (super::fmt_qty(row.shipped_milli)) }
            td.num.invoiced-qty { (super::fmt_qty(row.invoiced_milli)) }
            td.num.ordered-money { (fmt_money(row.ordered_minor)) }
            td.num.invoiced-money { (fmt_money(row.invoiced_minor)) }
            td.num.difference class=[(row.difference_minor() != 0).then_some("differs")] { (fmt_money(row.difference_minor())) }
        }
    };
    let body = html! {
        form.inline #report-params method="get" action="/reports/reconciliation" {
            (date_inputs(&t, &p))
            button #report-apply type="submit" { (t.s("list.apply")) }
            a #report-csv href={"/reports/reconciliation/export?" (query)} { "CSV" }
        }
        p.hint { (t.s("reports.recon_hint")) }
        @if r.truncated { p.hint { (t.f("reports.truncated", &[("limit", &MAX_ROWS.to_string())])) } }
        table.list #report {
            thead { tr {
                th { (t.s("reports.group_outlet")) }
                th.num { (t.s("reports.ordered_qty")) } th.num { (t.s("reports.confirmed_qty")) }
                th.num { (t.s("reports.shipped_qty")) } th.num { (t.s("reports.invoiced_qty")) }
                th.num { (t.s("reports.ordered_money")) } th.num { (t.s("reports.invoiced_money")) }
                th.num { (t.s("reports.difference")) }
            } }
            tbody {
                @if r.rows.is_empty() { tr { td.empty colspan="8" { (t.s("reports.empty")) } } }
                @for row in &r.rows { tr.row data-outlet=(row.outlet_id) { td { (row.outlet) } (cells(row)) } }
            }
            tfoot { tr.total #report-total { td { (t.s("list.total")) } (cells(&r.total)) } }
        }
    };
    Ok(layout(&t, &user, &t.s("reports.recon"), body))
}

async fn recon_export(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<SalesQuery>,
) -> WebResult<Response> {
    let t = user.t();
    let p = params(&state, &user, &q).await?;
    let r = state.store.reconciliation(&p).await?;
    if r.truncated {
        return Err(WebError::Page(
            StatusCode::UNPROCESSABLE_ENTITY,
            t.f("reports.too_many", &[("limit", &MAX_ROWS.to_string())]),
        ));
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let defuse = |v: String| {
        if crate::store::imports::formula_like(&v) {
            format!("'{v}")
        } else {
            v
        }
    };
    let _ = w.write_record(
        [
            "reports.group_outlet",
            "reports.ordered_qty",
            "reports.confirmed_qty",
            "reports.shipped_qty",
            "reports.invoiced_qty",
            "reports.ordered_money",
            "reports.invoiced_money",
            "reports.difference",
        ]
        .iter()
        .map(|k| t.s(k).to_string()),
    );
    let line = |label: String, row: &crate::store::reports::ReconRow| {
        vec![
            defuse(label),
            super::fmt_qty(row.ordered_milli),
            super::fmt_qty(row.confirmed_milli),
            super::fmt_qty(row.shipped_milli),
            super::fmt_qty(row.invoiced_milli),
            fmt_money(row.ordered_minor),
            fmt_money(row.invoiced_minor),
            fmt_money(row.difference_minor()),
        ]
    };
    for row in &r.rows {
        let _ = w.write_record(line(row.outlet.clone(), row));
    }
    let _ = w.write_record(line(t.s("list.total").to_string(), &r.total));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"reconciliation-{}-{}.csv\"",
                    p.from, p.to
                ),
            ),
        ],
        w.into_inner().unwrap_or_default(),
    )
        .into_response())
}

async fn coverage_page(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<SalesQuery>,
) -> WebResult<Markup> {
    let t = user.t();
    let p = params(&state, &user, &q).await?;
    let days = |d: &str| fieldsync_protocol::dates::parse_day_number(d).unwrap_or(0);
    if days(&p.to) - days(&p.from) >= MAX_COVERAGE_DAYS {
        return Err(WebError::Page(
            StatusCode::BAD_REQUEST,
            t.f(
                "reports.range_too_long",
                &[("days", &MAX_COVERAGE_DAYS.to_string())],
            ),
        ));
    }
    let r = state.store.visit_coverage(&p).await?;
    let cells = |row: &crate::store::reports::CoverageRow| {
        html! {
            td.num.planned { (row.planned) } td.num.covered { (row.covered) }
            td.num.percent { (row.percent()) }
            td.num.visits { (row.visits) } td.num.unplanned { (row.unplanned) }
            td.num.flagged class=[(row.flagged > 0).then_some("differs")] { (row.flagged) }
        }
    };
    let body = html! {
        form.inline #report-params method="get" action="/reports/coverage" {
            (date_inputs(&t, &p))
            button #report-apply type="submit" { (t.s("list.apply")) }
        }
        p.hint { (t.s("reports.coverage_hint")) }
        @if r.truncated { p.hint { (t.f("reports.truncated", &[("limit", &MAX_ROWS.to_string())])) } }
        table.list #report {
            thead { tr {
                th { (t.s("reports.group_agent")) } th { (t.s("reports.group_day")) }
                th.num { (t.s("reports.planned")) } th.num { (t.s("reports.covered")) } th.num { "%" }
                th.num { (t.s("reports.visits")) } th.num { (t.s("reports.unplanned")) }
                th.num { (t.s("reports.flagged")) }
            } }
            tbody {
                @if r.rows.is_empty() { tr { td.empty colspan="8" { (t.s("reports.empty")) } } }
                @for row in &r.rows {
                    tr.row data-position=(row.position_id) data-day=(row.day) {
                        td { (row.agent) } td { (row.day) } (cells(row))
                    }
                }
            }
            tfoot { tr.total #report-total { td colspan="2" { (t.s("list.total")) } (cells(&r.total)) } }
        }
    };
    Ok(layout(&t, &user, &t.s("reports.coverage"), body))
}
