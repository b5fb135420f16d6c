//! The one list engine behind every directory and document list: combinable filters,
//! sorting by any column, paging, saved views (which columns, in what order) and export of
//! the visible rows and columns to CSV or XLSX, capped at [`EXPORT_CAP`] rows.
//!
//! A list is a [`ListSpec`]: its `FROM` clause, the column that says which distributor a row
//! belongs to, and its columns. Every filter value is bound as a parameter; column names in a
//! URL are only ever looked up in the spec, never pasted into SQL.
//!
//! URL parameters: `f.KEY=value` (contains / equals / choice / `1` for "missing"),
//! `f.KEY.from` and `f.KEY.to` (dates, in the user's time zone), `sort=KEY`, `dir=asc|desc`,
//! `page=N`, `cols=KEY,KEY` (chosen columns in order), `view=ID` (a saved view).
use axum::Form;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{T, WebError, WebResult, WebUser, csrf_field, fmt_money, fmt_time, layout};
use crate::AppState;
use crate::store::keyusers::Scope;

/// Rows per page.
pub const PAGE_SIZE: i64 = 50;
/// Most rows an export may hold.
pub const EXPORT_CAP: i64 = 10_000;
/// A list page counts its matching rows up to this many ("more than 1000").
pub const COUNT_CAP: i64 = 1_000;

/// How a column's value is read and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
    /// Integer minor units.
    Money,
    /// ms since the epoch, shown in the user's time zone.
    Time,
    /// A distance in metres (REAL).
    Meters,
    /// A value with translations under this catalogue prefix.
    Enum(&'static str),
    /// 0/1.
    Flag,
}

/// How a column can be filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    None,
    /// Case-insensitive substring.
    Contains,
    /// Exact integer.
    Equals,
    /// From / to calendar dates (Time columns).
    DateRange,
    /// One of these values (Enum columns).
    Choice(&'static [&'static str]),
    /// "Only rows where this is empty" (e.g. outlets without mapping).
    Missing,
    /// Yes / no (Flag columns).
    YesNo,
}

/// One column of a list.
#[derive(Debug, Clone, Copy)]
pub struct Col {
    pub key: &'static str,
    /// Catalogue key of the header.
    pub label: &'static str,
    /// The select expression.
    pub sql: &'static str,
    pub kind: Kind,
    pub filter: Filter,
    /// Shown when no view chose the columns.
    pub default: bool,
    /// A link: (path prefix, SQL of the id appended to it).
    pub link: Option<(&'static str, &'static str)>,
    /// For a `Contains` filter on a joined table's column: find the matching ids in that
    /// (small) table first and filter the list's own indexed column by them.
    pub lookup: Option<Lookup>,
}

/// How a `Contains` filter on a joined column becomes `list_column IN (ids)`.
#[derive(Debug, Clone, Copy)]
pub struct Lookup {
    /// The list's column holding the joined row's id (e.g. `v.mobile_user_id`).
    pub column: &'static str,
    /// The joined table, its text column and its distributor column, e.g.
    /// `("mobile_users", "login", "distributor_id")`.
    pub table: &'static str,
    pub text: &'static str,
    pub distributor: &'static str,
}

/// Most ids a lookup filter hands on; with more matches the filter stays a join condition.
const LOOKUP_MAX: usize = 2_000;
/// Up to this many looked-up ids, the database uses the list column's own index for them.
const LOOKUP_INDEXED: usize = 50;

impl Col {
    pub const fn new(key: &'static str, label: &'static str, sql: &'static str, kind: Kind) -> Col {
        Col {
            key,
            label,
            sql,
            kind,
            filter: Filter::None,
            default: true,
            link: None,
            lookup: None,
        }
    }
    pub const fn filter(mut self, filter: Filter) -> Col {
        self.filter = filter;
        self
    }
    pub const fn hidden(mut self) -> Col {
        self.default = false;
        self
    }
    pub const fn link(mut self, prefix: &'static str, id_sql: &'static str) -> Col {
        self.link = Some((prefix, id_sql));
        self
    }
    pub const fn lookup(
        mut self,
        column: &'static str,
        table: &'static str,
        text: &'static str,
        distributor: &'static str,
    ) -> Col {
        self.lookup = Some(Lookup {
            column,
            table,
            text,
            distributor,
        });
        self
    }
}

/// A list: what it selects from, whose rows are whose, its columns and default order.
#[derive(Debug)]
pub struct ListSpec {
    pub key: &'static str,
    /// Catalogue key of the title.
    pub title: &'static str,
    /// The page's path (export is `PATH/export`).
    pub path: &'static str,
    /// `base alias [LEFT] JOIN table alias ON ...`. Every join is to at most one row, and
    /// inner joins follow foreign keys, so a join that no used column needs is left out.
    pub from: &'static str,
    /// The column holding the row's distributor id (the sync point).
    pub scope: &'static str,
    /// A condition every row meets ("1 = 1" for none).
    pub base_where: &'static str,
    pub cols: &'static [Col],
    /// Default sort column key and direction.
    pub sort: &'static str,
    pub desc: bool,
    /// Unique expression that makes the order total (for stable paging).
    pub tiebreak: &'static str,
    /// A default date window (days back from today) on the first DateRange column.
    pub default_days: Option<i64>,
}

#[derive(Debug, Clone)]
enum Arg {
    I(i64),
    S(String),
}

/// A parsed list request.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub params: Vec<(String, String)>,
    pub sort: Option<String>,
    pub desc: Option<bool>,
    pub page: i64,
    pub cols: Vec<String>,
}

/// Most columns, and most filters, a list address may name.
pub const MAX_QUERY_KEYS: usize = 64;

impl ListQuery {
    pub fn parse(raw: Option<&str>) -> ListQuery {
        let mut q = ListQuery {
            page: 1,
            ..Default::default()
        };
        for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            let (k, v) = (k.into_owned(), v.into_owned());
            match k.as_str() {
                "sort" => q.sort = Some(v),
                "dir" => q.desc = Some(v == "desc"),
                "page" => q.page = v.parse().unwrap_or(1).max(1),
                "cols" => {
                    q.cols = v
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                }
                _ => q.params.push((k, v)),
            }
        }
        q
    }

    /// Refuses an address that asks for more than any list has: more columns or filters
    /// than [`MAX_QUERY_KEYS`] (the list would otherwise build them all into its SQL).
    pub fn check(&self, t: &T) -> WebResult<()> {
        if self.cols.len() > MAX_QUERY_KEYS || self.params.len() > MAX_QUERY_KEYS {
            return Err(WebError::bad(t, "list.too_long"));
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, v)| k == key && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    }

    /// The query string with some keys replaced (None removes them).
    pub fn with(&self, changes: &[(&str, Option<String>)]) -> String {
        let mut pairs: Vec<(String, String)> = self
            .params
            .iter()
            .filter(|(k, v)| !v.is_empty() && k != "view")
            .cloned()
            .collect();
        if let Some(s) = &self.sort {
            pairs.push(("sort".into(), s.clone()));
        }
        if let Some(d) = self.desc {
            pairs.push(("dir".into(), if d { "desc" } else { "asc" }.into()));
        }
        if !self.cols.is_empty() {
            pairs.push(("cols".into(), self.cols.join(",")));
        }
        if self.page > 1 {
            pairs.push(("page".into(), self.page.to_string()));
        }
        for (key, value) in changes {
            pairs.retain(|(k, _)| k != key);
            if let Some(v) = value {
                pairs.push((key.to_string(), v.clone()));
            }
        }
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            ser.append_pair(k, v);
        }
        ser.finish()
    }
}

/// One row as shown: each visible column's text and link.
pub struct Cell {
    pub text: String,
    pub href: Option<String>,
}

/// The SQL pieces of a request, and the values bound to them.
struct Built {
    where_sql: String,
    order_sql: String,
    args: Vec<Arg>,
}

fn like_pattern(s: &str) -> String {
    let escaped = s
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

impl ListSpec {
    fn col(&self, key: &str) -> Option<&Col> {
        self.cols.iter().find(|c| c.key == key)
    }

    /// The columns shown, in order.
    pub fn visible(&self, q: &ListQuery) -> Vec<&Col> {
        let mut chosen: Vec<&Col> = Vec::new();
        for c in q.cols.iter().filter_map(|k| self.col(k)) {
            if !chosen.iter().any(|seen| seen.key == c.key) {
                chosen.push(c);
            }
        }
        if chosen.is_empty() {
            self.cols.iter().filter(|c| c.default).collect()
        } else {
            chosen
        }
    }

    /// Fills in the default date window when the request names no dates.
    pub fn with_defaults(&self, mut q: ListQuery, now: i64, tz: &str) -> ListQuery {
        if let Some(days) = self.default_days
            && let Some(c) = self.cols.iter().find(|c| c.filter == Filter::DateRange)
        {
            let from = format!("f.{}.from", c.key);
            let to = format!("f.{}.to", c.key);
            if !q.params.iter().any(|(k, _)| *k == from || *k == to) {
                let today = fieldsync_protocol::dates::date_at(now, tz);
                let start = today
                    .checked_sub(jiff::Span::new().days(days - 1))
                    .unwrap_or(today);
                q.params.push((from, start.to_string()));
                q.params.push((to, today.to_string()));
            }
        }
        q
    }

    async fn build(
        &self,
        state: &AppState,
        q: &ListQuery,
        scope: &Scope,
        tz: &str,
    ) -> WebResult<Built> {
        let mut args = Vec::new();
        let mut conds = vec![self.base_where.to_string()];
        let param = |args: &mut Vec<Arg>, a: Arg| {
            args.push(a);
            format!("${}", args.len())
        };
        // The head office's scope is written out too: the distributor column leads the
        // lists' indexes, so naming every distributor lets the database walk them.
        let ids = match scope {
            Scope::Only(ids) => ids.clone(),
            Scope::All => {
                let mut ids: Vec<i64> = state
                    .store
                    .distributors()
                    .await?
                    .into_iter()
                    .map(|d| d.id)
                    .collect();
                ids.sort_unstable();
                ids
            }
        };
        if ids.is_empty() {
            conds.push("1 = 0".into());
        } else {
            let ps: Vec<String> = ids.iter().map(|id| param(&mut args, Arg::I(*id))).collect();
            conds.push(format!("{} IN ({})", self.scope, ps.join(", ")));
        }
        for c in self.cols {
            let key = format!("f.{}", c.key);
            match c.filter {
                Filter::None => {}
                Filter::Contains => {
                    if let Some(v) = q.get(&key) {
                        let ids = match c.lookup {
                            Some(l) => lookup_ids(state, l, v, scope).await?,
                            None => None,
                        };
                        match (c.lookup, ids) {
                            (Some(l), Some(ids)) if !ids.is_empty() => {
                                let ps: Vec<String> =
                                    ids.iter().map(|id| param(&mut args, Arg::I(*id))).collect();
                                // A few ids: walk their index. Many: check each row while
                                // walking the date index instead (unary + hides the column's
                                // index; measured 1.5 s -> ms on SQLite at 1,000,000 visits).
                                let column = if ids.len() > LOOKUP_INDEXED {
                                    format!("+{}", l.column)
                                } else {
                                    l.column.to_string()
                                };
                                conds.push(format!("{column} IN ({})", ps.join(", ")));
                            }
                            (Some(_), Some(_)) => conds.push("1 = 0".into()),
                            _ => {
                                let p = param(&mut args, Arg::S(like_pattern(v)));
                                conds.push(format!("LOWER({}) LIKE {p} ESCAPE '\\'", c.sql));
                            }
                        }
                    }
                }
                Filter::Equals => {
                    if let Some(v) = q.get(&key).and_then(|v| v.parse::<i64>().ok()) {
                        let p = param(&mut args, Arg::I(v));
                        conds.push(format!("{} = {p}", c.sql));
                    }
                }
                Filter::Choice(values) => {
                    if let Some(v) = q.get(&key).filter(|v| values.contains(v)) {
                        let p = param(&mut args, Arg::S(v.to_string()));
                        conds.push(format!("{} = {p}", c.sql));
                    }
                }
                Filter::Missing => {
                    if q.get(&key) == Some("1") {
                        conds.push(format!("{} IS NULL", c.sql));
                    }
                }
                Filter::YesNo => match q.get(&key) {
                    Some("1") => conds.push(format!("{} = 1", c.sql)),
                    Some("0") => conds.push(format!("{} = 0", c.sql)),
                    _ => {}
                },
                Filter::DateRange => {
                    if let Some(ms) = q
                        .get(&format!("{key}.from"))
                        .and_then(|d| super::day_start_ms(d, tz))
                    {
                        let p = param(&mut args, Arg::I(ms));
                        conds.push(format!("{} >= {p}", c.sql));
                    }
                    if let Some(ms) = q
                        .get(&format!("{key}.to"))
                        .and_then(|d| super::day_end_ms(d, tz))
                    {
                        let p = param(&mut args, Arg::I(ms));
                        conds.push(format!("{} < {p}", c.sql));
                    }
                }
            }
        }
        let sort = q
            .sort
            .as_deref()
            .and_then(|k| self.col(k))
            .unwrap_or_else(|| self.col(self.sort).expect("default sort column"));
        let desc = q
            .desc
            .unwrap_or(if q.sort.is_some() { false } else { self.desc });
        let dir = if desc { "DESC" } else { "ASC" };
        Ok(Built {
            where_sql: conds.join(" AND "),
            order_sql: format!("{} {dir}, {} {dir}", sort.sql, self.tiebreak),
            args,
        })
    }

    /// The FROM clause with only the joins that `needed` (the SQL that will use it) refers
    /// to, directly or through another kept join's ON condition.
    fn joined_from(&self, needed: &str) -> String {
        let (base, joins) = split_joins(self.from);
        let mut needed = needed.to_string();
        let mut keep = vec![false; joins.len()];
        for (i, (alias, sql)) in joins.iter().enumerate().rev() {
            if uses_alias(&needed, alias) {
                keep[i] = true;
                needed.push(' ');
                needed.push_str(sql);
            }
        }
        let mut out = base.to_string();
        for (i, (_, sql)) in joins.iter().enumerate() {
            if keep[i] {
                out.push(' ');
                out.push_str(sql);
            }
        }
        out
    }

    fn select_sql(&self, cols: &[&Col]) -> String {
        let mut exprs = Vec::new();
        for c in cols {
            exprs.push(c.sql.to_string());
            if let Some((_, id)) = c.link {
                exprs.push(format!("CAST({id} AS TEXT)"));
            }
        }
        exprs.join(", ")
    }

    fn decode(&self, cols: &[&Col], row: &AnyRow, t: &T, tz: &str) -> Vec<Cell> {
        let mut i = 0;
        let mut cells = Vec::with_capacity(cols.len());
        for c in cols {
            let text = match c.kind {
                Kind::Text => row
                    .try_get::<Option<String>, _>(i)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                Kind::Enum(prefix) => row
                    .try_get::<Option<String>, _>(i)
                    .ok()
                    .flatten()
                    .map(|v| t.value(prefix, &v))
                    .unwrap_or_default(),
                Kind::Int => opt_i64(row, i).map(|v| v.to_string()).unwrap_or_default(),
                Kind::Money => opt_i64(row, i).map(fmt_money).unwrap_or_default(),
                Kind::Time => opt_i64(row, i).map(|v| fmt_time(v, tz)).unwrap_or_default(),
                Kind::Flag => match opt_i64(row, i) {
                    Some(0) => t.s("common.no"),
                    Some(_) => t.s("common.yes"),
                    None => String::new(),
                },
                Kind::Meters => row
                    .try_get::<Option<f64>, _>(i)
                    .ok()
                    .flatten()
                    .map(|m| format!("{m:.0}"))
                    .unwrap_or_default(),
            };
            i += 1;
            let href = match c.link {
                Some((prefix, _)) => {
                    let id = row.try_get::<Option<String>, _>(i).ok().flatten();
                    i += 1;
                    id.map(|id| format!("{prefix}{id}"))
                }
                None => None,
            };
            cells.push(Cell { text, href });
        }
        cells
    }

    /// Counts matching rows up to `cap + 1` (so that a huge list costs no full count).
    async fn count(&self, state: &AppState, b: &Built, cap: i64) -> WebResult<i64> {
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM {} WHERE {} LIMIT {}) c",
            self.joined_from(&b.where_sql),
            b.where_sql,
            cap + 1
        );
        let row = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &b.args)
            .fetch_one(state.store.pool())
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    async fn rows(
        &self,
        state: &AppState,
        b: &Built,
        cols: &[&Col],
        (limit, offset): (i64, i64),
        t: &T,
        tz: &str,
    ) -> WebResult<Vec<Vec<Cell>>> {
        let select = self.select_sql(cols);
        let (base, _) = split_joins(self.from);
        let filter_from = self.joined_from(&format!("{} {}", b.where_sql, b.order_sql));
        let sql = if filter_from == base
            && let Some(alias) = base.split_whitespace().nth(1)
        {
            // Filter and order touch only the list's own table: pick the page's rows there
            // first and join the displayed columns for those rows only.
            let from = self.joined_from(&select);
            let joins = from[base.len()..].trim();
            format!(
                "SELECT {select} FROM (SELECT {alias}.* FROM {base} WHERE {} ORDER BY {} \
                 LIMIT {limit} OFFSET {offset}) {alias} {joins} ORDER BY {}",
                b.where_sql, b.order_sql, b.order_sql
            )
        } else {
            let from = self.joined_from(&format!("{select} {} {}", b.where_sql, b.order_sql));
            format!(
                "SELECT {select} FROM {from} WHERE {} ORDER BY {} LIMIT {limit} OFFSET {offset}",
                b.where_sql, b.order_sql
            )
        };
        let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &b.args)
            .fetch_all(state.store.pool())
            .await?;
        Ok(rows.iter().map(|r| self.decode(cols, r, t, tz)).collect())
    }

    /// One page of the list for a user: the rows and the (capped) count.
    pub async fn page_rows(
        &self,
        state: &AppState,
        user: &WebUser,
        q: &ListQuery,
    ) -> WebResult<(Vec<Vec<Cell>>, i64)> {
        let t = user.t();
        let b = self.build(state, q, &user.scope, &user.timezone).await?;
        let cols = self.visible(q);
        let count = self.count(state, &b, COUNT_CAP).await?;
        let rows = self
            .rows(
                state,
                &b,
                &cols,
                (PAGE_SIZE, (q.page - 1) * PAGE_SIZE),
                &t,
                &user.timezone,
            )
            .await?;
        Ok((rows, count))
    }
}

/// Ids of the rows of a lookup's table whose text contains `needle`, within the scope; `None`
/// when there are too many for an `IN` list.
async fn lookup_ids(
    state: &AppState,
    l: Lookup,
    needle: &str,
    scope: &Scope,
) -> WebResult<Option<Vec<i64>>> {
    let mut args = vec![Arg::S(like_pattern(needle))];
    let mut sql = format!(
        "SELECT id FROM {} WHERE LOWER({}) LIKE $1 ESCAPE '\\'",
        l.table, l.text
    );
    if let Scope::Only(ids) = scope {
        if ids.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let ps: Vec<String> = ids
            .iter()
            .map(|id| {
                args.push(Arg::I(*id));
                format!("${}", args.len())
            })
            .collect();
        sql.push_str(&format!(" AND {} IN ({})", l.distributor, ps.join(", ")));
    }
    sql.push_str(&format!(" ORDER BY id LIMIT {}", LOOKUP_MAX + 1));
    let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &args)
        .fetch_all(state.store.pool())
        .await?;
    if rows.len() > LOOKUP_MAX {
        return Ok(None);
    }
    Ok(Some(
        rows.iter()
            .filter_map(|r| r.try_get::<i64, _>(0).ok())
            .collect(),
    ))
}

/// Splits `base [LEFT] JOIN t a ON ... [LEFT] JOIN ...` into the base and (alias, join SQL).
fn split_joins(from: &str) -> (&str, Vec<(&str, &str)>) {
    let mut starts = Vec::new();
    let bytes = from.as_bytes();
    let mut i = 0;
    while i < from.len() {
        let rest = &from[i..];
        let at_word = i == 0 || bytes[i - 1] == b' ';
        if at_word && (rest.starts_with("LEFT JOIN ") || rest.starts_with("JOIN ")) {
            starts.push(i);
            i += if rest.starts_with("LEFT") { 10 } else { 5 };
        } else {
            i += 1;
        }
    }
    let base = from[..starts.first().copied().unwrap_or(from.len())].trim_end();
    let mut joins = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(from.len());
        let sql = from[start..end].trim_end();
        let words: Vec<&str> = sql.split_whitespace().collect();
        let alias = if words[0] == "LEFT" {
            words[3]
        } else {
            words[2]
        };
        joins.push((alias, sql));
    }
    (base, joins)
}

/// Whether SQL refers to `alias.` as a whole word.
fn uses_alias(sql: &str, alias: &str) -> bool {
    let pat = format!("{alias}.");
    sql.match_indices(&pat).any(|(i, _)| {
        i == 0 || !sql.as_bytes()[i - 1].is_ascii_alphanumeric() && sql.as_bytes()[i - 1] != b'_'
    })
}

fn opt_i64(row: &AnyRow, i: usize) -> Option<i64> {
    row.try_get::<Option<i64>, _>(i).ok().flatten()
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    args: &'q [Arg],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for a in args {
        query = match a {
            Arg::I(v) => query.bind(*v),
            Arg::S(v) => query.bind(v.as_str()),
        };
    }
    query
}

/// A saved view of a list.
struct View {
    id: i64,
    name: String,
}

async fn views(state: &AppState, user: &WebUser, list: &str) -> WebResult<Vec<View>> {
    Ok(state
        .store
        .list_views(user.id, list)
        .await?
        .into_iter()
        .map(|v| View {
            id: v.id,
            name: v.name,
        })
        .collect())
}

/// Applies `view=ID` (the user's own saved view): its columns and its filter.
async fn resolve_view(
    state: &AppState,
    user: &WebUser,
    spec: &ListSpec,
    raw: Option<&str>,
) -> WebResult<ListQuery> {
    let q = ListQuery::parse(raw);
    q.check(&user.t())?;
    let Some(id) = q.get("view").and_then(|v| v.parse::<i64>().ok()) else {
        return Ok(q);
    };
    let row = state.store.list_view(id, user.id, spec.key).await?;
    let Some((columns, query)) = row else {
        return Err(WebError::not_found(&user.t()));
    };
    let mut v = ListQuery::parse(Some(&query));
    v.cols = columns
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    v.params.push(("view".into(), id.to_string()));
    Ok(v)
}

/// The list page: filters, the table, paging, views, export links.
pub async fn list_page(
    state: &AppState,
    user: &WebUser,
    spec: &ListSpec,
    raw: Option<&str>,
    extra: Markup,
) -> WebResult<Markup> {
    let t = user.t();
    let q = resolve_view(state, user, spec, raw).await?;
    let q = spec.with_defaults(q, state.clock.now(), &user.timezone);
    let (rows, count) = spec.page_rows(state, user, &q).await?;
    let cols = spec.visible(&q);
    let saved = views(state, user, spec.key).await?;
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
                (csrf_field(user))
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
    Ok(layout(&t, user, &t.s(spec.title), body))
}

/// `PATH/export?format=csv|xlsx&...`: the visible columns and every matching row, up to
/// [`EXPORT_CAP`]; beyond it a clear refusal that asks to narrow the filter.
pub async fn export(
    state: &AppState,
    user: &WebUser,
    spec: &ListSpec,
    raw: Option<&str>,
) -> WebResult<Response> {
    let t = user.t();
    let q = resolve_view(state, user, spec, raw).await?;
    let q = spec.with_defaults(q, state.clock.now(), &user.timezone);
    let b = spec.build(state, &q, &user.scope, &user.timezone).await?;
    let cols = spec.visible(&q);
    let count = spec.count(state, &b, EXPORT_CAP).await?;
    if count > EXPORT_CAP {
        let message = t.f("list.export_cap", &[("n", &EXPORT_CAP.to_string())]);
        return Err(WebError::Page(StatusCode::UNPROCESSABLE_ENTITY, message));
    }
    let rows = spec
        .rows(state, &b, &cols, (EXPORT_CAP, 0), &t, &user.timezone)
        .await?;
    let headers: Vec<String> = cols.iter().map(|c| t.s(c.label)).collect();
    let name = spec.key.replace('_', "-");
    match q.get("format").unwrap_or("csv") {
        "xlsx" => {
            let bytes = xlsx(&headers, &cols, &rows).map_err(|e| {
                tracing::error!(error = %e, "xlsx export");
                WebError::Internal
            })?;
            Ok((
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                            .to_string(),
                    ),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}.xlsx\""),
                    ),
                ],
                bytes,
            )
                .into_response())
        }
        _ => {
            let mut out = String::from("\u{feff}");
            let line = |out: &mut String, fields: &mut dyn Iterator<Item = &str>| {
                let v: Vec<String> = fields.map(csv_field).collect();
                out.push_str(&v.join(","));
                out.push_str("\r\n");
            };
            line(&mut out, &mut headers.iter().map(String::as_str));
            for r in &rows {
                line(&mut out, &mut r.iter().map(|c| c.text.as_str()));
            }
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}.csv\""),
                    ),
                ],
                out,
            )
                .into_response())
        }
    }
}

/// A CSV field: quoted when needed; a leading `= + - @`, TAB or CR is prefixed with `'` so
/// that a spreadsheet never runs it as a formula (OWASP's CSV injection list).
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '@', '\t', '\r'])
        || (s.starts_with('-') && s.parse::<f64>().is_err())
    {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn xlsx(
    headers: &[String],
    cols: &[&Col],
    rows: &[Vec<Cell>],
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let bold = rust_xlsxwriter::Format::new().set_bold();
    for (i, h) in headers.iter().enumerate() {
        sheet.write_string_with_format(0, i as u16, h, &bold)?;
    }
    for (r, row) in rows.iter().enumerate() {
        for (i, cell) in row.iter().enumerate() {
            let numeric = matches!(cols[i].kind, Kind::Int | Kind::Money | Kind::Meters);
            match cell.text.parse::<f64>() {
                Ok(v) if numeric => sheet.write_number(r as u32 + 1, i as u16, v)?,
                _ => sheet.write_string(r as u32 + 1, i as u16, &cell.text)?,
            };
        }
    }
    book.save_to_buffer()
}

#[derive(Deserialize)]
pub struct ViewForm {
    #[serde(default)]
    csrf: String,
    list: String,
    name: String,
    #[serde(default)]
    query: String,
}

/// Saves a view: the checked columns ordered by their position numbers, and the filter.
pub async fn save_view(
    State(state): State<AppState>,
    user: WebUser,
    Form(pairs): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let field = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let form = ViewForm {
        csrf: field("csrf"),
        list: field("list"),
        name: field("name"),
        query: field("query"),
    };
    user.check_csrf(&form.csrf)?;
    let t = user.t();
    let Some(spec) = super::lists::spec(&form.list) else {
        return Err(WebError::not_found(&t));
    };
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 60 {
        return Err(WebError::bad(&t, "list.view_name_needed"));
    }
    let mut chosen: Vec<(i64, usize, &str)> = pairs
        .iter()
        .filter(|(k, _)| k == "col")
        .filter_map(|(_, v)| spec.cols.iter().position(|c| c.key == v))
        .map(|i| {
            let key = spec.cols[i].key;
            let pos = field(&format!("pos.{key}"))
                .trim()
                .parse::<i64>()
                .unwrap_or(i64::MAX);
            (pos, i, key)
        })
        .collect();
    if chosen.is_empty() {
        return Err(WebError::bad(&t, "list.view_needs_columns"));
    }
    chosen.sort();
    let columns: Vec<&str> = chosen.iter().map(|(_, _, k)| *k).collect();
    let id = state
        .store
        .save_list_view(user.id, spec.key, name, &columns.join(","), &form.query)
        .await?;
    Ok(Redirect::to(&format!("{}?view={id}", spec.path)).into_response())
}

/// Handler body shared by every list route.
pub async fn serve_list(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
    spec: &'static ListSpec,
) -> WebResult<Markup> {
    list_page(&state, &user, spec, raw.as_deref(), html! {}).await
}

/// Handler body shared by every export route.
pub async fn serve_export(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
    spec: &'static ListSpec,
) -> WebResult<Response> {
    export(&state, &user, spec, raw.as_deref()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("-12.5"), "-12.5");
        assert_eq!(csv_field("\t=1+2"), "'\t=1+2");
        assert_eq!(csv_field("\r=1+2"), "\"'\r=1+2\"");
    }

    #[test]
    fn joins_no_column_needs_are_left_out() {
        let spec = ListSpec {
            key: "t",
            title: "t",
            path: "/t",
            from: "visits v JOIN outlets o ON o.id = v.outlet_id LEFT JOIN outlets g ON g.id = o.global_outlet_id JOIN mobile_users mu ON mu.id = v.mobile_user_id",
            scope: "v.distributor_id",
            base_where: "1 = 1",
            cols: &[],
            sort: "x",
            desc: false,
            tiebreak: "v.id",
            default_days: None,
        };
        assert_eq!(spec.joined_from("v.started_device_ms > 1"), "visits v");
        assert_eq!(
            spec.joined_from("g.code IS NULL"),
            "visits v JOIN outlets o ON o.id = v.outlet_id LEFT JOIN outlets g ON g.id = o.global_outlet_id"
        );
        assert_eq!(
            spec.joined_from("LOWER(mu.login)"),
            "visits v JOIN mobile_users mu ON mu.id = v.mobile_user_id"
        );
        assert!(!uses_alias("ord.total", "d"));
        assert!(uses_alias("(d.code)", "d"));
    }

    #[test]
    fn xlsx_exports_hold_the_headers_text_and_numbers() {
        use std::io::Read;
        let cols = [
            Col::new("code", "col.code", "o.code", Kind::Text),
            Col::new("sum", "col.order_sum", "x", Kind::Money),
        ];
        let cols: Vec<&Col> = cols.iter().collect();
        let cell = |s: &str| Cell {
            text: s.to_string(),
            href: None,
        };
        let rows = vec![
            vec![cell("<O-1 & \"Ко\">"), cell("1234.50")],
            vec![cell("O-2"), cell("")],
        ];
        let bytes = xlsx(&["Code".into(), "Order sum".into()], &cols, &rows).unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut read = |name: &str| {
            let mut s = String::new();
            zip.by_name(name).unwrap().read_to_string(&mut s).unwrap();
            s
        };
        let strings = read("xl/sharedStrings.xml");
        assert!(strings.contains("Code") && strings.contains("Order sum"));
        assert!(
            strings.contains("&lt;O-1 &amp; &quot;Ко&quot;&gt;")
                || strings.contains("&lt;O-1 &amp; \"Ко\"&gt;")
        );
        let sheet = read("xl/worksheets/sheet1.xml");
        assert!(
            sheet.contains("<v>1234.5</v>"),
            "money is a number cell: {sheet}"
        );
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_A"), "%50\\%\\_a%");
    }

    #[test]
    fn query_strings_round_trip_and_replace_keys() {
        let q = ListQuery::parse(Some("f.name=a%20b&sort=name&dir=desc&page=3&cols=a,b"));
        assert_eq!(q.get("f.name"), Some("a b"));
        assert_eq!(q.page, 3);
        assert_eq!(q.cols, vec!["a", "b"]);
        let s = q.with(&[("page", None)]);
        assert!(s.contains("f.name=a+b") && s.contains("sort=name") && !s.contains("page="));
    }
}
