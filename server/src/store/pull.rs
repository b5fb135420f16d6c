//! Pull: pages of the changes a device may see, in change-log order, today's route first.
//!
//! The cursor is opaque to the device: `[version=1][phase][seq: 8 bytes BE][epoch: 16 bytes]`.
//! Phase 0 is the priority page of a first pull (today's route and its outlets); phase 1 walks
//! the change log by `seq`. A cursor from another epoch starts over.
use std::collections::HashMap;

use fieldsync_protocol::v1::{self, EntityKind, change::Entity};
use sqlx::AnyPool;
use uuid::Uuid;

use super::devices::DeviceAuth;
use super::sql::IntoVal;
use super::{Result, Store};

const CURSOR_VERSION: u8 = 1;

/// Bytes of outlet cards after which a page ends (the rest follows on the next page).
pub const MAX_PAGE_CARD_BYTES: usize = 2 * 1024 * 1024;

/// Decoded pull position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub phase: u8,
    pub seq: i64,
}

impl Cursor {
    pub fn encode(self, epoch: Uuid) -> Vec<u8> {
        let mut out = Vec::with_capacity(26);
        out.push(CURSOR_VERSION);
        out.push(self.phase);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(epoch.as_bytes());
        out
    }

    /// `Ok(None)`: start over (empty cursor, or one from another epoch).
    pub fn decode(bytes: &[u8], epoch: Uuid) -> std::result::Result<Option<Cursor>, &'static str> {
        if bytes.is_empty() {
            return Ok(None);
        }
        if bytes.len() != 26 || bytes[0] != CURSOR_VERSION || bytes[1] > 1 {
            return Err("the cursor is not one this server issued");
        }
        if bytes[10..26] != epoch.as_bytes()[..] {
            return Ok(None);
        }
        let seq = i64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes"));
        if seq < 0 {
            return Err("the cursor is not one this server issued");
        }
        Ok(Some(Cursor {
            phase: bytes[1],
            seq,
        }))
    }
}

/// One page of a pull.
#[derive(Debug, Clone)]
pub struct PullPage {
    pub changes: Vec<v1::Change>,
    pub next_cursor: Vec<u8>,
    pub has_more: bool,
    /// True when this pull started over (empty or foreign-epoch cursor).
    pub restarted: bool,
    /// The change-log position the request's cursor confirmed the device has stored.
    pub confirmed_seq: Option<i64>,
}

fn placeholders(from: usize, n: usize) -> String {
    super::sql::placeholders(from, n, false)
}

impl Store {
    /// Returns the next page for a device after `cursor`.
    pub async fn pull(
        &self,
        auth: &DeviceAuth,
        cursor: &[u8],
        max_changes: u32,
        today: &str,
    ) -> Result<std::result::Result<PullPage, &'static str>> {
        let max = max_changes.clamp(1, fieldsync_protocol::MAX_PULL_PAGE) as i64;
        let cursor = match Cursor::decode(cursor, self.epoch()) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let restarted = cursor.is_none();
        let cursor = cursor.unwrap_or(Cursor { phase: 0, seq: 0 });
        if cursor.phase == 0 {
            let changes = self.priority_page(auth, today).await?;
            return Ok(Ok(PullPage {
                changes,
                next_cursor: Cursor { phase: 1, seq: 0 }.encode(self.epoch()),
                has_more: true,
                restarted,
                confirmed_seq: None,
            }));
        }
        let rows: Vec<(i64, i64, i64, i64)> = self
            .rows(
                "SELECT seq, entity_kind, entity_id, deleted FROM change_log
             WHERE distributor_id = $1 AND seq > $2 AND scope_id IN (0, $3, $4)
             ORDER BY seq LIMIT $5",
                &[
                    auth.distributor_id.into_val(),
                    cursor.seq.into_val(),
                    auth.position_id.into_val(),
                    auth.territory_id.into_val(),
                    (max + 1).into_val(),
                ],
            )
            .await?;
        let mut has_more = rows.len() as i64 > max;
        let mut rows = &rows[..rows.len().min(max as usize)];
        let mut wanted: HashMap<i64, Vec<i64>> = HashMap::new();
        for (_, kind, id, deleted) in rows {
            if *deleted == 0 {
                wanted.entry(*kind).or_default().push(*id);
            }
        }
        let mut loaded: HashMap<(i64, i64), Entity> = HashMap::new();
        for (kind, ids) in wanted {
            for (id, entity) in load_entities(self.pool(), kind, &ids).await? {
                loaded.insert((kind, id), entity);
            }
        }
        let mut changes = Vec::with_capacity(rows.len());
        let mut card_bytes = 0usize;
        for (i, (_, kind, id, deleted)) in rows.iter().enumerate() {
            let entity = if *deleted != 0 {
                Some(Entity::Deleted(v1::Tombstone {
                    kind: *kind as i32,
                    id: *id,
                }))
            } else {
                loaded.remove(&(*kind, *id))
            };
            if let Some(Entity::OutletCard(c)) = &entity {
                card_bytes += c.automerge.len();
            }
            changes.extend(entity.map(|e| v1::Change { entity: Some(e) }));
            // Card documents can be large: a page ends once it carries enough of them.
            if card_bytes >= MAX_PAGE_CARD_BYTES && i + 1 < rows.len() {
                rows = &rows[..=i];
                has_more = true;
                break;
            }
        }
        let last_seq = rows.last().map(|r| r.0).unwrap_or(cursor.seq);
        Ok(Ok(PullPage {
            changes,
            next_cursor: Cursor {
                phase: 1,
                seq: last_seq,
            }
            .encode(self.epoch()),
            has_more,
            restarted,
            confirmed_seq: Some(cursor.seq),
        }))
    }

    /// Today's route of the position and its outlets, so the agent can start working before
    /// the rest of a first pull arrives.
    async fn priority_page(&self, auth: &DeviceAuth, today: &str) -> Result<Vec<v1::Change>> {
        let route: Option<(i64,)> = self
            .opt(
                "SELECT id FROM routes WHERE position_id = $1 AND route_date = $2",
                &[auth.position_id.into_val(), today.into_val()],
            )
            .await?;
        let Some((route_id,)) = route else {
            return Ok(Vec::new());
        };
        let outlet_ids: Vec<(i64,)> = self
            .rows(
                "SELECT s.outlet_id FROM route_stops s JOIN outlets o ON o.id = s.outlet_id
             WHERE s.route_id = $1 AND o.territory_id = $2 AND o.deleted = 0 ORDER BY s.stop_order",
                &[route_id.into_val(), auth.territory_id.into_val()],
            )
            .await?;
        let ids: Vec<i64> = outlet_ids.into_iter().map(|r| r.0).collect();
        let mut loaded = load_entities(self.pool(), EntityKind::Outlet as i64, &ids).await?;
        // In route order, so a client that shows them as they arrive shows the route.
        loaded.sort_by_key(|(id, _)| ids.iter().position(|x| x == id));
        let mut changes: Vec<v1::Change> = loaded
            .into_iter()
            .map(|(_, e)| v1::Change { entity: Some(e) })
            .collect();
        changes.extend(
            load_entities(self.pool(), EntityKind::Route as i64, &[route_id])
                .await?
                .into_iter()
                .map(|(_, e)| v1::Change { entity: Some(e) }),
        );
        Ok(changes)
    }
}

/// Loads entities of one kind by id, as wire messages.
async fn load_entities(pool: &AnyPool, kind: i64, ids: &[i64]) -> Result<Vec<(i64, Entity)>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        load_chunk(pool, kind, chunk, &mut out).await?;
    }
    Ok(out)
}

macro_rules! query_in {
    ($pool:expr, $sql:expr, $ids:expr) => {{
        let sql = format!($sql, placeholders(1, $ids.len()));
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for id in $ids {
            q = q.bind(*id);
        }
        q.fetch_all($pool).await?
    }};
}

async fn load_chunk(
    pool: &AnyPool,
    kind: i64,
    ids: &[i64],
    out: &mut Vec<(i64, Entity)>,
) -> Result<()> {
    let Ok(kind) = EntityKind::try_from(kind as i32) else {
        return Ok(());
    };
    // Reads the entities `$sql` finds: `row` names and types its columns and makes each row
    // its key (the change log's entity id) and message.
    macro_rules! read_entities {
        ($kind:ident, $sql:expr, |$($col:ident: $ty:ty),*| $row:expr) => {{
            let rows: Vec<($($ty,)*)> = query_in!(pool, $sql, ids);
            out.extend(rows.into_iter().map(|($($col,)*)| {
                let (key, message) = $row;
                (key, Entity::$kind(message))
            }));
        }};
    }
    match kind {
        EntityKind::Outlet => read_entities!(
            Outlet,
            "SELECT id, code, name, address, contact_name, phone, lat_e7, lon_e7, price_list_id, channel
             FROM outlets WHERE id IN ({}) AND deleted = 0",
            |id: i64,
             code: String,
             name: String,
             address: String,
             contact_name: String,
             phone: String,
             lat: Option<i64>,
             lon: Option<i64>,
             price_list_id: Option<i64>,
             channel: String| (
                id,
                v1::Outlet {
                    id,
                    code,
                    name,
                    address,
                    contact_name,
                    phone,
                    has_location: lat.is_some() && lon.is_some(),
                    lat_e7: lat.unwrap_or(0) as i32,
                    lon_e7: lon.unwrap_or(0) as i32,
                    price_list_id: price_list_id.unwrap_or(0),
                    channel,
                }
            )
        ),
        EntityKind::Product => {
            let products: Vec<(i64, String, String, String, String, i64, i64, String)> = query_in!(
                pool,
                "SELECT id, code, name, unit, category, must_stock, quantity_step_milli, brand
                 FROM products WHERE id IN ({}) AND deleted = 0",
                ids
            );
            let channels: Vec<(i64, String)> = query_in!(
                pool,
                "SELECT product_id, channel FROM product_must_stock_channels
                 WHERE product_id IN ({}) ORDER BY product_id, channel",
                ids
            );
            for (id, code, name, unit, category, must_stock, quantity_step_milli, brand) in products
            {
                let must_stock_channels = channels
                    .iter()
                    .filter(|c| c.0 == id)
                    .map(|c| c.1.clone())
                    .collect();
                let product = v1::Product {
                    id,
                    code,
                    name,
                    unit,
                    category,
                    must_stock: must_stock != 0,
                    quantity_step_milli,
                    must_stock_channels,
                    brand,
                };
                out.push((id, Entity::Product(product)));
            }
        }
        EntityKind::PriceList => read_entities!(
            PriceList,
            "SELECT id, name, payment_form FROM price_lists WHERE id IN ({})",
            |id: i64, name: String, payment_form: String| (
                id,
                v1::PriceList {
                    id,
                    name,
                    payment_form,
                }
            )
        ),
        EntityKind::Price => read_entities!(
            Price,
            "SELECT id, price_list_id, product_id, price_minor, valid_from FROM prices WHERE id IN ({})",
            |id: i64, price_list_id: i64, product_id: i64, price_minor: i64, valid_from: String| (
                id,
                v1::Price {
                    id,
                    price_list_id,
                    product_id,
                    price_minor,
                    valid_from,
                }
            )
        ),
        EntityKind::Warehouse => {
            // An inactive warehouse is never sent (its deactivation wrote tombstones).
            let warehouses: Vec<(i64, String, String)> = query_in!(
                pool,
                "SELECT id, code, name FROM warehouses WHERE id IN ({}) AND active = 1",
                ids
            );
            let stock: Vec<(i64, i64, i64, i64)> = query_in!(
                pool,
                "SELECT warehouse_id, product_id, quantity_milli, updated_at_ms FROM stock
                 WHERE warehouse_id IN ({}) ORDER BY warehouse_id, product_id",
                ids
            );
            for (id, code, name) in warehouses {
                let mine = stock.iter().filter(|s| s.0 == id);
                out.push((
                    id,
                    Entity::Warehouse(v1::Warehouse {
                        id,
                        code,
                        name,
                        stock: mine
                            .clone()
                            .map(|s| v1::StockLevel {
                                product_id: s.1,
                                quantity_milli: s.2,
                            })
                            .collect(),
                        stock_updated_at_ms: mine.map(|s| s.3).max().unwrap_or(0),
                    }),
                ));
            }
        }
        EntityKind::Route => {
            let routes: Vec<(i64, String)> = query_in!(
                pool,
                "SELECT id, route_date FROM routes WHERE id IN ({})",
                ids
            );
            let stops: Vec<(i64, i64, i64)> = query_in!(
                pool,
                "SELECT route_id, outlet_id, stop_order FROM route_stops WHERE route_id IN ({}) ORDER BY route_id, stop_order",
                ids
            );
            for (id, date) in routes {
                out.push((
                    id,
                    Entity::Route(v1::Route {
                        id,
                        date,
                        stops: stops
                            .iter()
                            .filter(|s| s.0 == id)
                            .map(|s| v1::RouteStop {
                                outlet_id: s.1,
                                position: s.2 as u32,
                            })
                            .collect(),
                    }),
                ));
            }
        }
        EntityKind::Questionnaire => {
            let qs: Vec<(i64, String, String, String, i64, i64)> = query_in!(
                pool,
                "SELECT id, name, valid_from, valid_to, COALESCE(family_id, id), version
                 FROM questionnaires WHERE id IN ({})",
                ids
            );
            let channels: Vec<(i64, String)> = query_in!(
                pool,
                "SELECT questionnaire_id, channel FROM questionnaire_channels
                 WHERE questionnaire_id IN ({}) ORDER BY questionnaire_id, channel",
                ids
            );
            let questions: Vec<(i64, i64, String, String, i64, Option<i64>, i64, Option<i64>, i64)> = query_in!(
                pool,
                "SELECT id, questionnaire_id, text, question_type, required, condition_question_id, condition_yes,
                        condition_choice_id, position
                 FROM questions WHERE questionnaire_id IN ({}) ORDER BY questionnaire_id, position",
                ids
            );
            let choices: Vec<(i64, i64, String)> = query_in!(
                pool,
                "SELECT c.question_id, c.id, c.label FROM question_choices c JOIN questions q ON q.id = c.question_id
                 WHERE q.questionnaire_id IN ({}) ORDER BY c.question_id, c.position",
                ids
            );
            for (id, name, valid_from, valid_to, family_id, version) in qs {
                let questions = questions
                    .iter()
                    .filter(|q| q.1 == id)
                    .map(|q| v1::Question {
                        id: q.0,
                        text: q.2.clone(),
                        r#type: question_type(&q.3) as i32,
                        required: q.4 != 0,
                        choices: choices
                            .iter()
                            .filter(|c| c.0 == q.0)
                            .map(|c| v1::Choice {
                                id: c.1,
                                label: c.2.clone(),
                            })
                            .collect(),
                        condition: q.5.map(|cq| v1::Condition {
                            question_id: cq,
                            equals_yes: q.6 != 0,
                            equals_choice_id: q.7.unwrap_or(0),
                        }),
                        position: q.8 as u32,
                    })
                    .collect();
                out.push((
                    id,
                    Entity::Questionnaire(v1::Questionnaire {
                        id,
                        name,
                        questions,
                        valid_from,
                        valid_to,
                        channels: channels
                            .iter()
                            .filter(|c| c.0 == id)
                            .map(|c| c.1.clone())
                            .collect(),
                        family_id,
                        version: version as u32,
                    }),
                ));
            }
        }
        EntityKind::OrderStatus => {
            let orders: Vec<(i64, String, String, String, String, String, i64)> = query_in!(
                pool,
                "SELECT number, id, state, state_reason, document_number, delivery_date, state_changed_ms
                 FROM orders WHERE number IN ({})",
                ids
            );
            // The lines the distributor reported a quantity for.
            let lines: Vec<(i64, i64, Option<i64>, Option<i64>)> = query_in!(
                pool,
                "SELECT o.number, l.line_no, l.confirmed_quantity_milli, l.shipped_quantity_milli
                 FROM orders o JOIN order_lines l ON l.order_id = o.id
                 WHERE o.number IN ({})
                   AND (l.confirmed_quantity_milli IS NOT NULL OR l.shipped_quantity_milli IS NOT NULL)
                 ORDER BY o.number, l.line_no",
                ids
            );
            let mut fates: HashMap<i64, Vec<v1::OrderLineFate>> = HashMap::new();
            for (number, line_no, confirmed, shipped) in lines {
                fates.entry(number).or_default().push(v1::OrderLineFate {
                    line_no: line_no as u32,
                    confirmed_quantity_milli: confirmed,
                    shipped_quantity_milli: shipped,
                });
            }
            for (number, id, state, reason, document_number, delivery_date, changed_at_ms) in orders
            {
                let status = v1::OrderStatus {
                    order_id: Uuid::parse_str(&id)
                        .map(|u| u.as_bytes().to_vec())
                        .unwrap_or_default(),
                    state: order_state(&state) as i32,
                    reason,
                    document_number,
                    delivery_date,
                    changed_at_ms,
                    number,
                    lines: fates.remove(&number).unwrap_or_default(),
                };
                out.push((number, Entity::OrderStatus(status)));
            }
        }
        EntityKind::ClaimReason => read_entities!(
            ClaimReason,
            "SELECT id, parent_id, name FROM claim_reasons WHERE id IN ({}) AND active = 1",
            |id: i64, parent_id: Option<i64>, name: String| (
                id,
                v1::ClaimReason {
                    id,
                    parent_id: parent_id.unwrap_or(0),
                    name,
                }
            )
        ),
        EntityKind::ClaimStatus => read_entities!(
            ClaimStatus,
            "SELECT number, id, stage, answer, stage_changed_ms FROM claims
             WHERE number IN ({}) AND deleted_at_ms IS NULL",
            |number: i64, id: String, stage: String, answer: String, changed_at_ms: i64| (
                number,
                v1::ClaimStatus {
                    claim_id: Uuid::parse_str(&id)
                        .map(|u| u.as_bytes().to_vec())
                        .unwrap_or_default(),
                    number,
                    stage: fieldsync_protocol::claims::stage_from_name(&stage)
                        .unwrap_or(v1::ClaimStage::ClaimDraft) as i32,
                    answer,
                    changed_at_ms,
                }
            )
        ),
        EntityKind::Plan => {
            for (id, plan) in super::plans::load(pool, ids).await? {
                out.push((id, Entity::Plan(plan)));
            }
        }
        EntityKind::Receivables => {
            for (id, change) in super::receivables::load(pool, ids).await? {
                if let Some(e) = change.entity {
                    out.push((id, e));
                }
            }
        }
        EntityKind::OutletCard => read_entities!(
            OutletCard,
            "SELECT outlet_id, doc FROM card_docs WHERE outlet_id IN ({})",
            |outlet_id: i64, doc: Vec<u8>| (
                outlet_id,
                v1::OutletCard {
                    outlet_id,
                    payload: v1::CardPayload::CardDocument as i32,
                    automerge: doc,
                }
            )
        ),
        EntityKind::OutletCardChange => read_entities!(
            OutletCard,
            "SELECT id, outlet_id, bytes FROM card_log WHERE id IN ({})",
            |id: i64, outlet_id: i64, bytes: Vec<u8>| (
                id,
                v1::OutletCard {
                    outlet_id,
                    payload: v1::CardPayload::CardChanges as i32,
                    automerge: bytes,
                }
            )
        ),
        EntityKind::Unspecified => {}
    }
    Ok(())
}

pub fn question_type(s: &str) -> v1::QuestionType {
    fieldsync_protocol::questionnaire::type_from_name(s)
}

pub fn order_state(s: &str) -> v1::OrderState {
    v1::OrderState::from_name(s).unwrap_or(v1::OrderState::Unspecified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_told_apart() {
        let epoch = Uuid::new_v4();
        let c = Cursor {
            phase: 1,
            seq: 4242,
        };
        assert_eq!(Cursor::decode(&c.encode(epoch), epoch), Ok(Some(c)));
        assert_eq!(Cursor::decode(&[], epoch), Ok(None));
        // Another epoch: start over rather than trust a position in another database.
        assert_eq!(Cursor::decode(&c.encode(Uuid::new_v4()), epoch), Ok(None));
        assert!(Cursor::decode(b"garbage", epoch).is_err());
    }
}
