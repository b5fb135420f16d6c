//! Reports: sums over orders and actual sales with their totals, grouped as the key user asks.
//! The totals cover the whole filter: the sum of the rows when every group fits the row limit,
//! else one more statement over the filter, so a capped report still totals everything.
use serde::Serialize;

use super::sql::{IntoVal, Val};
use super::{Result, Store};

/// Where the figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Source {
    /// Orders placed (not cancelled or rejected), by the device's placing time.
    Orders,
    /// The distributor's imported invoices (actual sales), by invoice date.
    Sales,
}

/// What the rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum GroupBy {
    /// Orders: the agent's position; sales: the outlet's territory.
    Agent,
    Outlet,
    Brand,
    Category,
    Day,
}

impl GroupBy {
    pub const ALL: [(&'static str, GroupBy); 5] = [
        ("agent", GroupBy::Agent),
        ("outlet", GroupBy::Outlet),
        ("brand", GroupBy::Brand),
        ("category", GroupBy::Category),
        ("day", GroupBy::Day),
    ];
}

/// The parameters of the sales report.
#[derive(Debug, Clone)]
pub struct SalesParams {
    pub distributors: Vec<i64>,
    pub source: Source,
    pub group: GroupBy,
    /// `YYYY-MM-DD`, both included, in the user's zone; with the instants they start and end
    /// at (orders are filtered by instant, invoices by date).
    pub from: String,
    pub to: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// The user's UTC offset in minutes over the range (orders are put on days by it).
    pub utc_offset_min: i64,
    /// At most this many rows (the largest amounts first); the totals cover everything.
    pub limit: i64,
}

/// One row of the sales report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SalesRow {
    pub key: String,
    pub label: String,
    pub quantity_milli: i64,
    pub amount_minor: i64,
    /// Order lines or invoice lines counted.
    pub lines: i64,
}

/// The report: its rows and the totals of everything the filter covers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SalesReport {
    pub rows: Vec<SalesRow>,
    pub total: SalesRow,
    /// More rows than the limit matched.
    pub truncated: bool,
}

impl Store {
    /// The sales report of one or more distributors.
    pub async fn sales_report(&self, p: &SalesParams) -> Result<SalesReport> {
        if p.distributors.is_empty() {
            return Ok(SalesReport::default());
        }
        let list = super::sql::placeholders(4, p.distributors.len(), false);
        // key and label expressions per source and grouping (constants only).
        let (from_clause, filter, key, label) = match p.source {
            Source::Orders => {
                let (key, label) = match p.group {
                    GroupBy::Agent => (
                        "CAST(ord.position_id AS TEXT)",
                        "MAX(u.code) || ' · ' || MAX(u.name)",
                    ),
                    GroupBy::Outlet => (
                        "CAST(ord.outlet_id AS TEXT)",
                        "MAX(o.code) || ' · ' || MAX(o.name)",
                    ),
                    GroupBy::Brand => ("p.brand", "p.brand"),
                    GroupBy::Category => ("p.category", "p.category"),
                    GroupBy::Day => (
                        "CAST((ord.placed_device_ms + $3) / 86400000 AS TEXT)",
                        "CAST((ord.placed_device_ms + $3) / 86400000 AS TEXT)",
                    ),
                };
                (
                    "orders ord JOIN order_lines l ON l.order_id = ord.id JOIN products p ON p.id = l.product_id \
                     JOIN outlets o ON o.id = ord.outlet_id JOIN org_units u ON u.id = ord.position_id",
                    format!(
                        "ord.distributor_id IN ({list}) AND ord.placed_device_ms >= $1 AND ord.placed_device_ms < $2 \
                         AND ord.state NOT IN ('cancelled', 'rejected') AND $3 = $3"
                    ),
                    key,
                    label,
                )
            }
            Source::Sales => {
                let (key, label) = match p.group {
                    GroupBy::Agent => (
                        "CAST(COALESCE(o.territory_id, 0) AS TEXT)",
                        "COALESCE(MAX(u.code) || ' · ' || MAX(u.name), '')",
                    ),
                    GroupBy::Outlet => (
                        "CAST(s.outlet_id AS TEXT)",
                        "MAX(o.code) || ' · ' || MAX(o.name)",
                    ),
                    GroupBy::Brand => ("p.brand", "p.brand"),
                    GroupBy::Category => ("p.category", "p.category"),
                    GroupBy::Day => ("s.invoice_date", "s.invoice_date"),
                };
                (
                    "actual_sales s JOIN products p ON p.id = s.product_id JOIN outlets o ON o.id = s.outlet_id \
                     LEFT JOIN org_units u ON u.id = o.territory_id",
                    format!(
                        "s.distributor_id IN ({list}) AND s.invoice_date >= $1 AND s.invoice_date <= $2 AND $3 = $3"
                    ),
                    key,
                    label,
                )
            }
        };
        let (qty, amount) = match p.source {
            Source::Orders => ("l.quantity_milli", "l.sum_minor"),
            Source::Sales => ("s.quantity_milli", "s.amount_minor"),
        };
        let (a, b): (Val, Val) = match p.source {
            Source::Orders => (Val::I(p.from_ms), Val::I(p.to_ms)),
            Source::Sales => (p.from.clone().into_val(), p.to.clone().into_val()),
        };
        let mut vals = vec![a, b, Val::I(p.utc_offset_min * 60_000)];
        vals.extend(p.distributors.iter().map(|d| Val::I(*d)));
        let limit_at = vals.len() + 1;
        let sql = format!(
            "SELECT {key}, {label}, CAST(SUM({qty}) AS BIGINT), CAST(SUM({amount}) AS BIGINT), COUNT(*) \
             FROM {from_clause} WHERE {filter} GROUP BY {key} ORDER BY 4 DESC, 1 LIMIT ${limit_at}"
        );
        let q =
            sqlx::query_as::<_, (String, Option<String>, i64, i64, i64)>(sqlx::AssertSqlSafe(sql));
        let q = super::sql::bind_vals_as(q, &vals).bind(p.limit + 1);
        let mut rows: Vec<SalesRow> = q
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(|(key, label, qty, amount, lines)| SalesRow {
                label: match p.group {
                    GroupBy::Day if p.source == Source::Orders => key
                        .parse::<i64>()
                        .map(fieldsync_protocol::dates::format_day_number)
                        .unwrap_or_default(),
                    _ => label.unwrap_or_default(),
                },
                key,
                quantity_milli: qty,
                amount_minor: amount,
                lines,
            })
            .collect();
        let truncated = rows.len() as i64 > p.limit;
        rows.truncate(p.limit as usize);
        if !truncated {
            // Every group is here: the totals are their sums (no second pass over the data).
            let total = SalesRow {
                quantity_milli: rows.iter().map(|r| r.quantity_milli).sum(),
                amount_minor: rows.iter().map(|r| r.amount_minor).sum(),
                lines: rows.iter().map(|r| r.lines).sum(),
                ..Default::default()
            };
            return Ok(SalesReport {
                rows,
                total,
                truncated,
            });
        }
        let sql = format!(
            "SELECT CAST(COALESCE(SUM({qty}), 0) AS BIGINT), CAST(COALESCE(SUM({amount}), 0) AS BIGINT), COUNT(*) \
             FROM {from_clause} WHERE {filter}"
        );
        let q = sqlx::query_as::<_, (i64, i64, i64)>(sqlx::AssertSqlSafe(sql));
        let (qty, amount, lines) = super::sql::bind_vals_as(q, &vals)
            .fetch_one(self.pool())
            .await?;
        Ok(SalesReport {
            rows,
            total: SalesRow {
                key: String::new(),
                label: String::new(),
                quantity_milli: qty,
                amount_minor: amount,
                lines,
            },
            truncated,
        })
    }
}

/// One outlet of the orders-against-invoices reconciliation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReconRow {
    pub outlet_id: i64,
    pub outlet: String,
    /// Orders placed in the period (not cancelled or rejected): quantities ordered,
    /// confirmed and shipped as the distributor reported them, and the ordered money.
    pub ordered_milli: i64,
    pub confirmed_milli: i64,
    pub shipped_milli: i64,
    pub ordered_minor: i64,
    /// The distributor's invoices (actual sales) of the period.
    pub invoiced_milli: i64,
    pub invoiced_minor: i64,
}

impl ReconRow {
    /// Invoiced minus ordered money.
    pub fn difference_minor(&self) -> i64 {
        self.invoiced_minor - self.ordered_minor
    }

    fn add(&mut self, o: &ReconRow) {
        self.ordered_milli += o.ordered_milli;
        self.confirmed_milli += o.confirmed_milli;
        self.shipped_milli += o.shipped_milli;
        self.ordered_minor += o.ordered_minor;
        self.invoiced_milli += o.invoiced_milli;
        self.invoiced_minor += o.invoiced_minor;
    }
}

/// The reconciliation: outlets with orders or invoices in the period, and the totals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Reconciliation {
    pub rows: Vec<ReconRow>,
    pub total: ReconRow,
    pub truncated: bool,
}

impl Store {
    /// Orders against invoices per outlet over a period (`p.source` and `p.group` unused):
    /// outlets by the largest difference first.
    pub async fn reconciliation(&self, p: &SalesParams) -> Result<Reconciliation> {
        use std::collections::BTreeMap;
        if p.distributors.is_empty() {
            return Ok(Reconciliation::default());
        }
        let list = super::sql::placeholders(3, p.distributors.len(), false);
        let ids: Vec<Val> = p.distributors.iter().map(|d| Val::I(*d)).collect();
        let mut rows: BTreeMap<i64, ReconRow> = BTreeMap::new();
        let sql = format!(
            "SELECT ord.outlet_id, MAX(o.code) || ' · ' || MAX(o.name),
                    CAST(SUM(l.quantity_milli) AS BIGINT),
                    CAST(SUM(COALESCE(l.confirmed_quantity_milli, 0)) AS BIGINT),
                    CAST(SUM(COALESCE(l.shipped_quantity_milli, 0)) AS BIGINT),
                    CAST(SUM(l.sum_minor) AS BIGINT)
             FROM orders ord JOIN order_lines l ON l.order_id = ord.id JOIN outlets o ON o.id = ord.outlet_id
             WHERE ord.placed_device_ms >= $1 AND ord.placed_device_ms < $2
               AND ord.state NOT IN ('cancelled', 'rejected') AND ord.distributor_id IN ({list})
             GROUP BY ord.outlet_id"
        );
        let mut vals = vec![Val::I(p.from_ms), Val::I(p.to_ms)];
        vals.extend(ids.iter().cloned());
        let q = sqlx::query_as::<_, (i64, String, i64, i64, i64, i64)>(sqlx::AssertSqlSafe(sql));
        for (outlet_id, outlet, ordered, confirmed, shipped, money) in
            super::sql::bind_vals_as(q, &vals)
                .fetch_all(self.pool())
                .await?
        {
            rows.insert(
                outlet_id,
                ReconRow {
                    outlet_id,
                    outlet,
                    ordered_milli: ordered,
                    confirmed_milli: confirmed,
                    shipped_milli: shipped,
                    ordered_minor: money,
                    ..Default::default()
                },
            );
        }
        let sql = format!(
            "SELECT s.outlet_id, MAX(o.code) || ' · ' || MAX(o.name),
                    CAST(SUM(s.quantity_milli) AS BIGINT), CAST(SUM(s.amount_minor) AS BIGINT)
             FROM actual_sales s JOIN outlets o ON o.id = s.outlet_id
             WHERE s.invoice_date >= $1 AND s.invoice_date <= $2 AND s.distributor_id IN ({list})
             GROUP BY s.outlet_id"
        );
        let mut vals = vec![p.from.clone().into_val(), p.to.clone().into_val()];
        vals.extend(ids);
        let q = sqlx::query_as::<_, (i64, String, i64, i64)>(sqlx::AssertSqlSafe(sql));
        for (outlet_id, outlet, qty, money) in super::sql::bind_vals_as(q, &vals)
            .fetch_all(self.pool())
            .await?
        {
            let r = rows.entry(outlet_id).or_insert_with(|| ReconRow {
                outlet_id,
                outlet,
                ..Default::default()
            });
            r.invoiced_milli = qty;
            r.invoiced_minor = money;
        }
        let mut total = ReconRow::default();
        for r in rows.values() {
            total.add(r);
        }
        let mut rows: Vec<ReconRow> = rows.into_values().collect();
        rows.sort_by(|a, b| {
            b.difference_minor()
                .abs()
                .cmp(&a.difference_minor().abs())
                .then(a.outlet.cmp(&b.outlet))
        });
        let truncated = rows.len() as i64 > p.limit;
        rows.truncate(p.limit as usize);
        Ok(Reconciliation {
            rows,
            total,
            truncated,
        })
    }
}

/// One agent's day of the visit coverage report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CoverageRow {
    pub position_id: i64,
    pub agent: String,
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Outlets on the day's route, and how many of them were visited that day.
    pub planned: i64,
    pub covered: i64,
    /// Visits made that day, those at outlets off the route, and those that raised a
    /// field-truth signal.
    pub visits: i64,
    pub unplanned: i64,
    pub flagged: i64,
}

impl CoverageRow {
    /// Covered of planned, in percent rounded down (100 with nothing planned).
    pub fn percent(&self) -> i64 {
        if self.planned == 0 {
            100
        } else {
            self.covered * 100 / self.planned
        }
    }

    fn add(&mut self, o: &CoverageRow) {
        self.planned += o.planned;
        self.covered += o.covered;
        self.visits += o.visits;
        self.unplanned += o.unplanned;
        self.flagged += o.flagged;
    }
}

/// Visit coverage: every agent's day with a route or a visit, and the totals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Coverage {
    pub rows: Vec<CoverageRow>,
    pub total: CoverageRow,
    pub truncated: bool,
}

impl Store {
    /// Planned route stops against visits made, by agent (position) and day (the user's
    /// days: a visit's day is its device start time at `p.utc_offset_min`).
    pub async fn visit_coverage(&self, p: &SalesParams) -> Result<Coverage> {
        use std::collections::{BTreeMap, BTreeSet};
        if p.distributors.is_empty() {
            return Ok(Coverage::default());
        }
        let list = super::sql::placeholders(3, p.distributors.len(), false);
        let ids: Vec<Val> = p.distributors.iter().map(|d| Val::I(*d)).collect();
        type Key = (i64, String);
        let mut planned: BTreeMap<Key, BTreeSet<i64>> = BTreeMap::new();
        let mut names: BTreeMap<i64, String> = BTreeMap::new();
        let sql = format!(
            "SELECT r.position_id, u.code || ' · ' || u.name, r.route_date, s.outlet_id
             FROM routes r JOIN route_stops s ON s.route_id = r.id JOIN org_units u ON u.id = r.position_id
             WHERE r.route_date >= $1 AND r.route_date <= $2 AND r.distributor_id IN ({list})"
        );
        let mut vals = vec![p.from.clone().into_val(), p.to.clone().into_val()];
        vals.extend(ids.iter().cloned());
        let q = sqlx::query_as::<_, (i64, String, String, i64)>(sqlx::AssertSqlSafe(sql));
        for (position, name, date, outlet) in super::sql::bind_vals_as(q, &vals)
            .fetch_all(self.pool())
            .await?
        {
            names.insert(position, name);
            planned.entry((position, date)).or_default().insert(outlet);
        }
        let sql = format!(
            "SELECT v.position_id, u.code || ' · ' || u.name, v.started_device_ms, v.outlet_id,
                    CASE WHEN EXISTS (SELECT 1 FROM visit_signals g WHERE g.visit_id = v.id) THEN 1 ELSE 0 END
             FROM visits v JOIN org_units u ON u.id = v.position_id
             WHERE v.started_device_ms >= $1 AND v.started_device_ms < $2 AND v.distributor_id IN ({list})"
        );
        let mut vals = vec![Val::I(p.from_ms), Val::I(p.to_ms)];
        vals.extend(ids);
        let q = sqlx::query_as::<_, (i64, String, i64, i64, i64)>(sqlx::AssertSqlSafe(sql));
        let mut visited: BTreeMap<Key, Vec<(i64, bool)>> = BTreeMap::new();
        for (position, name, started, outlet, flagged) in super::sql::bind_vals_as(q, &vals)
            .fetch_all(self.pool())
            .await?
        {
            names.insert(position, name);
            let day = fieldsync_protocol::dates::format_day_number(
                fieldsync_protocol::dates::local_day_of_ms(started, p.utc_offset_min as i32),
            );
            visited
                .entry((position, day))
                .or_default()
                .push((outlet, flagged != 0));
        }
        let keys: BTreeSet<Key> = planned.keys().chain(visited.keys()).cloned().collect();
        let mut rows = Vec::with_capacity(keys.len());
        let mut total = CoverageRow::default();
        for key in keys {
            let plan = planned.get(&key).cloned().unwrap_or_default();
            let done = visited.get(&key).cloned().unwrap_or_default();
            let outlets: BTreeSet<i64> = done.iter().map(|v| v.0).collect();
            let row = CoverageRow {
                position_id: key.0,
                agent: names.get(&key.0).cloned().unwrap_or_default(),
                day: key.1.clone(),
                planned: plan.len() as i64,
                covered: plan.intersection(&outlets).count() as i64,
                visits: done.len() as i64,
                unplanned: done.iter().filter(|v| !plan.contains(&v.0)).count() as i64,
                flagged: done.iter().filter(|v| v.1).count() as i64,
            };
            total.add(&row);
            rows.push(row);
        }
        rows.sort_by(|a, b| a.agent.cmp(&b.agent).then(a.day.cmp(&b.day)));
        let truncated = rows.len() as i64 > p.limit;
        rows.truncate(p.limit as usize);
        Ok(Coverage {
            rows,
            total,
            truncated,
        })
    }
}

/// Most months the plan report spans.
pub const MAX_PLAN_MONTHS: usize = 12;

/// One month's plans summed: targets and what was achieved, in money and in quantity.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlanMonth {
    /// `YYYY-MM`.
    pub period: String,
    pub money_target: i64,
    pub money_achieved: i64,
    pub quantity_target: i64,
    pub quantity_achieved: i64,
}

impl PlanMonth {
    fn add(&mut self, p: &super::plans::PlanRow) {
        if p.form.measure == "money" {
            self.money_target += p.form.target;
            self.money_achieved += p.achieved;
        } else {
            self.quantity_target += p.form.target;
            self.quantity_achieved += p.achieved;
        }
    }
}

/// Plan against actual: every plan of the months with what was achieved, each month's sums
/// and the sums of all.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlanReport {
    pub rows: Vec<super::plans::PlanRow>,
    pub months: Vec<PlanMonth>,
    pub total: PlanMonth,
    pub truncated: bool,
}

/// The months from `from` to `to` (`YYYY-MM`, both included), at most [`MAX_PLAN_MONTHS`];
/// `None` when they are not months, in the wrong order or too many.
pub fn months_between(from: &str, to: &str) -> Option<Vec<String>> {
    if !super::plans::is_period(from) || !super::plans::is_period(to) || from > to {
        return None;
    }
    let mut out = vec![from.to_string()];
    let mut day = fieldsync_protocol::dates::parse(&format!("{from}-01"))?;
    while out.last().map(String::as_str) != Some(to) {
        day = day.checked_add(jiff::Span::new().months(1)).ok()?;
        out.push(fieldsync_protocol::dates::format(day)[..7].to_string());
        if out.len() > MAX_PLAN_MONTHS {
            return None;
        }
    }
    Some(out)
}

impl Store {
    /// Plans of `months` with their fulfilment (as the plans page and the phones count it:
    /// the month's imported sales where there are any for the plan, else its orders);
    /// `scope` keeps outlet or position plans only when not empty.
    pub async fn plan_report(
        &self,
        distributors: &[i64],
        months: &[String],
        scope: &str,
        limit: i64,
    ) -> Result<PlanReport> {
        let mut report = PlanReport::default();
        for period in months {
            let mut month = PlanMonth {
                period: period.clone(),
                ..Default::default()
            };
            for row in self.plan_rows(distributors, period).await? {
                if !scope.is_empty() && row.form.scope != scope {
                    continue;
                }
                month.add(&row);
                report.total.add(&row);
                // Every plan counts in the sums; the rows shown stop past the limit.
                if (report.rows.len() as i64) <= limit {
                    report.rows.push(row);
                }
            }
            report.months.push(month);
        }
        report.truncated = report.rows.len() as i64 > limit;
        report.rows.truncate(limit as usize);
        Ok(report)
    }
}
