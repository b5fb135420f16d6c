//! The list pages of the back office over the store's list engine (`crate::store::list`):
//! the filters, the table, paging and links (this file), export to CSV and XLSX
//! (`export.rs`) and saved views (`views.rs`).
//!
//! URL parameters: `f.KEY=value` (contains / equals / choice / `1` for "missing"),
//! `f.KEY.from` and `f.KEY.to` (dates, in the user's time zone), `sort=KEY`, `dir=asc|desc`,
//! `page=N`, `cols=KEY,KEY` (chosen columns in order), `view=ID` (a saved view).
mod export;
mod views;

use axum::extract::{RawQuery, State};
use maud::{Markup, html};

pub use export::serve_export;
pub use views::save_view;

use super::{T, WebError, WebResult, WebUser, csrf_field, fmt_money, fmt_time, layout};
use crate::AppState;
pub use crate::store::list::{
    COUNT_CAP, Col, EXPORT_CAP, Filter, Kind, ListQuery, ListSpec, MAX_QUERY_KEYS, PAGE_SIZE,
};
use crate::store::list::{RawCell, Value};

/// Refuses an address that asks for more than any list has: more columns or filters than
/// [`MAX_QUERY_KEYS`] (the list would otherwise build them all into its SQL).
pub fn check_query(q: &ListQuery, t: &T) -> WebResult<()> {
    if q.cols.len() > MAX_QUERY_KEYS || q.params.len() > MAX_QUERY_KEYS {
        return Err(WebError::bad(t, "list.too_long"));
    }
    Ok(())
}

/// One row as shown: each visible column's text and link.
pub struct Cell {
    pub text: String,
    pub href: Option<String>,
}

/// A cell's text as the user reads it: translated values, money, times in their zone.
fn cell_text(c: &Col, v: &Value, t: &T, tz: &str) -> String {
    match (c.kind, v) {
        (_, Value::Null) => String::new(),
        (Kind::Enum(prefix), Value::Text(s)) => t.value(prefix, s),
        (Kind::Tags(prefix), Value::Text(s)) => s
            .split(',')
            .filter(|n| !n.is_empty())
            .map(|n| t.value(prefix, n))
            .collect::<Vec<_>>()
            .join(", "),
        (Kind::Money, Value::Int(i)) => fmt_money(*i),
        (Kind::Time, Value::Int(i)) => fmt_time(*i, tz),
        (Kind::Flag, Value::Int(0)) => t.s("common.no"),
        (Kind::Flag, Value::Int(_)) => t.s("common.yes"),
        (Kind::Meters, Value::Real(m)) => format!("{m:.0}"),
        (Kind::Degrees, Value::Int(i)) => fieldsync_protocol::location::e7_text(*i),
        (_, Value::Int(i)) => i.to_string(),
        (_, Value::Real(f)) => f.to_string(),
        (_, Value::Text(s)) => s.clone(),
    }
}

/// Rows of raw values as shown.
fn cells(cols: &[&Col], rows: &[Vec<RawCell>], t: &T, tz: &str) -> Vec<Vec<Cell>> {
    rows.iter()
        .map(|row| {
            cols.iter()
                .zip(row)
                .map(|(c, raw)| Cell {
                    text: cell_text(c, &raw.value, t, tz),
                    href: match (c.link, &raw.link_id) {
                        (Some((prefix, _)), Some(id)) => Some(format!("{prefix}{id}")),
                        _ => None,
                    },
                })
                .collect()
        })
        .collect()
}

/// The list page (every list route): `extra` (what stands above the list: a create form,
/// tabs), the filters, the table, paging, views, export links.
pub async fn list_page(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
    spec: &'static ListSpec,
    extra: Markup,
) -> WebResult<Markup> {
    let t = user.t();
    let q = views::resolve_view(&state, &user, spec, raw.as_deref()).await?;
    let q = spec.with_defaults(q, state.clock.now(), &user.timezone);
    let cols = spec.visible(&q);
    let selection = state
        .store
        .list_select(spec, &q, &user.scope, &user.timezone)
        .await?;
    let count = state.store.list_count(spec, &selection, COUNT_CAP).await?;
    let raw_rows = state
        .store
        .list_rows(
            spec,
            &selection,
            &cols,
            (PAGE_SIZE, (q.page - 1) * PAGE_SIZE),
        )
        .await?;
    let rows = cells(&cols, &raw_rows, &t, &user.timezone);
    let saved = views::views(&state, &user, spec.key).await?;
    let current_sort = q.sort.clone().unwrap_or_else(|| spec.sort.to_string());
    let current_desc = q.desc.unwrap_or(q.sort.is_none() && spec.desc);
    let first = (q.page - 1) * PAGE_SIZE;
    let count_text = if count > COUNT_CAP {
        t.f("list.count_more", &[("n", &COUNT_CAP.to_string())])
    } else {
        t.f("list.count", &[("n", &count.to_string())])
    };
    let body = html! {
        (extra)
        form.filters #filters method="get" action=(spec.path) {
            @for (k, v) in q.params.iter().filter(|(k, _)| k == "view") { input type="hidden" name=(k) value=(v); }
            @if !q.cols.is_empty() { input type="hidden" name="cols" value=(q.cols.join(",")); }
            @for c in spec.cols.iter().filter(|c| c.filter != Filter::None) {
                @let key = format!("f.{}", c.key);
                label.filter {
                    span { @if c.filter == Filter::Missing { (t.s("list.without_mapping")) } @else { (t.s(c.label)) } }
                    @match c.filter {
                        Filter::Contains | Filter::Equals => {
                            input name=(key) value=(q.get(&key).unwrap_or_default());
                        }
                        Filter::DateRange => {
                            @let from = format!("{key}.from");
                            @let to = format!("{key}.to");
                            input type="date" name=(from) value=(q.get(&from).unwrap_or_default());
                            input type="date" name=(to) value=(q.get(&to).unwrap_or_default());
                        }
                        Filter::Choice(values) => {
                            select name=(key) {
                                option value="" { (t.s("list.any")) }
                                @for v in values {
                                    @let prefix = if let Kind::Enum(p) = c.kind { p } else { "" };
                                    option value=(v) selected[q.get(&key) == Some(*v)] { (t.value(prefix, v)) }
                                }
                            }
                        }
                        Filter::Tag(values) => {
                            select name=(key) {
                                option value="" { (t.s("list.any")) }
                                @let prefix = if let Kind::Tags(p) = c.kind { p } else { "" };
                                option value="*" selected[q.get(&key) == Some("*")] { (t.value(prefix, "any")) }
                                @for v in values {
                                    option value=(v) selected[q.get(&key) == Some(*v)] { (t.value(prefix, v)) }
                                }
                            }
                        }
                        Filter::Missing => {
                            input type="checkbox" name=(key) value="1" checked[q.get(&key) == Some("1")];
                        }
                        Filter::YesNo => {
                            select name=(key) {
                                option value="" { (t.s("list.any")) }
                                option value="1" selected[q.get(&key) == Some("1")] { (t.s("common.yes")) }
                                option value="0" selected[q.get(&key) == Some("0")] { (t.s("common.no")) }
                            }
                        }
                        Filter::None => {}
                    }
                }
            }
            button #apply-filters type="submit" { (t.s("list.apply")) }
            " " a href=(spec.path) { (t.s("list.reset")) }
        }
        div.list-bar {
            span #row-count { (count_text) }
            " · " (t.s("list.export")) ": "
            a #export-csv href={(spec.path) "/export?" (q.with(&[("page", None), ("format", Some("csv".into()))]))} { "CSV" }
            " "
            a #export-xlsx href={(spec.path) "/export?" (q.with(&[("page", None), ("format", Some("xlsx".into()))]))} { "XLSX" }
            @if spec.cols.iter().any(|c| c.import.is_some()) {
                " · " (t.s("list.export_for_import")) ": "
                a #export-import-csv href={(spec.path) "/export?" (q.with(&[("page", None), ("format", Some("csv".into())), ("layout", Some("import".into()))]))} { "CSV" }
                " "
                a #export-import-xlsx href={(spec.path) "/export?" (q.with(&[("page", None), ("format", Some("xlsx".into())), ("layout", Some("import".into()))]))} { "XLSX" }
            }
            @if !saved.is_empty() {
                " · " (t.s("list.views")) ": "
                @for v in &saved { a.view href={(spec.path) "?view=" (v.id)} { (v.name) } " " }
            }
        }
        table.list #list {
            thead { tr {
                @for c in &cols {
                    @let active = current_sort == c.key;
                    @let next_desc = if active { !current_desc } else { false };
                    th { a href={"?" (q.with(&[("sort", Some(c.key.to_string())), ("dir", Some(if next_desc { "desc" } else { "asc" }.to_string())), ("page", None)]))} data-col=(c.key) {
                        (t.s(c.label))
                        @if active { (if current_desc { " ▼" } else { " ▲" }) }
                    } }
                }
            } }
            tbody {
                @if rows.is_empty() { tr { td.empty colspan=(cols.len()) { (t.s("list.empty")) } } }
                @for row in &rows { tr {
                    @for cell in row { td {
                        @if let Some(href) = &cell.href { a href=(href) { (cell.text) } } @else { (cell.text) }
                    } }
                } }
            }
        }
        nav.pager {
            @if q.page > 1 { a #prev-page href={"?" (q.with(&[("page", Some((q.page - 1).to_string()))]))} { "← " (t.s("list.prev")) } " " }
            span { (t.f("list.rows", &[("from", &(first + 1).min(count).to_string()), ("to", &(first + rows.len() as i64).to_string())])) }
            @if first + (rows.len() as i64) < count { " " a #next-page href={"?" (q.with(&[("page", Some((q.page + 1).to_string()))]))} { (t.s("list.next")) " →" } }
        }
        details.columns {
            summary { (t.s("list.columns")) }
            form method="post" action="/views" {
                (csrf_field(&user))
                input type="hidden" name="list" value=(spec.key);
                input type="hidden" name="query" value=(q.with(&[("page", None), ("cols", None), ("sort", None), ("dir", None)]));
                table {
                    @for (i, c) in spec.cols.iter().enumerate() {
                        @let pos = cols.iter().position(|v| v.key == c.key);
                        tr {
                            td { input type="checkbox" name="col" value=(c.key) checked[pos.is_some()]; }
                            td { (t.s(c.label)) }
                            td { input.pos type="number" name={"pos." (c.key)} value=(pos.map(|p| p + 1).unwrap_or(cols.len() + i + 1)) min="1"; }
                        }
                    }
                }
                label { (t.s("list.view_name")) input name="name" required; }
                button #save-view type="submit" { (t.s("list.save_view")) }
            }
        }
    };
    Ok(layout(&t, &user, &t.s(spec.title), body))
}
