//! Distribution centres (RDC): an outlet of the distributor that buys for other outlets. The
//! distributor's invoices to the RDC (actual sales) are redistributed to the outlets attached to
//! it by the RDC's method — by their shares (loaded with the outlet loader: columns `rdc_code`
//! and `rdc_share`), equally, or by the outlets' own orders in the invoice's month — optionally
//! counting the RDC itself among them. Every invoice line is split so that the parts add up to
//! it exactly, to the minor unit and to the thousandth ([`split`]). A run replaces what an
//! earlier run wrote for the same invoice lines, so running it twice gives the same result.
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::sql::{IntoVal, Val, exec_on, id_on, rows_on, select_in};
use super::{Result, Store, StoreError};

/// Invoices a redistribution writes per transaction.
pub const RUN_CHUNK: usize = 400;

/// The methods an RDC redistributes by.
pub const METHODS: [&str; 3] = ["shares", "equal", "orders"];

/// Splits `total` into parts proportional to `weights` (all ≥ 0, some > 0) that add up to
/// `total` exactly: each part is the floor of its exact share, and the units left over go one
/// each to the largest remainders (ties: the earlier weight). A negative total (a return) is
/// split as its absolute value and negated. `None` when no weight is positive.
pub fn split(total: i64, weights: &[i64]) -> Option<Vec<i64>> {
    let sum: i128 = weights.iter().map(|w| i128::from((*w).max(0))).sum();
    if sum == 0 || total == i64::MIN {
        return None;
    }
    let sign = if total < 0 { -1 } else { 1 };
    let t = i128::from(total).abs();
    let mut parts: Vec<i128> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let exact = t * i128::from((*w).max(0));
        parts.push(exact / sum);
        remainders.push((exact % sum, i));
    }
    let mut left = t - parts.iter().sum::<i128>();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    Some(parts.into_iter().map(|p| sign * p as i64).collect())
}

/// An RDC as its card shows and its form sends it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RdcForm {
    /// The code of the RDC's own outlet (its external code).
    pub outlet_code: String,
    pub name: String,
    pub activity_type: String,
    pub comment: String,
    pub method: String,
    /// Count the RDC's own outlet among the recipients.
    pub to_self: bool,
    /// `YYYY-MM-DD`, '' for open-ended; both days included.
    pub active_from: String,
    pub active_to: String,
    pub active: bool,
}

/// A stored RDC.
#[derive(Debug, Clone, Serialize)]
pub struct Rdc {
    pub id: i64,
    pub distributor_id: i64,
    pub outlet_id: i64,
    pub form: RdcForm,
    /// Attached outlets: (outlet id, code, name, share in thousandths of a percent).
    pub outlets: Vec<(i64, String, String, i64)>,
}

/// What a redistribution run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub id: i64,
    pub invoices: i64,
    pub lines: i64,
    pub parts: i64,
    /// Invoice lines left as they were, with why (no recipients, no orders to weigh by).
    pub failures: Vec<(String, i64, String)>,
}

/// What to redistribute: invoice dates (both included), optionally some RDCs and some invoices.
#[derive(Debug, Clone, Default)]
pub struct RunScope {
    pub from: String,
    pub to: String,
    pub rdc_ids: Vec<i64>,
    pub invoices: Vec<String>,
}

impl RdcForm {
    fn checked(&self) -> std::result::Result<RdcForm, String> {
        let f = RdcForm {
            outlet_code: self.outlet_code.trim().to_string(),
            name: self.name.trim().to_string(),
            activity_type: self.activity_type.trim().to_string(),
            comment: self.comment.trim().to_string(),
            method: self.method.trim().to_string(),
            active_from: self.active_from.trim().to_string(),
            active_to: self.active_to.trim().to_string(),
            ..self.clone()
        };
        if f.name.is_empty() || f.name.chars().count() > 200 {
            return Err("a name of 1 to 200 characters is required".into());
        }
        if !METHODS.contains(&f.method.as_str()) {
            return Err(format!("method {:?} is shares, equal or orders", f.method));
        }
        for d in [&f.active_from, &f.active_to] {
            if !d.is_empty() && !fieldsync_protocol::dates::is_date(d) {
                return Err(format!("{d:?} is not a date like 2026-12-31"));
            }
        }
        if !f.active_from.is_empty() && !f.active_to.is_empty() && f.active_from > f.active_to {
            return Err("the active period ends before it starts".into());
        }
        if f.comment.chars().count() > 1000 || f.activity_type.chars().count() > 100 {
            return Err("the comment (1000) or activity type (100) is too long".into());
        }
        Ok(f)
    }
}

type RdcRow = (
    i64,
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    i64,
);

impl Store {
    /// Creates an RDC (`existing` None) or changes one; returns its id, or why it was refused.
    pub async fn save_rdc(
        &self,
        d: i64,
        existing: Option<i64>,
        form: &RdcForm,
    ) -> Result<std::result::Result<i64, String>> {
        let f = match form.checked() {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        let mut tx = self.begin_write().await?;
        let outlet: Vec<(i64,)> = rows_on(
            &mut tx,
            "SELECT id FROM outlets WHERE distributor_id = $1 AND code = $2 AND deleted = 0",
            &[Val::I(d), f.outlet_code.clone().into_val()],
        )
        .await?;
        let Some((outlet_id,)) = outlet.into_iter().next() else {
            return Ok(Err(format!("no outlet {:?}", f.outlet_code)));
        };
        let vals = vec![
            Val::I(d),
            Val::I(outlet_id),
            f.name.clone().into_val(),
            f.activity_type.clone().into_val(),
            f.comment.clone().into_val(),
            f.method.clone().into_val(),
            Val::I(f.to_self as i64),
            f.active_from.clone().into_val(),
            f.active_to.clone().into_val(),
            (if f.active { "active" } else { "inactive" }).into_val(),
        ];
        let saved = match existing {
            None => {
                id_on(
                    &mut tx,
                    "INSERT INTO rdcs (distributor_id, outlet_id, name, activity_type, comment, method, to_self,
                        active_from, active_to, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                    &vals,
                )
                .await
            }
            Some(id) => {
                let mut v = vals;
                v.push(Val::I(id));
                id_on(
                    &mut tx,
                    "UPDATE rdcs SET outlet_id = $2, name = $3, activity_type = $4, comment = $5, method = $6,
                        to_self = $7, active_from = $8, active_to = $9, status = $10
                     WHERE id = $11 AND distributor_id = $1 RETURNING id",
                    &v,
                )
                .await
            }
        };
        let id = match saved {
            Ok(id) => id,
            Err(StoreError::Conflict(_)) => {
                return Ok(Err("that outlet is already an RDC".into()));
            }
            Err(e) => return Err(e),
        };
        tx.commit().await?;
        Ok(Ok(id))
    }

    /// The RDCs of these distributors with their attached outlets.
    pub async fn rdcs(&self, distributors: &[i64]) -> Result<Vec<Rdc>> {
        let mut out = Vec::new();
        for d in distributors {
            let rows: Vec<RdcRow> = self
                .rows(
                    "SELECT r.id, r.distributor_id, r.outlet_id, o.code, r.name, r.activity_type, r.comment,
                            r.method, r.to_self, r.active_from, r.active_to,
                            CASE WHEN r.status = 'active' THEN 1 ELSE 0 END
                     FROM rdcs r JOIN outlets o ON o.id = r.outlet_id WHERE r.distributor_id = $1 ORDER BY o.code",
                    &[d.into_val()],
                )
                .await?;
            for r in rows {
                let outlets: Vec<(i64, String, String, i64)> = self
                    .rows(
                        "SELECT o.id, o.code, o.name, a.share_milli FROM rdc_outlets a JOIN outlets o ON o.id = a.outlet_id
                         WHERE a.rdc_id = $1 ORDER BY o.code",
                        &[r.0.into_val()],
                    )
                    .await?;
                out.push(Rdc {
                    id: r.0,
                    distributor_id: r.1,
                    outlet_id: r.2,
                    form: RdcForm {
                        outlet_code: r.3,
                        name: r.4,
                        activity_type: r.5,
                        comment: r.6,
                        method: r.7,
                        to_self: r.8 != 0,
                        active_from: r.9,
                        active_to: r.10,
                        active: r.11 != 0,
                    },
                    outlets,
                });
            }
        }
        Ok(out)
    }

    /// One RDC.
    pub async fn rdc(&self, id: i64) -> Result<Option<Rdc>> {
        let d: Option<(i64,)> = self
            .opt(
                "SELECT distributor_id FROM rdcs WHERE id = $1",
                &[id.into_val()],
            )
            .await?;
        let Some((d,)) = d else { return Ok(None) };
        Ok(self.rdcs(&[d]).await?.into_iter().find(|r| r.id == id))
    }

    /// Attaches outlets to RDCs with their shares (thousandths of a percent; 0 detaches), as
    /// the outlet loader's `rdc_code` / `rdc_share` columns give them: (RDC outlet code,
    /// outlet id, share). Returns the rows refused with why (an RDC code that is no RDC).
    pub(crate) async fn attach_to_rdcs(
        &self,
        tx: &mut super::WriteTx,
        d: i64,
        rows: &[(String, i64, i64)],
    ) -> Result<Vec<(usize, String)>> {
        let codes: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        let rdcs: HashMap<String, i64> = select_in!(
            *tx,
            (String, i64),
            "SELECT o.code, r.id FROM rdcs r JOIN outlets o ON o.id = r.outlet_id
             WHERE r.distributor_id = $1 AND o.code IN ({})",
            [d],
            codes
        )
        .into_iter()
        .collect();
        let mut refused = Vec::new();
        for (i, (code, outlet, share)) in rows.iter().enumerate() {
            let rdc = rdcs.get(code);
            if rdc.is_none() && !code.is_empty() {
                refused.push((i, format!("no RDC with the outlet code {code:?}")));
                continue;
            }
            // An outlet follows one RDC: attaching it elsewhere moves it; an empty code
            // detaches it.
            exec_on(
                tx,
                "DELETE FROM rdc_outlets WHERE outlet_id = $1",
                &[Val::I(*outlet)],
            )
            .await?;
            if let Some(rdc) = rdc
                && *share > 0
            {
                exec_on(
                    tx,
                    "INSERT INTO rdc_outlets (rdc_id, outlet_id, share_milli) VALUES ($1, $2, $3)",
                    &[Val::I(*rdc), Val::I(*outlet), Val::I(*share)],
                )
                .await?;
            }
        }
        Ok(refused)
    }

    /// Redistributes the RDCs' invoice lines in `scope`; replaces what earlier runs wrote for
    /// them. Written in transactions of [`RUN_CHUNK`] invoices (each deletes its invoices'
    /// parts and writes them again), so phones' pushes wait for one chunk at most; a run cut
    /// short leaves every chunk whole, and running it again completes it.
    pub async fn redistribute(&self, d: i64, scope: &RunScope, now: i64) -> Result<RunReport> {
        let run_id = self
            .one_id(
                "INSERT INTO rdc_runs (distributor_id, started_at_ms, date_from, date_to, status)
                 VALUES ($1, $2, $3, $4, 'running') RETURNING id",
                &[
                    Val::I(d),
                    Val::I(now),
                    scope.from.clone().into_val(),
                    scope.to.clone().into_val(),
                ],
            )
            .await?;
        let outcome = self.run_redistribution(d, scope, run_id).await;
        if outcome.is_err() {
            // The run's list says it stopped; what it wrote is whole chunks (run it again).
            let _ = self
                .exec(
                    "UPDATE rdc_runs SET finished_at_ms = $1, status = 'failed',
                        message = 'the run stopped on an error; run it again' WHERE id = $2",
                    &[Val::I(super::now_ms()), Val::I(run_id)],
                )
                .await;
        }
        outcome
    }

    async fn run_redistribution(&self, d: i64, scope: &RunScope, run_id: i64) -> Result<RunReport> {
        let rdcs = self.rdcs(&[d]).await?;
        let rdcs: Vec<&Rdc> = rdcs
            .iter()
            .filter(|r| r.form.active)
            .filter(|r| scope.rdc_ids.is_empty() || scope.rdc_ids.contains(&r.id))
            .collect();
        let mut report = RunReport {
            id: run_id,
            ..Default::default()
        };
        let (tz,): (String,) = self
            .one(
                "SELECT timezone FROM distributors WHERE id = $1",
                &[d.into_val()],
            )
            .await?;
        for rdc in rdcs {
            // The RDC's invoice lines in the dates (and the invoices chosen), in its active
            // period.
            let from = max_date(&scope.from, &rdc.form.active_from);
            let to = min_date(&scope.to, &rdc.form.active_to);
            let lines: Vec<(String, i64, String, i64, i64, i64)> = self
                .rows(
                    "SELECT invoice_number, line_no, invoice_date, product_id, quantity_milli, amount_minor
                     FROM actual_sales WHERE distributor_id = $1 AND outlet_id = $2
                       AND invoice_date >= $3 AND invoice_date <= $4
                     ORDER BY invoice_number, line_no",
                    &[
                        Val::I(d),
                        Val::I(rdc.outlet_id),
                        from.into_val(),
                        to.into_val(),
                    ],
                )
                .await?;
            let lines: Vec<_> = lines
                .into_iter()
                .filter(|l| scope.invoices.is_empty() || scope.invoices.contains(&l.0))
                .collect();
            if lines.is_empty() {
                continue;
            }
            // Recipients and their weights.
            let mut recipients: Vec<(i64, i64)> = rdc
                .outlets
                .iter()
                .filter(|o| o.0 != rdc.outlet_id)
                .map(|o| (o.0, o.3))
                .collect();
            if rdc.form.to_self {
                let own = rdc
                    .outlets
                    .iter()
                    .find(|o| o.0 == rdc.outlet_id)
                    .map(|o| o.3)
                    .unwrap_or(0);
                recipients.push((rdc.outlet_id, own));
            }
            recipients.sort();
            // By orders: each recipient's ordered money in the invoice's month.
            let mut order_weights: BTreeMap<String, Vec<i64>> = BTreeMap::new();
            if rdc.form.method == "orders" {
                let months: std::collections::BTreeSet<String> =
                    lines.iter().map(|l| l.2[..7].to_string()).collect();
                let mut conn = self.pool().acquire().await?;
                for month in months {
                    let (start, end) = month_bounds(&month, &tz);
                    let ids: Vec<i64> = recipients.iter().map(|r| r.0).collect();
                    let sums: HashMap<i64, i64> = select_in!(
                        conn,
                        (i64, i64),
                        "SELECT outlet_id, CAST(SUM(total_minor) AS BIGINT) FROM orders
                         WHERE distributor_id = $1 AND placed_device_ms >= $2 AND placed_device_ms < $3
                           AND state NOT IN ('cancelled', 'rejected') AND outlet_id IN ({}) GROUP BY outlet_id",
                        [d, start, end],
                        ids
                    )
                    .into_iter()
                    .collect();
                    order_weights.insert(
                        month,
                        recipients
                            .iter()
                            .map(|r| sums.get(&r.0).copied().unwrap_or(0))
                            .collect(),
                    );
                }
            }
            let weights_for = |month: &str| -> Vec<i64> {
                match rdc.form.method.as_str() {
                    "equal" => vec![1; recipients.len()],
                    "orders" => order_weights.get(month).cloned().unwrap_or_default(),
                    _ => recipients.iter().map(|r| r.1).collect(),
                }
            };
            // Lines by invoice (they come sorted by invoice), written a chunk of invoices at
            // a time.
            let mut by_invoice: Vec<(String, Vec<&(String, i64, String, i64, i64, i64)>)> =
                Vec::new();
            for l in &lines {
                match by_invoice.last_mut() {
                    Some((inv, ls)) if *inv == l.0 => ls.push(l),
                    _ => by_invoice.push((l.0.clone(), vec![l])),
                }
            }
            report.invoices += by_invoice.len() as i64;
            for chunk in by_invoice.chunks(RUN_CHUNK) {
                let mut rows: Vec<DistributedRow> = Vec::new();
                for (_, ls) in chunk {
                    for (invoice, line_no, date, product, qty, amount) in ls.iter().copied() {
                        report.lines += 1;
                        let weights = weights_for(&date[..7]);
                        let parts = split(*amount, &weights).zip(split(*qty, &weights));
                        let Some((money, quantity)) = parts else {
                            let why = if recipients.is_empty() {
                                "the RDC has no outlets to redistribute to".to_string()
                            } else if rdc.form.method == "orders" {
                                format!("no orders of the RDC's outlets in {}", &date[..7])
                            } else {
                                "every share is 0".to_string()
                            };
                            report.failures.push((invoice.clone(), *line_no, why));
                            continue;
                        };
                        for (i, (outlet, _)) in recipients.iter().enumerate() {
                            if money[i] == 0 && quantity[i] == 0 {
                                continue;
                            }
                            rows.push(DistributedRow {
                                distributor_id: d,
                                rdc_id: rdc.id,
                                invoice_number: invoice.clone(),
                                line_no: *line_no,
                                outlet_id: *outlet,
                                invoice_date: date.clone(),
                                product_id: *product,
                                quantity_milli: quantity[i],
                                amount_minor: money[i],
                                run_id,
                            });
                        }
                    }
                }
                report.parts += rows.len() as i64;
                let mut tx = self.begin_write().await?;
                let sql = format!(
                    "DELETE FROM rdc_distributed WHERE distributor_id = $1 AND $2 = $2 AND invoice_number IN ({})",
                    super::sql::placeholders(3, chunk.len(), false)
                );
                // Whatever RDC wrote an invoice's parts before (an invoice re-sent under another
                // outlet moves), they are replaced. Planned per execution on PostgreSQL (see
                // `select_in!`): a generic plan made while the table was small scans it whole
                // for every chunk.
                let sqlite = super::sql::is_sqlite(&tx);
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .persistent(sqlite)
                    .bind(d)
                    .bind(rdc.id);
                for (inv, _) in chunk {
                    q = q.bind(inv);
                }
                q.execute(&mut *tx).await?;
                super::sql::insert(&mut tx, rows).await?;
                tx.commit().await?;
            }
        }
        let failures = report.failures.len() as i64;
        self.exec(
            "UPDATE rdc_runs SET finished_at_ms = $1, invoices = $2, lines = $3, parts = $4, failures = $5,
                status = CASE WHEN $5 = 0 THEN 'done' ELSE 'partial' END, message = $6 WHERE id = $7",
            &[
                Val::I(super::now_ms()),
                Val::I(report.invoices),
                Val::I(report.lines),
                Val::I(report.parts),
                Val::I(failures),
                report
                    .failures
                    .iter()
                    .take(50)
                    .map(|(i, l, w)| format!("{i}/{l}: {w}"))
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_val(),
                Val::I(run_id),
            ],
        )
        .await?;
        Ok(report)
    }

    /// The redistributed parts of an RDC's invoices in a date range: (invoice, line, outlet
    /// code, outlet name, date, product code, quantity, amount), by invoice and line.
    pub async fn rdc_result(
        &self,
        rdc_id: i64,
        from: &str,
        to: &str,
        limit: i64,
    ) -> Result<Vec<(String, i64, String, String, String, String, i64, i64)>> {
        self.rows(
            "SELECT x.invoice_number, x.line_no, o.code, o.name, x.invoice_date, p.code, x.quantity_milli, x.amount_minor
             FROM rdc_distributed x JOIN outlets o ON o.id = x.outlet_id JOIN products p ON p.id = x.product_id
             WHERE x.rdc_id = $1 AND x.invoice_date >= $2 AND x.invoice_date <= $3
             ORDER BY x.invoice_number, x.line_no, o.code LIMIT $4",
            &[
                rdc_id.into_val(),
                from.into_val(),
                to.into_val(),
                limit.into_val(),
            ],
        )
        .await
    }

    /// The latest runs of a distributor: (id, started, from, to, status, invoices, lines,
    /// parts, failures, message).
    pub async fn rdc_runs(
        &self,
        d: i64,
        limit: i64,
    ) -> Result<Vec<(i64, i64, String, String, String, i64, i64, i64, i64, String)>> {
        self.rows(
            "SELECT id, started_at_ms, date_from, date_to, status, invoices, lines, parts, failures, message
             FROM rdc_runs WHERE distributor_id = $1 ORDER BY id DESC LIMIT $2",
            &[d.into_val(), limit.into_val()],
        )
        .await
    }
}

super::sql::table_row! {
    /// A part of an RDC's invoice line redistributed to an outlet.
    DistributedRow => "rdc_distributed" {
        distributor_id: i64,
        rdc_id: i64,
        invoice_number: String,
        line_no: i64,
        outlet_id: i64,
        invoice_date: String,
        product_id: i64,
        quantity_milli: i64,
        amount_minor: i64,
        run_id: i64,
    }
}

fn max_date(a: &str, b: &str) -> String {
    if b.is_empty() || a >= b {
        a.to_string()
    } else {
        b.to_string()
    }
}

fn min_date(a: &str, b: &str) -> String {
    if b.is_empty() || a <= b {
        a.to_string()
    } else {
        b.to_string()
    }
}

/// The first millisecond of a month and of the next, in a time zone.
fn month_bounds(month: &str, tz: &str) -> (i64, i64) {
    use fieldsync_protocol::dates;
    let first = dates::parse(&format!("{month}-01")).unwrap_or(jiff::civil::date(1970, 1, 1));
    let next = first
        .checked_add(jiff::Span::new().months(1))
        .unwrap_or(first);
    (
        dates::day_start_ms(first, tz).unwrap_or(0),
        dates::day_start_ms(next, tz).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_split_adds_up_and_gives_leftover_units_to_the_largest_remainders() {
        assert_eq!(split(100, &[1, 1, 1]), Some(vec![34, 33, 33]));
        assert_eq!(split(-100, &[1, 1, 1]), Some(vec![-34, -33, -33]));
        assert_eq!(split(10, &[50_000, 30_000, 20_000]), Some(vec![5, 3, 2]));
        assert_eq!(split(1, &[1, 3]), Some(vec![0, 1]));
        assert_eq!(split(7, &[0, 0]), None);
        assert_eq!(split(0, &[2, 5]), Some(vec![0, 0]));
    }

    proptest! {
        #[test]
        fn any_split_keeps_the_total_and_stays_within_a_unit_of_the_exact_share(
            total in -1_000_000_000_000i64..1_000_000_000_000,
            weights in proptest::collection::vec(0i64..100_000_000, 1..40),
        ) {
            let sum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
            match split(total, &weights) {
                None => prop_assert_eq!(sum, 0),
                Some(parts) => {
                    prop_assert_eq!(parts.iter().map(|p| i128::from(*p)).sum::<i128>(), i128::from(total));
                    for (p, w) in parts.iter().zip(&weights) {
                        let exact = i128::from(total) * i128::from(*w);
                        let diff = i128::from(*p) * sum - exact;
                        prop_assert!(diff.abs() < sum, "{p} vs {exact}/{sum}");
                    }
                    prop_assert_eq!(split(total, &weights), Some(parts), "deterministic");
                }
            }
        }
    }
}
