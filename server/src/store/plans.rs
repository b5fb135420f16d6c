//! Purchase plans: a month's target for an outlet or for a position (the agent's own month),
//! for all products or one category or brand, in money or quantity; set on the plans page or
//! by import (kind `plans`). Fulfilment is counted from the distributor's imported actual
//! sales of the month where there are any for the plan's outlets, else from the orders placed
//! in it (not cancelled or refused), by the device's clock in the distributor's time zone.
//! Phones get their position's plans and their territory's outlet plans (`Plan`), again
//! whenever a plan or what counts toward it changes.
use std::collections::{BTreeSet, HashMap};

use fieldsync_protocol::dates;
use fieldsync_protocol::v1::{self, EntityKind};
use serde::Serialize;

use super::sql::{IntoVal, Val, id_on, rows_on, select_in};
use super::world::{ChangeRef, commit_changes};
use super::{Result, Store, StoreError, WriteTx};

/// A plan as its form and an import row give it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlanForm {
    /// `YYYY-MM`.
    pub period: String,
    /// `outlet` or `position`.
    pub scope: String,
    pub scope_id: i64,
    pub category: String,
    pub brand: String,
    /// `money` or `quantity`.
    pub measure: String,
    /// Minor units or thousandths.
    pub target: i64,
}

/// A stored plan with its fulfilment.
#[derive(Debug, Clone, Serialize)]
pub struct PlanRow {
    pub id: i64,
    pub distributor_id: i64,
    pub form: PlanForm,
    /// The outlet's or position's code and name.
    pub scope_code: String,
    pub scope_name: String,
    pub achieved: i64,
    /// `sales` or `orders`.
    pub achieved_from: &'static str,
}

impl PlanRow {
    /// Percent of the target met, rounded down.
    pub fn percent(&self) -> i64 {
        if self.form.target <= 0 {
            0
        } else {
            (i128::from(self.achieved) * 100 / i128::from(self.form.target)) as i64
        }
    }
}

/// Whether `s` is a month `YYYY-MM`.
pub fn is_period(s: &str) -> bool {
    dates::is_date(&format!("{s}-01")) && s.len() == 7
}

/// The first day of a period and of the next one, `YYYY-MM-DD`.
fn period_days(period: &str) -> Option<(String, String)> {
    let first = dates::parse(&format!("{period}-01"))?;
    let next = first.checked_add(jiff::Span::new().months(1)).ok()?;
    Some((dates::format(first), dates::format(next)))
}

impl PlanForm {
    fn checked(&self) -> std::result::Result<PlanForm, String> {
        let f = PlanForm {
            period: self.period.trim().to_string(),
            scope: self.scope.trim().to_string(),
            category: self.category.trim().to_string(),
            brand: self.brand.trim().to_string(),
            measure: self.measure.trim().to_string(),
            ..self.clone()
        };
        if !is_period(&f.period) {
            return Err(format!("period {:?} is not a month like 2026-12", f.period));
        }
        if !matches!(f.scope.as_str(), "outlet" | "position") {
            return Err("a plan is an outlet's or a position's".into());
        }
        if !matches!(f.measure.as_str(), "money" | "quantity") {
            return Err(format!("measure {:?} is money or quantity", f.measure));
        }
        if f.target <= 0 {
            return Err("the target must be positive".into());
        }
        if !f.category.is_empty() && !f.brand.is_empty() {
            return Err("a plan is for a category or a brand, not both".into());
        }
        if f.category.chars().count() > 100 || f.brand.chars().count() > 100 {
            return Err("category and brand have at most 100 characters".into());
        }
        Ok(f)
    }
}

/// The change that sends a plan to the phones that see it: an outlet's plan to its
/// territory, a position's plan to the position.
async fn scope_of(tx: &mut WriteTx, d: i64, scope: &str, scope_id: i64) -> Result<Option<i64>> {
    let found: Vec<(Option<i64>,)> = if scope == "outlet" {
        rows_on(
            tx,
            "SELECT territory_id FROM outlets WHERE id = $1 AND distributor_id = $2 AND deleted = 0",
            &[Val::I(scope_id), Val::I(d)],
        )
        .await?
    } else {
        rows_on(
            tx,
            "SELECT id FROM org_units WHERE id = $1 AND distributor_id = $2 AND kind = 'position'",
            &[Val::I(scope_id), Val::I(d)],
        )
        .await?
    };
    Ok(found.first().map(|r| r.0.unwrap_or(-1)))
}

/// Saves plans inside `tx` (one per key: a plan saved again replaces the target), counting
/// them into `report` (created, changed with before and after, unchanged; an unchanged plan is
/// not written); returns the changes, or the index and reason of the first plan refused.
pub(crate) async fn write_plans(
    tx: &mut WriteTx,
    d: i64,
    forms: &[PlanForm],
    now: i64,
    report: &mut super::world::PatchReport,
) -> Result<std::result::Result<Vec<ChangeRef>, (usize, String)>> {
    let mut changes = Vec::new();
    for (i, form) in forms.iter().enumerate() {
        let f = match form.checked() {
            Ok(f) => f,
            Err(e) => return Ok(Err((i, e))),
        };
        let Some(scope) = scope_of(tx, d, &f.scope, f.scope_id).await? else {
            return Ok(Err((i, format!("no {} {}", f.scope, f.scope_id))));
        };
        let key = [
            Val::I(d),
            f.period.clone().into_val(),
            f.scope.clone().into_val(),
            Val::I(f.scope_id),
            f.category.clone().into_val(),
            f.brand.clone().into_val(),
            f.measure.clone().into_val(),
        ];
        let stored: Vec<(i64, i64)> = rows_on(
            tx,
            "SELECT id, target FROM plans WHERE distributor_id = $1 AND period = $2 AND scope = $3 \
             AND scope_id = $4 AND category = $5 AND brand = $6 AND measure = $7",
            &key,
        )
        .await?;
        let label = format!("{} {} {}", f.period, f.scope, f.scope_id);
        let id = match stored.first() {
            Some((_, target)) if *target == f.target => {
                report.unchanged += 1;
                continue;
            }
            Some((id, target)) => {
                report.changed += 1;
                report.note_changes(
                    &label,
                    &[("target", target.to_string(), f.target.to_string())],
                );
                id_on(
                    tx,
                    "UPDATE plans SET target = $1, updated_at_ms = $2 WHERE id = $3 RETURNING id",
                    &[Val::I(f.target), Val::I(now), Val::I(*id)],
                )
                .await?
            }
            None => {
                report.created += 1;
                let mut vals = key.to_vec();
                vals.push(Val::I(f.target));
                vals.push(Val::I(now));
                id_on(
                    tx,
                    "INSERT INTO plans (distributor_id, period, scope, scope_id, category, brand, measure, target, updated_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                    &vals,
                )
                .await?
            }
        };
        changes.push(ChangeRef::upsert(EntityKind::Plan, id, scope));
    }
    Ok(Ok(changes))
}

/// The plans whose fulfilment orders or sales at these outlets, or by these positions, in
/// these periods change: the changes that send them again.
pub(crate) async fn touched_plans(
    tx: &mut WriteTx,
    d: i64,
    outlets: &BTreeSet<i64>,
    positions: &BTreeSet<i64>,
    periods: &BTreeSet<String>,
) -> Result<Vec<ChangeRef>> {
    if periods.is_empty() || (outlets.is_empty() && positions.is_empty()) {
        return Ok(Vec::new());
    }
    // Few plans per distributor and month: read the month's and match here.
    let mut out = Vec::new();
    for period in periods {
        let plans: Vec<(i64, String, i64)> = rows_on(
            tx,
            "SELECT id, scope, scope_id FROM plans WHERE distributor_id = $1 AND period = $2",
            &[Val::I(d), period.clone().into_val()],
        )
        .await?;
        let outlet_ids: Vec<i64> = plans
            .iter()
            .filter(|p| p.1 == "outlet" && outlets.contains(&p.2))
            .map(|p| p.2)
            .collect();
        let territories: HashMap<i64, Option<i64>> = select_in!(
            *tx,
            (i64, Option<i64>),
            "SELECT id, territory_id FROM outlets WHERE id IN ({})",
            [],
            outlet_ids
        )
        .into_iter()
        .collect();
        // A position's plan counts the sales of its territory's outlets too.
        let position_territories: Vec<(i64, Option<i64>)> = {
            let ids: Vec<i64> = plans
                .iter()
                .filter(|p| p.1 == "position")
                .map(|p| p.2)
                .collect();
            select_in!(
                *tx,
                (i64, Option<i64>),
                "SELECT id, parent_id FROM org_units WHERE id IN ({})",
                [],
                ids
            )
        };
        let outlet_territories: BTreeSet<i64> = {
            let ids: Vec<i64> = outlets.iter().copied().collect();
            select_in!(
                *tx,
                (Option<i64>,),
                "SELECT territory_id FROM outlets WHERE id IN ({})",
                [],
                ids
            )
            .into_iter()
            .filter_map(|r| r.0)
            .collect()
        };
        for (id, scope, scope_id) in plans {
            if scope == "outlet" {
                if let Some(t) = territories.get(&scope_id) {
                    out.push(ChangeRef::upsert(EntityKind::Plan, id, t.unwrap_or(-1)));
                }
            } else {
                let territory = position_territories
                    .iter()
                    .find(|p| p.0 == scope_id)
                    .and_then(|p| p.1);
                if positions.contains(&scope_id)
                    || territory.is_some_and(|t| outlet_territories.contains(&t))
                {
                    out.push(ChangeRef::upsert(EntityKind::Plan, id, scope_id));
                }
            }
        }
    }
    Ok(out)
}

/// Marks the plans these orders count toward (of these outlets or positions, in these
/// months) for the housekeeping to send again ([`Store::refresh_plans`]). One statement. It
/// writes a plan already marked too: waiting on a housekeeping that is claiming the row is what
/// keeps the mark from being lost on PostgreSQL.
pub(crate) async fn mark_dirty(
    tx: &mut WriteTx,
    d: i64,
    outlets: &BTreeSet<i64>,
    positions: &BTreeSet<i64>,
    periods: &BTreeSet<String>,
) -> Result<u64> {
    if periods.is_empty() || (outlets.is_empty() && positions.is_empty()) {
        return Ok(0);
    }
    let mut vals = vec![Val::I(d)];
    let list = |items: Vec<Val>, vals: &mut Vec<Val>| {
        let from = vals.len() + 1;
        let n = items.len().max(1);
        if items.is_empty() {
            vals.push(Val::I(-1));
        } else {
            vals.extend(items);
        }
        super::sql::placeholders(from, n, false)
    };
    let p = list(
        periods.iter().map(|x| x.clone().into_val()).collect(),
        &mut vals,
    );
    let o = list(outlets.iter().map(|x| Val::I(*x)).collect(), &mut vals);
    let q = list(positions.iter().map(|x| Val::I(*x)).collect(), &mut vals);
    let sql = format!(
        "UPDATE plans SET dirty = 1 WHERE distributor_id = $1 AND period IN ({p}) \
         AND ((scope = 'outlet' AND scope_id IN ({o})) OR (scope = 'position' AND scope_id IN ({q})))"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for v in &vals {
        query = match v {
            Val::I(i) => query.bind(*i),
            Val::S(s) => query.bind(s.clone()),
            _ => query,
        };
    }
    Ok(query.execute(&mut **tx).await?.rows_affected())
}

/// The month (`YYYY-MM`) of an instant in a time zone.
pub fn period_of(ms: i64, tz: &str) -> String {
    dates::format(dates::date_at(ms, tz))[..7].to_string()
}

/// (id, scope, scope_id, period, category, brand, measure).
type Key = (i64, String, i64, String, String, String, String);

/// Fulfilment of plans given as (id, scope, scope_id, period, category, brand, measure):
/// (achieved, where from) by id.
pub(crate) async fn fulfilment(
    pool: &sqlx::AnyPool,
    d: i64,
    plans: &[Key],
) -> Result<HashMap<i64, (i64, &'static str)>> {
    let mut out = HashMap::new();
    if plans.is_empty() {
        return Ok(out);
    }
    let (tz,): (String,) = sqlx::query_as("SELECT timezone FROM distributors WHERE id = $1")
        .bind(d)
        .fetch_one(pool)
        .await?;
    let periods: BTreeSet<&str> = plans.iter().map(|p| p.3.as_str()).collect();
    for period in periods {
        let Some((first, next)) = period_days(period) else {
            continue;
        };
        let start = dates::day_start_ms(dates::parse(&first).expect("valid"), &tz).unwrap_or(0);
        let end = dates::day_start_ms(dates::parse(&next).expect("valid"), &tz).unwrap_or(0);
        let of_period: Vec<&Key> = plans.iter().filter(|p| p.3 == period).collect();
        // Outlet plans: one grouped read of sales and one of orders for all their outlets.
        let outlet_ids: Vec<i64> = of_period
            .iter()
            .filter(|p| p.1 == "outlet")
            .map(|p| p.2)
            .collect();
        let mut sales: HashMap<i64, Vec<(String, String, i64, i64)>> = HashMap::new();
        let mut orders: HashMap<i64, Vec<(String, String, i64, i64)>> = HashMap::new();
        for chunk in outlet_ids.chunks(400) {
            let list = super::sql::placeholders(5, chunk.len(), false);
            let sql = format!(
                "SELECT s.outlet_id, p.category, p.brand, CAST(SUM(s.amount_minor) AS BIGINT), \
                 CAST(SUM(s.quantity_milli) AS BIGINT) FROM actual_sales s JOIN products p ON p.id = s.product_id \
                 WHERE s.distributor_id = $1 AND s.invoice_date >= $2 AND s.invoice_date < $3 AND $4 = $4 \
                 AND s.outlet_id IN ({list}) GROUP BY s.outlet_id, p.category, p.brand"
            );
            let mut q =
                sqlx::query_as::<_, (i64, String, String, i64, i64)>(sqlx::AssertSqlSafe(sql))
                    .bind(d)
                    .bind(&first)
                    .bind(&next)
                    .bind(0i64);
            for id in chunk {
                q = q.bind(*id);
            }
            for (o, c, b, m, n) in q.fetch_all(pool).await? {
                sales.entry(o).or_default().push((c, b, m, n));
            }
            let sql = format!(
                "SELECT o.outlet_id, p.category, p.brand, CAST(SUM(l.sum_minor) AS BIGINT), \
                 CAST(SUM(l.quantity_milli) AS BIGINT) FROM orders o JOIN order_lines l ON l.order_id = o.id \
                 JOIN products p ON p.id = l.product_id \
                 WHERE o.distributor_id = $1 AND o.placed_device_ms >= $2 AND o.placed_device_ms < $3 \
                 AND o.state NOT IN ('cancelled', 'rejected') AND $4 = $4 \
                 AND o.outlet_id IN ({list}) GROUP BY o.outlet_id, p.category, p.brand"
            );
            let mut q =
                sqlx::query_as::<_, (i64, String, String, i64, i64)>(sqlx::AssertSqlSafe(sql))
                    .bind(d)
                    .bind(start)
                    .bind(end)
                    .bind(0i64);
            for id in chunk {
                q = q.bind(*id);
            }
            for (o, c, b, m, n) in q.fetch_all(pool).await? {
                orders.entry(o).or_default().push((c, b, m, n));
            }
        }
        for p in of_period.iter().filter(|p| p.1 == "outlet") {
            out.insert(p.0, pick(p, sales.get(&p.2), orders.get(&p.2)));
        }
        // Position plans: the position's orders; the sales of its territory's outlets.
        for p in of_period.iter().filter(|p| p.1 == "position") {
            let sold: Vec<(String, String, i64, i64)> = sqlx::query_as(
                "SELECT p.category, p.brand, CAST(SUM(s.amount_minor) AS BIGINT), CAST(SUM(s.quantity_milli) AS BIGINT)
                 FROM actual_sales s JOIN products p ON p.id = s.product_id JOIN outlets ot ON ot.id = s.outlet_id
                 WHERE s.distributor_id = $1 AND s.invoice_date >= $2 AND s.invoice_date < $3
                   AND ot.territory_id = (SELECT parent_id FROM org_units WHERE id = $4)
                 GROUP BY p.category, p.brand",
            )
            .bind(d)
            .bind(&first)
            .bind(&next)
            .bind(p.2)
            .fetch_all(pool)
            .await?;
            let ordered: Vec<(String, String, i64, i64)> = sqlx::query_as(
                "SELECT p.category, p.brand, CAST(SUM(l.sum_minor) AS BIGINT), CAST(SUM(l.quantity_milli) AS BIGINT)
                 FROM orders o JOIN order_lines l ON l.order_id = o.id JOIN products p ON p.id = l.product_id
                 WHERE o.distributor_id = $1 AND o.placed_device_ms >= $2 AND o.placed_device_ms < $3
                   AND o.state NOT IN ('cancelled', 'rejected') AND o.position_id = $4
                 GROUP BY p.category, p.brand",
            )
            .bind(d)
            .bind(start)
            .bind(end)
            .bind(p.2)
            .fetch_all(pool)
            .await?;
            out.insert(p.0, pick(p, Some(&sold), Some(&ordered)));
        }
    }
    Ok(out)
}

/// Sales where there are any, else orders; summed over the plan's category or brand.
fn pick(
    p: &Key,
    sales: Option<&Vec<(String, String, i64, i64)>>,
    orders: Option<&Vec<(String, String, i64, i64)>>,
) -> (i64, &'static str) {
    let sum = |rows: &Vec<(String, String, i64, i64)>| {
        rows.iter()
            .filter(|(c, b, _, _)| (p.4.is_empty() || *c == p.4) && (p.5.is_empty() || *b == p.5))
            .map(|(_, _, money, qty)| if p.6 == "money" { *money } else { *qty })
            .sum::<i64>()
    };
    match sales.filter(|s| !s.is_empty()) {
        Some(s) => (sum(s), "sales"),
        None => (orders.map(sum).unwrap_or(0), "orders"),
    }
}

/// `Plan` messages of these plan ids (for the pull).
pub(crate) async fn load(pool: &sqlx::AnyPool, ids: &[i64]) -> Result<Vec<(i64, v1::Plan)>> {
    let mut rows: Vec<(i64, i64, String, String, i64, String, String, String, i64)> = Vec::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id, distributor_id, period, scope, scope_id, category, brand, measure, target \
             FROM plans WHERE id IN ({})",
            super::sql::placeholders(1, chunk.len(), false)
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        rows.extend(q.fetch_all(pool).await?);
    }
    let mut by_distributor: HashMap<i64, Vec<Key>> = HashMap::new();
    for r in &rows {
        by_distributor.entry(r.1).or_default().push((
            r.0,
            r.3.clone(),
            r.4,
            r.2.clone(),
            r.5.clone(),
            r.6.clone(),
            r.7.clone(),
        ));
    }
    let mut achieved = HashMap::new();
    for (d, keys) in &by_distributor {
        achieved.extend(fulfilment(pool, *d, keys).await?);
    }
    let now = super::now_ms();
    Ok(rows
        .into_iter()
        .map(
            |(id, _, period, scope, scope_id, category, brand, measure, target)| {
                let (got, from) = achieved.get(&id).copied().unwrap_or((0, "orders"));
                (
                    id,
                    v1::Plan {
                        id,
                        period,
                        outlet_id: if scope == "outlet" { scope_id } else { 0 },
                        category,
                        brand,
                        measure: if measure == "money" {
                            v1::PlanMeasure::PlanMoney
                        } else {
                            v1::PlanMeasure::PlanQuantity
                        } as i32,
                        target,
                        achieved: got,
                        achieved_from: from.to_string(),
                        computed_at_ms: now,
                    },
                )
            },
        )
        .collect())
}

impl Store {
    /// Sends again the plans orders marked ([`mark_dirty`]): one statement claims them, so of
    /// several servers doing this at once each plan goes out once. Returns how many.
    pub async fn refresh_plans(&self) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let claimed: Vec<(i64, i64, String, i64)> = rows_on(
            &mut tx,
            "UPDATE plans SET dirty = 0 WHERE dirty = 1 RETURNING id, distributor_id, scope, scope_id",
            &[],
        )
        .await?;
        if claimed.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        let outlet_ids: Vec<i64> = claimed
            .iter()
            .filter(|c| c.2 == "outlet")
            .map(|c| c.3)
            .collect();
        let territories: HashMap<i64, Option<i64>> = select_in!(
            tx,
            (i64, Option<i64>),
            "SELECT id, territory_id FROM outlets WHERE id IN ({})",
            [],
            outlet_ids
        )
        .into_iter()
        .collect();
        let mut by_distributor: HashMap<i64, Vec<ChangeRef>> = HashMap::new();
        for (id, d, scope, scope_id) in &claimed {
            let scope = if scope == "outlet" {
                territories.get(scope_id).copied().flatten().unwrap_or(-1)
            } else {
                *scope_id
            };
            by_distributor
                .entry(*d)
                .or_default()
                .push(ChangeRef::upsert(EntityKind::Plan, *id, scope));
        }
        for (d, changes) in &by_distributor {
            super::world::record_changes(&mut tx, *d, changes).await?;
        }
        tx.commit().await?;
        Ok(claimed.len() as u64)
    }

    /// The live outlet of a distributor with this code.
    pub async fn outlet_id_by_code(&self, d: i64, code: &str) -> Result<Option<i64>> {
        let row: Option<(i64,)> = self
            .opt(
                "SELECT id FROM outlets WHERE distributor_id = $1 AND code = $2 AND deleted = 0",
                &[d.into_val(), code.into_val()],
            )
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// The distributor of a plan.
    pub async fn plan_distributor(&self, id: i64) -> Result<Option<i64>> {
        let row: Option<(i64,)> = self
            .opt(
                "SELECT distributor_id FROM plans WHERE id = $1",
                &[id.into_val()],
            )
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// Saves one plan (a plan of the same month, outlet or position, category or brand and
    /// measure is replaced); returns its id, or why it was refused.
    pub async fn save_plan(
        &self,
        d: i64,
        form: &PlanForm,
        now: i64,
    ) -> Result<std::result::Result<i64, String>> {
        let mut tx = self.begin_write().await?;
        let mut report = super::world::PatchReport::default();
        match write_plans(&mut tx, d, std::slice::from_ref(form), now, &mut report).await? {
            Ok(changes) => {
                let id = match changes.first() {
                    Some(c) => c.entity_id,
                    // Unchanged: the stored plan's id.
                    None => self.plan_id_of(&mut tx, d, form).await?,
                };
                commit_changes(tx, d, &changes).await?;
                Ok(Ok(id))
            }
            Err((_, reason)) => {
                tx.rollback().await?;
                Ok(Err(reason))
            }
        }
    }

    async fn plan_id_of(&self, tx: &mut WriteTx, d: i64, f: &PlanForm) -> Result<i64> {
        id_on(
            tx,
            "SELECT id FROM plans WHERE distributor_id = $1 AND period = $2 AND scope = $3 \
             AND scope_id = $4 AND category = $5 AND brand = $6 AND measure = $7",
            &[
                Val::I(d),
                f.period.trim().into_val(),
                f.scope.trim().into_val(),
                Val::I(f.scope_id),
                f.category.trim().into_val(),
                f.brand.trim().into_val(),
                f.measure.trim().into_val(),
            ],
        )
        .await
    }

    /// Deletes a plan; the phones that had it drop it.
    pub async fn delete_plan(&self, d: i64, id: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let found: Vec<(String, i64)> = rows_on(
            &mut tx,
            "DELETE FROM plans WHERE id = $1 AND distributor_id = $2 RETURNING scope, scope_id",
            &[Val::I(id), Val::I(d)],
        )
        .await?;
        let Some((scope, scope_id)) = found.into_iter().next() else {
            return Err(StoreError::NotFound);
        };
        let territory = if scope == "outlet" {
            scope_of(&mut tx, d, "outlet", scope_id)
                .await?
                .unwrap_or(-1)
        } else {
            scope_id
        };
        commit_changes(tx, d, &[ChangeRef::delete(EntityKind::Plan, id, territory)]).await
    }

    /// The plans of these distributors for a month, with their fulfilment, outlets' first.
    pub async fn plan_rows(&self, distributors: &[i64], period: &str) -> Result<Vec<PlanRow>> {
        let mut out = Vec::new();
        for d in distributors {
            let rows: Vec<(
                i64,
                String,
                i64,
                String,
                String,
                String,
                i64,
                String,
                String,
            )> = self
                .rows(
                    "SELECT p.id, p.scope, p.scope_id, p.category, p.brand, p.measure, p.target,
                            COALESCE(o.code, u.code, ''), COALESCE(o.name, u.name, '')
                     FROM plans p
                     LEFT JOIN outlets o ON p.scope = 'outlet' AND o.id = p.scope_id
                     LEFT JOIN org_units u ON p.scope = 'position' AND u.id = p.scope_id
                     WHERE p.distributor_id = $1 AND p.period = $2
                     ORDER BY p.scope, 8, p.category, p.brand, p.measure",
                    &[d.into_val(), period.into_val()],
                )
                .await?;
            let keys: Vec<Key> = rows
                .iter()
                .map(|r| {
                    (
                        r.0,
                        r.1.clone(),
                        r.2,
                        period.to_string(),
                        r.3.clone(),
                        r.4.clone(),
                        r.5.clone(),
                    )
                })
                .collect();
            let achieved = fulfilment(self.pool(), *d, &keys).await?;
            for (id, scope, scope_id, category, brand, measure, target, code, name) in rows {
                let (got, from) = achieved.get(&id).copied().unwrap_or((0, "orders"));
                out.push(PlanRow {
                    id,
                    distributor_id: *d,
                    form: PlanForm {
                        period: period.to_string(),
                        scope,
                        scope_id,
                        category,
                        brand,
                        measure,
                        target,
                    },
                    scope_code: code,
                    scope_name: name,
                    achieved: got,
                    achieved_from: from,
                });
            }
        }
        Ok(out)
    }
}
