//! The rules of ingest, with no database: each mutation is decided against the picture of
//! what the batch refers to (read up front by `picture.rs`), and its effects are recorded as
//! writes. A refusal changes nothing.
use super::rows::{AnswerRow, CheckRow, FixRow, RefusedRow};
use crate::store::Result;
use crate::store::devices::DeviceAuth;
use fieldsync_protocol::location::{self, Bands, Fix};
use fieldsync_protocol::v1::OrderState;
use fieldsync_protocol::v1::{self, ErrorCode, mutation::Kind};
use fieldsync_protocol::{claims, dates, ids, money, questionnaire};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

pub(super) type Refusal = (ErrorCode, String);

pub(super) type Checked<T> = std::result::Result<T, Refusal>;

pub(super) fn refuse<T>(code: ErrorCode, reason: impl Into<String>) -> Checked<T> {
    Err((code, reason.into()))
}

pub(super) fn provider_name(p: i32) -> &'static str {
    match v1::LocationProvider::try_from(p).unwrap_or_default() {
        v1::LocationProvider::Gps => "gps",
        v1::LocationProvider::Network => "network",
        v1::LocationProvider::Fused => "fused",
        v1::LocationProvider::Unspecified => "unknown",
    }
}

pub(super) fn check_fixes(fixes: &[v1::GpsFix]) -> Checked<()> {
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

/// A fact id already stored, with the mobile user it belongs to: `Ok(false)` (a duplicate)
/// if it is this user's, `Err(())` if another user's; `None` if it is new.
pub(super) fn stored_id(owner: Option<i64>, user: i64) -> Option<Result<bool, ()>> {
    owner.map(|o| if o == user { Ok(false) } else { Err(()) })
}

/// The refusal for a fact id another mobile user already used.
pub(super) fn taken(what: &str, id: Uuid) -> Refusal {
    (
        ErrorCode::InvalidMutation,
        format!("{what} {id} is already taken"),
    )
}

/// Refused unless `id` is among what the device may see (`what` names it in the reason).
fn visible(known: &HashSet<i64>, what: &str, id: i64) -> Checked<()> {
    if known.contains(&id) {
        return Ok(());
    }
    refuse(
        ErrorCode::NotVisible,
        format!("{what} {id} is not available"),
    )
}

/// A fact recorded in a visit (a set of answers, a distribution check): its id (`field` on
/// the wire) must be new, or this user's (`None`: a duplicate), and the visit this user's.
fn visit_fact(
    pic: &Picture,
    stored: &HashMap<Uuid, i64>,
    user: i64,
    (id, field): (&[u8], &str),
    visit_id: &[u8],
) -> Checked<Option<(Uuid, Uuid)>> {
    let fact_id = parse_id(id, field)?;
    let visit_id = parse_id(visit_id, "visit_id")?;
    if let Some(known) = stored_id(stored.get(&fact_id).copied(), user) {
        return match known {
            Ok(_) => Ok(None),
            Err(()) => Err(taken(&field.replace('_', " "), fact_id)),
        };
    }
    own_visit(pic, user, visit_id)?;
    Ok(Some((fact_id, visit_id)))
}

/// Refused unless the visit was started by this mobile user.
fn own_visit(pic: &Picture, user: i64, id: Uuid) -> Checked<()> {
    match pic.visits.get(&id) {
        Some(v) if v.owner == user => Ok(()),
        _ => refuse(
            ErrorCode::UnknownReference,
            format!("visit {id} was never started by this mobile user"),
        ),
    }
}

pub(super) fn parse_id(bytes: &[u8], what: &str) -> Checked<Uuid> {
    ids::from_wire(bytes).ok_or_else(|| {
        (
            ErrorCode::InvalidMutation,
            format!("{what} must be a 16-byte UUID"),
        )
    })
}

pub(super) fn to_fix(f: &v1::GpsFix) -> Fix {
    Fix {
        lat_e7: f.lat_e7,
        lon_e7: f.lon_e7,
        accuracy_m: f.accuracy_dm as f64 / 10.0,
    }
}

/// A visit as the batch sees it.
#[derive(Debug, Clone)]
pub(super) struct VisitState {
    pub(super) owner: i64,
    pub(super) outlet_id: i64,
    pub(super) ended: bool,
    /// Already stored before this batch (otherwise it is inserted at the end).
    pub(super) stored: bool,
    pub(super) fixes: Vec<Fix>,
}

/// A visit started in this batch, written at the end.
pub(super) struct NewVisit {
    pub(super) id: Uuid,
    pub(super) outlet_id: i64,
    pub(super) route_id: Option<i64>,
    pub(super) started_device_ms: i64,
    pub(super) ended_device_ms: Option<i64>,
    pub(super) ended: bool,
    pub(super) band: &'static str,
    pub(super) distance_m: Option<f64>,
    pub(super) accuracy_m: Option<f64>,
    pub(super) mock: bool,
    /// The device time of the mutation the device recorded before the start.
    pub(super) preceding_device_ms: Option<i64>,
    /// The start's sequence number on its device.
    pub(super) started_seq: i64,
}

/// A visit stored by an earlier batch and ended in this one.
pub(super) struct EndedVisit {
    pub(super) id: Uuid,
    pub(super) ended_device_ms: Option<i64>,
    pub(super) band: &'static str,
    pub(super) distance_m: Option<f64>,
    pub(super) accuracy_m: Option<f64>,
    pub(super) mock: bool,
}

/// An order placed in this batch; its number is handed out at the end.
pub(super) struct NewOrder {
    pub(super) id: Uuid,
    pub(super) visit_id: Option<Uuid>,
    pub(super) placed_device_ms: i64,
    pub(super) o: v1::OrderPlaced,
    /// Cancelled later in the same batch: stored as cancelled, with this reason.
    pub(super) cancel_reason: Option<String>,
}

/// A claim as the batch sees it.
#[derive(Debug, Clone)]
pub(super) struct ClaimState {
    pub(super) owner: i64,
    pub(super) outlet_id: i64,
    /// 0 until written (a claim created in this batch).
    pub(super) number: i64,
    pub(super) stage: v1::ClaimStage,
    pub(super) deleted: bool,
    /// Stored before this batch.
    pub(super) stored: bool,
}

/// An order line a claim may name.
#[derive(Debug, Clone)]
pub(super) struct ClaimableLine {
    pub(super) outlet_id: i64,
    pub(super) product_id: i64,
    pub(super) max_milli: i64,
    pub(super) cancelled: bool,
}

/// A claim saved or deleted in this batch, as it stands after its last mutation.
#[derive(Debug, Clone)]
pub(super) struct ClaimWrite {
    pub(super) id: Uuid,
    pub(super) stored: bool,
    pub(super) stage: v1::ClaimStage,
    /// Registered by this batch (it enters the distributor's feed).
    pub(super) registered: bool,
    pub(super) deleted: bool,
    /// The last content saved in this batch, with each line's product.
    pub(super) saved: Option<(v1::ClaimSaved, Vec<i64>)>,
    pub(super) device_ms: i64,
}

/// Everything the batch refers to, read up front.
#[derive(Default)]
pub(super) struct Picture {
    pub(super) visits: HashMap<Uuid, VisitState>,
    pub(super) open_visit: Option<Uuid>,
    /// Visible outlets and their reference locations.
    pub(super) outlets: HashMap<i64, Option<(i32, i32)>>,
    pub(super) products: HashSet<i64>,
    pub(super) price_lists: HashSet<i64>,
    pub(super) warehouses: HashSet<i64>,
    /// Orders by id: (owner, number, state).
    pub(super) orders: HashMap<Uuid, (i64, i64, OrderState)>,
    /// Stored answer sets and distribution checks by id, with the mobile user who sent them.
    pub(super) answer_sets: HashMap<Uuid, i64>,
    pub(super) checks: HashMap<Uuid, i64>,
    pub(super) questionnaires: HashMap<i64, v1::Questionnaire>,
    /// The revision each of `questionnaires` had when it was read.
    pub(super) questionnaire_revisions: HashMap<i64, i64>,
    /// Card documents the batch changes, read under their row locks (`lock_cards`).
    pub(super) cards: HashMap<i64, crate::store::outlet_cards::LockedCard>,
    /// The Automerge actors this device's changes may be made by.
    pub(super) card_actors: Vec<fieldsync_protocol::automerge::ActorId>,
    /// Claims by id.
    pub(super) claims: HashMap<Uuid, ClaimState>,
    /// Order lines the batch's claims name, by (order, line number).
    pub(super) order_lines: HashMap<(Uuid, i64), ClaimableLine>,
    /// The distributor's active claim types (no parent) and subtypes (their type).
    pub(super) claim_reasons: HashMap<i64, Option<i64>>,
    /// What live claims already claim of each order line: claim → quantity.
    pub(super) claimed: HashMap<(Uuid, i64), HashMap<Uuid, i64>>,
}

/// Rows to write.
#[derive(Default)]
pub(super) struct Writes {
    pub(super) new_visits: Vec<NewVisit>,
    pub(super) ended_stored: Vec<EndedVisit>,
    pub(super) fixes: Vec<FixRow>,
    pub(super) orders: Vec<NewOrder>,
    pub(super) cancels: Vec<(Uuid, i64, String)>,
    pub(super) answers: Vec<AnswerRow>,
    pub(super) checks: Vec<CheckRow>,
    pub(super) refused: Vec<RefusedRow>,
    pub(super) card_changes: Vec<crate::store::outlet_cards::AcceptedChange>,
    pub(super) claims: Vec<ClaimWrite>,
}

/// Validates one mutation against the picture and records its effects. `Ok(true)` applied,
/// `Ok(false)` already there, `Err` refused with a reason. A refusal changes nothing.
pub(super) fn apply(
    pic: &mut Picture,
    w: &mut Writes,
    auth: &DeviceAuth,
    bands: Bands,
    now: i64,
    m: &v1::Mutation,
) -> Checked<bool> {
    if ids::from_wire(&m.id).is_none() {
        return refuse(
            ErrorCode::InvalidMutation,
            "mutation id must be a 16-byte UUID",
        );
    }
    let user = auth.mobile_user_id;
    match &m.kind {
        None => refuse(ErrorCode::InvalidMutation, "the mutation carries no action"),
        Some(Kind::VisitStarted(v)) => {
            let visit_id = parse_id(&v.visit_id, "visit_id")?;
            check_fixes(&v.fixes)?;
            if let Some(known) = stored_id(pic.visits.get(&visit_id).map(|v| v.owner), user) {
                return known.map_err(|()| taken("visit id", visit_id));
            }
            let Some(reference) = pic.outlets.get(&v.outlet_id).copied() else {
                return refuse(
                    ErrorCode::NotVisible,
                    format!("outlet {} is not in this device's territory", v.outlet_id),
                );
            };
            if let Some(open) = pic.open_visit {
                return refuse(
                    ErrorCode::VisitAlreadyOpen,
                    format!("visit {open} is still in progress; end it before starting another"),
                );
            }
            let fixes: Vec<Fix> = v.fixes.iter().map(to_fix).collect();
            let class = location::classify_visit(&fixes, &[], reference, bands);
            push_fixes(w, visit_id, "start", &v.fixes, now);
            w.new_visits.push(NewVisit {
                id: visit_id,
                outlet_id: v.outlet_id,
                route_id: (v.route_id > 0).then_some(v.route_id),
                started_device_ms: m.device_time_ms,
                ended_device_ms: None,
                ended: false,
                band: class.band.as_str(),
                distance_m: class.distance_m,
                accuracy_m: class.accuracy_m,
                mock: v.fixes.iter().any(|f| f.mock),
                preceding_device_ms: None,
                started_seq: m.seq as i64,
            });
            pic.visits.insert(
                visit_id,
                VisitState {
                    owner: user,
                    outlet_id: v.outlet_id,
                    ended: false,
                    stored: false,
                    fixes,
                },
            );
            pic.open_visit = Some(visit_id);
            Ok(true)
        }
        Some(Kind::VisitEnded(v)) => {
            let visit_id = parse_id(&v.visit_id, "visit_id")?;
            check_fixes(&v.fixes)?;
            own_visit(pic, user, visit_id)?;
            let state = pic.visits.get_mut(&visit_id).expect("checked");
            if state.ended {
                return Ok(false);
            }
            state.ended = true;
            // The state holds the start's fixes (an open visit has no others).
            let end: Vec<Fix> = v.fixes.iter().map(to_fix).collect();
            let reference = pic.outlets.get(&state.outlet_id).copied().flatten();
            let class = location::classify_visit(&state.fixes, &end, reference, bands);
            state.fixes.extend(end);
            let ended_device = Some(m.device_time_ms);
            let mock = v.fixes.iter().any(|f| f.mock);
            if state.stored {
                w.ended_stored.push(EndedVisit {
                    id: visit_id,
                    ended_device_ms: ended_device,
                    band: class.band.as_str(),
                    distance_m: class.distance_m,
                    accuracy_m: class.accuracy_m,
                    mock,
                });
            } else if let Some(nv) = w.new_visits.iter_mut().find(|nv| nv.id == visit_id) {
                nv.ended = true;
                nv.ended_device_ms = ended_device;
                nv.band = class.band.as_str();
                nv.distance_m = class.distance_m;
                nv.accuracy_m = class.accuracy_m;
                nv.mock |= mock;
            }
            push_fixes(w, visit_id, "end", &v.fixes, now);
            if pic.open_visit == Some(visit_id) {
                pic.open_visit = None;
            }
            Ok(true)
        }
        Some(Kind::OrderPlaced(o)) => {
            let order_id = parse_id(&o.order_id, "order_id")?;
            if let Some(known) = stored_id(pic.orders.get(&order_id).map(|o| o.0), user) {
                return known.map_err(|()| taken("order id", order_id));
            }
            let visit_id = if o.visit_id.is_empty() {
                None
            } else {
                let id = parse_id(&o.visit_id, "visit_id")?;
                own_visit(pic, user, id)?;
                Some(id)
            };
            if !pic.outlets.contains_key(&o.outlet_id) {
                return refuse(
                    ErrorCode::NotVisible,
                    format!("outlet {} is not in this device's territory", o.outlet_id),
                );
            }
            if o.lines.is_empty() {
                return refuse(
                    ErrorCode::InvalidMutation,
                    "an order needs at least one line",
                );
            }
            if o.lines.len() > 1000 {
                return refuse(
                    ErrorCode::InvalidMutation,
                    "an order has at most 1000 lines",
                );
            }
            visible(&pic.price_lists, "price list", o.price_list_id)?;
            if !pic.warehouses.contains(&o.warehouse_id) {
                return refuse(
                    ErrorCode::NotVisible,
                    format!(
                        "warehouse {} is not bound to this position for orders",
                        o.warehouse_id
                    ),
                );
            }
            for (i, line) in o.lines.iter().enumerate() {
                if !pic.products.contains(&line.product_id) {
                    return refuse(
                        ErrorCode::NotVisible,
                        format!(
                            "line {}: product {} is not available",
                            i + 1,
                            line.product_id
                        ),
                    );
                }
                if line.quantity_milli <= 0 {
                    return refuse(
                        ErrorCode::InvalidMutation,
                        format!("line {}: quantity must be positive", i + 1),
                    );
                }
                if money::line_sum(line.quantity_milli, line.price_minor) != Some(line.sum_minor) {
                    return refuse(
                        ErrorCode::OrderSumsMismatch,
                        format!(
                            "line {}: sum {} does not equal quantity {} x price {}",
                            i + 1,
                            line.sum_minor,
                            line.quantity_milli,
                            line.price_minor
                        ),
                    );
                }
            }
            if money::order_total(o.lines.iter().map(|l| l.sum_minor)) != Some(o.total_minor) {
                return refuse(
                    ErrorCode::OrderSumsMismatch,
                    format!(
                        "order total {} does not equal the sum of its lines",
                        o.total_minor
                    ),
                );
            }
            if !o.delivery_date.is_empty() && !dates::is_date(&o.delivery_date) {
                return refuse(
                    ErrorCode::InvalidMutation,
                    "delivery_date must be YYYY-MM-DD",
                );
            }
            if o.overdue_reason.chars().count() > 500 {
                return refuse(
                    ErrorCode::InvalidMutation,
                    "overdue_reason is longer than 500 characters",
                );
            }
            pic.orders.insert(order_id, (user, 0, OrderState::Placed));
            // A claim later in the batch may name this order's lines.
            for (i, l) in o.lines.iter().enumerate() {
                pic.order_lines.insert(
                    (order_id, i as i64 + 1),
                    ClaimableLine {
                        outlet_id: o.outlet_id,
                        product_id: l.product_id,
                        max_milli: l.quantity_milli,
                        cancelled: false,
                    },
                );
            }
            w.orders.push(NewOrder {
                id: order_id,
                visit_id,
                placed_device_ms: m.device_time_ms,
                o: o.clone(),
                cancel_reason: None,
            });
            Ok(true)
        }
        Some(Kind::OrderCancelled(c)) => {
            let order_id = parse_id(&c.order_id, "order_id")?;
            let Some((owner, number, state)) = pic.orders.get_mut(&order_id) else {
                return refuse(
                    ErrorCode::UnknownReference,
                    format!("order {order_id} is unknown"),
                );
            };
            if *owner != user {
                return refuse(
                    ErrorCode::UnknownReference,
                    format!("order {order_id} is unknown"),
                );
            }
            if *state == OrderState::Cancelled {
                return Ok(false);
            }
            if !state.agent_may_cancel() {
                return refuse(
                    ErrorCode::InvalidState,
                    format!(
                        "order {order_id} is {} at the distributor and can no longer be cancelled",
                        state.name()
                    ),
                );
            }
            *state = OrderState::Cancelled;
            for ((order, _), line) in pic.order_lines.iter_mut() {
                if *order == order_id {
                    line.cancelled = true;
                }
            }
            if *number == 0 {
                // Placed in this very batch: it is written as cancelled.
                if let Some(o) = w.orders.iter_mut().find(|o| o.id == order_id) {
                    o.cancel_reason = Some(c.reason.chars().take(1000).collect());
                }
                return Ok(true);
            }
            w.cancels
                .push((order_id, *number, c.reason.chars().take(1000).collect()));
            Ok(true)
        }
        Some(Kind::QuestionnaireAnswered(q)) => {
            let fact = (q.answers_id.as_slice(), "answers_id");
            let Some((answers_id, visit_id)) =
                visit_fact(pic, &pic.answer_sets, user, fact, &q.visit_id)?
            else {
                return Ok(false);
            };
            let Some(form) = pic.questionnaires.get(&q.questionnaire_id) else {
                return refuse(
                    ErrorCode::NotVisible,
                    format!("questionnaire {} is not available", q.questionnaire_id),
                );
            };
            if let Err(problem) = questionnaire::validate(form, &q.answers) {
                return refuse(ErrorCode::InvalidMutation, problem.to_string());
            }
            let rows = answer_rows(&q.answers);
            w.answers.extend(
                rows.into_iter()
                    .map(|(question_id, kind, text, number)| AnswerRow {
                        answers_id: answers_id.to_string(),
                        visit_id: visit_id.to_string(),
                        questionnaire_id: q.questionnaire_id,
                        question_id,
                        value_kind: kind.to_string(),
                        value_text: text,
                        value_number: number,
                    }),
            );
            pic.answer_sets.insert(answers_id, user);
            Ok(true)
        }
        Some(Kind::DistributionChecked(d)) => {
            let fact = (d.check_id.as_slice(), "check_id");
            let Some((check_id, visit_id)) = visit_fact(pic, &pic.checks, user, fact, &d.visit_id)?
            else {
                return Ok(false);
            };
            if d.items.is_empty() {
                return refuse(
                    ErrorCode::InvalidMutation,
                    "a distribution check needs at least one product",
                );
            }
            let mut seen = HashSet::new();
            for item in &d.items {
                if !seen.insert(item.product_id) {
                    return refuse(
                        ErrorCode::InvalidMutation,
                        format!("product {} is checked twice", item.product_id),
                    );
                }
                visible(&pic.products, "product", item.product_id)?;
            }
            w.checks.extend(d.items.iter().map(|i| CheckRow {
                check_id: check_id.to_string(),
                visit_id: visit_id.to_string(),
                product_id: i.product_id,
                present: i.present,
            }));
            pic.checks.insert(check_id, user);
            Ok(true)
        }
        Some(Kind::CardChanged(c)) => card_changed(pic, w, m.device_time_ms, c),
        Some(Kind::ClaimSaved(c)) => claim_saved(pic, w, user, m.device_time_ms, c),
        Some(Kind::ClaimDeleted(c)) => claim_deleted(pic, w, user, m.device_time_ms, c),
    }
}

/// Automerge changes to an outlet card: visible outlet, the device's own actor, changes
/// within limits whose dependencies the server has; merged, then the merged card checked.
/// The batch's write of a claim, created on its first mutation in the batch.
fn claim_write<'a>(
    w: &'a mut Writes,
    id: Uuid,
    state: &ClaimState,
    now: i64,
) -> &'a mut ClaimWrite {
    match w.claims.iter().position(|c| c.id == id) {
        Some(i) => &mut w.claims[i],
        None => {
            w.claims.push(ClaimWrite {
                id,
                stored: state.stored,
                stage: state.stage,
                registered: false,
                deleted: state.deleted,
                saved: None,
                device_ms: now,
            });
            w.claims.last_mut().expect("just pushed")
        }
    }
}

fn claim_saved(
    pic: &mut Picture,
    w: &mut Writes,
    user: i64,
    device_ms: i64,
    c: &v1::ClaimSaved,
) -> Checked<bool> {
    use v1::ClaimStage;
    let claim_id = parse_id(&c.claim_id, "claim_id")?;
    if let Some(known) = pic.claims.get(&claim_id) {
        if known.owner != user {
            return Err(taken("claim id", claim_id));
        }
        if known.deleted {
            return refuse(
                ErrorCode::InvalidState,
                format!("claim {claim_id} was deleted"),
            );
        }
        if known.stage != ClaimStage::ClaimDraft {
            return refuse(
                ErrorCode::InvalidState,
                format!(
                    "claim {} is {} and can no longer change",
                    known.number,
                    claims::stage_name(known.stage)
                ),
            );
        }
        if known.outlet_id != c.outlet_id {
            return refuse(
                ErrorCode::InvalidMutation,
                "a claim stays with the outlet it was made for",
            );
        }
    }
    if !c.visit_id.is_empty() {
        own_visit(pic, user, parse_id(&c.visit_id, "visit_id")?)?;
    }
    if !pic.outlets.contains_key(&c.outlet_id) {
        return refuse(
            ErrorCode::NotVisible,
            format!("outlet {} is not visible to this device", c.outlet_id),
        );
    }
    claims::check(c).map_err(|e| (ErrorCode::InvalidMutation, e))?;
    let mut products = Vec::with_capacity(c.lines.len());
    for (i, l) in c.lines.iter().enumerate() {
        let order = parse_id(&l.order_id, "order_id")?;
        let Some(line) = pic.order_lines.get(&(order, i64::from(l.line_no))) else {
            return refuse(
                ErrorCode::UnknownReference,
                format!("line {}: order {order} has no line {}", i + 1, l.line_no),
            );
        };
        if line.outlet_id != c.outlet_id || line.cancelled {
            return refuse(
                ErrorCode::InvalidMutation,
                format!(
                    "line {}: order {order} is not a delivered order of this outlet",
                    i + 1
                ),
            );
        }
        // Other claims on the same goods count too: together they claim no more than came.
        let others: i64 = pic
            .claimed
            .get(&(order, i64::from(l.line_no)))
            .map(|m| {
                m.iter()
                    .filter(|(c, _)| **c != claim_id)
                    .map(|(_, q)| *q)
                    .sum()
            })
            .unwrap_or(0);
        if l.quantity_milli + others > line.max_milli {
            return refuse(
                ErrorCode::InvalidMutation,
                format!(
                    "line {}: {} claimed of {} delivered ({} already claimed)",
                    i + 1,
                    l.quantity_milli,
                    line.max_milli,
                    others
                ),
            );
        }
        if pic.claim_reasons.get(&l.type_id) != Some(&None) {
            return refuse(
                ErrorCode::InvalidMutation,
                format!(
                    "line {}: claim type {} is not in the list",
                    i + 1,
                    l.type_id
                ),
            );
        }
        if l.subtype_id != 0 && pic.claim_reasons.get(&l.subtype_id) != Some(&Some(l.type_id)) {
            return refuse(
                ErrorCode::InvalidMutation,
                format!(
                    "line {}: subtype {} is not a subtype of type {}",
                    i + 1,
                    l.subtype_id,
                    l.type_id
                ),
            );
        }
        products.push(line.product_id);
    }
    let stage = if c.register {
        ClaimStage::ClaimRegistered
    } else {
        ClaimStage::ClaimDraft
    };
    for m in pic.claimed.values_mut() {
        m.remove(&claim_id);
    }
    for l in &c.lines {
        if let Some(order) = ids::from_wire(&l.order_id) {
            pic.claimed
                .entry((order, i64::from(l.line_no)))
                .or_default()
                .insert(claim_id, l.quantity_milli);
        }
    }
    let state = pic.claims.entry(claim_id).or_insert(ClaimState {
        owner: user,
        outlet_id: c.outlet_id,
        number: 0,
        stage,
        deleted: false,
        stored: false,
    });
    state.stage = stage;
    let state = state.clone();
    let write = claim_write(w, claim_id, &state, device_ms);
    write.stage = stage;
    write.registered |= c.register;
    write.saved = Some((c.clone(), products));
    write.device_ms = device_ms;
    Ok(true)
}

fn claim_deleted(
    pic: &mut Picture,
    w: &mut Writes,
    user: i64,
    device_ms: i64,
    c: &v1::ClaimDeleted,
) -> Checked<bool> {
    let claim_id = parse_id(&c.claim_id, "claim_id")?;
    let Some(known) = pic.claims.get_mut(&claim_id).filter(|k| k.owner == user) else {
        return refuse(
            ErrorCode::UnknownReference,
            format!("claim {claim_id} is unknown"),
        );
    };
    if known.deleted {
        return Ok(false);
    }
    if known.stage != v1::ClaimStage::ClaimDraft {
        return refuse(
            ErrorCode::InvalidState,
            format!(
                "claim {} is {} and cannot be deleted",
                known.number,
                claims::stage_name(known.stage)
            ),
        );
    }
    known.deleted = true;
    let state = known.clone();
    for m in pic.claimed.values_mut() {
        m.remove(&claim_id);
    }
    let write = claim_write(w, claim_id, &state, device_ms);
    write.deleted = true;
    Ok(true)
}

fn card_changed(
    pic: &mut Picture,
    w: &mut Writes,
    device_time_ms: i64,
    c: &v1::CardChanged,
) -> Checked<bool> {
    use fieldsync_protocol::automerge::ReadDoc;
    use fieldsync_protocol::cards::{self, CardError, Role};
    if !pic.outlets.contains_key(&c.outlet_id) {
        return refuse(
            ErrorCode::NotVisible,
            format!("outlet {} is not in this device's territory", c.outlet_id),
        );
    }
    let Some(card) = pic.cards.get_mut(&c.outlet_id) else {
        return refuse(
            ErrorCode::NotVisible,
            format!("outlet {} is not available", c.outlet_id),
        );
    };
    let invalid = |e: CardError| -> Refusal {
        let code = match e {
            CardError::MissingDeps => ErrorCode::UnknownReference,
            _ => ErrorCode::InvalidMutation,
        };
        (code, e.to_string())
    };
    // Every change must be by one of this device's actors; the first change's actor is then
    // the writer every change is checked against.
    let Some(first) = c.changes.first() else {
        return Err(invalid(CardError::Malformed("no changes".into())));
    };
    cards::check_chunk(first).map_err(invalid)?;
    let writer = fieldsync_protocol::automerge::Change::try_from(&first[..])
        .map_err(|e| invalid(CardError::Malformed(e.to_string())))?
        .actor_id()
        .clone();
    if !pic.card_actors.contains(&writer) {
        return Err(invalid(CardError::ForeignActor(cards::actor_hex(&writer))));
    }
    let changes = cards::parse_changes(&c.changes, &writer).map_err(invalid)?;
    let mut merged = card.doc.clone();
    let raw: Vec<(String, Vec<u8>)> = changes
        .iter()
        .filter(|ch| card.doc.get_change_by_hash(&ch.hash()).is_none())
        .map(|ch| (ch.hash().to_string(), ch.raw_bytes().to_vec()))
        .collect();
    if cards::apply(&mut merged, changes).map_err(invalid)? == 0 {
        return Ok(false);
    }
    cards::validate(&card.doc, &merged, &writer, Role::Agent).map_err(invalid)?;
    let saved = merged.save();
    cards::check_size(card.saved_bytes, saved.len()).map_err(invalid)?;
    card.doc = merged;
    card.saved_bytes = saved.len();
    card.saved = Some(saved);
    let actor = cards::actor_hex(&writer);
    let mut seen = HashSet::new();
    w.card_changes
        .extend(
            raw.into_iter()
                .filter(|(h, _)| seen.insert(h.clone()))
                .map(|(hash, bytes)| crate::store::outlet_cards::AcceptedChange {
                    outlet_id: c.outlet_id,
                    hash,
                    actor: actor.clone(),
                    bytes,
                    device_time_ms,
                }),
        );
    Ok(true)
}

pub(super) fn push_fixes(
    w: &mut Writes,
    visit_id: Uuid,
    phase: &str,
    fixes: &[v1::GpsFix],
    now: i64,
) {
    w.fixes
        .extend(fixes.iter().enumerate().map(|(i, f)| FixRow {
            visit_id: visit_id.to_string(),
            phase: phase.to_string(),
            fix_no: i as i64,
            lat_e7: f.lat_e7 as i64,
            lon_e7: f.lon_e7 as i64,
            accuracy_dm: f.accuracy_dm as i64,
            provider: provider_name(f.provider).to_string(),
            mock: f.mock,
            device_time_ms: f.device_time_ms,
            received_at_ms: now,
        }));
}

/// The rows a validated questionnaire is stored as: (question id, value kind, text, number).
pub(super) fn answer_rows(answers: &[v1::Answer]) -> Vec<(i64, &'static str, String, Option<f64>)> {
    use v1::answer::Value;
    answers
        .iter()
        .filter_map(|a| {
            let (kind, text, number) = match a.value.as_ref()? {
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
            Some((a.question_id, kind, text, number))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! The rules on their own: a picture built by hand, no database.
    use super::*;

    const OUTLET: i64 = 7;
    const PRODUCT: i64 = 11;
    const PRICE_LIST: i64 = 3;
    const WAREHOUSE: i64 = 5;
    const REF: (i32, i32) = (504_501_000, 305_234_000);

    fn auth(user: i64) -> DeviceAuth {
        DeviceAuth {
            device_id: user * 10,
            mobile_user_id: user,
            distributor_id: 1,
            position_id: 2,
            territory_id: 4,
            last_seq: 0,
        }
    }

    fn picture() -> Picture {
        let mut pic = Picture::default();
        pic.outlets.insert(OUTLET, Some(REF));
        pic.products.insert(PRODUCT);
        pic.price_lists.insert(PRICE_LIST);
        pic.warehouses.insert(WAREHOUSE);
        pic
    }

    fn wrap(kind: Kind) -> v1::Mutation {
        v1::Mutation {
            seq: 1,
            id: ids::to_wire(ids::new_id()),
            device_time_ms: 1_000,
            kind: Some(kind),
        }
    }

    fn fix(lat_offset_e7: i32, accuracy_dm: u32) -> v1::GpsFix {
        v1::GpsFix {
            lat_e7: REF.0 + lat_offset_e7,
            lon_e7: REF.1,
            accuracy_dm,
            device_time_ms: 1_000,
            ..Default::default()
        }
    }

    fn start(visit: Uuid, fixes: Vec<v1::GpsFix>) -> v1::Mutation {
        wrap(Kind::VisitStarted(v1::VisitStarted {
            visit_id: ids::to_wire(visit),
            outlet_id: OUTLET,
            route_id: 0,
            fixes,
        }))
    }

    fn run(pic: &mut Picture, w: &mut Writes, user: i64, m: &v1::Mutation) -> Checked<bool> {
        apply(pic, w, &auth(user), Bands::default(), 2_000, m)
    }

    #[test]
    fn a_visit_gets_its_band_from_its_fixes_and_one_visit_at_a_time() {
        let (mut pic, mut w) = (picture(), Writes::default());
        let first = ids::new_id();
        // About 22 m north of the reference with 8 m accuracy: within.
        assert_eq!(
            run(&mut pic, &mut w, 1, &start(first, vec![fix(2_000, 80)])),
            Ok(true)
        );
        assert_eq!(w.new_visits.len(), 1);
        assert_eq!(w.new_visits[0].band, "within");
        assert_eq!(w.fixes.len(), 1);
        let second = start(ids::new_id(), vec![fix(0, 50)]);
        let (code, _) = run(&mut pic, &mut w, 1, &second).unwrap_err();
        assert_eq!(code, ErrorCode::VisitAlreadyOpen);
        assert_eq!(w.new_visits.len(), 1, "a refusal writes nothing");
    }

    #[test]
    fn an_id_is_the_senders_own_a_replay_is_a_duplicate_and_anothers_is_taken() {
        let (mut pic, mut w) = (picture(), Writes::default());
        let visit = ids::new_id();
        let m = start(visit, vec![fix(0, 50)]);
        assert_eq!(run(&mut pic, &mut w, 1, &m), Ok(true));
        assert_eq!(run(&mut pic, &mut w, 1, &m), Ok(false));
        let (code, reason) = run(&mut pic, &mut w, 2, &m).unwrap_err();
        assert_eq!(code, ErrorCode::InvalidMutation);
        assert!(reason.contains("already taken"), "{reason}");
    }

    #[test]
    fn an_outlet_outside_the_picture_is_not_visible_and_a_bad_id_is_invalid() {
        let (mut pic, mut w) = (picture(), Writes::default());
        let mut m = start(ids::new_id(), vec![fix(0, 50)]);
        if let Some(Kind::VisitStarted(v)) = &mut m.kind {
            v.outlet_id = 99;
        }
        assert_eq!(
            run(&mut pic, &mut w, 1, &m).unwrap_err().0,
            ErrorCode::NotVisible
        );
        let mut bad = start(ids::new_id(), vec![]);
        bad.id = vec![1, 2, 3];
        assert_eq!(
            run(&mut pic, &mut w, 1, &bad).unwrap_err().0,
            ErrorCode::InvalidMutation
        );
        assert!(w.new_visits.is_empty());
    }

    #[test]
    fn an_order_whose_sums_do_not_follow_from_its_lines_is_refused() {
        let (mut pic, mut w) = (picture(), Writes::default());
        let visit = ids::new_id();
        run(&mut pic, &mut w, 1, &start(visit, vec![fix(0, 50)])).unwrap();
        let line = v1::OrderLine {
            product_id: PRODUCT,
            quantity_milli: 2_000,
            price_minor: 1_250,
            sum_minor: 2_500,
            comment: String::new(),
        };
        let order = |total_minor: i64| {
            wrap(Kind::OrderPlaced(v1::OrderPlaced {
                order_id: ids::to_wire(ids::new_id()),
                visit_id: ids::to_wire(visit),
                outlet_id: OUTLET,
                price_list_id: PRICE_LIST,
                warehouse_id: WAREHOUSE,
                lines: vec![line.clone()],
                total_minor,
                ..Default::default()
            }))
        };
        assert_eq!(
            run(&mut pic, &mut w, 1, &order(2_499)).unwrap_err().0,
            ErrorCode::OrderSumsMismatch
        );
        assert!(w.orders.is_empty());
        assert_eq!(run(&mut pic, &mut w, 1, &order(2_500)), Ok(true));
        assert_eq!(w.orders.len(), 1);
    }

    #[test]
    fn answers_are_judged_by_the_shared_questionnaire_rules() {
        let (mut pic, mut w) = (picture(), Writes::default());
        let visit = ids::new_id();
        run(&mut pic, &mut w, 1, &start(visit, vec![fix(0, 50)])).unwrap();
        pic.questionnaires
            .insert(9, questionnaire::case_questionnaire(9));
        for (name, answers, verdict) in questionnaire::cases() {
            let m = wrap(Kind::QuestionnaireAnswered(v1::QuestionnaireAnswered {
                answers_id: ids::to_wire(ids::new_id()),
                visit_id: ids::to_wire(visit),
                questionnaire_id: 9,
                answers,
            }));
            let got = run(&mut pic, &mut w, 1, &m).map(|_| ()).map_err(|(_, r)| r);
            assert_eq!(got, verdict.map_err(|p| p.to_string()), "{name}");
        }
    }
}
