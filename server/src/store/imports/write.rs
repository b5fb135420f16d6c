//! The writers of the kinds that came before org units, price lists and sync points: each
//! runs inside the transaction it is given, reads what is stored, writes only what differs
//! and counts what it did (created, changed with before and after, unchanged). The caller
//! commits, or in a dry run rolls back: the counts of a dry run are the statements' own.
use std::collections::HashMap;

use fieldsync_protocol::dates;
use fieldsync_protocol::v1::EntityKind;

use super::super::sql::{Val, exec_on, id_on, insert, rows_on, select_in};
use super::super::warehouses::bound_changes;
use super::super::world::{ChangeRef, PatchReport, set_route_on};
use super::super::{Result, WriteTx};
use super::SaleRow;

/// `items` in chunks of about `size`, every item of one key in the chunk of its first. A dry
/// run rolls each chunk back, so a later row of a key sees the earlier ones only within its
/// own chunk; kept together, the rows count as a real run counts them.
pub(super) fn keyed_chunks<T, K: Eq + std::hash::Hash>(
    items: Vec<T>,
    size: usize,
    key: impl Fn(&T) -> K,
) -> Vec<Vec<T>> {
    let mut chunks: Vec<Vec<T>> = Vec::new();
    let mut home: HashMap<K, usize> = HashMap::new();
    for item in items {
        let i = match home.get(&key(&item)) {
            Some(i) => *i,
            None => {
                if chunks.last().is_none_or(|c| c.len() >= size) {
                    chunks.push(Vec::new());
                }
                home.insert(key(&item), chunks.len() - 1);
                chunks.len() - 1
            }
        };
        chunks[i].push(item);
    }
    chunks
}

/// Codes by id (the other way round of a code lookup), for the before and after of a report.
pub(super) fn reverse(by_code: &HashMap<String, i64>) -> HashMap<i64, String> {
    by_code.iter().map(|(c, id)| (*id, c.clone())).collect()
}

/// Codes of the ids a report names: outlets, and products (or positions for routes).
pub(super) struct Names {
    pub outlets: HashMap<i64, String>,
    pub products: HashMap<i64, String>,
}

impl Names {
    fn code(map: &HashMap<i64, String>, id: i64) -> String {
        map.get(&id).cloned().unwrap_or_else(|| format!("#{id}"))
    }
}

/// An integer of 10^-scale units as a decimal ("1250", 2 -> "12.50").
fn scaled(v: i64, scale: u32) -> String {
    let unit = 10i64.pow(scale);
    let sign = if v < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:0width$}",
        v.abs() / unit,
        v.abs() % unit,
        width = scale as usize
    )
}

/// A price row of a file: price list, product, price, its first day and "list/product" for
/// the report.
pub(super) struct PriceRow {
    pub list_id: i64,
    pub product_id: i64,
    pub price_minor: i64,
    /// `YYYY-MM-DD`; empty: since always.
    pub valid_from: String,
    pub label: String,
}

/// Sets prices: a new (price list, product, first day) is created, a different price changed,
/// an equal one left alone. A dated price that a later one superseded before yesterday (UTC:
/// in force everywhere, whatever the phone's day) is removed, for the (price list, product)
/// pairs the file names. Returns the changes for the phones.
pub(super) async fn write_prices(
    tx: &mut WriteTx,
    rows: &[PriceRow],
    report: &mut PatchReport,
) -> Result<Vec<ChangeRef>> {
    type Key = (i64, i64, String);
    let mut stored: HashMap<Key, (i64, i64)> = HashMap::new();
    let mut lists: Vec<i64> = rows.iter().map(|r| r.list_id).collect();
    lists.sort_unstable();
    lists.dedup();
    for list in lists {
        let products: Vec<i64> = rows
            .iter()
            .filter(|r| r.list_id == list)
            .map(|r| r.product_id)
            .collect();
        let found: Vec<(i64, i64, i64, String)> = select_in!(
            *tx,
            (i64, i64, i64, String),
            "SELECT product_id, id, price_minor, valid_from FROM prices \
             WHERE price_list_id = $1 AND product_id IN ({})",
            [list],
            products
        );
        for (product, id, price, from) in found {
            stored.insert((list, product, from), (id, price));
        }
    }
    let (mut changes, mut seen) = (Vec::new(), std::collections::HashSet::new());
    for r in rows {
        let key = (r.list_id, r.product_id, r.valid_from.clone());
        let id = match stored.get(&key) {
            Some((_, price)) if *price == r.price_minor => {
                report.unchanged += 1;
                continue;
            }
            Some((id, price)) => {
                report.changed += 1;
                report.note_changes(
                    &r.label,
                    &[("price", scaled(*price, 2), scaled(r.price_minor, 2))],
                );
                exec_on(
                    tx,
                    "UPDATE prices SET price_minor = $2 WHERE id = $1",
                    &[Val::I(*id), Val::I(r.price_minor)],
                )
                .await?;
                *id
            }
            None => {
                report.created += 1;
                id_on(
                    tx,
                    "INSERT INTO prices (price_list_id, product_id, price_minor, valid_from) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                    &[
                        Val::I(r.list_id),
                        Val::I(r.product_id),
                        Val::I(r.price_minor),
                        Val::S(r.valid_from.clone()),
                    ],
                )
                .await?
            }
        };
        // A file may name one price twice: the change log takes each entity once.
        stored.insert(key, (id, r.price_minor));
        if seen.insert(id) {
            changes.push(ChangeRef::upsert(EntityKind::Price, id, 0));
        }
    }
    let yesterday = dates::format_day_number(dates::day_of_ms(super::super::now_ms()) - 1);
    for id in superseded(&stored, &yesterday) {
        exec_on(tx, "DELETE FROM prices WHERE id = $1", &[Val::I(id)]).await?;
        report.removed += 1;
        changes.push(ChangeRef::delete(EntityKind::Price, id, 0));
    }
    Ok(changes)
}

/// The ids of prices that a later price of the same (price list, product) replaced on or
/// before `day` (`YYYY-MM-DD`): the one in force on `day` and every later one stay.
fn superseded(prices: &HashMap<(i64, i64, String), (i64, i64)>, day: &str) -> Vec<i64> {
    let mut in_force: HashMap<(i64, i64), &str> = HashMap::new();
    for (list, product, from) in prices.keys() {
        if from.as_str() <= day {
            let latest = in_force.entry((*list, *product)).or_insert(from);
            if from.as_str() > *latest {
                *latest = from;
            }
        }
    }
    let mut out: Vec<i64> = prices
        .iter()
        .filter(|((list, product, from), _)| {
            in_force
                .get(&(*list, *product))
                .is_some_and(|latest| from.as_str() < *latest)
        })
        .map(|(_, (id, _))| *id)
        .collect();
    out.sort_unstable();
    out
}

/// Creates or renames warehouses by code.
pub(super) async fn write_warehouses(
    tx: &mut WriteTx,
    distributor_id: i64,
    rows: &[(String, String)],
    report: &mut PatchReport,
) -> Result<Vec<ChangeRef>> {
    let codes: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let found: Vec<(String, String)> = select_in!(
        *tx,
        (String, String),
        "SELECT code, name FROM warehouses WHERE distributor_id = $1 AND code IN ({})",
        [distributor_id],
        codes
    );
    let mut stored: HashMap<String, String> = found.into_iter().collect();
    let mut changes = Vec::new();
    for (code, name) in rows {
        match stored.get(code) {
            Some(before) if before == name => {
                report.unchanged += 1;
                continue;
            }
            Some(before) => {
                report.changed += 1;
                report.note_changes(code, &[("name", before.clone(), name.clone())]);
            }
            None => report.created += 1,
        }
        let (id, active): (i64, i64) = rows_on(
            tx,
            "INSERT INTO warehouses (distributor_id, code, name) VALUES ($1, $2, $3) \
             ON CONFLICT (distributor_id, code) DO UPDATE SET name = excluded.name \
             RETURNING id, active",
            &[
                Val::I(distributor_id),
                Val::S(code.clone()),
                Val::S(name.clone()),
            ],
        )
        .await?
        .remove(0);
        // A renamed warehouse reaches the phones bound to it (a new one has none yet).
        changes.extend(bound_changes(tx, id, active != 0).await?);
        stored.insert(code.clone(), name.clone());
    }
    Ok(changes)
}

/// Sets stock quantities (warehouse, product, thousandths, "warehouse/product"); every row
/// is stamped with the time of the import, a quantity equal to the stored one counts as
/// unchanged. Returns the changes that send every warehouse the file names, with its stock
/// and the time of this report, to the phones of the positions bound to it.
pub(super) async fn write_stock(
    tx: &mut WriteTx,
    distributor_id: i64,
    rows: &[(i64, i64, i64, String)],
    report: &mut PatchReport,
) -> Result<Vec<ChangeRef>> {
    let found: Vec<(i64, i64, i64)> = rows_on(
        tx,
        "SELECT s.warehouse_id, s.product_id, s.quantity_milli FROM stock s \
         JOIN warehouses w ON w.id = s.warehouse_id WHERE w.distributor_id = $1",
        &[Val::I(distributor_id)],
    )
    .await?;
    let mut stored: HashMap<(i64, i64), i64> =
        found.into_iter().map(|(w, p, q)| ((w, p), q)).collect();
    let now = super::super::now_ms();
    for (w, p, q, label) in rows {
        match stored.get(&(*w, *p)) {
            Some(before) if before == q => report.unchanged += 1,
            Some(before) => {
                report.changed += 1;
                report.note_changes(label, &[("quantity", scaled(*before, 3), scaled(*q, 3))]);
            }
            None => report.created += 1,
        }
        exec_on(
            tx,
            "INSERT INTO stock (warehouse_id, product_id, quantity_milli, updated_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (warehouse_id, product_id) DO UPDATE SET quantity_milli = excluded.quantity_milli, \
             updated_at_ms = excluded.updated_at_ms",
            &[Val::I(*w), Val::I(*p), Val::I(*q), Val::I(now)],
        )
        .await?;
        stored.insert((*w, *p), *q);
    }
    let mut warehouses: Vec<i64> = rows.iter().map(|r| r.0).collect();
    warehouses.sort_unstable();
    warehouses.dedup();
    let mut changes = Vec::new();
    for w in warehouses {
        // The pull never sends an inactive warehouse: its stock waits for its reactivation.
        changes.extend(bound_changes(tx, w, true).await?);
    }
    Ok(changes)
}

type StoredSale = (String, i64, String, i64, i64, i64, i64);

/// Stores invoices of actual sales: a re-sent invoice replaces the earlier one. Lines are
/// counted by (invoice, line number): new, changed (before and after of the first), the
/// same, and stored lines past the new last line as removed.
pub(super) async fn write_sales(
    tx: &mut WriteTx,
    distributor_id: i64,
    rows: Vec<SaleRow>,
    names: &Names,
    report: &mut PatchReport,
) -> Result<()> {
    let mut invoices: Vec<String> = rows.iter().map(|r| r.invoice_number.clone()).collect();
    invoices.sort_unstable();
    invoices.dedup();
    let found: Vec<StoredSale> = select_in!(
        *tx,
        StoredSale,
        "SELECT invoice_number, line_no, invoice_date, outlet_id, product_id, quantity_milli, amount_minor \
         FROM actual_sales WHERE distributor_id = $1 AND invoice_number IN ({})",
        [distributor_id],
        invoices.clone()
    );
    let mut stored: HashMap<(String, i64), StoredSale> =
        found.into_iter().map(|r| ((r.0.clone(), r.1), r)).collect();
    let describe = |date: &str, outlet: i64, product: i64, q: i64, a: i64| {
        format!(
            "{date} {} {} x {} = {}",
            Names::code(&names.outlets, outlet),
            Names::code(&names.products, product),
            scaled(q, 3),
            scaled(a, 2)
        )
    };
    for r in &rows {
        match stored.remove(&(r.invoice_number.clone(), r.line_no)) {
            None => report.created += 1,
            Some(s)
                if (s.2.as_str(), s.3, s.4, s.5, s.6)
                    == (
                        r.invoice_date.as_str(),
                        r.outlet_id,
                        r.product_id,
                        r.quantity_milli,
                        r.amount_minor,
                    ) =>
            {
                report.unchanged += 1
            }
            Some(s) => {
                report.changed += 1;
                let label = format!("{}/{}", r.invoice_number, r.line_no);
                let before = describe(&s.2, s.3, s.4, s.5, s.6);
                let after = describe(
                    &r.invoice_date,
                    r.outlet_id,
                    r.product_id,
                    r.quantity_milli,
                    r.amount_minor,
                );
                report.note_changes(&label, &[("line", before, after)]);
            }
        }
    }
    report.removed += stored.len() as i64;
    for chunk in invoices.chunks(500) {
        let ps: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM actual_sales WHERE distributor_id = $1 AND invoice_number IN ({})",
            ps.join(", ")
        )))
        .bind(distributor_id);
        for inv in chunk {
            q = q.bind(inv.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    insert(tx, rows).await
}

/// Sets routes ((position, date), outlets in stop order): a route with the same stops as
/// stored is left alone; a new or different one is written and reaches its position's
/// phone. `names.products` holds the positions' codes. Returns the changes.
pub(super) async fn write_routes(
    tx: &mut WriteTx,
    distributor_id: i64,
    routes: &[((i64, String), Vec<i64>)],
    names: &Names,
    report: &mut PatchReport,
) -> Result<Vec<ChangeRef>> {
    let mut dates: Vec<String> = routes.iter().map(|r| r.0.1.clone()).collect();
    dates.sort_unstable();
    dates.dedup();
    let found: Vec<(i64, String, Option<i64>)> = select_in!(
        *tx,
        (i64, String, Option<i64>),
        "SELECT r.position_id, r.route_date, s.outlet_id FROM routes r \
         LEFT JOIN route_stops s ON s.route_id = r.id \
         WHERE r.distributor_id = $1 AND r.route_date IN ({}) \
         ORDER BY r.position_id, r.route_date, s.stop_order",
        [distributor_id],
        dates
    );
    let mut stored: HashMap<(i64, String), Vec<i64>> = HashMap::new();
    for (position, date, outlet) in found {
        let stops = stored.entry((position, date)).or_default();
        stops.extend(outlet);
    }
    let stops_text = |ids: &[i64]| {
        ids.iter()
            .map(|id| Names::code(&names.outlets, *id))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut changes = Vec::new();
    for ((position, date), outlets) in routes {
        match stored.get(&(*position, date.clone())) {
            Some(before) if before == outlets => {
                report.unchanged += 1;
                continue;
            }
            Some(before) => {
                report.changed += 1;
                let label = format!("{} {date}", Names::code(&names.products, *position));
                report.note_changes(
                    &label,
                    &[("stops", stops_text(before), stops_text(outlets))],
                );
            }
            None => report.created += 1,
        }
        let (_, change) = set_route_on(tx, distributor_id, *position, date, outlets).await?;
        changes.push(change);
    }
    Ok(changes)
}
