//! What the screens and the simulators read.
use fieldsync_protocol::v1::{self, mutation::Kind};
use prost::Message;
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

use crate::{Engine, EngineError, OrderDraft, store};

/// A visit's state as the route shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitState {
    NotVisited,
    InProgress,
    Done,
}

/// An outlet as lists show it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutletView {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub address: String,
    pub contact_name: String,
    pub phone: String,
    /// Reference location (degrees * 10^7).
    pub location: Option<(i32, i32)>,
    pub price_list_id: i64,
}

/// One stop of a route.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteStopView {
    pub route_id: i64,
    pub position: u32,
    pub outlet: OutletView,
    pub state: VisitState,
}

/// A product with its price in a price list.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductView {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub unit: String,
    pub must_stock: bool,
    pub price_minor: Option<i64>,
}

/// A mutation the server refused, with its reason.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusedItem {
    pub seq: i64,
    pub kind: String,
    pub code: String,
    pub reason: String,
    pub created_ms: i64,
}

/// The outbox as the sync banner shows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutboxStatus {
    pub pending: u64,
    pub refused: Vec<RefusedItem>,
    pub last_sync_ms: Option<i64>,
}

/// A visit as the outlet and visit screens show it.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitView {
    pub id: Uuid,
    pub outlet_id: i64,
    pub route_id: Option<i64>,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    /// The fix the visit started with: (lat e7, lon e7, accuracy dm).
    pub start_fix: Option<(i32, i32, u32)>,
    /// The platform said a start fix came from a mock-location provider.
    pub start_mock: bool,
}

/// What has been done inside a visit so far.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VisitActivity {
    /// (order id, total, state).
    pub orders: Vec<(Uuid, i64, String)>,
    /// Questionnaires answered in the visit.
    pub questionnaires: Vec<i64>,
    /// Distribution checks: (items, present).
    pub distribution: Vec<(i64, i64)>,
}

/// One outbox entry and what became of it, for the sync screen.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub seq: i64,
    pub kind: String,
    /// "pending", "acked" or "refused".
    pub state: String,
    pub code: String,
    pub reason: String,
    pub created_ms: i64,
    pub acked_ms: Option<i64>,
}

/// Counts of facts by kind, as the server counts them (rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KindCounts {
    pub visits: u64,
    pub gps_fixes: u64,
    pub orders: u64,
    pub order_lines: u64,
    pub questionnaire_answers: u64,
    pub distribution_checks: u64,
}

impl KindCounts {
    fn add(&mut self, m: &v1::Mutation) {
        match &m.kind {
            Some(Kind::VisitStarted(v)) => {
                self.visits += 1;
                self.gps_fixes += v.fixes.len() as u64;
            }
            Some(Kind::VisitEnded(v)) => self.gps_fixes += v.fixes.len() as u64,
            Some(Kind::OrderPlaced(o)) => {
                self.orders += 1;
                self.order_lines += o.lines.len() as u64;
            }
            Some(Kind::QuestionnaireAnswered(q)) => {
                self.questionnaire_answers += q.answers.len() as u64
            }
            Some(Kind::DistributionChecked(d)) => self.distribution_checks += d.items.len() as u64,
            Some(Kind::OrderCancelled(_))
            | Some(Kind::CardChanged(_))
            | Some(Kind::ClaimSaved(_))
            | Some(Kind::ClaimDeleted(_))
            | None => {}
        }
    }
}

/// What this engine created, what the server acknowledged as stored, and what it refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub created: KindCounts,
    pub acknowledged: KindCounts,
    pub refused: KindCounts,
    pub refused_mutations: u64,
    pub pending_mutations: u64,
}

fn outlet_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutletView> {
    let lat: Option<i64> = r.get(6)?;
    let lon: Option<i64> = r.get(7)?;
    Ok(OutletView {
        id: r.get(0)?,
        code: r.get(1)?,
        name: r.get(2)?,
        address: r.get(3)?,
        contact_name: r.get(4)?,
        phone: r.get(5)?,
        location: lat.zip(lon).map(|(a, b)| (a as i32, b as i32)),
        price_list_id: r.get(8)?,
    })
}

/// A product row: id, code, name, unit, must_stock, then its price (NULL: none).
fn product_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProductView> {
    Ok(ProductView {
        id: r.get(0)?,
        code: r.get(1)?,
        name: r.get(2)?,
        unit: r.get(3)?,
        must_stock: r.get::<_, i64>(4)? != 0,
        price_minor: r.get(5)?,
    })
}

const OUTLET_COLUMNS: &str =
    "o.id, o.code, o.name, o.address, o.contact_name, o.phone, o.lat_e7, o.lon_e7, o.price_list_id";

impl Engine {
    /// The route of a date ("YYYY-MM-DD"), in order, with each stop's visit state.
    pub fn route(&self, date: &str) -> Result<Vec<RouteStopView>, EngineError> {
        let db = self.db();
        let mut stmt = db.prepare_cached(&format!(
            "SELECT {OUTLET_COLUMNS}, s.route_id, s.position,
                    (SELECT CASE WHEN COUNT(*) = 0 THEN 0 WHEN SUM(v.ended_ms IS NULL) > 0 THEN 1 ELSE 2 END
                     FROM visits v WHERE v.outlet_id = o.id AND v.route_id = s.route_id)
             FROM routes r JOIN route_stops s ON s.route_id = r.id JOIN outlets o ON o.id = s.outlet_id
             WHERE r.route_date = ?1 ORDER BY s.position"
        ))?;
        let rows = stmt.query_map([date], |r| {
            Ok(RouteStopView {
                outlet: outlet_from_row(r)?,
                route_id: r.get(9)?,
                position: r.get::<_, i64>(10)? as u32,
                state: match r.get::<_, i64>(11)? {
                    0 => VisitState::NotVisited,
                    1 => VisitState::InProgress,
                    _ => VisitState::Done,
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Outlets whose name, code or address contains `query` (all when empty).
    pub fn search_outlets(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<Vec<OutletView>, EngineError> {
        let db = self.db();
        let mut stmt = db.prepare_cached(&format!(
            "SELECT {OUTLET_COLUMNS} FROM outlets o WHERE o.search LIKE ?1 ESCAPE '\\' ORDER BY o.name LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![like(query), limit as i64], outlet_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn outlet(&self, id: i64) -> Result<Option<OutletView>, EngineError> {
        let db = self.db();
        Ok(db
            .query_row(
                &format!("SELECT {OUTLET_COLUMNS} FROM outlets o WHERE o.id = ?1"),
                [id],
                outlet_from_row,
            )
            .optional()?)
    }

    /// Today as the phone counts days for prices, routes, questionnaires and debts: the date
    /// of its clock in its time zone, `YYYY-MM-DD`.
    pub fn today(&self) -> String {
        self.local_date(self.now_ms())
    }

    /// Catalogue search by name or code, with prices from `price_list_id` (0: none): the
    /// product whose code is exactly `query` first, then matches in name order. The name
    /// index lets a short query stop after `limit` matches instead of sorting them all.
    pub fn search_products(
        &self,
        query: &str,
        price_list_id: i64,
        limit: usize,
    ) -> Result<Vec<ProductView>, EngineError> {
        let today = self.today();
        let db = self.db();
        let code = query.trim();
        let mut out: Vec<ProductView> = if code.is_empty() {
            Vec::new()
        } else {
            let mut exact = db.prepare_cached(&format!(
                "SELECT p.id, p.code, p.name, p.unit, p.must_stock, pr.price_minor
                 FROM products p {}
                 WHERE p.code = ?1 COLLATE NOCASE",
                price_in_force(2, 3)
            ))?;
            exact
                .query_map(params![code, price_list_id, today], product_from_row)?
                .collect::<Result<_, _>>()?
        };
        let mut stmt = db.prepare_cached(&format!(
            "SELECT p.id, p.code, p.name, p.unit, p.must_stock, pr.price_minor
             FROM products p INDEXED BY products_name {}
             WHERE p.search LIKE ?1 ESCAPE '\\' ORDER BY p.name LIMIT ?3",
            price_in_force(2, 4)
        ))?;
        let rest = stmt.query_map(
            params![
                like(query),
                price_list_id,
                (limit + out.len()) as i64,
                today
            ],
            product_from_row,
        )?;
        for p in rest {
            let p = p?;
            if out.len() >= limit {
                break;
            }
            if !out.iter().any(|x| x.id == p.id) {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// One product with its price in `price_list_id` (0: none).
    pub fn product(&self, id: i64, price_list_id: i64) -> Result<Option<ProductView>, EngineError> {
        let today = self.today();
        let db = self.db();
        Ok(db
            .query_row(
                &format!(
                    "SELECT p.id, p.code, p.name, p.unit, p.must_stock, pr.price_minor
                     FROM products p {}
                     WHERE p.id = ?1",
                    price_in_force(2, 3)
                ),
                params![id, price_list_id, today],
                product_from_row,
            )
            .optional()?)
    }

    /// Every must-stock product, whatever channels it is must-stock for (a visit's
    /// distribution check uses [`Engine::must_stock_for`]).
    pub fn must_stock(&self) -> Result<Vec<ProductView>, EngineError> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT id, code, name, unit, must_stock, NULL FROM products WHERE must_stock = 1 ORDER BY name",
        )?;
        let rows = stmt.query_map([], product_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The must-stock products at an outlet, for its distribution check: those must-stock
    /// for every channel (no channels named) and those for the outlet's channel (matched
    /// exactly). An outlet the phone does not have gets only the first.
    pub fn must_stock_for(&self, outlet_id: i64) -> Result<Vec<ProductView>, EngineError> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT p.id, p.code, p.name, p.unit, p.must_stock, NULL FROM products p
             WHERE p.must_stock = 1
               AND (NOT EXISTS (SELECT 1 FROM product_must_stock_channels c WHERE c.product_id = p.id)
                    OR EXISTS (SELECT 1 FROM product_must_stock_channels c
                               WHERE c.product_id = p.id
                                 AND c.channel = (SELECT o.channel FROM outlets o WHERE o.id = ?1)))
             ORDER BY p.name",
        )?;
        let rows = stmt.query_map([outlet_id], product_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Warehouses bound to this position for orders.
    pub fn warehouses(&self) -> Result<Vec<v1::Warehouse>, EngineError> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT id, code, name, stock_updated_at_ms FROM warehouses ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(v1::Warehouse {
                id: r.get(0)?,
                code: r.get(1)?,
                name: r.get(2)?,
                stock: Vec::new(),
                stock_updated_at_ms: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Quantity on hand (thousandths) in `warehouse_id` of each of `product_ids` whose stock
    /// the distributor reported; products with no known stock are absent.
    pub fn stock_on_hand(
        &self,
        warehouse_id: i64,
        product_ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, i64>, EngineError> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT quantity_milli FROM stock WHERE warehouse_id = ?1 AND product_id = ?2",
        )?;
        let mut out = std::collections::HashMap::new();
        for p in product_ids {
            if let Some(q) = stmt
                .query_row(params![warehouse_id, p], |r| r.get::<_, i64>(0))
                .optional()?
            {
                out.insert(*p, q);
            }
        }
        Ok(out)
    }

    /// The lines of `draft` that order more than its warehouse holds, as
    /// (product id, ordered, on hand) in thousandths. A warning for the agent: such an order
    /// can still be placed (the distributor may have stock by delivery).
    pub fn beyond_stock(&self, draft: &OrderDraft) -> Result<Vec<(i64, i64, i64)>, EngineError> {
        let ids: Vec<i64> = draft.lines.iter().map(|l| l.0).collect();
        let on_hand = self.stock_on_hand(draft.warehouse_id, &ids)?;
        Ok(draft
            .lines
            .iter()
            .filter_map(|(p, q)| on_hand.get(p).filter(|h| q > h).map(|h| (*p, *q, *h)))
            .collect())
    }

    pub fn questionnaires(&self) -> Result<Vec<v1::Questionnaire>, EngineError> {
        let db = self.db();
        let mut stmt = db.prepare_cached("SELECT body FROM questionnaires ORDER BY name")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        Ok(rows
            .filter_map(|b| {
                b.ok()
                    .and_then(|b| v1::Questionnaire::decode(b.as_slice()).ok())
            })
            .collect())
    }

    /// The questionnaires offered at an outlet on `date` ("YYYY-MM-DD"): those within their
    /// validity and for the outlet's channel ([`fieldsync_protocol::questionnaire::applies`]).
    pub fn questionnaires_for(
        &self,
        outlet_id: i64,
        date: &str,
    ) -> Result<Vec<v1::Questionnaire>, EngineError> {
        let channel: Option<String> = self
            .db()
            .query_row(
                "SELECT channel FROM outlets WHERE id = ?1",
                [outlet_id],
                |r| r.get(0),
            )
            .optional()?;
        let channel = channel.unwrap_or_default();
        Ok(self
            .questionnaires()?
            .into_iter()
            .filter(|q| fieldsync_protocol::questionnaire::applies(q, &channel, date))
            .collect())
    }

    /// The questionnaires of a visit: those offered at its outlet on the day it started
    /// ([`Engine::questionnaires_for`]), and any answered in it that no longer are.
    pub fn questionnaires_for_visit(
        &self,
        visit: Uuid,
    ) -> Result<Vec<v1::Questionnaire>, EngineError> {
        let Some(v) = self.visit(visit)? else {
            return Ok(Vec::new());
        };
        let date = self.local_date(v.started_ms);
        let answered = self.visit_activity(visit)?.questionnaires;
        let offered = self.questionnaires_for(v.outlet_id, &date)?;
        Ok(self
            .questionnaires()?
            .into_iter()
            .filter(|q| answered.contains(&q.id) || offered.iter().any(|o| o.id == q.id))
            .collect())
    }

    pub fn questionnaire(&self, id: i64) -> Result<Option<v1::Questionnaire>, EngineError> {
        let db = self.db();
        let body: Option<Vec<u8>> = db
            .query_row("SELECT body FROM questionnaires WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(body.and_then(|b| v1::Questionnaire::decode(b.as_slice()).ok()))
    }

    /// The state of an order as the distributor reported it last (or "placed").
    pub fn order_state(&self, id: Uuid) -> Result<Option<(String, String)>, EngineError> {
        let db = self.db();
        Ok(db
            .query_row(
                "SELECT state, state_reason FROM orders WHERE id = ?1",
                [id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Orders of an outlet, newest first: (id, total, state, created_ms).
    pub fn outlet_orders(
        &self,
        outlet_id: i64,
        limit: usize,
    ) -> Result<Vec<(Uuid, i64, String, i64)>, EngineError> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT id, total_minor, state, created_ms FROM orders WHERE outlet_id = ?1 ORDER BY created_ms DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![outlet_id, limit as i64], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows
            .filter_map(|r| r.ok())
            .filter_map(|(id, t, s, c)| Uuid::parse_str(&id).ok().map(|id| (id, t, s, c)))
            .collect())
    }

    /// The last visits of an outlet, newest first.
    pub fn outlet_visits(
        &self,
        outlet_id: i64,
        limit: usize,
    ) -> Result<Vec<VisitView>, EngineError> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT id, outlet_id, route_id, started_ms, ended_ms, lat_e7, lon_e7, accuracy_dm, mock
             FROM visits WHERE outlet_id = ?1 ORDER BY started_ms DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![outlet_id, limit as i64], visit_from_row)?;
        Ok(rows
            .filter_map(|r| r.transpose())
            .collect::<Result<_, _>>()?)
    }

    /// One visit.
    pub fn visit(&self, id: Uuid) -> Result<Option<VisitView>, EngineError> {
        let db = self.db();
        Ok(db
            .query_row(
                "SELECT id, outlet_id, route_id, started_ms, ended_ms, lat_e7, lon_e7, accuracy_dm, mock
                 FROM visits WHERE id = ?1",
                [id.to_string()],
                visit_from_row,
            )
            .optional()?
            .flatten())
    }

    /// Orders, questionnaires and distribution checks recorded in a visit.
    pub fn visit_activity(&self, visit_id: Uuid) -> Result<VisitActivity, EngineError> {
        let db = self.db();
        let v = visit_id.to_string();
        let mut stmt = db.prepare_cached(
            "SELECT id, total_minor, state FROM orders WHERE visit_id = ?1 ORDER BY created_ms",
        )?;
        let orders = stmt
            .query_map([&v], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))?
            .filter_map(|r| r.ok())
            .filter_map(|(id, t, s)| Uuid::parse_str(&id).ok().map(|id| (id, t, s)))
            .collect();
        let mut stmt =
            db.prepare_cached("SELECT questionnaire_id FROM answer_sets WHERE visit_id = ?1")?;
        let questionnaires = stmt
            .query_map([&v], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut stmt = db
            .prepare_cached("SELECT items, present FROM distribution_checks WHERE visit_id = ?1")?;
        let distribution = stmt
            .query_map([&v], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(VisitActivity {
            orders,
            questionnaires,
            distribution,
        })
    }

    /// The newest outbox entries with their state, for the sync screen.
    pub fn outbox_items(&self, limit: usize) -> Result<Vec<OutboxItem>, EngineError> {
        Ok(outbox_rows(&self.db(), "seq > 0", limit)?)
    }

    /// Pending count, refused items and the last successful sync, for the sync banner.
    pub fn outbox_status(&self) -> Result<OutboxStatus, EngineError> {
        let db = self.db();
        let pending: i64 = db.query_row(
            "SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND seq > 0",
            [],
            |r| r.get(0),
        )?;
        let refused = outbox_rows(&db, "state = 'refused'", 100)?
            .into_iter()
            .map(|i| RefusedItem {
                seq: i.seq,
                kind: i.kind,
                code: i.code,
                reason: i.reason,
                created_ms: i.created_ms,
            })
            .collect();
        let last_sync_ms = store::get_meta_str(&db, "last_sync_ms")?.and_then(|s| s.parse().ok());
        Ok(OutboxStatus {
            pending: pending as u64,
            refused,
            last_sync_ms,
        })
    }

    /// Counts of what this engine created, had acknowledged and had refused, by kind.
    pub fn counts(&self) -> Result<Counts, EngineError> {
        let db = self.db();
        let mut stmt = db.prepare_cached("SELECT state, body FROM outbox")?;
        let mut c = Counts::default();
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        for row in rows {
            let (state, body) = row?;
            let Ok(m) = v1::Mutation::decode(body.as_slice()) else {
                continue;
            };
            c.created.add(&m);
            match state.as_str() {
                "acked" => c.acknowledged.add(&m),
                "refused" => {
                    c.refused.add(&m);
                    c.refused_mutations += 1;
                }
                _ => c.pending_mutations += 1,
            }
        }
        Ok(c)
    }
}

/// The newest outbox entries that match `filter` (SQL over the outbox's columns), at most `limit`.
fn outbox_rows(
    db: &rusqlite::Connection,
    filter: &str,
    limit: usize,
) -> rusqlite::Result<Vec<OutboxItem>> {
    let mut stmt = db.prepare_cached(&format!(
        "SELECT seq, kind, state, COALESCE(code, ''), COALESCE(reason, ''), created_ms, acked_ms
         FROM outbox WHERE {filter} ORDER BY seq DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(OutboxItem {
            seq: r.get(0)?,
            kind: r.get(1)?,
            state: r.get(2)?,
            code: r.get(3)?,
            reason: r.get(4)?,
            created_ms: r.get(5)?,
            acked_ms: r.get(6)?,
        })
    })?;
    rows.collect()
}

fn visit_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<VisitView>> {
    let id: String = r.get(0)?;
    let lat: Option<i64> = r.get(5)?;
    let lon: Option<i64> = r.get(6)?;
    let acc: Option<i64> = r.get(7)?;
    let start_mock = r.get::<_, i64>(8)? != 0;
    Ok(Uuid::parse_str(&id).ok().map(|id| VisitView {
        id,
        outlet_id: r.get(1).unwrap_or_default(),
        route_id: r.get(2).unwrap_or_default(),
        started_ms: r.get(3).unwrap_or_default(),
        ended_ms: r.get(4).unwrap_or_default(),
        start_fix: match (lat, lon) {
            (Some(a), Some(b)) => Some((a as i32, b as i32, acc.unwrap_or(0) as u32)),
            _ => None,
        },
        start_mock,
    }))
}

/// A join of `prices pr` to products `p`: the product's price in force on a day in the price
/// list of parameter `?{list}`, the day (`YYYY-MM-DD`) being parameter `?{day}`: the price with
/// the latest `valid_from` not after it (an index seek on `prices_key`).
pub(crate) fn price_in_force(list: usize, day: usize) -> String {
    format!(
        "LEFT JOIN prices pr ON pr.id = (SELECT x.id FROM prices x
            WHERE x.price_list_id = ?{list} AND x.product_id = p.id AND x.valid_from <= ?{day}
            ORDER BY x.valid_from DESC LIMIT 1)"
    )
}

/// A LIKE pattern matching `query` anywhere, case-insensitively.
fn like(query: &str) -> String {
    let q = store::fold(query.trim())
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{q}%")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OrderDraft;
    use v1::change::Entity;

    fn page(changes: Vec<Entity>) -> v1::PullResponse {
        v1::PullResponse {
            changes: changes
                .into_iter()
                .map(|e| v1::Change { entity: Some(e) })
                .collect(),
            next_cursor: vec![1],
            ..Default::default()
        }
    }

    fn outlet(id: i64, channel: &str) -> Entity {
        Entity::Outlet(v1::Outlet {
            id,
            name: format!("Outlet {id}"),
            channel: channel.into(),
            ..Default::default()
        })
    }

    fn product(id: i64, must_stock: bool, channels: &[&str]) -> Entity {
        Entity::Product(v1::Product {
            id,
            code: format!("P{id}"),
            name: format!("Product {id}"),
            must_stock,
            must_stock_channels: channels.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        })
    }

    /// A clock the test moves.
    struct TestClock(std::sync::atomic::AtomicI64);

    impl crate::Clock for TestClock {
        fn now_ms(&self) -> i64 {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    fn price(id: i64, product_id: i64, price_minor: i64, valid_from: &str) -> Entity {
        Entity::Price(v1::Price {
            id,
            price_list_id: 1,
            product_id,
            price_minor,
            valid_from: valid_from.into(),
        })
    }

    #[test]
    fn the_price_in_force_is_the_latest_one_from_a_day_not_after_today() {
        let dir = tempfile::tempdir().unwrap();
        let day = |d: &str| fieldsync_protocol::dates::parse_day_number(d).unwrap() * 86_400_000;
        let clock = std::sync::Arc::new(TestClock(day("2026-12-31").into()));
        let e = Engine::open_with_clock(dir.path().join("agent.db"), clock.clone()).unwrap();
        let mut outlet = v1::Outlet {
            id: 1,
            name: "Shop".into(),
            price_list_id: 1,
            ..Default::default()
        };
        outlet.code = "O1".into();
        e.store_page(&page(vec![
            Entity::Outlet(outlet),
            Entity::Warehouse(v1::Warehouse {
                id: 5,
                code: "W".into(),
                name: "Main".into(),
                ..Default::default()
            }),
            product(10, false, &[]),
            product(11, false, &[]),
            price(100, 10, 1_000, ""),
            price(101, 10, 1_200, "2027-01-01"),
            price(102, 10, 1_500, "2027-02-01"),
            price(110, 11, 700, "2027-01-01"),
        ]))
        .unwrap();
        let priced = |product: i64| e.product(product, 1).unwrap().unwrap().price_minor;
        let draft = OrderDraft {
            outlet_id: 1,
            warehouse_id: 5,
            lines: vec![(10, 2_000)],
            ..Default::default()
        };
        assert_eq!(
            priced(10),
            Some(1_000),
            "the undated price before the new year"
        );
        assert_eq!(priced(11), None, "no price before its first day");
        assert_eq!(e.price_order(&draft).unwrap().1[0].price_minor, 1_000);

        // Offline at midnight: the new year's price applies without a sync.
        clock.0.store(
            day("2027-01-01") + 60_000,
            std::sync::atomic::Ordering::SeqCst,
        );
        assert_eq!(priced(10), Some(1_200));
        assert_eq!(priced(11), Some(700));
        let searched = e.search_products("", 1, 10).unwrap();
        let of = |id: i64| searched.iter().find(|p| p.id == id).unwrap().price_minor;
        assert_eq!((of(10), of(11)), (Some(1_200), Some(700)));
        let order = e.place_order(draft.clone()).unwrap();
        let (sum,): (i64,) = e
            .db()
            .query_row(
                "SELECT total_minor FROM orders WHERE id = ?1",
                [order.to_string()],
                |r| Ok((r.get(0)?,)),
            )
            .unwrap();
        assert_eq!(sum, 2_400, "two at the new year's price");

        clock
            .0
            .store(day("2027-03-15"), std::sync::atomic::Ordering::SeqCst);
        assert_eq!(priced(10), Some(1_500));
        // A tombstone of the February price brings back January's.
        e.store_page(&page(vec![Entity::Deleted(v1::Tombstone {
            kind: v1::EntityKind::Price as i32,
            id: 102,
        })]))
        .unwrap();
        assert_eq!(priced(10), Some(1_200));
    }

    fn ids(products: Vec<ProductView>) -> Vec<i64> {
        products.into_iter().map(|p| p.id).collect()
    }

    #[test]
    fn an_outlet_checks_the_products_must_stock_everywhere_and_those_for_its_channel() {
        let dir = tempfile::tempdir().unwrap();
        let e = Engine::open(dir.path().join("agent.db")).unwrap();
        e.store_page(&page(vec![
            outlet(1, "horeca"),
            outlet(2, "modern"),
            product(10, true, &[]),
            product(11, true, &["modern"]),
            product(12, true, &["horeca", "traditional"]),
            product(13, false, &[]),
        ]))
        .unwrap();
        let at = |outlet: i64| ids(e.must_stock_for(outlet).unwrap());
        assert_eq!(at(1), vec![10, 12]);
        assert_eq!(at(2), vec![10, 11]);
        assert_eq!(
            at(99),
            vec![10],
            "an unknown outlet: every-channel products only"
        );
        assert_eq!(ids(e.must_stock().unwrap()), vec![10, 11, 12]);

        // A product's channels are replaced when it comes again; a tombstone takes them too.
        e.store_page(&page(vec![
            product(11, true, &[]),
            product(10, true, &["traditional"]),
            Entity::Deleted(v1::Tombstone {
                kind: v1::EntityKind::Product as i32,
                id: 12,
            }),
        ]))
        .unwrap();
        assert_eq!(at(1), vec![11]);
        assert_eq!(at(2), vec![11]);
        let left: i64 = e
            .db()
            .query_row(
                "SELECT COUNT(*) FROM product_must_stock_channels",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 1, "only product 10's channel is kept");
    }
}
