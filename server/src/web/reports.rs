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
        .route("/reports/coverage/export", get(coverage_export))
        .route("/reports/plans", get(plans_page))
        .route("/reports/plans/export", get(plans_export))
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
            li { a #report-plans href="/reports/plans" { (t.s("reports.plans")) } " — " (t.s("reports.plans_hint")) }
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
            (export_links("/reports/sales", &query))
        }
        @if report.rows.is_empty() {
            p.empty #report-empty { (t.s("reports.empty")) }
        } @else {
            (chart_block(&state, &chart))
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

/// A report's chart: the canvas, its data and the scripts that draw it (Chart.js, served
/// like Leaflet, and `reports.js`).
fn chart_block(state: &AppState, chart: &serde_json::Value) -> Markup {
    html! {
        div.chart { canvas #report-chart height="260" {} }
        script #report-data type="application/json" { (json_script(chart)) }
        script src=(state.web.chart_base() + "/chart.umd.js") {}
        script src="/assets/reports.js" {}
    }
}

/// Refuses to export a report cut at [`MAX_ROWS`] (a file must hold the whole report).
fn whole(t: &crate::web::i18n::T, truncated: bool) -> WebResult<()> {
    if truncated {
        return Err(WebError::Page(
            StatusCode::UNPROCESSABLE_ENTITY,
            t.f("reports.too_many", &[("limit", &MAX_ROWS.to_string())]),
        ));
    }
    Ok(())
}

/// A report's CSV and XLSX links: its export path with the page's parameters.
fn export_links(path: &str, query: &str) -> Markup {
    html! {
        a #report-csv href={(path) "/export?format=csv&" (query)} { "CSV" }
        " "
        a #report-xlsx href={(path) "/export?format=xlsx&" (query)} { "XLSX" }
    }
}

/// Colours of a chart's two series (planned or ordered, and what came of it).
const FIRST: &str = "#94a3b8";
const SECOND: &str = "#1d4ed8";

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
    whole(&t, report.truncated)?;
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
    let rows: Vec<Vec<String>> = rows.into_iter().map(Vec::from).collect();
    table_file(
        &t,
        &format!("sales-{}-{}", p.from, p.to),
        &q.format,
        &header_row,
        &rows,
        2,
    )
}

/// A report's table as a CSV or XLSX download (`format` "xlsx", else CSV): the header, then
/// the rows; in XLSX the columns from `numbers_from` on are numbers. A CSV cell a spreadsheet
/// would run as a formula is written with a leading `'`.
fn table_file(
    t: &crate::web::i18n::T,
    name: &str,
    format: &str,
    header_row: &[String],
    rows: &[Vec<String>],
    numbers_from: usize,
) -> WebResult<Response> {
    if format == "xlsx" {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        let cell_err = |_| WebError::bad(t, "error.internal");
        for (c, h) in header_row.iter().enumerate() {
            sheet.write_string(0, c as u16, h).map_err(cell_err)?;
        }
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                let at = (r as u32 + 1, c as u16);
                match v.parse::<f64>() {
                    Ok(n) if c >= numbers_from => sheet.write_number(at.0, at.1, n).map(|_| ()),
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
    for row in rows {
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
    // The chart: ordered against invoiced money of the 20 outlets that differ most.
    let top = r.rows.iter().take(20);
    let recon_chart = json!({
        "labels": top.clone().map(|row| row.outlet.clone()).collect::<Vec<_>>(),
        "datasets": [
            {"label": t.s("reports.ordered_money"), "color": FIRST,
             "values": top.clone().map(|row| row.ordered_minor as f64 / 100.0).collect::<Vec<_>>()},
            {"label": t.s("reports.invoiced_money"), "color": SECOND,
             "values": top.map(|row| row.invoiced_minor as f64 / 100.0).collect::<Vec<_>>()},
        ],
    });
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
            (export_links("/reports/reconciliation", &query))
        }
        p.hint { (t.s("reports.recon_hint")) }
        @if !r.rows.is_empty() { (chart_block(&state, &recon_chart)) }
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
    whole(&t, r.truncated)?;
    let header_row: Vec<String> = [
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
    .map(|k| t.s(k))
    .collect();
    let line = |label: String, row: &crate::store::reports::ReconRow| {
        vec![
            label,
            super::fmt_qty(row.ordered_milli),
            super::fmt_qty(row.confirmed_milli),
            super::fmt_qty(row.shipped_milli),
            super::fmt_qty(row.invoiced_milli),
            fmt_money(row.ordered_minor),
            fmt_money(row.invoiced_minor),
            fmt_money(row.difference_minor()),
        ]
    };
    let mut rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| line(row.outlet.clone(), row))
        .collect();
    rows.push(line(t.s("list.total"), &r.total));
    table_file(
        &t,
        &format!("reconciliation-{}-{}", p.from, p.to),
        &q.format,
        &header_row,
        &rows,
        1,
    )
}

async fn coverage_page(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<SalesQuery>,
) -> WebResult<Markup> {
    let t = user.t();
    let (p, r) = coverage(&state, &user, &q).await?;
    // The chart: route stops planned against covered, per day over all agents.
    let mut by_day: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
    for row in &r.rows {
        let e = by_day.entry(row.day.as_str()).or_default();
        e.0 += row.planned;
        e.1 += row.covered;
    }
    let coverage_chart = json!({
        "labels": by_day.keys().collect::<Vec<_>>(),
        "datasets": [
            {"label": t.s("reports.planned"), "color": FIRST, "values": by_day.values().map(|v| v.0).collect::<Vec<_>>()},
            {"label": t.s("reports.covered"), "color": SECOND, "values": by_day.values().map(|v| v.1).collect::<Vec<_>>()},
        ],
    });
    let query = format!("from={}&to={}", p.from, p.to);
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
            (export_links("/reports/coverage", &query))
        }
        p.hint { (t.s("reports.coverage_hint")) }
        @if !r.rows.is_empty() { (chart_block(&state, &coverage_chart)) }
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

/// The coverage report's parameters and rows; a range over [`MAX_COVERAGE_DAYS`] is refused
/// (it reads every route stop and visit of its range).
async fn coverage(
    state: &AppState,
    user: &WebUser,
    q: &SalesQuery,
) -> WebResult<(SalesParams, crate::store::reports::Coverage)> {
    let t = user.t();
    let p = params(state, user, q).await?;
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
    Ok((p, r))
}

async fn coverage_export(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<SalesQuery>,
) -> WebResult<Response> {
    let t = user.t();
    let (p, r) = coverage(&state, &user, &q).await?;
    whole(&t, r.truncated)?;
    let header_row: Vec<String> = [
        "reports.group_agent",
        "reports.group_day",
        "reports.planned",
        "reports.covered",
        "reports.percent",
        "reports.visits",
        "reports.unplanned",
        "reports.flagged",
    ]
    .iter()
    .map(|k| t.s(k))
    .collect();
    let line = |agent: String, day: String, row: &crate::store::reports::CoverageRow| {
        vec![
            agent,
            day,
            row.planned.to_string(),
            row.covered.to_string(),
            row.percent().to_string(),
            row.visits.to_string(),
            row.unplanned.to_string(),
            row.flagged.to_string(),
        ]
    };
    let mut rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| line(row.agent.clone(), row.day.clone(), row))
        .collect();
    rows.push(line(t.s("list.total"), String::new(), &r.total));
    table_file(
        &t,
        &format!("coverage-{}-{}", p.from, p.to),
        &q.format,
        &header_row,
        &rows,
        2,
    )
}

#[derive(Deserialize, Default, Clone)]
struct PlansQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    format: String,
}

/// The plan report's months (default: the last three up to this one), scope and rows.
async fn plan_report(
    state: &AppState,
    user: &WebUser,
    q: &PlansQuery,
) -> WebResult<(String, String, String, crate::store::reports::PlanReport)> {
    let t = user.t();
    let this_month = today(state.clock.now(), &user.timezone)[..7].to_string();
    let to = if q.to.is_empty() {
        this_month.clone()
    } else {
        q.to.trim().to_string()
    };
    let from = if q.from.is_empty() {
        crate::store::plans::is_period(&to)
            .then(|| {
                let first = fieldsync_protocol::dates::parse(&format!("{to}-01"))?;
                let back = first.checked_sub(jiff::Span::new().months(2)).ok()?;
                Some(fieldsync_protocol::dates::format(back)[..7].to_string())
            })
            .flatten()
            .unwrap_or_else(|| to.clone())
    } else {
        q.from.trim().to_string()
    };
    let Some(months) = crate::store::reports::months_between(&from, &to) else {
        return Err(WebError::Page(
            StatusCode::BAD_REQUEST,
            t.f(
                "reports.bad_months",
                &[("n", &crate::store::reports::MAX_PLAN_MONTHS.to_string())],
            ),
        ));
    };
    let scope = match q.scope.as_str() {
        "outlet" | "position" => q.scope.clone(),
        _ => String::new(),
    };
    let ids = user_distributor_ids(state, user).await?;
    let report = state
        .store
        .plan_report(&ids, &months, &scope, MAX_ROWS)
        .await?;
    Ok((from, to, scope, report))
}

/// What a plan covers: everything, a category or a brand.
fn plan_what(t: &crate::web::i18n::T, f: &crate::store::plans::PlanForm) -> String {
    if !f.brand.is_empty() {
        format!("{}: {}", t.s("plans.brand"), f.brand)
    } else if !f.category.is_empty() {
        format!("{}: {}", t.s("plans.category"), f.category)
    } else {
        t.s("plans.all_products")
    }
}

/// A target or an achievement in its measure's unit.
fn plan_amount(measure: &str, v: i64) -> String {
    if measure == "money" {
        fmt_money(v)
    } else {
        super::fmt_qty(v)
    }
}

/// Percent of a target, rounded down ('' without a target).
fn percent_of(achieved: i64, target: i64) -> String {
    if target <= 0 {
        String::new()
    } else {
        ((i128::from(achieved) * 100 / i128::from(target)) as i64).to_string()
    }
}

async fn plans_page(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<PlansQuery>,
) -> WebResult<Markup> {
    let t = user.t();
    let (from, to, scope, r) = plan_report(&state, &user, &q).await?;
    let query = format!("from={from}&to={to}&scope={scope}");
    let chart = json!({
        "labels": r.months.iter().map(|m| m.period.clone()).collect::<Vec<_>>(),
        "datasets": [
            {"label": t.s("reports.plan_target"), "color": FIRST,
             "values": r.months.iter().map(|m| m.money_target as f64 / 100.0).collect::<Vec<_>>()},
            {"label": t.s("reports.plan_achieved"), "color": SECOND,
             "values": r.months.iter().map(|m| m.money_achieved as f64 / 100.0).collect::<Vec<_>>()},
        ],
    });
    let totals = |id: &str, label: String, m: &crate::store::reports::PlanMonth| {
        html! {
            tr.total id=(format!("{id}-money")) {
                td colspan="4" { (label) " · " (t.value("plan_measure", "money")) }
                td.num.target { (fmt_money(m.money_target)) } td.num.achieved { (fmt_money(m.money_achieved)) }
                td.num.percent { (percent_of(m.money_achieved, m.money_target)) }
                td.num.gap { (fmt_money(m.money_target - m.money_achieved)) } td {}
            }
            tr.total id=(format!("{id}-quantity")) {
                td colspan="4" { (label) " · " (t.value("plan_measure", "quantity")) }
                td.num.target { (super::fmt_qty(m.quantity_target)) } td.num.achieved { (super::fmt_qty(m.quantity_achieved)) }
                td.num.percent { (percent_of(m.quantity_achieved, m.quantity_target)) }
                td.num.gap { (super::fmt_qty(m.quantity_target - m.quantity_achieved)) } td {}
            }
        }
    };
    let body = html! {
        form.inline #report-params method="get" action="/reports/plans" {
            label { (t.s("reports.from")) input #report-from type="month" name="from" value=(from); }
            label { (t.s("reports.to")) input #report-to type="month" name="to" value=(to); }
            label { (t.s("reports.plan_scope"))
                select #report-scope name="scope" {
                    option value="" selected[scope.is_empty()] { (t.s("list.any")) }
                    option value="outlet" selected[scope == "outlet"] { (t.s("reports.group_outlet")) }
                    option value="position" selected[scope == "position"] { (t.s("reports.group_agent")) }
                }
            }
            button #report-apply type="submit" { (t.s("list.apply")) }
            (export_links("/reports/plans", &query))
        }
        p.hint { (t.s("reports.plans_hint")) }
        @if r.rows.is_empty() {
            p.empty #report-empty { (t.s("reports.empty")) }
        } @else {
            (chart_block(&state, &chart))
        }
        @if r.truncated { p.hint { (t.f("reports.truncated", &[("limit", &MAX_ROWS.to_string())])) } }
        table.list #report {
            thead { tr {
                th { (t.s("reports.month")) } th { (t.s("reports.plan_scope")) } th { (t.s("reports.plan_what")) }
                th { (t.s("reports.plan_measure")) }
                th.num { (t.s("reports.plan_target")) } th.num { (t.s("reports.plan_achieved")) } th.num { "%" }
                th.num { (t.s("reports.plan_gap")) } th { (t.s("reports.plan_source")) }
            } }
            tbody {
                @for p in &r.rows {
                    tr.row data-plan=(p.id) {
                        td { (p.form.period) }
                        td { (p.scope_code) " · " (p.scope_name) }
                        td { (plan_what(&t, &p.form)) }
                        td { (t.value("plan_measure", &p.form.measure)) }
                        td.num.target { (plan_amount(&p.form.measure, p.form.target)) }
                        td.num.achieved { (plan_amount(&p.form.measure, p.achieved)) }
                        td.num.percent { (percent_of(p.achieved, p.form.target)) }
                        td.num.gap class=[(p.achieved < p.form.target).then_some("differs")] { (plan_amount(&p.form.measure, p.form.target - p.achieved)) }
                        td { (t.value("plan_source", p.achieved_from)) }
                    }
                }
            }
            tfoot {
                @for m in &r.months { (totals(&format!("report-month-{}", m.period), m.period.clone(), m)) }
                (totals("report-total", t.s("list.total"), &r.total))
            }
        }
    };
    Ok(layout(&t, &user, &t.s("reports.plans"), body))
}

async fn plans_export(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<PlansQuery>,
) -> WebResult<Response> {
    let t = user.t();
    let (from, to, _, r) = plan_report(&state, &user, &q).await?;
    whole(&t, r.truncated)?;
    let header_row: Vec<String> = [
        "reports.month",
        "reports.plan_scope",
        "reports.plan_what",
        "reports.plan_measure",
        "reports.plan_target",
        "reports.plan_achieved",
        "reports.percent",
        "reports.plan_gap",
        "reports.plan_source",
    ]
    .iter()
    .map(|k| t.s(k))
    .collect();
    let mut rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|p| {
            vec![
                p.form.period.clone(),
                format!("{} · {}", p.scope_code, p.scope_name),
                plan_what(&t, &p.form),
                t.value("plan_measure", &p.form.measure),
                plan_amount(&p.form.measure, p.form.target),
                plan_amount(&p.form.measure, p.achieved),
                percent_of(p.achieved, p.form.target),
                plan_amount(&p.form.measure, p.form.target - p.achieved),
                t.value("plan_source", p.achieved_from),
            ]
        })
        .collect();
    for (measure, target, achieved) in [
        ("money", r.total.money_target, r.total.money_achieved),
        (
            "quantity",
            r.total.quantity_target,
            r.total.quantity_achieved,
        ),
    ] {
        rows.push(vec![
            t.s("list.total"),
            String::new(),
            String::new(),
            t.value("plan_measure", measure),
            plan_amount(measure, target),
            plan_amount(measure, achieved),
            percent_of(achieved, target),
            plan_amount(measure, target - achieved),
            String::new(),
        ]);
    }
    table_file(
        &t,
        &format!("plans-{from}-{to}"),
        &q.format,
        &header_row,
        &rows,
        4,
    )
}
