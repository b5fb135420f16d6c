//! Push ingest: a batch of device mutations applied exactly once.
//!
//! The whole batch, the refusals and the device's `last_seq` commit in one transaction, with
//! the device row locked, so a replayed or concurrently duplicated request finds the batch
//! already applied and is acknowledged without effect. A mutation that cannot be accepted
//! is stored in `refused_mutations` with its reason and does not stop the ones behind it.
use std::collections::{HashMap, HashSet};

use fieldsync_protocol::location::{self, Bands, Fix};
use fieldsync_protocol::v1::{self, ErrorCode, MutationOutcome, MutationResult, mutation::Kind};
use fieldsync_protocol::{ids, money};
use prost::Message;
use sqlx::{Any, Transaction};
use uuid::Uuid;

use super::devices::DeviceAuth;
use super::sessions::SessionCtx;
use super::world::{ChangeRef, Val, insert_rows, record_changes};
use super::{Backend, Result, Store, now_ms};

/// Why a whole batch is refused (nothing in it was stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchRefusal {
    /// The batch starts after the next expected sequence number.
    Gap { expected: u64 },
    /// Sequence numbers inside the batch are not consecutive.
    NotConsecutive,
    /// The device was unbound meanwhile.
    Revoked,
}

/// What a stored batch produced.
#[derive(Debug, Default, Clone)]
pub struct PushOutcome {
    pub acked_seq: u64,
    pub results: Vec<MutationResult>,
    pub applied: u32,
    pub duplicate: u32,
    pub refused: u32,
}

type Refusal = (ErrorCode, String);

fn refuse<T>(code: ErrorCode, reason: impl Into<String>) -> std::result::Result<T, Refusal> {
    Err((code, reason.into()))
}

/// Stable name of a mutation's kind, for logs and the refused list.
pub fn kind_name(m: &v1::Mutation) -> &'static str {
    match &m.kind {
        Some(Kind::VisitStarted(_)) => "visit_started",
        Some(Kind::VisitEnded(_)) => "visit_ended",
        Some(Kind::OrderPlaced(_)) => "order_placed",
        Some(Kind::OrderCancelled(_)) => "order_cancelled",
        Some(Kind::QuestionnaireAnswered(_)) => "questionnaire_answered",
        Some(Kind::DistributionChecked(_)) => "distribution_checked",
        None => "empty",
    }
}

fn provider_name(p: i32) -> &'static str {
    match v1::LocationProvider::try_from(p).unwrap_or_default() {
        v1::LocationProvider::Gps => "gps",
        v1::LocationProvider::Network => "network",
        v1::LocationProvider::Fused => "fused",
        v1::LocationProvider::Unspecified => "unknown",
    }
}

fn check_fixes(fixes: &[v1::GpsFix]) -> std::result::Result<(), Refusal> {
    if fixes.len() > 50 {
        return refuse(
            ErrorCode::InvalidMutation,
            "more than 50 fixes in one mutation",
        );
    }
    for f in fixes {
        if !(-900_000_000..=900_000_000).contains(&f.lat_e7)
            || !(-1_800_000_000..=1_800_000_000).contains(&f.lon_e7)
        {
            return refuse(
                ErrorCode::InvalidMutation,
                "a fix has coordinates outside the globe",
            );
        }
    }
    Ok(())
}

fn parse_id(bytes: &[u8], what: &str) -> std::result::Result<Uuid, Refusal> {
    ids::from_wire(bytes).ok_or_else(|| {
        (
            ErrorCode::InvalidMutation,
            format!("{what} must be a 16-byte UUID"),
        )
    })
}

/// One question as validation needs it.
struct QuestionDef {
    id: i64,
    kind: String,
    required: bool,
    condition: Option<(i64, bool, Option<i64>)>,
    choices: HashSet<i64>,
}

/// Per-batch lookups, so a batch of a whole day does not re-read the same rows.
struct Ctx<'a> {
    auth: &'a DeviceAuth,
    session: &'a SessionCtx,
    now: i64,
    bands: Bands,
    outlets: HashMap<i64, Option<Option<(i32, i32)>>>,
    products: HashMap<i64, bool>,
    price_lists: HashMap<i64, bool>,
    warehouses: Option<HashSet<i64>>,
    questionnaires: HashMap<i64, Option<Vec<QuestionDef>>>,
    /// Visits of this device touched in this batch: id -> (outlet, ended).
    visits: HashMap<Uuid, Option<(i64, bool)>>,
    open_visit: Option<Option<Uuid>>,
}

impl Store {
    /// Applies a batch of mutations from a device, exactly once.
    pub async fn push(
        &self,
        auth: &DeviceAuth,
        session: &SessionCtx,
        mutations: &[v1::Mutation],
    ) -> Result<std::result::Result<PushOutcome, BatchRefusal>> {
        if mutations.first().is_some_and(|m| m.seq == 0) {
            return Ok(Err(BatchRefusal::NotConsecutive));
        }
        for pair in mutations.windows(2) {
            if pair[1].seq != pair[0].seq + 1 {
                return Ok(Err(BatchRefusal::NotConsecutive));
            }
        }
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT last_seq, revoked_at_ms FROM devices WHERE id = $1{}",
            self.for_update()
        );
        let (last_seq, revoked): (i64, Option<i64>) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(auth.device_id)
            .fetch_one(&mut *tx)
            .await?;
        if revoked.is_some() {
            return Ok(Err(BatchRefusal::Revoked));
        }
        let last_seq = last_seq as u64;
        if let Some(first) = mutations.first()
            && first.seq > last_seq + 1
        {
            return Ok(Err(BatchRefusal::Gap {
                expected: last_seq + 1,
            }));
        }
        let (near, mid, far): (i64, i64, i64) = sqlx::query_as(
            "SELECT band_near_m, band_mid_m, band_far_m FROM distributors WHERE id = $1",
        )
        .bind(auth.distributor_id)
        .fetch_one(&mut *tx)
        .await?;
        let mut ctx = Ctx {
            auth,
            session,
            now,
            bands: Bands {
                near_m: near as u32,
                mid_m: mid as u32,
                far_m: far as u32,
            },
            outlets: HashMap::new(),
            products: HashMap::new(),
            price_lists: HashMap::new(),
            warehouses: None,
            questionnaires: HashMap::new(),
            visits: HashMap::new(),
            open_visit: None,
        };
        self.ensure_session(&mut tx, auth, session, now).await?;
        let mut out = PushOutcome {
            acked_seq: last_seq,
            ..Default::default()
        };
        for m in mutations {
            if m.seq <= last_seq {
                out.duplicate += 1;
                out.results.push(MutationResult {
                    seq: m.seq,
                    outcome: MutationOutcome::Duplicate as i32,
                    ..Default::default()
                });
                continue;
            }
            let result = self.apply(&mut tx, &mut ctx, m).await?;
            match result {
                Ok(true) => out.applied += 1,
                Ok(false) => out.duplicate += 1,
                Err((code, reason)) => {
                    out.refused += 1;
                    let mutation_id = ids::from_wire(&m.id)
                        .map(|u| u.to_string())
                        .unwrap_or_else(|| format!("invalid:{}", m.seq));
                    sqlx::query(
                        "INSERT INTO refused_mutations (device_id, mobile_user_id, distributor_id, session_id, seq,
                            mutation_id, mutation_kind, error_code, reason, payload, device_time_ms, received_at_ms)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    )
                    .bind(auth.device_id)
                    .bind(auth.mobile_user_id)
                    .bind(auth.distributor_id)
                    .bind(session.id.to_string())
                    .bind(m.seq as i64)
                    .bind(mutation_id)
                    .bind(kind_name(m))
                    .bind(code.as_str_name())
                    .bind(&reason)
                    .bind(m.encode_to_vec())
                    .bind(m.device_time_ms)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    out.results.push(MutationResult {
                        seq: m.seq,
                        outcome: MutationOutcome::Refused as i32,
                        code: code as i32,
                        reason,
                    });
                    out.acked_seq = m.seq;
                    continue;
                }
            }
            out.results.push(MutationResult {
                seq: m.seq,
                outcome: if result == Ok(true) {
                    MutationOutcome::Applied as i32
                } else {
                    MutationOutcome::Duplicate as i32
                },
                ..Default::default()
            });
            out.acked_seq = m.seq;
        }
        sqlx::query("UPDATE devices SET last_seq = $1, last_sync_at_ms = $2, app_version = $3 WHERE id = $4")
            .bind(out.acked_seq as i64)
            .bind(now)
            .bind(&session.app_version)
            .bind(auth.device_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE sync_sessions SET mutations_applied = mutations_applied + $1,
                mutations_duplicate = mutations_duplicate + $2, mutations_refused = mutations_refused + $3
             WHERE id = $4",
        )
        .bind(out.applied as i64)
        .bind(out.duplicate as i64)
        .bind(out.refused as i64)
        .bind(session.id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(out))
    }

    /// Applies one mutation. `Ok(Ok(true))` applied, `Ok(Ok(false))` already there,
    /// `Ok(Err(..))` refused with a reason. Validation happens before any write, so a refusal
    /// never leaves the transaction half-written.
    async fn apply(
        &self,
        tx: &mut Transaction<'static, Any>,
        ctx: &mut Ctx<'_>,
        m: &v1::Mutation,
    ) -> Result<std::result::Result<bool, Refusal>> {
        if ids::from_wire(&m.id).is_none() {
            return Ok(refuse(
                ErrorCode::InvalidMutation,
                "mutation id must be a 16-byte UUID",
            ));
        }
        match &m.kind {
            None => Ok(refuse(
                ErrorCode::InvalidMutation,
                "the mutation carries no action",
            )),
            Some(Kind::VisitStarted(v)) => self.visit_started(tx, ctx, m, v).await,
            Some(Kind::VisitEnded(v)) => self.visit_ended(tx, ctx, v).await,
            Some(Kind::OrderPlaced(o)) => self.order_placed(tx, ctx, m, o).await,
            Some(Kind::OrderCancelled(c)) => self.order_cancelled(tx, ctx, c).await,
            Some(Kind::QuestionnaireAnswered(q)) => self.questionnaire_answered(tx, ctx, q).await,
            Some(Kind::DistributionChecked(d)) => self.distribution_checked(tx, ctx, d).await,
        }
    }

    /// The outlet's reference location if the device may see the outlet.
    async fn visible_outlet(
        &self,
        tx: &mut Transaction<'static, Any>,
        ctx: &mut Ctx<'_>,
        outlet_id: i64,
    ) -> Result<Option<Option<(i32, i32)>>> {
        if let Some(hit) = ctx.outlets.get(&outlet_id) {
            return Ok(*hit);
        }
        let row: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT lat_e7, lon_e7 FROM outlets
             WHERE id = $1 AND distributor_id = $2 AND territory_id = $3 AND deleted = 0",
        )
        .bind(outlet_id)
        .bind(ctx.auth.distributor_id)
        .bind(ctx.auth.territory_id)
        .fetch_optional(&mut **tx)
        .await?;
        let v = row.map(|(lat, lon)| lat.zip(lon).map(|(a, b)| (a as i32, b as i32)));
        ctx.outlets.insert(outlet_id, v);
        Ok(v)
    }

    async fn visible_product(
        &self,
        tx: &mut Transaction<'static, Any>,
        ctx: &mut Ctx<'_>,
        product_id: i64,
    ) -> Result<bool> {
        if let Some(hit) = ctx.products.get(&product_id) {
            return Ok(*hit);
        }
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM products WHERE id = $1 AND distributor_id = $2 AND deleted = 0",
        )
        .bind(product_id)
        .bind(ctx.auth.distributor_id)
        .fetch_optional(&mut **tx)
        .await?;
        ctx.products.insert(product_id, row.is_some());
        Ok(row.is_some())
    }

    /// The device's visit: `None` if unknown, else (outlet, ended).
    async fn own_visit(
        &self,
        tx: &mut Transaction<'static, Any>,
        ctx: &mut Ctx<'_>,
        id: Uuid,
    ) -> Result<Option<(i64, bool)>> {
        if let Some(hit) = ctx.visits.get(&id) {
            return Ok(*hit);
        }
        let row: Option<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT outlet_id, ended_received_ms FROM visits WHERE id = $1 AND mobile_user_id = $2",
        )
        .bind(id.to_string())
        .bind(ctx.auth.mobile_user_id)
        .fetch_optional(&mut **tx)
        .await?;
        let v = row.map(|(o, e)| (o, e.is_some()));
        ctx.visits.insert(id, v);
        Ok(v)
    }

    async fn insert_fixes(
        &self,
        tx: &mut Transaction<'static, Any>,
        ctx: &Ctx<'_>,
        visit_id: Uuid,
        phase: &str,
        fixes: &[v1::GpsFix],
    ) -> Result<()> {
        let rows: Vec<Vec<Val>> = fixes
            .iter()
            .enumerate()
            .map(|(i, f)| {
                vec![
                    Val::S(visit_id.to_string()),
                    Val::S(phase.to_string()),
                    Val::I(i as i64),
                    Val::I(f.lat_e7 as i64),
                    Val::I(f.lon_e7 as i64),
                    Val::I(f.accuracy_dm as i64),
                    Val::S(provider_name(f.provider).to_string()),
                    Val::I(f.mock as i64),
                    Val::I(f.device_time_ms),
                    Val::I(ctx.now),
                ]
            })
            .collect();
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
            &rows,
        )
        .await
    }

    async fn visit_started(
        &self,
        tx: &mut Transaction<'static, Any>,
        ctx: &mut Ctx<'_>,
        m: &v1::Mutation,
        v: &v1::VisitStarted,
    ) -> Result<std::result::Result<bool, Refusal>> {
        let visit_id = match parse_id(&v.visit_id, "visit_id") {
            Ok(id) => id,
            Err(r) => return Ok(Err(r)),
        };
        if let Err(r) = check_fixes(&v.fixes) {
            return Ok(Err(r));
        }
        if self.own_visit(tx, ctx, visit_id).await?.is_some() {
            return Ok(Ok(false));
        }
        let Some(reference) = self.visible_outlet(tx, ctx, v.outlet_id).await? else {
            return Ok(refuse(
                ErrorCode::NotVisible,
                format!("outlet {} is not in this device's territory", v.outlet_id),
            ));
        };
        let open = match ctx.open_visit {
            Some(open) => open,
            None => {
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT id FROM visits WHERE mobile_user_id = $1 AND ended_received_ms IS NULL LIMIT 1",
                )
                .bind(ctx.auth.mobile_user_id)
                .fetch_optional(&mut **tx)
                .await?;
                row.and_then(|(id,)| Uuid::parse_str(&id).ok())
            }
        };
        if let Some(open) = open {
            ctx.open_visit = Some(Some(open));
            return Ok(refuse(
                ErrorCode::VisitAlreadyOpen,
                format!("visit {open} is still in progress; end it before starting another"),
            ));
        }
        let fixes: Vec<Fix> = v
            .fixes
            .iter()
            .map(|f| Fix {
                lat_e7: f.lat_e7,
                lon_e7: f.lon_e7,
                accuracy_m: f.accuracy_dm as f64 / 10.0,
            })
            .collect();
        let class = location::classify(&fixes, reference, ctx.bands);
        let accuracy = v
            .fixes
            .iter()
            .map(|f| f.accuracy_dm as f64 / 10.0)
            .reduce(f64::min);
        let mock = v.fixes.iter().any(|f| f.mock);
        let route_id = (v.route_id > 0).then_some(v.route_id);
        sqlx::query(
            "INSERT INTO visits (id, distributor_id, device_id, mobile_user_id, position_id, outlet_id, route_id,
                session_id, started_device_ms, started_received_ms, location_band, distance_m, accuracy_m, mock_location)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(visit_id.to_string())
        .bind(ctx.auth.distributor_id)
        .bind(ctx.auth.device_id)
        .bind(ctx.auth.mobile_user_id)
        .bind(ctx.auth.position_id)
        .bind(v.outlet_id)
        .bind(route_id)
        .bind(ctx.session.id.to_string())
        .bind(m.device_time_ms)
        .bind(ctx.now)
        .bind(class.band.as_str())
        .bind(class.distance_m)
        .bind(accuracy)
        .bind(mock as i64)
        .execute(&mut **tx)
        .await?;
        self.insert_fixes(tx, ctx, visit_id, "start", &v.fixes)
            .await?;
        self.session_item(
            tx,
            ctx,
            "visit",
            Some(visit_id),
            Some(v.outlet_id),
            None,
            None,
        )
        .await?;
        ctx.visits.insert(visit_id, Some((v.outlet_id, false)));
        ctx.open_visit = Some(Some(visit_id));
        Ok(Ok(true))
    }

    async fn visit_ended(
        &self,
        tx: &mut Transaction<'static, Any>,
        ctx: &mut Ctx<'_>,
        v: &v1::VisitEnded,
    ) -> Result<std::result::Result<bool, Refusal>> {
        let visit_id = match parse_id(&v.visit_id, "visit_id") {
            Ok(id) => id,
            Err(r) => return Ok(Err(r)),
        };
        if let Err(r) = check_fixes(&v.fixes) {
            return Ok(Err(r));
        }
        let Some((outlet_id, ended)) = self.own_visit(tx, ctx, visit_id).await? else {
            return Ok(refuse(
                ErrorCode::UnknownReference,
                format!("visit {visit_id} was never started on this mobile user"),
            ));
        };
        if ended {
            return Ok(Ok(false));
        }
        let start: Vec<(i64, i64, i64)> =
            sqlx::query_as("SELECT lat_e7, lon_e7, accuracy_dm FROM gps_fixes WHERE visit_id = $1")
                .bind(visit_id.to_string())
                .fetch_all(&mut **tx)
                .await?;
        let reference = self.visible_outlet(tx, ctx, outlet_id).await?.flatten();
        let fixes: Vec<Fix> = start
            .iter()
            .map(|(a, b, c)| (*a as i32, *b as i32, *c as u32))
            .chain(v.fixes.iter().map(|f| (f.lat_e7, f.lon_e7, f.accuracy_dm)))
            .map(|(lat_e7, lon_e7, acc)| Fix {
                lat_e7,
                lon_e7,
                accuracy_m: acc as f64 / 10.0,
            })
            .collect();
        let class = location::classify(&fixes, reference, ctx.bands);
        let mock = v.fixes.iter().any(|f| f.mock);
        let ended_device = v.fixes.last().map(|f| f.device_time_ms);
        sqlx::query(
            "UPDATE visits SET ended_device_ms = COALESCE($1, started_device_ms), ended_received_ms = $2,
                location_band = $3, distance_m = $4, mock_location = CASE WHEN $5 = 1 THEN 1 ELSE mock_location END
             WHERE id = $6",
        )
        .bind(ended_device)
        .bind(ctx.now)
        .bind(class.band.as_str())
        .bind(class.distance_m)
        .bind(mock as i64)
        .bind(visit_id.to_string())
        .execute(&mut **tx)
        .await?;
        self.insert_fixes(tx, ctx, visit_id, "end", &v.fixes)
            .await?;
        ctx.visits.insert(visit_id, Some((outlet_id, true)));
        if ctx.open_visit == Some(Some(visit_id)) || ctx.open_visit.is_none() {
            ctx.open_visit = Some(None);
        }
        Ok(Ok(true))
    }

    async fn order_placed(
        &self,
        tx: &mut Transaction<'static, Any>,
        ctx: &mut Ctx<'_>,
        m: &v1::Mutation,
        o: &v1::OrderPlaced,
    ) -> Result<std::result::Result<bool, Refusal>> {
        let order_id = match parse_id(&o.order_id, "order_id") {
            Ok(id) => id,
            Err(r) => return Ok(Err(r)),
        };
        let existing: Option<(i64,)> = sqlx::query_as("SELECT number FROM orders WHERE id = $1")
            .bind(order_id.to_string())
            .fetch_optional(&mut **tx)
            .await?;
        if existing.is_some() {
            return Ok(Ok(false));
        }
        let visit_id = if o.visit_id.is_empty() {
            None
        } else {
            match parse_id(&o.visit_id, "visit_id") {
                Ok(id) => Some(id),
                Err(r) => return Ok(Err(r)),
            }
        };
        if let Some(visit_id) = visit_id
            && self.own_visit(tx, ctx, visit_id).await?.is_none()
        {
            return Ok(refuse(
                ErrorCode::UnknownReference,
                format!("order refers to visit {visit_id}, which this mobile user never started"),
            ));
        }
        if self.visible_outlet(tx, ctx, o.outlet_id).await?.is_none() {
            return Ok(refuse(
                ErrorCode::NotVisible,
                format!("outlet {} is not in this device's territory", o.outlet_id),
            ));
        }
        if o.lines.is_empty() {
            return Ok(refuse(
                ErrorCode::InvalidMutation,
                "an order needs at least one line",
            ));
        }
        if o.lines.len() > 1000 {
            return Ok(refuse(
                ErrorCode::InvalidMutation,
                "an order has at most 1000 lines",
            ));
        }
        let price_list_ok = match ctx.price_lists.get(&o.price_list_id) {
            Some(ok) => *ok,
            None => {
                let row: Option<(i64,)> = sqlx::query_as(
                    "SELECT id FROM price_lists WHERE id = $1 AND distributor_id = $2",
                )
                .bind(o.price_list_id)
                .bind(ctx.auth.distributor_id)
                .fetch_optional(&mut **tx)
                .await?;
                ctx.price_lists.insert(o.price_list_id, row.is_some());
                row.is_some()
            }
        };
        if !price_list_ok {
            return Ok(refuse(
                ErrorCode::NotVisible,
                format!("price list {} is not available", o.price_list_id),
            ));
        }
        if ctx.warehouses.is_none() {
            let rows: Vec<(i64,)> = sqlx::query_as(
                "SELECT warehouse_id FROM warehouse_positions WHERE position_id = $1 AND document_type = 'order'",
            )
            .bind(ctx.auth.position_id)
            .fetch_all(&mut **tx)
            .await?;
            ctx.warehouses = Some(rows.into_iter().map(|r| r.0).collect());
        }
        if !ctx
            .warehouses
            .as_ref()
            .is_some_and(|w| w.contains(&o.warehouse_id))
        {
            return Ok(refuse(
                ErrorCode::NotVisible,
                format!(
                    "warehouse {} is not bound to this position for orders",
                    o.warehouse_id
                ),
            ));
        }
        for (i, line) in o.lines.iter().enumerate() {
            if !self.visible_product(tx, ctx, line.product_id).await? {
                return Ok(refuse(
                    ErrorCode::NotVisible,
                    format!(
                        "line {}: product {} is not available",
                        i + 1,
                        line.product_id
                    ),
                ));
            }
            if line.quantity_milli <= 0 {
                return Ok(refuse(
                    ErrorCode::InvalidMutation,
                    format!("line {}: quantity must be positive", i + 1),
                ));
            }
            if money::line_sum(line.quantity_milli, line.price_minor) != Some(line.sum_minor) {
                return Ok(refuse(
                    ErrorCode::OrderSumsMismatch,
                    format!(
                        "line {}: sum {} does not equal quantity {} x price {}",
                        i + 1,
                        line.sum_minor,
                        line.quantity_milli,
                        line.price_minor
                    ),
                ));
            }
        }
        if money::order_total(o.lines.iter().map(|l| l.sum_minor)) != Some(o.total_minor) {
            return Ok(refuse(
                ErrorCode::OrderSumsMismatch,
                format!(
                    "order total {} does not equal the sum of its lines",
                    o.total_minor
                ),
            ));
        }
        if !o.delivery_date.is_empty() && crate::dates::parse_date(&o.delivery_date).is_none() {
            return Ok(refuse(
                ErrorCode::InvalidMutation,
                "delivery_date must be YYYY-MM-DD",
            ));
        }
        let number = self.next_order_number(tx).await?;
        sqlx::query(
            "INSERT INTO orders (id, number, distributor_id, device_id, mobile_user_id, position_id, visit_id, outlet_id,
                price_list_id, warehouse_id, total_minor, line_count, comment, delivery_date, state,
                placed_device_ms, received_at_ms, state_changed_ms, session_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'placed', $15, $16, $16, $17)",
        )
        .bind(order_id.to_string())
        .bind(number)
        .bind(ctx.auth.distributor_id)
        .bind(ctx.auth.device_id)
        .bind(ctx.auth.mobile_user_id)
        .bind(ctx.auth.position_id)
        .bind(visit_id.map(|v| v.to_string()))
        .bind(o.outlet_id)
        .bind(o.price_list_id)
        .bind(o.warehouse_id)
        .bind(o.total_minor)
        .bind(o.lines.len() as i64)
        .bind(&o.comment)
        .bind(&o.delivery_date)
        .bind(m.device_time_ms)
        .bind(ctx.now)
        .bind(ctx.session.id.to_string())
        .execute(&mut **tx)
        .await?;
        let rows: Vec<Vec<Val>> = o
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                vec![
                    Val::S(order_id.to_string()),
                    Val::I(i as i64 + 1),
                    Val::I(l.product_id),
                    Val::I(l.quantity_milli),
                    Val::I(l.price_minor),
                    Val::I(l.sum_minor),
                    Val::S(l.comment.clone()),
                ]
            })
            .collect();
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
            &rows,
        )
        .await?;
        self.session_item(
            tx,
            ctx,
            "order",
            visit_id,
            Some(o.outlet_id),
            Some(order_id),
            Some(o.total_minor),
        )
        .await?;
        Ok(Ok(true))
    }

    async fn next_order_number(&self, tx: &mut Transaction<'static, Any>) -> Result<i64> {
        let (n,): (i64,) = match self.backend() {
            Backend::Postgres => {
                sqlx::query_as("SELECT nextval('order_number_seq')")
                    .fetch_one(&mut **tx)
                    .await?
            }
            Backend::Sqlite => sqlx::query_as(
                "UPDATE counters SET value = value + 1 WHERE name = 'order_number' RETURNING value",
            )
            .fetch_one(&mut **tx)
            .await?,
        };
        Ok(n)
    }

    async fn order_cancelled(
        &self,
        tx: &mut Transaction<'static, Any>,
        ctx: &mut Ctx<'_>,
        c: &v1::OrderCancelled,
    ) -> Result<std::result::Result<bool, Refusal>> {
        let order_id = match parse_id(&c.order_id, "order_id") {
            Ok(id) => id,
            Err(r) => return Ok(Err(r)),
        };
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT number, state FROM orders WHERE id = $1 AND mobile_user_id = $2",
        )
        .bind(order_id.to_string())
        .bind(ctx.auth.mobile_user_id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some((number, state)) = row else {
            return Ok(refuse(
                ErrorCode::UnknownReference,
                format!("order {order_id} is unknown"),
            ));
        };
        match state.as_str() {
            "cancelled" => return Ok(Ok(false)),
            "placed" | "accepted" => {}
            other => {
                return Ok(refuse(
                    ErrorCode::InvalidState,
                    format!(
                        "order {order_id} is {other} at the distributor and can no longer be cancelled"
                    ),
                ));
            }
        }
        sqlx::query("UPDATE orders SET state = 'cancelled', state_reason = $1, state_changed_ms = $2 WHERE id = $3")
            .bind(&c.reason)
            .bind(ctx.now)
            .bind(order_id.to_string())
            .execute(&mut **tx)
            .await?;
        record_changes(
            tx,
            ctx.auth.distributor_id,
            &[ChangeRef::upsert(
                v1::EntityKind::OrderStatus,
                number,
                ctx.auth.position_id,
            )],
        )
        .await?;
        Ok(Ok(true))
    }

    async fn questionnaire(
        &self,
        tx: &mut Transaction<'static, Any>,
        ctx: &mut Ctx<'_>,
        id: i64,
    ) -> Result<bool> {
        if let Some(hit) = ctx.questionnaires.get(&id) {
            return Ok(hit.is_some());
        }
        let found: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM questionnaires WHERE id = $1 AND distributor_id = $2 AND active = 1",
        )
        .bind(id)
        .bind(ctx.auth.distributor_id)
        .fetch_optional(&mut **tx)
        .await?;
        if found.is_none() {
            ctx.questionnaires.insert(id, None);
            return Ok(false);
        }
        let questions: Vec<(i64, String, i64, Option<i64>, i64, Option<i64>)> = sqlx::query_as(
            "SELECT id, question_type, required, condition_question_id, condition_yes, condition_choice_id
             FROM questions WHERE questionnaire_id = $1 ORDER BY position",
        )
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
        let choices: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT c.question_id, c.id FROM question_choices c JOIN questions q ON q.id = c.question_id
             WHERE q.questionnaire_id = $1",
        )
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
        let defs = questions
            .into_iter()
            .map(|(qid, kind, required, cq, cy, cc)| QuestionDef {
                id: qid,
                kind,
                required: required != 0,
                condition: cq.map(|q| (q, cy != 0, cc)),
                choices: choices.iter().filter(|c| c.0 == qid).map(|c| c.1).collect(),
            })
            .collect();
        ctx.questionnaires.insert(id, Some(defs));
        Ok(true)
    }

    async fn questionnaire_answered(
        &self,
        tx: &mut Transaction<'static, Any>,
        ctx: &mut Ctx<'_>,
        q: &v1::QuestionnaireAnswered,
    ) -> Result<std::result::Result<bool, Refusal>> {
        let answers_id = match parse_id(&q.answers_id, "answers_id") {
            Ok(id) => id,
            Err(r) => return Ok(Err(r)),
        };
        let visit_id = match parse_id(&q.visit_id, "visit_id") {
            Ok(id) => id,
            Err(r) => return Ok(Err(r)),
        };
        let seen: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM questionnaire_answers WHERE answers_id = $1 LIMIT 1")
                .bind(answers_id.to_string())
                .fetch_optional(&mut **tx)
                .await?;
        if seen.is_some() {
            return Ok(Ok(false));
        }
        if self.own_visit(tx, ctx, visit_id).await?.is_none() {
            return Ok(refuse(
                ErrorCode::UnknownReference,
                format!("visit {visit_id} is unknown"),
            ));
        }
        if !self.questionnaire(tx, ctx, q.questionnaire_id).await? {
            return Ok(refuse(
                ErrorCode::NotVisible,
                format!("questionnaire {} is not available", q.questionnaire_id),
            ));
        }
        let defs = ctx.questionnaires[&q.questionnaire_id]
            .as_ref()
            .expect("loaded above");
        let rows = match validate_answers(defs, &q.answers) {
            Ok(rows) => rows,
            Err(r) => return Ok(Err(r)),
        };
        let rows: Vec<Vec<Val>> = rows
            .into_iter()
            .map(|(question_id, kind, text, number)| {
                vec![
                    Val::S(answers_id.to_string()),
                    Val::S(visit_id.to_string()),
                    Val::I(q.questionnaire_id),
                    Val::I(question_id),
                    Val::S(kind.to_string()),
                    Val::S(text),
                    Val::F(number),
                ]
            })
            .collect();
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
            &rows,
        )
        .await?;
        Ok(Ok(true))
    }

    async fn distribution_checked(
        &self,
        tx: &mut Transaction<'static, Any>,
        ctx: &mut Ctx<'_>,
        d: &v1::DistributionChecked,
    ) -> Result<std::result::Result<bool, Refusal>> {
        let check_id = match parse_id(&d.check_id, "check_id") {
            Ok(id) => id,
            Err(r) => return Ok(Err(r)),
        };
        let visit_id = match parse_id(&d.visit_id, "visit_id") {
            Ok(id) => id,
            Err(r) => return Ok(Err(r)),
        };
        let seen: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM distribution_checks WHERE check_id = $1 LIMIT 1")
                .bind(check_id.to_string())
                .fetch_optional(&mut **tx)
                .await?;
        if seen.is_some() {
            return Ok(Ok(false));
        }
        if self.own_visit(tx, ctx, visit_id).await?.is_none() {
            return Ok(refuse(
                ErrorCode::UnknownReference,
                format!("visit {visit_id} is unknown"),
            ));
        }
        if d.items.is_empty() {
            return Ok(refuse(
                ErrorCode::InvalidMutation,
                "a distribution check needs at least one product",
            ));
        }
        let mut seen_products = HashSet::new();
        for item in &d.items {
            if !seen_products.insert(item.product_id) {
                return Ok(refuse(
                    ErrorCode::InvalidMutation,
                    format!("product {} is checked twice", item.product_id),
                ));
            }
            if !self.visible_product(tx, ctx, item.product_id).await? {
                return Ok(refuse(
                    ErrorCode::NotVisible,
                    format!("product {} is not available", item.product_id),
                ));
            }
        }
        let rows: Vec<Vec<Val>> = d
            .items
            .iter()
            .map(|i| {
                vec![
                    Val::S(check_id.to_string()),
                    Val::S(visit_id.to_string()),
                    Val::I(i.product_id),
                    Val::I(i.present as i64),
                ]
            })
            .collect();
        insert_rows(
            tx,
            "distribution_checks",
            &["check_id", "visit_id", "product_id", "present"],
            &rows,
        )
        .await?;
        Ok(Ok(true))
    }

    #[allow(clippy::too_many_arguments)]
    async fn session_item(
        &self,
        tx: &mut Transaction<'static, Any>,
        ctx: &Ctx<'_>,
        kind: &str,
        visit_id: Option<Uuid>,
        outlet_id: Option<i64>,
        order_id: Option<Uuid>,
        total: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sync_session_items (session_id, item_kind, visit_id, outlet_id, order_id, order_total_minor)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(ctx.session.id.to_string())
        .bind(kind)
        .bind(visit_id.map(|v| v.to_string()))
        .bind(outlet_id)
        .bind(order_id.map(|v| v.to_string()))
        .bind(total)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Checks answers against the questionnaire: known questions, matching types, valid choices,
/// required questions answered where their condition holds. Returns rows to store:
/// (question id, value kind, text, integer value).
#[allow(clippy::type_complexity)]
fn validate_answers(
    defs: &[QuestionDef],
    answers: &[v1::Answer],
) -> std::result::Result<Vec<(i64, &'static str, String, Option<f64>)>, Refusal> {
    use v1::answer::Value;
    let mut by_question: HashMap<i64, &Value> = HashMap::new();
    for a in answers {
        let Some(def) = defs.iter().find(|d| d.id == a.question_id) else {
            return refuse(
                ErrorCode::InvalidMutation,
                format!("question {} is not in this questionnaire", a.question_id),
            );
        };
        let Some(value) = &a.value else {
            return refuse(
                ErrorCode::InvalidMutation,
                format!("question {} has an empty answer", def.id),
            );
        };
        let ok = match (def.kind.as_str(), value) {
            ("yes_no", Value::YesNo(_)) | ("text", Value::Text(_)) => true,
            ("number", Value::Number(n)) => n.is_finite(),
            ("single_choice", Value::SingleChoice(c)) => def.choices.contains(c),
            ("multiple_choice", Value::MultipleChoice(c)) => {
                !c.ids.is_empty() && c.ids.iter().all(|id| def.choices.contains(id))
            }
            ("date", Value::Date(d)) => crate::dates::parse_date(d).is_some(),
            _ => false,
        };
        if !ok {
            return refuse(
                ErrorCode::InvalidMutation,
                format!(
                    "question {}: the answer does not fit a {} question",
                    def.id, def.kind
                ),
            );
        }
        if by_question.insert(def.id, value).is_some() {
            return refuse(
                ErrorCode::InvalidMutation,
                format!("question {} is answered twice", def.id),
            );
        }
    }
    for def in defs {
        let shown = match def.condition {
            None => true,
            Some((qid, yes, choice)) => match (by_question.get(&qid), choice) {
                (Some(Value::YesNo(v)), _) => *v == yes,
                (Some(Value::SingleChoice(c)), Some(want)) => *c == want,
                _ => false,
            },
        };
        if def.required && shown && !by_question.contains_key(&def.id) {
            return refuse(
                ErrorCode::InvalidMutation,
                format!("required question {} is not answered", def.id),
            );
        }
    }
    Ok(answers
        .iter()
        .map(|a| {
            let (kind, text, number) = match a.value.as_ref().expect("checked") {
                Value::YesNo(b) => (
                    "yes_no",
                    if *b { "yes" } else { "no" }.to_string(),
                    Some(*b as i64 as f64),
                ),
                Value::Number(n) => ("number", n.to_string(), Some(*n)),
                Value::Text(t) => ("text", t.clone(), None),
                Value::SingleChoice(c) => ("single_choice", c.to_string(), None),
                Value::MultipleChoice(c) => (
                    "multiple_choice",
                    c.ids
                        .iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                    None,
                ),
                Value::Date(d) => ("date", d.clone(), None),
            };
            (a.question_id, kind, text, number)
        })
        .collect())
}
