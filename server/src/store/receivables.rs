//! Receivables: the open invoices of each outlet, as the distributor's system reports them
//! (import kind `receivables`, from a file or the API). A reported invoice replaces the stored
//! one of its number; one paid in full leaves the table; invoices not in the file are left as
//! they are (an import changes only what it was given). Every outlet whose invoices changed
//! goes to the phones of its territory as one `OutletReceivables` with all its open invoices.
use std::collections::{BTreeSet, HashMap};

use fieldsync_protocol::v1::{self, EntityKind};
use serde::Serialize;

use super::sql::{IntoVal, Val, exec_on, select_in};
use super::world::{ChangeRef, PatchReport};
use super::{Result, Store, WriteTx};

/// One reported invoice, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceRow {
    pub invoice_number: String,
    pub outlet_id: i64,
    pub invoice_date: String,
    pub due_date: String,
    pub amount_minor: i64,
    pub paid_minor: i64,
    pub currency: String,
    /// How the file names it, for the job's log.
    pub label: String,
}

type Stored = (String, i64, String, String, i64, i64, String);

fn money(minor: i64) -> String {
    fieldsync_protocol::money::format_minor(minor)
}

/// Writes reported invoices inside `tx`; returns the changes for the outlets whose open
/// invoices changed (an invoice moved to another outlet changes both).
pub(crate) async fn write_receivables(
    tx: &mut WriteTx,
    distributor_id: i64,
    rows: &[InvoiceRow],
    job_id: i64,
    now: i64,
    report: &mut PatchReport,
) -> Result<Vec<ChangeRef>> {
    let numbers: Vec<String> = rows.iter().map(|r| r.invoice_number.clone()).collect();
    let found: Vec<Stored> = select_in!(
        *tx,
        Stored,
        "SELECT invoice_number, outlet_id, invoice_date, due_date, amount_minor, paid_minor, currency \
         FROM receivables WHERE distributor_id = $1 AND invoice_number IN ({})",
        [distributor_id],
        numbers
    );
    let mut stored: HashMap<String, Stored> = found.into_iter().map(|r| (r.0.clone(), r)).collect();
    let mut touched: BTreeSet<i64> = BTreeSet::new();
    for r in rows {
        let closed = r.paid_minor >= r.amount_minor;
        let before = stored.get(&r.invoice_number).cloned();
        let after: Stored = (
            r.invoice_number.clone(),
            r.outlet_id,
            r.invoice_date.clone(),
            r.due_date.clone(),
            r.amount_minor,
            r.paid_minor,
            r.currency.clone(),
        );
        match &before {
            Some(b) if closed => {
                report.removed += 1;
                touched.insert(b.1);
            }
            None if closed => {
                // Paid in full and never open here: nothing to keep.
                report.unchanged += 1;
                continue;
            }
            Some(b) if *b == after => {
                report.unchanged += 1;
                continue;
            }
            Some(b) => {
                report.changed += 1;
                let mut diff = Vec::new();
                if b.1 != after.1 {
                    diff.push(("outlet", b.1.to_string(), after.1.to_string()));
                }
                if b.3 != after.3 {
                    diff.push(("due_date", b.3.clone(), after.3.clone()));
                }
                if b.4 != after.4 {
                    diff.push(("amount", money(b.4), money(after.4)));
                }
                if b.5 != after.5 {
                    diff.push(("paid", money(b.5), money(after.5)));
                }
                let diff: Vec<(&'static str, String, String)> = diff;
                report.note_changes(&r.label, &diff);
                touched.insert(b.1);
            }
            None => report.created += 1,
        }
        touched.insert(r.outlet_id);
        if closed {
            exec_on(
                tx,
                "DELETE FROM receivables WHERE distributor_id = $1 AND invoice_number = $2",
                &[Val::I(distributor_id), Val::S(r.invoice_number.clone())],
            )
            .await?;
            stored.remove(&r.invoice_number);
        } else {
            exec_on(
                tx,
                "INSERT INTO receivables (distributor_id, invoice_number, outlet_id, invoice_date, due_date, \
                 amount_minor, paid_minor, currency, updated_at_ms, job_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (distributor_id, invoice_number) DO UPDATE SET outlet_id = excluded.outlet_id, \
                 invoice_date = excluded.invoice_date, due_date = excluded.due_date, \
                 amount_minor = excluded.amount_minor, paid_minor = excluded.paid_minor, \
                 currency = excluded.currency, updated_at_ms = excluded.updated_at_ms, job_id = excluded.job_id",
                &[
                    Val::I(distributor_id),
                    Val::S(r.invoice_number.clone()),
                    Val::I(r.outlet_id),
                    Val::S(r.invoice_date.clone()),
                    Val::S(r.due_date.clone()),
                    Val::I(r.amount_minor),
                    Val::I(r.paid_minor),
                    Val::S(r.currency.clone()),
                    Val::I(now),
                    Val::I(job_id),
                ],
            )
            .await?;
            stored.insert(r.invoice_number.clone(), after);
        }
    }
    let outlets: Vec<i64> = touched.into_iter().collect();
    let territories: Vec<(i64, Option<i64>)> = select_in!(
        *tx,
        (i64, Option<i64>),
        "SELECT id, territory_id FROM outlets WHERE distributor_id = $1 AND id IN ({})",
        [distributor_id],
        outlets
    );
    Ok(territories
        .into_iter()
        .map(|(id, t)| ChangeRef::upsert(EntityKind::Receivables, id, t.unwrap_or(-1)))
        .collect())
}

/// The `OutletReceivables` of these outlets (those without open invoices included, empty).
pub(crate) async fn load(pool: &sqlx::AnyPool, ids: &[i64]) -> Result<Vec<(i64, v1::Change)>> {
    let mut by_outlet: HashMap<i64, Vec<v1::Invoice>> =
        ids.iter().map(|id| (*id, Vec::new())).collect();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT outlet_id, invoice_number, invoice_date, due_date, amount_minor, paid_minor, currency \
             FROM receivables WHERE outlet_id IN ({}) ORDER BY outlet_id, due_date, invoice_number",
            super::sql::placeholders(1, chunk.len(), false)
        );
        let mut q = sqlx::query_as::<_, (i64, String, String, String, i64, i64, String)>(
            sqlx::AssertSqlSafe(sql),
        );
        for id in chunk {
            q = q.bind(*id);
        }
        for (outlet, number, invoice_date, due_date, amount_minor, paid_minor, currency) in
            q.fetch_all(pool).await?
        {
            by_outlet.entry(outlet).or_default().push(v1::Invoice {
                number,
                invoice_date,
                due_date,
                amount_minor,
                paid_minor,
                currency,
            });
        }
    }
    Ok(by_outlet
        .into_iter()
        .map(|(outlet_id, invoices)| {
            (
                outlet_id,
                v1::Change {
                    entity: Some(v1::change::Entity::Receivables(v1::OutletReceivables {
                        outlet_id,
                        invoices,
                    })),
                },
            )
        })
        .collect())
}

/// One open invoice on the payment calendar.
#[derive(Debug, Clone, Serialize)]
pub struct CalendarEntry {
    pub invoice_number: String,
    pub outlet_id: i64,
    pub outlet_code: String,
    pub outlet_name: String,
    pub invoice_date: String,
    pub due_date: String,
    pub amount_minor: i64,
    pub paid_minor: i64,
    pub open_minor: i64,
    pub currency: String,
}

/// What the payment calendar shows: the open invoices of a distributor's outlets, optionally
/// of one outlet or of the outlets of one position's territory.
#[derive(Debug, Clone, Default)]
pub struct CalendarFilter {
    pub outlet_id: Option<i64>,
    pub position_id: Option<i64>,
    /// At most this many invoices, oldest due first.
    pub limit: i64,
}

impl Store {
    /// A distributor's currency (what an invoice without one is in).
    pub async fn distributor_currency(&self, distributor_id: i64) -> Result<String> {
        let row: Option<(String,)> = self
            .opt(
                "SELECT currency FROM distributors WHERE id = $1",
                &[distributor_id.into_val()],
            )
            .await?;
        Ok(row.map(|r| r.0).unwrap_or_default())
    }

    /// The open invoices for the payment calendar, oldest due date first.
    pub async fn payment_calendar(
        &self,
        distributor_id: i64,
        f: &CalendarFilter,
    ) -> Result<Vec<CalendarEntry>> {
        let rows: Vec<(
            String,
            i64,
            String,
            String,
            String,
            String,
            i64,
            i64,
            String,
        )> = self
            .rows(
                "SELECT r.invoice_number, r.outlet_id, o.code, o.name, r.invoice_date, r.due_date,
                        r.amount_minor, r.paid_minor, r.currency
                 FROM receivables r JOIN outlets o ON o.id = r.outlet_id
                 WHERE r.distributor_id = $1
                   AND ($2 = 0 OR r.outlet_id = $2)
                   AND ($3 = 0 OR o.territory_id = (SELECT parent_id FROM org_units WHERE id = $3))
                 ORDER BY r.due_date, o.name, r.invoice_number
                 LIMIT $4",
                &[
                    distributor_id.into_val(),
                    f.outlet_id.unwrap_or(0).into_val(),
                    f.position_id.unwrap_or(0).into_val(),
                    f.limit.clamp(1, 10_000).into_val(),
                ],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    invoice_number,
                    outlet_id,
                    outlet_code,
                    outlet_name,
                    invoice_date,
                    due_date,
                    amount_minor,
                    paid_minor,
                    currency,
                )| CalendarEntry {
                    invoice_number,
                    outlet_id,
                    outlet_code,
                    outlet_name,
                    invoice_date,
                    due_date,
                    amount_minor,
                    paid_minor,
                    open_minor: (amount_minor - paid_minor).max(0),
                    currency,
                },
            )
            .collect())
    }
}
