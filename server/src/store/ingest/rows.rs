//! The rows a batch writes, each a struct that declares its table's columns and values
//! together, and the multi-row statements that write them.
use super::rules::{ClaimWrite, EndedVisit, Writes};
use crate::store::devices::DeviceAuth;
use crate::store::sessions::SessionCtx;
use crate::store::sql::{insert, table_row};
use crate::store::world::{ChangeRef, record_changes};
use crate::store::{Backend, Result, Store};
use fieldsync_protocol::v1::{self, OrderState};
use std::collections::HashMap;
use uuid::Uuid;

table_row! {
    /// A visit started in a batch.
    pub(super) VisitRow => "visits" {
        id: String,
        distributor_id: i64,
        device_id: i64,
        mobile_user_id: i64,
        position_id: i64,
        outlet_id: i64,
        route_id: Option<i64>,
        session_id: String,
        started_device_ms: i64,
        started_received_ms: i64,
        ended_device_ms: Option<i64>,
        ended_received_ms: Option<i64>,
        location_band: String,
        distance_m: Option<f64>,
        accuracy_m: Option<f64>,
        mock_location: bool,
        preceding_device_ms: Option<i64>,
        started_seq: Option<i64>,
    }
}

table_row! {
    /// A GPS fix of a visit's start or end.
    pub(super) FixRow => "gps_fixes" {
        visit_id: String,
        phase: String,
        fix_no: i64,
        lat_e7: i64,
        lon_e7: i64,
        accuracy_dm: i64,
        provider: String,
        mock: bool,
        device_time_ms: i64,
        received_at_ms: i64,
    }
}

table_row! {
    /// An order placed in a batch; its number is handed out when the rows are written.
    pub(super) OrderRow => "orders" {
        id: String,
        number: i64,
        distributor_id: i64,
        device_id: i64,
        mobile_user_id: i64,
        position_id: i64,
        visit_id: Option<String>,
        outlet_id: i64,
        price_list_id: i64,
        warehouse_id: i64,
        total_minor: i64,
        line_count: i64,
        comment: String,
        delivery_date: String,
        state: String,
        state_reason: String,
        placed_device_ms: i64,
        received_at_ms: i64,
        state_changed_ms: i64,
        session_id: String,
        overdue_reason: String,
    }
}

table_row! {
    pub(super) LineRow => "order_lines" {
        order_id: String,
        line_no: i64,
        product_id: i64,
        quantity_milli: i64,
        price_minor: i64,
        sum_minor: i64,
        comment: String,
    }
}

table_row! {
    /// One answered question of a filled questionnaire.
    pub(super) AnswerRow => "questionnaire_answers" {
        answers_id: String,
        visit_id: String,
        questionnaire_id: i64,
        question_id: i64,
        value_kind: String,
        value_text: String,
        value_number: Option<f64>,
    }
}

table_row! {
    /// One product of a distribution check.
    pub(super) CheckRow => "distribution_checks" {
        check_id: String,
        visit_id: String,
        product_id: i64,
        present: bool,
    }
}

table_row! {
    /// What a sync session brought, for its result page.
    pub(super) ItemRow => "sync_session_items" {
        session_id: String,
        item_kind: String,
        visit_id: Option<String>,
        outlet_id: Option<i64>,
        order_id: Option<String>,
        order_total_minor: Option<i64>,
    }
}

table_row! {
    /// A refused mutation with its reason, kept for the agent and the key user.
    pub(super) RefusedRow => "refused_mutations" {
        device_id: i64,
        mobile_user_id: i64,
        distributor_id: i64,
        session_id: String,
        seq: i64,
        mutation_id: String,
        mutation_kind: String,
        error_code: String,
        reason: String,
        payload: Vec<u8>,
        device_time_ms: i64,
        received_at_ms: i64,
    }
}

table_row! {
    /// A line of a claim.
    pub(super) ClaimLineRow => "claim_lines" {
        claim_id: String,
        line_no: i64,
        order_id: String,
        order_line_no: i64,
        product_id: i64,
        quantity_milli: i64,
        type_id: i64,
        subtype_id: Option<i64>,
    }
}

/// What orders touched, by distributor: the plans that count them are sent again.
#[derive(Default)]
struct Touched {
    outlets: std::collections::BTreeSet<i64>,
    positions: std::collections::BTreeSet<i64>,
    instants: Vec<i64>,
}

/// Rows produced by one or more pushes, ready to be written together.
#[derive(Default)]
pub(super) struct Rows {
    pub(super) visits: Vec<VisitRow>,
    /// Visits stored earlier and ended now, with the time the server received the end.
    pub(super) ended_stored: Vec<(EndedVisit, i64)>,
    /// Every visit started or ended: their signals are computed once the rows are written.
    pub(super) touched_visits: Vec<String>,
    pub(super) fixes: Vec<FixRow>,
    pub(super) orders: Vec<OrderRow>,
    pub(super) lines: Vec<LineRow>,
    /// Orders stored earlier and cancelled now: (id, number, reason, now, distributor, position).
    pub(super) cancels: Vec<(Uuid, i64, String, i64, i64, i64)>,
    pub(super) answers: Vec<AnswerRow>,
    pub(super) checks: Vec<CheckRow>,
    pub(super) items: Vec<ItemRow>,
    pub(super) refused: Vec<RefusedRow>,
    /// Claims saved or deleted, with who sent them and when the server received them.
    pub(super) claims: Vec<(ClaimWrite, DeviceAuth, i64)>,
}

impl Rows {
    pub(super) fn append(&mut self, other: Rows) {
        self.visits.extend(other.visits);
        self.ended_stored.extend(other.ended_stored);
        self.touched_visits.extend(other.touched_visits);
        self.fixes.extend(other.fixes);
        self.orders.extend(other.orders);
        self.lines.extend(other.lines);
        self.cancels.extend(other.cancels);
        self.answers.extend(other.answers);
        self.checks.extend(other.checks);
        self.items.extend(other.items);
        self.refused.extend(other.refused);
        self.claims.extend(other.claims);
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
            claims: w
                .claims
                .into_iter()
                .map(|c| (c, auth.clone(), now))
                .collect(),
            ..Rows::default()
        };
        for v in &w.new_visits {
            r.items.push(ItemRow {
                session_id: sid.clone(),
                item_kind: "visit".into(),
                visit_id: Some(v.id.to_string()),
                outlet_id: Some(v.outlet_id),
                order_id: None,
                order_total_minor: None,
            });
            r.visits.push(VisitRow {
                id: v.id.to_string(),
                distributor_id: auth.distributor_id,
                device_id: auth.device_id,
                mobile_user_id: auth.mobile_user_id,
                position_id: auth.position_id,
                outlet_id: v.outlet_id,
                route_id: v.route_id,
                session_id: sid.clone(),
                started_device_ms: v.started_device_ms,
                started_received_ms: now,
                ended_device_ms: v
                    .ended
                    .then(|| v.ended_device_ms.unwrap_or(v.started_device_ms)),
                ended_received_ms: v.ended.then_some(now),
                location_band: v.band.into(),
                distance_m: v.distance_m,
                accuracy_m: v.accuracy_m,
                mock_location: v.mock,
                preceding_device_ms: v.preceding_device_ms,
                started_seq: Some(v.started_seq),
            });
            r.touched_visits.push(v.id.to_string());
        }
        r.touched_visits
            .extend(w.ended_stored.iter().map(|e| e.id.to_string()));
        r.ended_stored = w.ended_stored.into_iter().map(|e| (e, now)).collect();
        for order in &w.orders {
            let o = &order.o;
            let id = order.id.to_string();
            let state = if order.cancel_reason.is_some() {
                OrderState::Cancelled
            } else {
                OrderState::Placed
            };
            r.orders.push(OrderRow {
                id: id.clone(),
                number: 0,
                distributor_id: auth.distributor_id,
                device_id: auth.device_id,
                mobile_user_id: auth.mobile_user_id,
                position_id: auth.position_id,
                visit_id: order.visit_id.map(|v| v.to_string()),
                outlet_id: o.outlet_id,
                price_list_id: o.price_list_id,
                warehouse_id: o.warehouse_id,
                total_minor: o.total_minor,
                line_count: o.lines.len() as i64,
                comment: o.comment.clone(),
                delivery_date: o.delivery_date.clone(),
                state: state.name().into(),
                state_reason: order.cancel_reason.clone().unwrap_or_default(),
                placed_device_ms: order.placed_device_ms,
                received_at_ms: now,
                state_changed_ms: now,
                session_id: sid.clone(),
                overdue_reason: o.overdue_reason.clone(),
            });
            for (i, l) in o.lines.iter().enumerate() {
                r.lines.push(LineRow {
                    order_id: id.clone(),
                    line_no: i as i64 + 1,
                    product_id: l.product_id,
                    quantity_milli: l.quantity_milli,
                    price_minor: l.price_minor,
                    sum_minor: l.sum_minor,
                    comment: l.comment.clone(),
                });
            }
            r.items.push(ItemRow {
                session_id: sid.clone(),
                item_kind: "order".into(),
                visit_id: order.visit_id.map(|v| v.to_string()),
                outlet_id: Some(o.outlet_id),
                order_id: Some(id),
                order_total_minor: Some(o.total_minor),
            });
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
    /// Writes the rows of one or more pushes, one multi-row statement per table. Returns the
    /// numbers given to the new orders, by order id.
    pub(super) async fn write_rows(
        &self,
        tx: &mut crate::store::WriteTx,
        mut r: Rows,
    ) -> Result<HashMap<String, i64>> {
        insert(tx, r.visits).await?;
        for (e, now) in &r.ended_stored {
            let q = sqlx::query(
                "UPDATE visits SET ended_device_ms = COALESCE($1, started_device_ms), ended_received_ms = $2,
                    location_band = $3, distance_m = $4, accuracy_m = $5,
                    mock_location = CASE WHEN $6 = 1 THEN 1 ELSE mock_location END
                 WHERE id = $7",
            )
            .bind(e.ended_device_ms)
            .bind(*now)
            .bind(e.band);
            // See `Val::F`: a NULL float goes as f32 to dodge a sqlx Any bug on PostgreSQL.
            let q = match e.distance_m {
                Some(d) => q.bind(d),
                None => q.bind(None::<f32>),
            };
            let q = match e.accuracy_m {
                Some(a) => q.bind(a),
                None => q.bind(None::<f32>),
            };
            q.bind(e.mock as i64)
                .bind(e.id.to_string())
                .execute(&mut **tx)
                .await?;
        }
        insert(tx, r.fixes).await?;
        let numbers = self.order_numbers(tx, r.orders.len()).await?;
        for (row, number) in r.orders.iter_mut().zip(numbers) {
            row.number = number;
        }
        // A cancellation reaches the agent's phone as an ORDER_STATUS (a new order's number
        // goes back in the push's answer instead: no change-log row, no shared counter).
        let mut statuses: std::collections::BTreeMap<i64, Vec<ChangeRef>> = Default::default();
        let placed_for_plans: Vec<(i64, i64, i64, i64)> = r
            .orders
            .iter()
            .map(|o| {
                (
                    o.distributor_id,
                    o.outlet_id,
                    o.position_id,
                    o.placed_device_ms,
                )
            })
            .collect();
        let numbers: HashMap<String, i64> =
            r.orders.iter().map(|o| (o.id.clone(), o.number)).collect();
        insert(tx, r.orders).await?;
        insert(tx, r.lines).await?;
        for (id, number, reason, now, distributor_id, position_id) in &r.cancels {
            sqlx::query("UPDATE orders SET state = $1, state_reason = $2, state_changed_ms = $3 WHERE id = $4")
                .bind(OrderState::Cancelled.name())
                .bind(reason)
                .bind(*now)
                .bind(id.to_string())
                .execute(&mut **tx)
                .await?;
            statuses
                .entry(*distributor_id)
                .or_default()
                .push(ChangeRef::upsert(
                    v1::EntityKind::OrderStatus,
                    *number,
                    *position_id,
                ));
        }
        // Plans whose fulfilment these orders change are marked for the housekeeping to send
        // again (a row update per plan, not a change-log row per push).
        let mut touched: std::collections::BTreeMap<i64, Touched> = Default::default();
        for o in &placed_for_plans {
            let t = touched.entry(o.0).or_default();
            t.outlets.insert(o.1);
            t.positions.insert(o.2);
            t.instants.push(o.3);
        }
        if !r.cancels.is_empty() {
            let ids: Vec<String> = r.cancels.iter().map(|c| c.0.to_string()).collect();
            let rows = crate::store::sql::select_in!(
                *tx,
                (i64, i64, i64, i64),
                "SELECT distributor_id, outlet_id, position_id, placed_device_ms FROM orders WHERE id IN ({})",
                [],
                ids
            );
            for (d, outlet, position, placed) in rows {
                let t = touched.entry(d).or_default();
                t.outlets.insert(outlet);
                t.positions.insert(position);
                t.instants.push(placed);
            }
        }
        for (d, t) in touched {
            let (tz, any): (String, i64) = sqlx::query_as(
                "SELECT timezone, CASE WHEN EXISTS (SELECT 1 FROM plans WHERE distributor_id = $1) THEN 1 ELSE 0 END
                 FROM distributors WHERE id = $1",
            )
            .bind(d)
            .fetch_one(&mut **tx)
            .await?;
            if any == 0 {
                continue;
            }
            let periods = t
                .instants
                .iter()
                .map(|ms| crate::store::plans::period_of(*ms, &tz))
                .collect();
            crate::store::plans::mark_dirty(tx, d, &t.outlets, &t.positions, &periods).await?;
        }
        let claim_changes = self.write_claims(tx, std::mem::take(&mut r.claims)).await?;
        for (d, changes) in claim_changes {
            statuses.entry(d).or_default().extend(changes);
        }
        for (distributor_id, changes) in &statuses {
            record_changes(tx, *distributor_id, changes).await?;
        }
        insert(tx, r.answers).await?;
        insert(tx, r.checks).await?;
        insert(tx, r.items).await?;
        insert(tx, r.refused).await?;
        Ok(numbers)
    }

    /// Writes claims: new ones with their numbers, drafts replaced whole, deletions marked.
    /// Returns the ORDER-like status changes (a new claim's number, a registration) by
    /// distributor.
    async fn write_claims(
        &self,
        tx: &mut crate::store::WriteTx,
        claims: Vec<(ClaimWrite, DeviceAuth, i64)>,
    ) -> Result<std::collections::BTreeMap<i64, Vec<ChangeRef>>> {
        use fieldsync_protocol::claims::stage_name;
        let mut changes: std::collections::BTreeMap<i64, Vec<ChangeRef>> = Default::default();
        let fresh = claims.iter().filter(|c| !c.0.stored).count();
        let mut numbers = self
            .claim_numbers(tx, fresh, "claim_number")
            .await?
            .into_iter();
        let registered = claims
            .iter()
            .filter(|c| c.0.registered && !c.0.deleted)
            .count();
        let mut feed = self
            .claim_numbers(tx, registered, "claim_feed")
            .await?
            .into_iter();
        for (c, auth, now) in claims {
            let id = c.id.to_string();
            let stage = stage_name(c.stage);
            let deleted_at = c.deleted.then_some(now);
            let feed_seq = (c.registered && !c.deleted).then(|| feed.next()).flatten();
            let number = if c.stored {
                // Only a stored draft changes (the rules saw it so; this says it again).
                let (number,): (i64,) = sqlx::query_as(
                    "UPDATE claims SET stage = $1, deleted_at_ms = COALESCE(deleted_at_ms, $2),
                        stage_changed_ms = CASE WHEN stage = $1 THEN stage_changed_ms ELSE $3 END,
                        registered_at_ms = CASE WHEN $1 = 'registered' THEN $3 ELSE registered_at_ms END,
                        feed_seq = COALESCE($5, feed_seq)
                     WHERE id = $4 AND stage = 'draft' AND deleted_at_ms IS NULL RETURNING number",
                )
                .bind(stage)
                .bind(deleted_at)
                .bind(now)
                .bind(&id)
                .bind(feed_seq)
                .fetch_one(&mut **tx)
                .await?;
                number
            } else {
                let number = numbers.next().expect("a number for each new claim");
                let (outlet, visit) = c
                    .saved
                    .as_ref()
                    .map(|(s, _)| {
                        (
                            s.outlet_id,
                            fieldsync_protocol::ids::from_wire(&s.visit_id).map(|v| v.to_string()),
                        )
                    })
                    .unwrap_or((0, None));
                sqlx::query(
                    "INSERT INTO claims (id, number, distributor_id, device_id, mobile_user_id, position_id,
                        outlet_id, visit_id, stage, comment, saved_device_ms, received_at_ms, registered_at_ms,
                        stage_changed_ms, deleted_at_ms, feed_seq)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '', $10, $11, $12, $11, $13, $14)",
                )
                .bind(&id)
                .bind(number)
                .bind(auth.distributor_id)
                .bind(auth.device_id)
                .bind(auth.mobile_user_id)
                .bind(auth.position_id)
                .bind(outlet)
                .bind(visit)
                .bind(stage)
                .bind(c.device_ms)
                .bind(now)
                .bind(c.registered.then_some(now))
                .bind(deleted_at)
                .bind(feed_seq)
                .execute(&mut **tx)
                .await?;
                number
            };
            if let Some((saved, products)) = &c.saved {
                sqlx::query("UPDATE claims SET comment = $1, saved_device_ms = $2 WHERE id = $3")
                    .bind(saved.comment.trim())
                    .bind(c.device_ms)
                    .bind(&id)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query("DELETE FROM claim_lines WHERE claim_id = $1")
                    .bind(&id)
                    .execute(&mut **tx)
                    .await?;
                let rows: Vec<ClaimLineRow> = saved
                    .lines
                    .iter()
                    .zip(products)
                    .enumerate()
                    .map(|(i, (l, product))| ClaimLineRow {
                        claim_id: id.clone(),
                        line_no: i as i64 + 1,
                        order_id: fieldsync_protocol::ids::from_wire(&l.order_id)
                            .map(|u| u.to_string())
                            .unwrap_or_default(),
                        order_line_no: i64::from(l.line_no),
                        product_id: *product,
                        quantity_milli: l.quantity_milli,
                        type_id: l.type_id,
                        subtype_id: (l.subtype_id != 0).then_some(l.subtype_id),
                    })
                    .collect();
                insert(tx, rows).await?;
            }
            if !c.stored || c.registered {
                sqlx::query(
                    "INSERT INTO claim_stage_history (claim_id, stage, answer, source, changed_at_ms)
                     VALUES ($1, $2, '', 'agent', $3)",
                )
                .bind(&id)
                .bind(stage)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
            if !c.deleted && (!c.stored || c.registered) {
                changes
                    .entry(auth.distributor_id)
                    .or_default()
                    .push(ChangeRef::upsert(
                        v1::EntityKind::ClaimStatus,
                        number,
                        auth.position_id,
                    ));
            }
        }
        Ok(changes)
    }

    /// Hands out `n` numbers of a claim counter: `claim_number` (a claim's number) or
    /// `claim_feed` (its place in the distributor's feed).
    async fn claim_numbers(
        &self,
        tx: &mut crate::store::WriteTx,
        n: usize,
        counter: &'static str,
    ) -> Result<Vec<i64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        Ok(match self.backend() {
            Backend::Postgres => {
                let sql = if counter == "claim_feed" {
                    "SELECT nextval('claim_feed_seq') FROM generate_series(1, $1)"
                } else {
                    "SELECT nextval('claim_number_seq') FROM generate_series(1, $1)"
                };
                let rows: Vec<(i64,)> = sqlx::query_as(sql)
                    .bind(n as i64)
                    .fetch_all(&mut **tx)
                    .await?;
                rows.into_iter().map(|r| r.0).collect()
            }
            Backend::Sqlite => {
                let (last,): (i64,) = sqlx::query_as(
                    "UPDATE counters SET value = value + $1 WHERE name = $2 RETURNING value",
                )
                .bind(n as i64)
                .bind(counter)
                .fetch_one(&mut **tx)
                .await?;
                (last - n as i64 + 1..=last).collect()
            }
        })
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
