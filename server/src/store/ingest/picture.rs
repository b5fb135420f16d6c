//! The batched reads: everything a batch's fresh mutations refer to, one query per kind.
use super::rules::{ClaimState, ClaimableLine, Picture, VisitState};
use crate::store::devices::DeviceAuth;
use crate::store::sql::select_in;
use crate::store::{Result, Store};
use fieldsync_protocol::location::Fix;
use fieldsync_protocol::v1::OrderState;
use fieldsync_protocol::v1::{self, mutation::Kind};
use fieldsync_protocol::{claims, ids, questionnaire};
use sqlx::AnyConnection;
use std::collections::HashSet;
use uuid::Uuid;

/// The facts stored under these ids (answer sets, distribution checks) with the mobile user
/// each belongs to: `$sql` reads (id, owner) for an `IN ({})` list of ids.
macro_rules! owners {
    ($conn:expr, $sql:expr, $ids:expr) => {
        select_in!(
            $conn,
            (String, i64),
            $sql,
            [],
            $ids.iter().map(|u| u.to_string()).collect()
        )
        .iter()
        .filter_map(|r| Some((Uuid::parse_str(&r.0).ok()?, r.1)))
        .collect()
    };
}

impl Store {
    /// Reads everything the fresh mutations refer to, one query per kind.
    pub(super) async fn picture(
        &self,
        conn: &mut AnyConnection,
        auth: &DeviceAuth,
        fresh: &[&v1::Mutation],
    ) -> Result<Picture> {
        let mut visit_ids = HashSet::new();
        let mut outlet_ids = HashSet::new();
        let mut product_ids = HashSet::new();
        let mut order_ids = HashSet::new();
        let mut answer_ids = HashSet::new();
        let mut check_ids = HashSet::new();
        let mut questionnaire_ids = HashSet::new();
        let mut claim_ids = HashSet::new();
        let mut claimed_orders = HashSet::new();
        let mut need_price_lists = false;
        for m in fresh {
            match &m.kind {
                Some(Kind::VisitStarted(v)) => {
                    visit_ids.extend(ids::from_wire(&v.visit_id));
                    outlet_ids.insert(v.outlet_id);
                }
                Some(Kind::VisitEnded(v)) => {
                    visit_ids.extend(ids::from_wire(&v.visit_id));
                }
                Some(Kind::OrderPlaced(o)) => {
                    order_ids.extend(ids::from_wire(&o.order_id));
                    visit_ids.extend(ids::from_wire(&o.visit_id));
                    outlet_ids.insert(o.outlet_id);
                    product_ids.extend(o.lines.iter().map(|l| l.product_id));
                    need_price_lists = true;
                }
                Some(Kind::OrderCancelled(c)) => {
                    order_ids.extend(ids::from_wire(&c.order_id));
                }
                Some(Kind::QuestionnaireAnswered(q)) => {
                    answer_ids.extend(ids::from_wire(&q.answers_id));
                    visit_ids.extend(ids::from_wire(&q.visit_id));
                    questionnaire_ids.insert(q.questionnaire_id);
                }
                Some(Kind::DistributionChecked(d)) => {
                    check_ids.extend(ids::from_wire(&d.check_id));
                    visit_ids.extend(ids::from_wire(&d.visit_id));
                    product_ids.extend(d.items.iter().map(|i| i.product_id));
                }
                Some(Kind::CardChanged(c)) => {
                    outlet_ids.insert(c.outlet_id);
                }
                Some(Kind::ClaimSaved(c)) => {
                    claim_ids.extend(ids::from_wire(&c.claim_id));
                    visit_ids.extend(ids::from_wire(&c.visit_id));
                    outlet_ids.insert(c.outlet_id);
                    claimed_orders
                        .extend(c.lines.iter().filter_map(|l| ids::from_wire(&l.order_id)));
                }
                Some(Kind::ClaimDeleted(c)) => {
                    claim_ids.extend(ids::from_wire(&c.claim_id));
                }
                None => {}
            }
        }
        let mut pic = Picture::default();
        let visit_strs: Vec<String> = visit_ids.iter().map(|u| u.to_string()).collect();
        let visits = select_in!(
            conn,
            (String, i64, i64, Option<i64>),
            "SELECT id, mobile_user_id, outlet_id, ended_received_ms FROM visits WHERE id IN ({})",
            [],
            visit_strs.clone()
        );
        for (id, owner, outlet, ended) in visits {
            if let Ok(id) = Uuid::parse_str(&id) {
                outlet_ids.insert(outlet);
                pic.visits.insert(
                    id,
                    VisitState {
                        owner,
                        outlet_id: outlet,
                        ended: ended.is_some(),
                        stored: true,
                        fixes: Vec::new(),
                    },
                );
            }
        }
        // Fixes of stored, still open visits: an end re-classifies with all of them.
        let open_stored: Vec<String> = pic
            .visits
            .iter()
            .filter(|(_, v)| !v.ended && v.owner == auth.mobile_user_id)
            .map(|(id, _)| id.to_string())
            .collect();
        let fixes = select_in!(
            conn,
            (String, i64, i64, i64),
            "SELECT visit_id, lat_e7, lon_e7, accuracy_dm FROM gps_fixes WHERE visit_id IN ({})",
            [],
            open_stored
        );
        for (id, lat, lon, acc) in fixes {
            if let Some(v) = Uuid::parse_str(&id)
                .ok()
                .and_then(|id| pic.visits.get_mut(&id))
            {
                v.fixes.push(Fix {
                    lat_e7: lat as i32,
                    lon_e7: lon as i32,
                    accuracy_m: acc as f64 / 10.0,
                });
            }
        }
        let open: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM visits WHERE device_id = $1 AND ended_received_ms IS NULL LIMIT 1",
        )
        .bind(auth.device_id)
        .fetch_optional(&mut *conn)
        .await?;
        pic.open_visit = open.and_then(|(id,)| Uuid::parse_str(&id).ok());
        let outlets = select_in!(
            conn,
            (i64, Option<i64>, Option<i64>),
            "SELECT id, lat_e7, lon_e7 FROM outlets
             WHERE distributor_id = $1 AND territory_id = $2 AND deleted = 0 AND id IN ({})",
            [auth.distributor_id, auth.territory_id],
            outlet_ids.into_iter().collect()
        );
        for (id, lat, lon) in outlets {
            pic.outlets
                .insert(id, lat.zip(lon).map(|(a, b)| (a as i32, b as i32)));
        }
        let products = select_in!(
            conn,
            (i64,),
            "SELECT id FROM products WHERE distributor_id = $1 AND deleted = 0 AND id IN ({})",
            [auth.distributor_id],
            product_ids.into_iter().collect()
        );
        pic.products = products.into_iter().map(|r| r.0).collect();
        if need_price_lists {
            let rows: Vec<(i64,)> =
                sqlx::query_as("SELECT id FROM price_lists WHERE distributor_id = $1")
                    .bind(auth.distributor_id)
                    .fetch_all(&mut *conn)
                    .await?;
            pic.price_lists = rows.into_iter().map(|r| r.0).collect();
            let rows: Vec<(i64,)> = sqlx::query_as(
                "SELECT wp.warehouse_id FROM warehouse_positions wp JOIN warehouses w ON w.id = wp.warehouse_id
                 WHERE wp.position_id = $1 AND wp.document_type = 'order' AND w.active = 1",
            )
            .bind(auth.position_id)
            .fetch_all(&mut *conn)
            .await?;
            pic.warehouses = rows.into_iter().map(|r| r.0).collect();
        }
        let orders = select_in!(
            conn,
            (String, i64, i64, String),
            "SELECT id, mobile_user_id, number, state FROM orders WHERE id IN ({})",
            [],
            order_ids.iter().map(|u| u.to_string()).collect()
        );
        for (id, owner, number, state) in orders {
            if let Ok(id) = Uuid::parse_str(&id) {
                pic.orders.insert(
                    id,
                    (
                        owner,
                        number,
                        OrderState::from_name(&state).unwrap_or(OrderState::Unspecified),
                    ),
                );
            }
        }
        // With the visit's owner: an id another user already used is refused, not taken for
        // a duplicate of one's own. The owner is a correlated lookup by primary key: written
        // as a join it cost PostgreSQL a third of its ingest throughput (measured).
        pic.answer_sets = owners!(
            conn,
            "SELECT DISTINCT a.answers_id,
                (SELECT v.mobile_user_id FROM visits v WHERE v.id = a.visit_id)
             FROM questionnaire_answers a WHERE a.answers_id IN ({})",
            answer_ids
        );
        pic.checks = owners!(
            conn,
            "SELECT DISTINCT d.check_id,
                (SELECT v.mobile_user_id FROM visits v WHERE v.id = d.visit_id)
             FROM distribution_checks d WHERE d.check_id IN ({})",
            check_ids
        );
        if !claim_ids.is_empty() {
            let claims = select_in!(
                conn,
                (String, i64, i64, String, Option<i64>, i64),
                "SELECT id, mobile_user_id, number, stage, deleted_at_ms, outlet_id FROM claims WHERE id IN ({})",
                [],
                claim_ids.iter().map(|u| u.to_string()).collect()
            );
            for (id, owner, number, stage, deleted, outlet_id) in claims {
                if let Ok(id) = Uuid::parse_str(&id) {
                    pic.claims.insert(
                        id,
                        ClaimState {
                            owner,
                            outlet_id,
                            number,
                            stage: claims::stage_from_name(&stage)
                                .unwrap_or(v1::ClaimStage::ClaimDraft),
                            deleted: deleted.is_some(),
                            stored: true,
                        },
                    );
                }
            }
        }
        if !claimed_orders.is_empty() {
            // What each claimed order line was: its outlet, product, and the most that can be
            // claimed (shipped, else confirmed, else ordered).
            let lines = select_in!(
                conn,
                (String, i64, i64, i64, i64, Option<i64>, Option<i64>, String),
                "SELECT o.id, l.line_no, o.outlet_id, l.product_id, l.quantity_milli,
                        l.confirmed_quantity_milli, l.shipped_quantity_milli, o.state
                 FROM orders o JOIN order_lines l ON l.order_id = o.id
                 WHERE o.id IN ({})",
                [],
                claimed_orders.iter().map(|u| u.to_string()).collect()
            );
            for (id, line_no, outlet, product, ordered, confirmed, shipped, state) in lines {
                if let Ok(id) = Uuid::parse_str(&id) {
                    pic.order_lines.insert(
                        (id, line_no),
                        ClaimableLine {
                            outlet_id: outlet,
                            product_id: product,
                            max_milli: shipped.or(confirmed).unwrap_or(ordered),
                            cancelled: matches!(state.as_str(), "cancelled" | "rejected"),
                        },
                    );
                }
            }
            // What live claims already claim of these orders' lines.
            let claimed = select_in!(
                conn,
                (String, i64, String, i64),
                "SELECT l.order_id, l.order_line_no, l.claim_id, l.quantity_milli
                 FROM claim_lines l JOIN claims c ON c.id = l.claim_id
                 WHERE c.deleted_at_ms IS NULL AND l.order_id IN ({})",
                [],
                claimed_orders.iter().map(|u| u.to_string()).collect()
            );
            for (order, line_no, claim, qty) in claimed {
                if let (Ok(order), Ok(claim)) = (Uuid::parse_str(&order), Uuid::parse_str(&claim)) {
                    pic.claimed
                        .entry((order, line_no))
                        .or_default()
                        .insert(claim, qty);
                }
            }
            let reasons: Vec<(i64, Option<i64>)> = sqlx::query_as(
                "SELECT id, parent_id FROM claim_reasons WHERE distributor_id = $1 AND active = 1",
            )
            .bind(auth.distributor_id)
            .fetch_all(&mut *conn)
            .await?;
            pic.claim_reasons = reasons.into_iter().collect();
        }
        for qid in questionnaire_ids {
            if let Some((defs, revision)) =
                load_questionnaire(conn, auth.distributor_id, qid).await?
            {
                pic.questionnaires.insert(qid, defs);
                pic.questionnaire_revisions.insert(qid, revision);
            }
        }
        Ok(pic)
    }
}

/// Under the push's write lock: reads again the questionnaires of `pic` that an edit changed
/// since they were read (their revision moved; one deactivated meanwhile is dropped, so its
/// answers are refused). On PostgreSQL it also takes `FOR KEY SHARE` on them until the push
/// commits, which an edit's `FOR UPDATE` waits for: an edit can then neither slip between
/// this check and the answers' insert nor miss the answers when it decides whether to make a
/// new version. One statement when nothing changed; none for a batch without answers.
pub(super) async fn recheck_questionnaires(
    tx: &mut AnyConnection,
    distributor_id: i64,
    pic: &mut Picture,
) -> Result<()> {
    if pic.questionnaire_revisions.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = pic.questionnaire_revisions.keys().copied().collect();
    let current: Vec<(i64, i64)> = if crate::store::sql::is_sqlite(tx) {
        select_in!(
            tx,
            (i64, i64),
            "SELECT id, revision FROM questionnaires WHERE id IN ({})",
            [],
            ids.clone()
        )
    } else {
        select_in!(
            tx,
            (i64, i64),
            "SELECT id, revision FROM questionnaires WHERE id IN ({}) FOR KEY SHARE",
            [],
            ids.clone()
        )
    };
    for id in ids {
        let now = current.iter().find(|c| c.0 == id).map(|c| c.1);
        if now == pic.questionnaire_revisions.get(&id).copied() {
            continue;
        }
        pic.questionnaires.remove(&id);
        pic.questionnaire_revisions.remove(&id);
        if let Some((defs, revision)) = load_questionnaire(tx, distributor_id, id).await? {
            pic.questionnaires.insert(id, defs);
            pic.questionnaire_revisions.insert(id, revision);
        }
    }
    Ok(())
}

/// An active questionnaire of the distributor as answers are checked against it, with its
/// revision.
pub(super) async fn load_questionnaire(
    conn: &mut AnyConnection,
    distributor_id: i64,
    id: i64,
) -> Result<Option<(v1::Questionnaire, i64)>> {
    let found: Option<(i64,)> = sqlx::query_as(
        "SELECT revision FROM questionnaires WHERE id = $1 AND distributor_id = $2 AND active = 1",
    )
    .bind(id)
    .bind(distributor_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((revision,)) = found else {
        return Ok(None);
    };
    let questions: Vec<(i64, String, i64, Option<i64>, i64, Option<i64>)> = sqlx::query_as(
        "SELECT id, question_type, required, condition_question_id, condition_yes, condition_choice_id
         FROM questions WHERE questionnaire_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let choices: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT c.question_id, c.id FROM question_choices c JOIN questions q ON q.id = c.question_id
         WHERE q.questionnaire_id = $1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let questions = questions
        .into_iter()
        .map(|(qid, kind, required, cq, cy, cc)| {
            let mut q = v1::Question {
                id: qid,
                required: required != 0,
                condition: cq.map(|question_id| v1::Condition {
                    question_id,
                    equals_yes: cy != 0,
                    equals_choice_id: cc.unwrap_or(0),
                }),
                choices: choices
                    .iter()
                    .filter(|c| c.0 == qid)
                    .map(|c| v1::Choice {
                        id: c.1,
                        label: String::new(),
                    })
                    .collect(),
                ..Default::default()
            };
            q.set_type(questionnaire::type_from_name(&kind));
            q
        })
        .collect();
    let questionnaire = v1::Questionnaire {
        id,
        name: String::new(),
        questions,
        ..Default::default()
    };
    Ok(Some((questionnaire, revision)))
}
