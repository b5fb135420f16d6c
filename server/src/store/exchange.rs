//! The distributor exchange: API keys, the order feed with acknowledgements, and the order
//! state machine the distributor's system drives.
//!
//! Exactly-once handoff: the feed returns placed orders whose `handed_over_at_ms` is NULL, in
//! order-number order. An order leaves the feed only when the distributor acknowledges it (or
//! moves its state, which implies it was received). A consumer that crashes between reading
//! and acknowledging reads the same orders again; one that acknowledged never sees them again.
use std::collections::HashMap;

use base64::Engine;
use fieldsync_protocol::orders::{self, ReportedQuantity};
use fieldsync_protocol::v1::{self, OrderState};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::devices::hash_token;
use super::sql::{IntoVal, keyed_reads};
use super::world::{ChangeRef, record_changes};
use super::{Result, Store, StoreError};

/// An API key as listed (never the key itself).
#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyInfo {
    pub id: i64,
    pub distributor_id: i64,
    pub label: String,
    pub key_prefix: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
}

/// One line of an order, as the feed and the order's card show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeedLine {
    pub line_no: i64,
    pub product_id: i64,
    pub product_code: String,
    pub product_name: String,
    pub quantity_milli: i64,
    pub price_minor: i64,
    pub sum_minor: i64,
    pub comment: String,
    pub confirmed_quantity_milli: Option<i64>,
    pub shipped_quantity_milli: Option<i64>,
}

/// An order as the distributor's system receives it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeedOrder {
    pub id: String,
    pub number: i64,
    pub state: String,
    pub outlet_id: i64,
    pub outlet_code: String,
    pub outlet_name: String,
    pub outlet_address: String,
    pub agent_login: String,
    pub price_list_id: i64,
    pub warehouse_code: String,
    pub visit_id: Option<String>,
    pub placed_at_ms: i64,
    pub received_at_ms: i64,
    pub total_minor: i64,
    pub comment: String,
    pub delivery_date: String,
    /// Why the agent ordered although the outlet had overdue debt ('' when none was asked).
    #[serde(default)]
    pub overdue_reason: String,
    pub lines: Vec<FeedLine>,
}

/// A page of the feed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedPage {
    pub orders: Vec<FeedOrder>,
    /// Give it back as `after` for the next page; the last order's number.
    pub next_cursor: i64,
    pub has_more: bool,
}

/// What an acknowledgement did to each order id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AckResult {
    pub order_id: String,
    /// `acknowledged`, `already_acknowledged` or `unknown`.
    pub result: String,
}

/// A status update from the distributor.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct StatusUpdate {
    pub state: String,
    #[serde(default)]
    pub reason: String,
    /// Confirmed (state `confirmed`) or shipped (`invoiced` / `shipped`) quantities by line.
    #[serde(default)]
    pub lines: Vec<LineQuantity>,
    #[serde(default)]
    pub delivery_date: String,
    #[serde(default)]
    pub document_number: String,
    #[serde(default)]
    pub document_date: String,
    #[serde(default)]
    pub total_minor: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LineQuantity {
    pub line_no: i64,
    pub quantity_milli: i64,
}

/// Why a status update was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusRefusal {
    UnknownOrder,
    UnknownState(String),
    Illegal { from: String, to: String },
    Invalid(String),
}

fn random_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "fsk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn valid_date(s: &str) -> bool {
    s.is_empty() || fieldsync_protocol::dates::is_date(s)
}

keyed_reads! {
    /// The distributor an API key belongs to.
    api_key_distributor(id: i64) -> Option<i64> = opt_col_by(
        "SELECT distributor_id FROM api_keys WHERE id = $1"
    );
}

impl Store {
    /// Creates an API key for a distributor; returns (id, the key to hand over once).
    pub async fn create_api_key(
        &self,
        distributor_id: i64,
        label: &str,
        now: i64,
    ) -> Result<(i64, String)> {
        let key = random_key();
        let (id,): (i64,) = self
            .one(
                "INSERT INTO api_keys (distributor_id, label, key_prefix, key_hash, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    distributor_id.into_val(),
                    (label.trim()).into_val(),
                    (&key[..10]).into_val(),
                    (hash_token(&key)).into_val(),
                    now.into_val(),
                ],
            )
            .await?;
        Ok((id, key))
    }

    pub async fn revoke_api_key(&self, distributor_id: i64, id: i64, now: i64) -> Result<()> {
        let done = self.exec(
            "UPDATE api_keys SET revoked_at_ms = $1 WHERE id = $2 AND distributor_id = $3 AND revoked_at_ms IS NULL",
            &[now.into_val(), id.into_val(), distributor_id.into_val()],
        ).await?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn api_keys(&self, distributor_ids: &[i64]) -> Result<Vec<ApiKeyInfo>> {
        let rows: Vec<(i64, i64, String, String, i64, Option<i64>, Option<i64>)> = self.rows(
            "SELECT id, distributor_id, label, key_prefix, created_at_ms, revoked_at_ms, last_used_ms \
             FROM api_keys ORDER BY id",
             &[],
        )
        .await?;
        Ok(rows
            .into_iter()
            .filter(|r| distributor_ids.contains(&r.1))
            .map(|r| ApiKeyInfo {
                id: r.0,
                distributor_id: r.1,
                label: r.2,
                key_prefix: r.3,
                created_at_ms: r.4,
                revoked_at_ms: r.5,
                last_used_ms: r.6,
            })
            .collect())
    }

    /// The distributor of a live key of an active distributor.
    pub async fn authenticate_api_key(&self, key: &str, now: i64) -> Result<Option<i64>> {
        let row: Option<(i64, i64, Option<i64>)> = self
            .opt(
                // A deactivated distributor's keys are refused like revoked ones.
                "SELECT k.id, k.distributor_id, k.last_used_ms FROM api_keys k
             JOIN distributors d ON d.id = k.distributor_id
             WHERE k.key_hash = $1 AND k.revoked_at_ms IS NULL AND d.deactivated_at_ms IS NULL",
                &[(hash_token(key)).into_val()],
            )
            .await?;
        let Some((id, distributor, last_used)) = row else {
            return Ok(None);
        };
        // Remember the last use, at most once a minute (no write per request).
        if last_used.is_none_or(|t| now - t > 60_000) {
            self.exec(
                "UPDATE api_keys SET last_used_ms = $1 WHERE id = $2",
                &[now.into_val(), id.into_val()],
            )
            .await?;
        }
        Ok(Some(distributor))
    }

    /// Placed orders not yet acknowledged, after the cursor, oldest first.
    pub async fn order_feed(
        &self,
        distributor_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<FeedPage> {
        let limit = limit.clamp(1, 500);
        let rows: Vec<(String,)> = self
            .rows(
                "SELECT id FROM orders WHERE distributor_id = $1 AND state = 'placed' \
             AND handed_over_at_ms IS NULL AND number > $2 ORDER BY number LIMIT $3",
                &[
                    distributor_id.into_val(),
                    after.into_val(),
                    (limit + 1).into_val(),
                ],
            )
            .await?;
        let has_more = rows.len() as i64 > limit;
        let ids: Vec<String> = rows.into_iter().take(limit as usize).map(|r| r.0).collect();
        let orders = self.orders_by_id(distributor_id, &ids).await?;
        Ok(FeedPage {
            next_cursor: orders.last().map(|o| o.number).unwrap_or(after),
            orders,
            has_more,
        })
    }

    /// Orders of a distributor by id, with their lines, in the order asked.
    pub async fn orders_by_id(
        &self,
        distributor_id: i64,
        ids: &[String],
    ) -> Result<Vec<FeedOrder>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ps: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT ord.id, ord.number, ord.state, ord.outlet_id, o.code, o.name, o.address, mu.login, \
             ord.price_list_id, w.code, ord.visit_id, ord.placed_device_ms, ord.received_at_ms, ord.total_minor, \
             ord.comment, ord.delivery_date FROM orders ord JOIN outlets o ON o.id = ord.outlet_id \
             JOIN mobile_users mu ON mu.id = ord.mobile_user_id JOIN warehouses w ON w.id = ord.warehouse_id \
             WHERE ord.distributor_id = $1 AND ord.id IN ({})",
            ps.join(", ")
        );
        let mut q = sqlx::query_as::<
            _,
            (
                String,
                i64,
                String,
                i64,
                String,
                String,
                String,
                String,
                i64,
                String,
                Option<String>,
                i64,
                i64,
                i64,
                String,
                String,
            ),
        >(sqlx::AssertSqlSafe(sql))
        .bind(distributor_id);
        for id in ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(self.pool()).await?;
        let mut lines = self.order_lines(ids).await?;
        let mut by_id: HashMap<String, FeedOrder> = rows
            .into_iter()
            .map(|r| {
                let order = FeedOrder {
                    lines: lines.remove(&r.0).unwrap_or_default(),
                    id: r.0.clone(),
                    number: r.1,
                    state: r.2,
                    outlet_id: r.3,
                    outlet_code: r.4,
                    outlet_name: r.5,
                    outlet_address: r.6,
                    agent_login: r.7,
                    price_list_id: r.8,
                    warehouse_code: r.9,
                    visit_id: r.10,
                    placed_at_ms: r.11,
                    received_at_ms: r.12,
                    total_minor: r.13,
                    comment: r.14,
                    delivery_date: r.15,
                    overdue_reason: String::new(),
                };
                (r.0, order)
            })
            .collect();
        // Rare: read apart (the head's row is at sqlx's 16 columns).
        let mut conn = self.pool().acquire().await?;
        let reasons: Vec<(String, String)> = super::sql::select_in!(
            conn,
            (String, String),
            "SELECT id, overdue_reason FROM orders WHERE overdue_reason <> '' AND id IN ({})",
            [],
            ids.to_vec()
        );
        for (id, reason) in reasons {
            if let Some(o) = by_id.get_mut(&id) {
                o.overdue_reason = reason;
            }
        }
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// The lines of these orders by order id, in line order.
    pub(crate) async fn order_lines(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Vec<FeedLine>>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT l.order_id, l.line_no, l.product_id, p.code, p.name, l.quantity_milli, l.price_minor, \
             l.sum_minor, l.comment, l.confirmed_quantity_milli, l.shipped_quantity_milli \
             FROM order_lines l JOIN products p ON p.id = l.product_id WHERE l.order_id IN ({}) \
             ORDER BY l.order_id, l.line_no",
            (1..=ids.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut q = sqlx::query_as::<
            _,
            (
                String,
                i64,
                i64,
                String,
                String,
                i64,
                i64,
                i64,
                String,
                Option<i64>,
                Option<i64>,
            ),
        >(sqlx::AssertSqlSafe(sql));
        for id in ids {
            q = q.bind(id);
        }
        let mut lines: HashMap<String, Vec<FeedLine>> = HashMap::new();
        for l in q.fetch_all(self.pool()).await? {
            lines.entry(l.0).or_default().push(FeedLine {
                line_no: l.1,
                product_id: l.2,
                product_code: l.3,
                product_name: l.4,
                quantity_milli: l.5,
                price_minor: l.6,
                sum_minor: l.7,
                comment: l.8,
                confirmed_quantity_milli: l.9,
                shipped_quantity_milli: l.10,
            });
        }
        Ok(lines)
    }

    /// Acknowledges orders: they leave the feed for good. Two statements per call whatever
    /// the number of ids (at most 1000).
    pub async fn acknowledge_orders(
        &self,
        distributor_id: i64,
        ids: &[String],
        now: i64,
    ) -> Result<Vec<AckResult>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 3)).collect();
        let mut tx = self.begin_write().await?;
        let select_list: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT id, handed_over_at_ms FROM orders WHERE distributor_id = $1 AND id IN ({})",
            select_list.join(", ")
        );
        let mut q = sqlx::query_as::<_, (String, Option<i64>)>(sqlx::AssertSqlSafe(sql))
            .bind(distributor_id);
        for id in ids {
            q = q.bind(id);
        }
        let known: HashMap<String, Option<i64>> =
            q.fetch_all(&mut *tx).await?.into_iter().collect();
        let sql = format!(
            "UPDATE orders SET handed_over_at_ms = $2 WHERE distributor_id = $1 AND handed_over_at_ms IS NULL \
             AND id IN ({})",
            list.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(distributor_id)
            .bind(now);
        for id in ids {
            q = q.bind(id);
        }
        q.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(ids
            .iter()
            .map(|id| AckResult {
                order_id: id.clone(),
                result: match known.get(id) {
                    None => "unknown",
                    Some(Some(_)) => "already_acknowledged",
                    Some(None) => "acknowledged",
                }
                .into(),
            })
            .collect())
    }

    /// Moves an order to a new state on the distributor's word. The change reaches the
    /// agent's phone through pull (ORDER_STATUS). Returns the order as it now is.
    pub async fn set_order_status(
        &self,
        distributor_id: i64,
        order_id: &str,
        update: &StatusUpdate,
        source: &str,
        now: i64,
    ) -> Result<std::result::Result<FeedOrder, StatusRefusal>> {
        let to_name = update.state.trim();
        let Some(to) = OrderState::from_name(to_name).filter(|s| *s != OrderState::Placed) else {
            return Ok(Err(StatusRefusal::UnknownState(to_name.to_string())));
        };
        if !valid_date(&update.delivery_date) || !valid_date(&update.document_date) {
            return Ok(Err(StatusRefusal::Invalid(
                "dates are written YYYY-MM-DD".into(),
            )));
        }
        if update.reason.chars().count() > 1000 || update.document_number.chars().count() > 100 {
            return Ok(Err(StatusRefusal::Invalid(
                "reason (1000) or document number (100) too long".into(),
            )));
        }
        if to.is_refusal() && update.reason.trim().is_empty() {
            return Ok(Err(StatusRefusal::Invalid(format!(
                "a {} order needs a reason",
                to.name()
            ))));
        }
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT state, number, position_id, outlet_id, placed_device_ms FROM orders WHERE id = $1 AND distributor_id = $2{}",
            self.for_update()
        );
        let row: Option<(String, i64, i64, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(order_id)
            .bind(distributor_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((from, number, position_id, outlet_id, placed_ms)) = row else {
            return Ok(Err(StatusRefusal::UnknownOrder));
        };
        if !orders::transition_allowed(&from, to.name()) {
            return Ok(Err(StatusRefusal::Illegal {
                from,
                to: to.name().to_string(),
            }));
        }
        let (line_count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM order_lines WHERE order_id = $1")
                .bind(order_id)
                .fetch_one(&mut *tx)
                .await?;
        for l in &update.lines {
            if l.line_no < 1 || l.line_no > line_count || l.quantity_milli < 0 {
                return Ok(Err(StatusRefusal::Invalid(format!(
                    "line {} does not exist or has a negative quantity",
                    l.line_no
                ))));
            }
        }
        let column = to.reported_quantity().map(|q| match q {
            ReportedQuantity::Confirmed => "confirmed_quantity_milli",
            ReportedQuantity::Shipped => "shipped_quantity_milli",
        });
        if let Some(column) = column {
            for l in &update.lines {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE order_lines SET {column} = $1 WHERE order_id = $2 AND line_no = $3"
                )))
                .bind(l.quantity_milli)
                .bind(order_id)
                .bind(l.line_no)
                .execute(&mut *tx)
                .await?;
            }
        } else if !update.lines.is_empty() {
            return Ok(Err(StatusRefusal::Invalid(format!(
                "line quantities go with confirmed, invoiced, shipped or delivered, not {}",
                to.name()
            ))));
        }
        sqlx::query(
            "UPDATE orders SET state = $1, state_reason = $2, state_changed_ms = $3, \
             delivery_date = CASE WHEN $4 = '' THEN delivery_date ELSE $4 END, \
             document_number = CASE WHEN $5 = '' THEN document_number ELSE $5 END, \
             document_date = CASE WHEN $6 = '' THEN document_date ELSE $6 END, \
             invoiced_total_minor = COALESCE($7, invoiced_total_minor), \
             handed_over_at_ms = COALESCE(handed_over_at_ms, $3) WHERE id = $8",
        )
        .bind(to.name())
        .bind(update.reason.trim())
        .bind(now)
        .bind(update.delivery_date.trim())
        .bind(update.document_number.trim())
        .bind(update.document_date.trim())
        .bind(update.total_minor)
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO order_status_history (order_id, state, reason, source, changed_at_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(order_id)
        .bind(to.name())
        .bind(update.reason.trim())
        .bind(source)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        record_changes(
            &mut tx,
            distributor_id,
            &[ChangeRef::upsert(
                v1::EntityKind::OrderStatus,
                number,
                position_id,
            )],
        )
        .await?;
        if to.is_refusal() {
            // A refused or cancelled order no longer counts toward its plans.
            let (tz,): (String,) =
                sqlx::query_as("SELECT timezone FROM distributors WHERE id = $1")
                    .bind(distributor_id)
                    .fetch_one(&mut *tx)
                    .await?;
            super::plans::mark_dirty(
                &mut tx,
                distributor_id,
                &[outlet_id].into(),
                &[position_id].into(),
                &[super::plans::period_of(placed_ms, &tz)].into(),
            )
            .await?;
        }
        tx.commit().await?;
        let order = self
            .orders_by_id(distributor_id, &[order_id.to_string()])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)?;
        Ok(Ok(order))
    }

    /// An order's states so far: (state, reason, source, at).
    pub async fn order_history(
        &self,
        order_id: &str,
    ) -> Result<Vec<(String, String, String, i64)>> {
        self.rows(
            "SELECT state, reason, source, changed_at_ms FROM order_status_history WHERE order_id = $1 ORDER BY id",
            &[order_id.into_val()],
        ).await
    }
}
