//! The rows a batch writes, and the multi-row statements that write them.
use super::rules::Writes;
use crate::store::devices::DeviceAuth;
use crate::store::sessions::SessionCtx;
use crate::store::world::{ChangeRef, Val, insert_rows, record_changes};
use crate::store::{Backend, Result, Store};
use fieldsync_protocol::v1::OrderState;
use fieldsync_protocol::v1::{self};
use uuid::Uuid;

/// Rows produced by one or more pushes, ready to be written together.
#[derive(Default)]
pub(super) struct Rows {
    pub(super) visits: Vec<Vec<Val>>,
    /// Visits stored earlier and ended now: (id, ended device time, band, distance, mock, now).
    pub(super) ended_stored: Vec<(Uuid, Option<i64>, &'static str, Option<f64>, bool, i64)>,
    pub(super) fixes: Vec<Vec<Val>>,
    /// Column 1 (the order number) is handed out when the rows are written.
    pub(super) orders: Vec<Vec<Val>>,
    pub(super) lines: Vec<Vec<Val>>,
    /// Orders stored earlier and cancelled now: (id, number, reason, now, distributor, position).
    pub(super) cancels: Vec<(Uuid, i64, String, i64, i64, i64)>,
    pub(super) answers: Vec<Vec<Val>>,
    pub(super) checks: Vec<Vec<Val>>,
    pub(super) items: Vec<Vec<Val>>,
    pub(super) refused: Vec<Vec<Val>>,
}

impl Rows {
    pub(super) fn append(&mut self, other: Rows) {
        self.visits.extend(other.visits);
        self.ended_stored.extend(other.ended_stored);
        self.fixes.extend(other.fixes);
        self.orders.extend(other.orders);
        self.lines.extend(other.lines);
        self.cancels.extend(other.cancels);
        self.answers.extend(other.answers);
        self.checks.extend(other.checks);
        self.items.extend(other.items);
        self.refused.extend(other.refused);
    }

    /// Turns what a batch decided into rows, stamped with its device, session and time.
    pub(super) fn from_writes(
        w: Writes,
        auth: &DeviceAuth,
        session: &SessionCtx,
        now: i64,
    ) -> Rows {
        let sid = session.id.to_string();
        let mut r = Rows {
            fixes: w.fixes,
            answers: w.answers,
            checks: w.checks,
            refused: w.refused,
            ..Rows::default()
        };
        for v in &w.new_visits {
            r.items.push(vec![
                Val::S(sid.clone()),
                Val::S("visit".into()),
                Val::S(v.id.to_string()),
                Val::N(Some(v.outlet_id)),
                Val::O(None),
                Val::N(None),
            ]);
            r.visits.push(vec![
                Val::S(v.id.to_string()),
                Val::I(auth.distributor_id),
                Val::I(auth.device_id),
                Val::I(auth.mobile_user_id),
                Val::I(auth.position_id),
                Val::I(v.outlet_id),
                Val::N(v.route_id),
                Val::S(sid.clone()),
                Val::I(v.started_device_ms),
                Val::I(now),
                Val::N(if v.ended {
                    Some(v.ended_device_ms.unwrap_or(v.started_device_ms))
                } else {
                    None
                }),
                Val::N(v.ended.then_some(now)),
                Val::S(v.band.into()),
                Val::F(v.distance_m),
                Val::F(v.accuracy_m),
                Val::I(v.mock as i64),
            ]);
        }
        r.ended_stored = w
            .ended_stored
            .into_iter()
            .map(|(id, ended, band, distance, mock)| (id, ended, band, distance, mock, now))
            .collect();
        for order in &w.orders {
            let o = &order.o;
            let id = order.id.to_string();
            r.orders.push(vec![
                Val::S(id.clone()),
                Val::I(0),
                Val::I(auth.distributor_id),
                Val::I(auth.device_id),
                Val::I(auth.mobile_user_id),
                Val::I(auth.position_id),
                Val::O(order.visit_id.map(|v| v.to_string())),
                Val::I(o.outlet_id),
                Val::I(o.price_list_id),
                Val::I(o.warehouse_id),
                Val::I(o.total_minor),
                Val::I(o.lines.len() as i64),
                Val::S(o.comment.clone()),
                Val::S(o.delivery_date.clone()),
                Val::S(
                    if order.cancel_reason.is_some() {
                        OrderState::Cancelled
                    } else {
                        OrderState::Placed
                    }
                    .name()
                    .into(),
                ),
                Val::S(order.cancel_reason.clone().unwrap_or_default()),
                Val::I(order.placed_device_ms),
                Val::I(now),
                Val::I(now),
                Val::S(sid.clone()),
            ]);
            for (i, l) in o.lines.iter().enumerate() {
                r.lines.push(vec![
                    Val::S(id.clone()),
                    Val::I(i as i64 + 1),
                    Val::I(l.product_id),
                    Val::I(l.quantity_milli),
                    Val::I(l.price_minor),
                    Val::I(l.sum_minor),
                    Val::S(l.comment.clone()),
                ]);
            }
            r.items.push(vec![
                Val::S(sid.clone()),
                Val::S("order".into()),
                Val::O(order.visit_id.map(|v| v.to_string())),
                Val::N(Some(o.outlet_id)),
                Val::S(id),
                Val::N(Some(o.total_minor)),
            ]);
        }
        r.cancels = w
            .cancels
            .into_iter()
            .map(|(id, number, reason)| {
                (
                    id,
                    number,
                    reason,
                    now,
                    auth.distributor_id,
                    auth.position_id,
                )
            })
            .collect();
        r
    }
}

impl Store {
    /// Writes the rows of one or more pushes, one multi-row statement per table.
    pub(super) async fn write_rows(
        &self,
        tx: &mut crate::store::WriteTx,
        mut r: Rows,
    ) -> Result<()> {
        insert_rows(
            tx,
            "visits",
            &[
                "id",
                "distributor_id",
                "device_id",
                "mobile_user_id",
                "position_id",
                "outlet_id",
                "route_id",
                "session_id",
                "started_device_ms",
                "started_received_ms",
                "ended_device_ms",
                "ended_received_ms",
                "location_band",
                "distance_m",
                "accuracy_m",
                "mock_location",
            ],
            &r.visits,
        )
        .await?;
        for (id, ended_device, band, distance, mock, now) in &r.ended_stored {
            let q = sqlx::query(
                "UPDATE visits SET ended_device_ms = COALESCE($1, started_device_ms), ended_received_ms = $2,
                    location_band = $3, distance_m = $4, mock_location = CASE WHEN $5 = 1 THEN 1 ELSE mock_location END
                 WHERE id = $6",
            )
            .bind(*ended_device)
            .bind(*now)
            .bind(*band);
            // See `Val::F`: a NULL float goes as f32 to dodge a sqlx Any bug on PostgreSQL.
            let q = match distance {
                Some(d) => q.bind(*d),
                None => q.bind(None::<f32>),
            };
            q.bind(*mock as i64)
                .bind(id.to_string())
                .execute(&mut **tx)
                .await?;
        }
        insert_rows(
            tx,
            "gps_fixes",
            &[
                "visit_id",
                "phase",
                "fix_no",
                "lat_e7",
                "lon_e7",
                "accuracy_dm",
                "provider",
                "mock",
                "device_time_ms",
                "received_at_ms",
            ],
            &r.fixes,
        )
        .await?;
        let numbers = self.order_numbers(tx, r.orders.len()).await?;
        for (row, number) in r.orders.iter_mut().zip(numbers) {
            row[1] = Val::I(number);
        }
        insert_rows(
            tx,
            "orders",
            &[
                "id",
                "number",
                "distributor_id",
                "device_id",
                "mobile_user_id",
                "position_id",
                "visit_id",
                "outlet_id",
                "price_list_id",
                "warehouse_id",
                "total_minor",
                "line_count",
                "comment",
                "delivery_date",
                "state",
                "state_reason",
                "placed_device_ms",
                "received_at_ms",
                "state_changed_ms",
                "session_id",
            ],
            &r.orders,
        )
        .await?;
        insert_rows(
            tx,
            "order_lines",
            &[
                "order_id",
                "line_no",
                "product_id",
                "quantity_milli",
                "price_minor",
                "sum_minor",
                "comment",
            ],
            &r.lines,
        )
        .await?;
        for (id, number, reason, now, distributor_id, position_id) in &r.cancels {
            sqlx::query(
                "UPDATE orders SET state = 'cancelled', state_reason = $1, state_changed_ms = $2 WHERE id = $3",
            )
            .bind(reason)
            .bind(*now)
            .bind(id.to_string())
            .execute(&mut **tx)
            .await?;
            record_changes(
                tx,
                *distributor_id,
                &[ChangeRef::upsert(
                    v1::EntityKind::OrderStatus,
                    *number,
                    *position_id,
                )],
            )
            .await?;
        }
        insert_rows(
            tx,
            "questionnaire_answers",
            &[
                "answers_id",
                "visit_id",
                "questionnaire_id",
                "question_id",
                "value_kind",
                "value_text",
                "value_number",
            ],
            &r.answers,
        )
        .await?;
        insert_rows(
            tx,
            "distribution_checks",
            &["check_id", "visit_id", "product_id", "present"],
            &r.checks,
        )
        .await?;
        insert_rows(
            tx,
            "sync_session_items",
            &[
                "session_id",
                "item_kind",
                "visit_id",
                "outlet_id",
                "order_id",
                "order_total_minor",
            ],
            &r.items,
        )
        .await?;
        insert_rows(
            tx,
            "refused_mutations",
            &[
                "device_id",
                "mobile_user_id",
                "distributor_id",
                "session_id",
                "seq",
                "mutation_id",
                "mutation_kind",
                "error_code",
                "reason",
                "payload",
                "device_time_ms",
                "received_at_ms",
            ],
            &r.refused,
        )
        .await?;
        Ok(())
    }

    /// Hands out `n` new order numbers.
    pub(super) async fn order_numbers(
        &self,
        tx: &mut crate::store::WriteTx,
        n: usize,
    ) -> Result<Vec<i64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        Ok(match self.backend() {
            Backend::Postgres => {
                let rows: Vec<(i64,)> = sqlx::query_as(
                    "SELECT nextval('order_number_seq') FROM generate_series(1, $1)",
                )
                .bind(n as i64)
                .fetch_all(&mut **tx)
                .await?;
                rows.into_iter().map(|r| r.0).collect()
            }
            Backend::Sqlite => {
                let (last,): (i64,) =
                    sqlx::query_as("UPDATE counters SET value = value + $1 WHERE name = 'order_number' RETURNING value")
                        .bind(n as i64)
                        .fetch_one(&mut **tx)
                        .await?;
                (last - n as i64 + 1..=last).collect()
            }
        })
    }
}
