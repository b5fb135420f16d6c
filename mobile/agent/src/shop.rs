//! What the agent needs in the shop beyond the order form: what the outlet owes (its open
//! invoices, as the distributor's system last reported them) and what became of its orders
//! (the server's number, confirmed and shipped quantities per line).
use fieldsync_protocol::dates;
use fieldsync_protocol::v1;
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

use crate::{Engine, EngineError};

/// One open invoice of an outlet.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceView {
    pub number: String,
    pub invoice_date: String,
    pub due_date: String,
    pub amount_minor: i64,
    pub paid_minor: i64,
    /// ISO 4217; the distributor's currency when the invoice named none.
    pub currency: String,
    /// What is left to pay.
    pub open_minor: i64,
    /// Due before today and not paid in full.
    pub overdue: bool,
    /// Days past the due date (0 when not overdue).
    pub days_overdue: i64,
}

/// What an outlet owes in one currency, as of the phone's today.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DebtTotals {
    pub currency: String,
    /// Everything open.
    pub owed_minor: i64,
    /// Open and due before today.
    pub overdue_minor: i64,
    /// Open and due from today to the end of this week (Sunday).
    pub due_this_week_minor: i64,
}

/// An outlet's receivables: totals per currency and the open invoices, oldest due first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Receivables {
    pub totals: Vec<DebtTotals>,
    pub invoices: Vec<InvoiceView>,
}

impl Receivables {
    /// Whether anything is overdue.
    pub fn has_overdue(&self) -> bool {
        self.totals.iter().any(|t| t.overdue_minor > 0)
    }
}

/// A line of an order with what the distributor made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct LineFate {
    pub line_no: i64,
    pub product_id: i64,
    pub product_name: String,
    pub ordered_milli: i64,
    /// `None`: not reported yet.
    pub confirmed_milli: Option<i64>,
    pub shipped_milli: Option<i64>,
}

impl LineFate {
    /// The distributor confirmed or shipped a different quantity than was ordered.
    pub fn differs(&self) -> bool {
        self.confirmed_milli
            .is_some_and(|q| q != self.ordered_milli)
            || self.shipped_milli.is_some_and(|q| q != self.ordered_milli)
    }
}

/// An order as the phone knows it now.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderFate {
    pub id: Uuid,
    /// The server's number; 0 until the server's first status arrives.
    pub number: i64,
    pub state: String,
    pub reason: String,
    pub document_number: String,
    pub total_minor: i64,
    pub created_ms: i64,
    pub lines: Vec<LineFate>,
}

/// A purchase plan of the month with how far it is met.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanView {
    pub id: i64,
    pub period: String,
    /// 0: the agent's own plan.
    pub outlet_id: i64,
    /// '' for every product.
    pub category: String,
    pub brand: String,
    pub measure: v1::PlanMeasure,
    pub target: i64,
    pub achieved: i64,
    /// `sales` or `orders`.
    pub achieved_from: String,
    pub computed_at_ms: i64,
    /// The agent's own orders the server had not counted yet when it sent the plan (still in
    /// the outbox, or taken by the server after the plan arrived; in the plan's month, not
    /// cancelled), for a plan counted from orders.
    pub pending: i64,
    /// When the phone stored the plan (its own clock).
    pub received_ms: i64,
}

impl PlanView {
    /// What is met as the phone knows it: the server's count and the agent's newer orders.
    pub fn met(&self) -> i64 {
        self.achieved + self.pending
    }

    /// Percent of the target met, rounded down.
    pub fn percent(&self) -> i64 {
        if self.target <= 0 {
            0
        } else {
            (i128::from(self.met()) * 100 / i128::from(self.target)) as i64
        }
    }
}

impl Engine {
    /// The month's plans of an outlet (`outlet_id` 0: the agent's own), as of the phone's
    /// today.
    pub fn plans(&self, outlet_id: i64) -> Result<Vec<PlanView>, EngineError> {
        let period: String = self.today().chars().take(7).collect();
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT id, period, outlet_id, category, brand, measure, target, achieved, achieved_from,
                    computed_at_ms, received_ms
             FROM plans WHERE outlet_id = ?1 AND period = ?2 ORDER BY category, brand, measure",
        )?;
        let rows = stmt.query_map(params![outlet_id, period], |r| {
            Ok(PlanView {
                id: r.get(0)?,
                period: r.get(1)?,
                outlet_id: r.get(2)?,
                category: r.get(3)?,
                brand: r.get(4)?,
                measure: v1::PlanMeasure::try_from(r.get::<_, i32>(5)?)
                    .unwrap_or(v1::PlanMeasure::PlanMoney),
                target: r.get(6)?,
                achieved: r.get(7)?,
                achieved_from: r.get(8)?,
                computed_at_ms: r.get(9)?,
                pending: 0,
                received_ms: r.get(10)?,
            })
        })?;
        let mut plans: Vec<PlanView> = rows.collect::<Result<_, _>>()?;
        // The agent's orders the server had not taken when the plans arrived (still in the
        // outbox, or taken after): (taken, created, category, brand, sum, quantity) of each
        // line. Both times are the phone's own clock.
        let since = plans
            .iter()
            .map(|p| p.received_ms)
            .min()
            .unwrap_or(i64::MAX);
        let mut lines = db.prepare_cached(
            "SELECT COALESCE(o.acked_ms, 9223372036854775807), o.created_ms, COALESCE(p.category, ''),
                    COALESCE(p.brand, ''), l.sum_minor, l.quantity_milli
             FROM orders o JOIN order_lines l ON l.order_id = o.id LEFT JOIN products p ON p.id = l.product_id
             WHERE (o.acked_ms IS NULL OR o.acked_ms > ?1) AND o.state NOT IN ('cancelled', 'rejected')
               AND (?2 = 0 OR o.outlet_id = ?2)",
        )?;
        let recent: Vec<(i64, i64, String, String, i64, i64)> = lines
            .query_map(params![since, outlet_id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        drop(lines);
        drop(stmt);
        drop(db);
        for p in plans.iter_mut().filter(|p| p.achieved_from == "orders") {
            p.pending = recent
                .iter()
                .filter(|(taken, created, category, brand, _, _)| {
                    *taken > p.received_ms
                        && self.local_date(*created).starts_with(&p.period)
                        && (p.category.is_empty() || *category == p.category)
                        && (p.brand.is_empty() || *brand == p.brand)
                })
                .map(|(_, _, _, _, money, qty)| match p.measure {
                    v1::PlanMeasure::PlanQuantity => *qty,
                    _ => *money,
                })
                .sum();
        }
        Ok(plans)
    }

    /// The distributor's rule for orders at outlets with overdue debt.
    pub fn overdue_policy(&self) -> Result<v1::OverduePolicy, EngineError> {
        Ok(self
            .distributor()?
            .map(|d| d.overdue_policy())
            .unwrap_or(v1::OverduePolicy::Warn))
    }

    /// What an outlet owes as of the phone's today.
    pub fn receivables(&self, outlet_id: i64) -> Result<Receivables, EngineError> {
        let today = self.today();
        let home = self.distributor()?.map(|d| d.currency).unwrap_or_default();
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT number, invoice_date, due_date, amount_minor, paid_minor, currency
             FROM invoices WHERE outlet_id = ?1 ORDER BY due_date, invoice_date, number",
        )?;
        let rows = stmt.query_map([outlet_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        Ok(receivables_of(
            rows.collect::<Result<Vec<_>, _>>()?,
            &today,
            &home,
        ))
    }

    /// An order with its lines' fate.
    pub fn order_fate(&self, id: Uuid) -> Result<Option<OrderFate>, EngineError> {
        let db = self.db();
        let head = db
            .query_row(
                "SELECT number, state, state_reason, document_number, total_minor, created_ms
                 FROM orders WHERE id = ?1",
                [id.to_string()],
                |r| {
                    Ok(OrderFate {
                        id,
                        number: r.get(0)?,
                        state: r.get(1)?,
                        reason: r.get(2)?,
                        document_number: r.get(3)?,
                        total_minor: r.get(4)?,
                        created_ms: r.get(5)?,
                        lines: Vec::new(),
                    })
                },
            )
            .optional()?;
        let Some(mut fate) = head else {
            return Ok(None);
        };
        let mut stmt = db.prepare_cached(
            "SELECT l.line_no, l.product_id, COALESCE(p.name, ''), l.quantity_milli,
                    l.confirmed_quantity_milli, l.shipped_quantity_milli
             FROM order_lines l LEFT JOIN products p ON p.id = l.product_id
             WHERE l.order_id = ?1 ORDER BY l.line_no",
        )?;
        fate.lines = stmt
            .query_map(params![id.to_string()], |r| {
                Ok(LineFate {
                    line_no: r.get(0)?,
                    product_id: r.get(1)?,
                    product_name: r.get(2)?,
                    ordered_milli: r.get(3)?,
                    confirmed_milli: r.get(4)?,
                    shipped_milli: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Some(fate))
    }
}

/// Totals and views of open invoices on `today` (`YYYY-MM-DD`); an invoice without a currency
/// is in `home`.
fn receivables_of(
    rows: Vec<(String, String, String, i64, i64, String)>,
    today: &str,
    home: &str,
) -> Receivables {
    let today_n = dates::parse_day_number(today).unwrap_or(0);
    // 1970-01-01 was a Thursday: Monday is day 0 of (n + 3) % 7.
    let sunday = today_n + (6 - (today_n + 3).rem_euclid(7));
    let mut out = Receivables::default();
    for (number, invoice_date, due_date, amount, paid, currency) in rows {
        let open = (amount - paid).max(0);
        if open == 0 {
            continue;
        }
        let currency = if currency.is_empty() {
            home.to_string()
        } else {
            currency
        };
        let due_n = dates::parse_day_number(&due_date);
        let days_overdue = due_n.map(|d| (today_n - d).max(0)).unwrap_or(0);
        let overdue = days_overdue > 0;
        let total = match out.totals.iter_mut().position(|t| t.currency == currency) {
            Some(i) => &mut out.totals[i],
            None => {
                out.totals.push(DebtTotals {
                    currency: currency.clone(),
                    ..Default::default()
                });
                out.totals.last_mut().expect("just pushed")
            }
        };
        total.owed_minor += open;
        if overdue {
            total.overdue_minor += open;
        } else if due_n.is_some_and(|d| d <= sunday) {
            total.due_this_week_minor += open;
        }
        out.invoices.push(InvoiceView {
            number,
            invoice_date,
            due_date,
            amount_minor: amount,
            paid_minor: paid,
            currency,
            open_minor: open,
            overdue,
            days_overdue,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(
        n: &str,
        due: &str,
        amount: i64,
        paid: i64,
    ) -> (String, String, String, i64, i64, String) {
        (
            n.into(),
            "2026-11-01".into(),
            due.into(),
            amount,
            paid,
            String::new(),
        )
    }

    #[test]
    fn debt_splits_into_overdue_due_this_week_and_later() {
        // 2026-12-09 is a Wednesday: this week runs to Sunday 2026-12-13.
        let r = receivables_of(
            vec![
                inv("A", "2026-12-01", 10_000, 2_500),
                inv("B", "2026-12-09", 5_000, 0),
                inv("C", "2026-12-13", 1_000, 0),
                inv("D", "2026-12-14", 7_000, 0),
                inv("E", "2026-11-20", 3_000, 3_000),
            ],
            "2026-12-09",
            "UAH",
        );
        assert_eq!(
            r.totals,
            vec![DebtTotals {
                currency: "UAH".into(),
                owed_minor: 7_500 + 5_000 + 1_000 + 7_000,
                overdue_minor: 7_500,
                due_this_week_minor: 6_000,
            }]
        );
        assert!(r.has_overdue());
        // Paid in full: not listed.
        assert_eq!(r.invoices.len(), 4);
        assert_eq!(r.invoices[0].days_overdue, 8);
        assert!(!r.invoices[1].overdue, "due today is not overdue yet");
    }

    #[test]
    fn on_a_sunday_the_week_ends_today() {
        let r = receivables_of(
            vec![
                inv("A", "2026-12-13", 100, 0),
                inv("B", "2026-12-14", 100, 0),
            ],
            "2026-12-13",
            "UAH",
        );
        assert_eq!(r.totals[0].due_this_week_minor, 100);
        assert!(!r.has_overdue());
    }
}
