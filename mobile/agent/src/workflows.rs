//! The agent's actions. Each one is a single local transaction that stores the fact for the
//! screens and appends its mutation to the outbox with the next sequence number.
use fieldsync_protocol::v1::OrderState;
use fieldsync_protocol::v1::{self, mutation::Kind};
use fieldsync_protocol::{ids, money, questionnaire};
use prost::Message;
use rusqlite::{OptionalExtension, Transaction, params};
use uuid::Uuid;

use crate::{Engine, EngineError};

/// Why an action was not taken. The UI shows these; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("visit {0} is still in progress; end it first")]
    VisitInProgress(Uuid),
    #[error("unknown outlet {0}")]
    UnknownOutlet(i64),
    #[error("unknown visit {0}")]
    UnknownVisit(Uuid),
    #[error("visit {0} has already ended")]
    VisitEnded(Uuid),
    #[error("product {0} has no price in price list {1}")]
    NoPrice(i64, i64),
    #[error("warehouse {0} is not available for orders")]
    UnknownWarehouse(i64),
    #[error("an order needs at least one line with a positive quantity")]
    EmptyOrder,
    #[error("unknown order {0}")]
    UnknownOrder(Uuid),
    #[error("order {0} can no longer be cancelled ({1})")]
    NotCancellable(Uuid, String),
    #[error("unknown questionnaire {0}")]
    UnknownQuestionnaire(i64),
    #[error("{problem}")]
    InvalidAnswer { question: i64, problem: String },
    #[error("amount too large")]
    Overflow,
    #[error("the card cannot be saved: {0}")]
    InvalidCard(String),
    #[error("sync once before editing outlet cards")]
    NotSynced,
    #[error("the outlet has overdue debt: write why the order is placed anyway")]
    OverdueReasonRequired,
    #[error("the claim cannot be saved: {0}")]
    InvalidClaim(String),
    #[error("claim {0} is registered and can no longer change")]
    ClaimLocked(Uuid),
    #[error("unknown claim {0}")]
    UnknownClaim(Uuid),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

from_db_error!(WorkflowError::Engine);

/// An order as the agent composes it: prices come from the price list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderDraft {
    pub visit_id: Option<Uuid>,
    pub outlet_id: i64,
    /// 0: the outlet's price list.
    pub price_list_id: i64,
    pub warehouse_id: i64,
    /// (product id, quantity in thousandths).
    pub lines: Vec<(i64, i64)>,
    pub comment: String,
    pub delivery_date: String,
    /// The saved draft this order comes from; placing removes it in the same transaction.
    pub draft_id: Option<Uuid>,
    /// Why the order is placed although the outlet has overdue debt (required when the
    /// distributor's overdue policy asks for a reason; ignored when nothing is overdue).
    pub overdue_reason: String,
}

/// Appends a mutation to the outbox inside the caller's transaction.
pub(crate) fn enqueue(tx: &Transaction<'_>, now: i64, kind: Kind) -> rusqlite::Result<u64> {
    let next: i64 = tx.query_row(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox WHERE seq > 0",
        [],
        |r| r.get(0),
    )?;
    let base: i64 = crate::store::get_meta_str(tx, "seq_base")?
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let seq = next.max(base);
    let id = ids::new_id();
    let name = kind.name();
    let m = v1::Mutation {
        seq: seq as u64,
        id: ids::to_wire(id),
        device_time_ms: now,
        kind: Some(kind),
    };
    tx.execute(
        "INSERT INTO outbox (seq, mutation_id, kind, body, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![seq, id.as_bytes().to_vec(), name, m.encode_to_vec(), now],
    )?;
    Ok(seq as u64)
}

impl Engine {
    /// The visit in progress, if any.
    pub fn open_visit(&self) -> Result<Option<(Uuid, i64)>, EngineError> {
        let db = self.db();
        let row: Option<(String, i64)> = db
            .query_row(
                "SELECT id, outlet_id FROM visits WHERE ended_ms IS NULL ORDER BY started_ms DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.and_then(|(id, o)| Uuid::parse_str(&id).ok().map(|id| (id, o))))
    }

    /// Runs one action in one local transaction: `store` checks and stores the fact (given the
    /// time now) and returns what the caller gets with the mutation to send, which is appended
    /// to the outbox before everything commits together. An error stores nothing.
    pub(crate) fn act<T>(
        &self,
        store: impl FnOnce(&Transaction<'_>, i64) -> Result<(T, Kind), WorkflowError>,
    ) -> Result<T, WorkflowError> {
        let now = self.now_ms();
        let mut db = self.db();
        let tx = db.transaction()?;
        let (out, kind) = store(&tx, now)?;
        enqueue(&tx, now, kind)?;
        tx.commit()?;
        Ok(out)
    }

    /// Like [`Engine::act`], for an action that may turn out to change nothing (`None`: no
    /// mutation is queued, the transaction still commits what `store` wrote).
    pub(crate) fn act_maybe(
        &self,
        store: impl FnOnce(&Transaction<'_>, i64) -> Result<Option<Kind>, WorkflowError>,
    ) -> Result<(), WorkflowError> {
        let now = self.now_ms();
        let mut db = self.db();
        let tx = db.transaction()?;
        if let Some(kind) = store(&tx, now)? {
            enqueue(&tx, now, kind)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Starts a visit at an outlet with the fixes taken now (possibly none). One at a time.
    pub fn start_visit(
        &self,
        outlet_id: i64,
        route_id: Option<i64>,
        fixes: Vec<v1::GpsFix>,
    ) -> Result<Uuid, WorkflowError> {
        if let Some((open, _)) = self.open_visit()? {
            return Err(WorkflowError::VisitInProgress(open));
        }
        self.act(|tx, now| {
            if !exists(tx, "SELECT id FROM outlets WHERE id = ?1", outlet_id)? {
                return Err(WorkflowError::UnknownOutlet(outlet_id));
            }
            let id = ids::new_id();
            // The most accurate fix is the one the screens show.
            let best = fixes.iter().min_by_key(|f| f.accuracy_dm);
            tx.execute(
                "INSERT INTO visits (id, outlet_id, route_id, started_ms, fixes, lat_e7, lon_e7, accuracy_dm, mock)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    id.to_string(),
                    outlet_id,
                    route_id,
                    now,
                    fixes.len() as i64,
                    best.map(|f| f.lat_e7),
                    best.map(|f| f.lon_e7),
                    best.map(|f| f.accuracy_dm),
                    fixes.iter().any(|f| f.mock) as i64
                ],
            )?;
            let started = v1::VisitStarted {
                visit_id: ids::to_wire(id),
                outlet_id,
                route_id: route_id.unwrap_or(0),
                fixes,
            };
            Ok((id, Kind::VisitStarted(started)))
        })
    }

    /// Ends a visit with the fixes taken now.
    pub fn end_visit(&self, visit_id: Uuid, fixes: Vec<v1::GpsFix>) -> Result<(), WorkflowError> {
        self.act(|tx, now| {
            open_visit_check(tx, visit_id)?;
            tx.execute(
                "UPDATE visits SET ended_ms = ?1, fixes = fixes + ?2 WHERE id = ?3",
                params![now, fixes.len() as i64, visit_id.to_string()],
            )?;
            let ended = v1::VisitEnded {
                visit_id: ids::to_wire(visit_id),
                fixes,
            };
            Ok(((), Kind::VisitEnded(ended)))
        })
    }

    /// Prices an order draft from the local price list: the price list used and the lines as
    /// they would be sent. Used by the order screen to show sums before placing.
    pub fn price_order(
        &self,
        draft: &OrderDraft,
    ) -> Result<(i64, Vec<v1::OrderLine>), WorkflowError> {
        let today = self.today();
        let db = self.db();
        price(&db, draft, &today)
    }

    /// Places an order (prices from the price list, sums computed here). Returns its id.
    pub fn place_order(&self, draft: OrderDraft) -> Result<Uuid, WorkflowError> {
        let today = self.today();
        // Overdue debt never blocks an order; the distributor may want a reason for it.
        let overdue = self.receivables(draft.outlet_id)?.has_overdue();
        let overdue_reason = if overdue {
            draft.overdue_reason.trim().to_string()
        } else {
            String::new()
        };
        if overdue
            && overdue_reason.is_empty()
            && self.overdue_policy()? == v1::OverduePolicy::RequireReason
        {
            return Err(WorkflowError::OverdueReasonRequired);
        }
        self.act(|tx, now| {
            if let Some(visit) = draft.visit_id {
                open_visit_check(tx, visit)?;
            }
            let (price_list_id, lines) = price(tx, &draft, &today)?;
            if !exists(tx, "SELECT id FROM warehouses WHERE id = ?1", draft.warehouse_id)? {
                return Err(WorkflowError::UnknownWarehouse(draft.warehouse_id));
            }
            let total = money::order_total(lines.iter().map(|l| l.sum_minor))
                .ok_or(WorkflowError::Overflow)?;
            let id = ids::new_id();
            tx.execute(
                "INSERT INTO orders (id, visit_id, outlet_id, price_list_id, warehouse_id, total_minor, comment,
                                     delivery_date, state, created_ms, overdue_reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    id.to_string(),
                    draft.visit_id.map(|v| v.to_string()),
                    draft.outlet_id,
                    price_list_id,
                    draft.warehouse_id,
                    total,
                    draft.comment,
                    draft.delivery_date,
                    OrderState::Placed.name(),
                    now,
                    overdue_reason
                ],
            )?;
            for (i, l) in lines.iter().enumerate() {
                tx.execute(
                    "INSERT INTO order_lines (order_id, line_no, product_id, quantity_milli, price_minor, sum_minor)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![id.to_string(), i as i64 + 1, l.product_id, l.quantity_milli, l.price_minor, l.sum_minor],
                )?;
            }
            if let Some(draft_id) = draft.draft_id {
                crate::drafts::delete(tx, draft_id)?;
            }
            let placed = v1::OrderPlaced {
                order_id: ids::to_wire(id),
                visit_id: draft.visit_id.map(ids::to_wire).unwrap_or_default(),
                outlet_id: draft.outlet_id,
                price_list_id,
                warehouse_id: draft.warehouse_id,
                lines,
                total_minor: total,
                comment: draft.comment,
                delivery_date: draft.delivery_date,
                overdue_reason,
            };
            Ok((id, Kind::OrderPlaced(placed)))
        })
    }

    /// Cancels an order that the distributor has not confirmed yet.
    pub fn cancel_order(&self, order_id: Uuid, reason: &str) -> Result<(), WorkflowError> {
        self.act(|tx, _| {
            let state: Option<String> = tx
                .query_row(
                    "SELECT state FROM orders WHERE id = ?1",
                    [order_id.to_string()],
                    |r| r.get(0),
                )
                .optional()?;
            match state.as_deref() {
                None => return Err(WorkflowError::UnknownOrder(order_id)),
                Some(s) if OrderState::from_name(s).is_some_and(OrderState::agent_may_cancel) => {}
                Some(other) => {
                    return Err(WorkflowError::NotCancellable(order_id, other.to_string()));
                }
            }
            tx.execute(
                "UPDATE orders SET state = ?1, state_reason = ?2 WHERE id = ?3",
                params![OrderState::Cancelled.name(), reason, order_id.to_string()],
            )?;
            let cancelled = v1::OrderCancelled {
                order_id: ids::to_wire(order_id),
                reason: reason.to_string(),
            };
            Ok(((), Kind::OrderCancelled(cancelled)))
        })
    }

    /// The questions of a questionnaire that are shown given the answers so far.
    pub fn visible_questions(
        questionnaire: &v1::Questionnaire,
        answers: &[v1::Answer],
    ) -> Vec<v1::Question> {
        questionnaire::visible(questionnaire, answers)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Validates a filled questionnaire by the rules the server applies on ingest
    /// ([`fieldsync_protocol::questionnaire`]).
    pub fn validate_answers(
        questionnaire: &v1::Questionnaire,
        answers: &[v1::Answer],
    ) -> Result<(), WorkflowError> {
        questionnaire::validate(questionnaire, answers).map_err(|p| WorkflowError::InvalidAnswer {
            question: p.question(),
            problem: p.to_string(),
        })
    }

    /// Stores a filled questionnaire for a visit.
    pub fn answer_questionnaire(
        &self,
        visit_id: Uuid,
        questionnaire_id: i64,
        answers: Vec<v1::Answer>,
    ) -> Result<Uuid, WorkflowError> {
        let questionnaire = self
            .questionnaire(questionnaire_id)?
            .ok_or(WorkflowError::UnknownQuestionnaire(questionnaire_id))?;
        Self::validate_answers(&questionnaire, &answers)?;
        self.act(|tx, _| {
            open_visit_check(tx, visit_id)?;
            let id = ids::new_id();
            tx.execute(
                "INSERT INTO answer_sets (id, visit_id, questionnaire_id, answers) VALUES (?1, ?2, ?3, ?4)",
                params![id.to_string(), visit_id.to_string(), questionnaire_id, answers.len() as i64],
            )?;
            let answered = v1::QuestionnaireAnswered {
                answers_id: ids::to_wire(id),
                visit_id: ids::to_wire(visit_id),
                questionnaire_id,
                answers,
            };
            Ok((id, Kind::QuestionnaireAnswered(answered)))
        })
    }

    /// Records which must-stock products are on the shelf.
    pub fn check_distribution(
        &self,
        visit_id: Uuid,
        items: Vec<(i64, bool)>,
    ) -> Result<Uuid, WorkflowError> {
        if items.is_empty() {
            return Err(WorkflowError::EmptyOrder);
        }
        self.act(|tx, _| {
            open_visit_check(tx, visit_id)?;
            let id = ids::new_id();
            tx.execute(
                "INSERT INTO distribution_checks (id, visit_id, items, present) VALUES (?1, ?2, ?3, ?4)",
                params![
                    id.to_string(),
                    visit_id.to_string(),
                    items.len() as i64,
                    items.iter().filter(|i| i.1).count() as i64
                ],
            )?;
            let checked = v1::DistributionChecked {
                check_id: ids::to_wire(id),
                visit_id: ids::to_wire(visit_id),
                items: items
                    .into_iter()
                    .map(|(product_id, present)| v1::DistributionItem {
                        product_id,
                        present,
                    })
                    .collect(),
            };
            Ok((id, Kind::DistributionChecked(checked)))
        })
    }
}

/// True when the row `sql` selects by `id` is there.
fn exists(tx: &Transaction<'_>, sql: &str, id: i64) -> rusqlite::Result<bool> {
    let found: Option<i64> = tx.query_row(sql, [id], |r| r.get(0)).optional()?;
    Ok(found.is_some())
}

/// The visit is known and has not ended.
pub(crate) fn open_visit_check(tx: &Transaction<'_>, visit_id: Uuid) -> Result<(), WorkflowError> {
    let ended: Option<Option<i64>> = tx
        .query_row(
            "SELECT ended_ms FROM visits WHERE id = ?1",
            [visit_id.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    match ended {
        None => Err(WorkflowError::UnknownVisit(visit_id)),
        Some(Some(_)) => Err(WorkflowError::VisitEnded(visit_id)),
        Some(None) => Ok(()),
    }
}

/// Prices a draft with the prices in force on `today` (`YYYY-MM-DD`).
fn price(
    conn: &rusqlite::Connection,
    draft: &OrderDraft,
    today: &str,
) -> Result<(i64, Vec<v1::OrderLine>), WorkflowError> {
    let price_list_id = if draft.price_list_id > 0 {
        draft.price_list_id
    } else {
        conn.query_row(
            "SELECT price_list_id FROM outlets WHERE id = ?1",
            [draft.outlet_id],
            |r| r.get(0),
        )
        .optional()?
        .ok_or(WorkflowError::UnknownOutlet(draft.outlet_id))?
    };
    let mut lines = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT price_minor FROM prices WHERE price_list_id = ?1 AND product_id = ?2
         AND valid_from <= ?3 ORDER BY valid_from DESC LIMIT 1",
    )?;
    for (product_id, quantity_milli) in &draft.lines {
        if *quantity_milli <= 0 {
            continue;
        }
        let price: i64 = stmt
            .query_row(params![price_list_id, product_id, today], |r| r.get(0))
            .optional()?
            .ok_or(WorkflowError::NoPrice(*product_id, price_list_id))?;
        let sum = money::line_sum(*quantity_milli, price).ok_or(WorkflowError::Overflow)?;
        lines.push(v1::OrderLine {
            product_id: *product_id,
            quantity_milli: *quantity_milli,
            price_minor: price,
            sum_minor: sum,
            comment: String::new(),
        });
    }
    if lines.is_empty() {
        return Err(WorkflowError::EmptyOrder);
    }
    Ok((price_list_id, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine with a little master data, as if pulled.
    fn engine() -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let e = Engine::open(dir.path().join("agent.db")).unwrap();
        let q = v1::Questionnaire {
            id: 5,
            name: "Shelf".into(),
            questions: vec![
                v1::Question {
                    id: 1,
                    text: "Display?".into(),
                    r#type: v1::QuestionType::YesNo as i32,
                    required: true,
                    ..Default::default()
                },
                v1::Question {
                    id: 2,
                    text: "Which shelf?".into(),
                    r#type: v1::QuestionType::SingleChoice as i32,
                    required: true,
                    choices: vec![
                        v1::Choice {
                            id: 10,
                            label: "Top".into(),
                        },
                        v1::Choice {
                            id: 11,
                            label: "Low".into(),
                        },
                    ],
                    condition: Some(v1::Condition {
                        question_id: 1,
                        equals_yes: true,
                        equals_choice_id: 0,
                    }),
                    position: 2,
                },
            ],
            ..Default::default()
        };
        use v1::change::Entity;
        let page = v1::PullResponse {
            changes: vec![
                Entity::Outlet(v1::Outlet {
                    id: 1,
                    name: "Kiosk".into(),
                    price_list_id: 3,
                    ..Default::default()
                }),
                Entity::Product(v1::Product {
                    id: 7,
                    code: "P7".into(),
                    name: "Mineral water 1 l".into(),
                    ..Default::default()
                }),
                Entity::Price(v1::Price {
                    id: 1,
                    price_list_id: 3,
                    product_id: 7,
                    price_minor: 1999,
                    ..Default::default()
                }),
                Entity::Warehouse(v1::Warehouse {
                    id: 2,
                    code: "W".into(),
                    name: "Main".into(),
                    stock: vec![v1::StockLevel {
                        product_id: 7,
                        quantity_milli: 5_000,
                    }],
                    stock_updated_at_ms: 1_700_000_000_000,
                }),
                Entity::Questionnaire(q),
            ]
            .into_iter()
            .map(|e| v1::Change { entity: Some(e) })
            .collect(),
            next_cursor: vec![1],
            ..Default::default()
        };
        e.store_page(&page).unwrap();
        (dir, e)
    }

    fn outbox_seqs(e: &Engine) -> Vec<i64> {
        let db = e.db();
        let mut stmt = db.prepare("SELECT seq FROM outbox ORDER BY seq").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn one_visit_at_a_time_and_every_action_is_numbered_in_order() {
        let (_d, e) = engine();
        let v = e.start_visit(1, None, vec![]).unwrap();
        assert!(
            matches!(e.start_visit(1, None, vec![]), Err(WorkflowError::VisitInProgress(open)) if open == v)
        );
        assert!(matches!(
            e.start_visit(99, None, vec![]),
            Err(WorkflowError::VisitInProgress(_))
        ));
        e.check_distribution(v, vec![(7, true)]).unwrap();
        e.end_visit(v, vec![]).unwrap();
        assert!(matches!(
            e.end_visit(v, vec![]),
            Err(WorkflowError::VisitEnded(_))
        ));
        assert!(matches!(
            e.start_visit(99, None, vec![]),
            Err(WorkflowError::UnknownOutlet(99))
        ));
        assert_eq!(outbox_seqs(&e), vec![1, 2, 3]);
        assert_eq!(e.counts().unwrap().created.visits, 1);
        assert_eq!(e.outbox_status().unwrap().pending, 3);
    }

    #[test]
    fn orders_are_priced_from_the_price_list_and_their_sums_follow_from_the_lines() {
        let (_d, e) = engine();
        let v = e.start_visit(1, None, vec![]).unwrap();
        let draft = OrderDraft {
            visit_id: Some(v),
            outlet_id: 1,
            warehouse_id: 2,
            lines: vec![(7, 2500)],
            ..Default::default()
        };
        let (pl, lines) = e.price_order(&draft).unwrap();
        assert_eq!(
            (pl, lines[0].price_minor, lines[0].sum_minor),
            (3, 1999, 4998)
        );
        let id = e.place_order(draft.clone()).unwrap();
        assert_eq!(e.order_state(id).unwrap().unwrap().0, "placed");
        let no_price = OrderDraft {
            lines: vec![(8, 1000)],
            ..draft.clone()
        };
        assert!(matches!(
            e.place_order(no_price),
            Err(WorkflowError::NoPrice(8, 3))
        ));
        let bad_warehouse = OrderDraft {
            warehouse_id: 9,
            ..draft.clone()
        };
        assert!(matches!(
            e.place_order(bad_warehouse),
            Err(WorkflowError::UnknownWarehouse(9))
        ));
        // Refused actions left nothing behind.
        assert_eq!(outbox_seqs(&e), vec![1, 2]);
        e.cancel_order(id, "mistake").unwrap();
        assert_eq!(e.order_state(id).unwrap().unwrap().0, "cancelled");
    }

    #[test]
    fn ordering_beyond_stock_is_reported_and_still_placed() {
        let (_d, e) = engine();
        let v = e.start_visit(1, None, vec![]).unwrap();
        let draft = OrderDraft {
            visit_id: Some(v),
            outlet_id: 1,
            warehouse_id: 2,
            lines: vec![(7, 6_000)],
            ..Default::default()
        };
        assert_eq!(e.stock_on_hand(2, &[7, 8]).unwrap().get(&7), Some(&5_000));
        assert_eq!(e.stock_on_hand(2, &[8]).unwrap().len(), 0, "unknown stock");
        assert_eq!(e.beyond_stock(&draft).unwrap(), vec![(7, 6_000, 5_000)]);
        let within = OrderDraft {
            lines: vec![(7, 5_000)],
            ..draft.clone()
        };
        assert!(e.beyond_stock(&within).unwrap().is_empty());
        // A warning, not a refusal.
        let id = e.place_order(draft).unwrap();
        assert_eq!(e.order_state(id).unwrap().unwrap().0, "placed");
        // The warehouse sent again with no stock replaces what the phone held.
        let page = v1::PullResponse {
            changes: vec![v1::Change {
                entity: Some(v1::change::Entity::Warehouse(v1::Warehouse {
                    id: 2,
                    code: "W".into(),
                    name: "Main".into(),
                    ..Default::default()
                })),
            }],
            next_cursor: vec![2],
            ..Default::default()
        };
        e.store_page(&page).unwrap();
        assert!(e.stock_on_hand(2, &[7]).unwrap().is_empty());
    }

    #[test]
    fn required_and_conditional_questions_are_enforced() {
        let (_d, e) = engine();
        let v = e.start_visit(1, None, vec![]).unwrap();
        use v1::answer::Value;
        let yes = v1::Answer {
            question_id: 1,
            value: Some(Value::YesNo(true)),
        };
        let no = v1::Answer {
            question_id: 1,
            value: Some(Value::YesNo(false)),
        };
        // "Which shelf?" is required only when the display question is answered yes.
        let err = e.answer_questionnaire(v, 5, vec![yes.clone()]).unwrap_err();
        assert!(
            matches!(err, WorkflowError::InvalidAnswer { question: 2, .. }),
            "{err}"
        );
        e.answer_questionnaire(v, 5, vec![no]).unwrap();
        let wrong_choice = v1::Answer {
            question_id: 2,
            value: Some(Value::SingleChoice(99)),
        };
        assert!(
            e.answer_questionnaire(v, 5, vec![yes.clone(), wrong_choice])
                .is_err()
        );
        let wrong_type = v1::Answer {
            question_id: 2,
            value: Some(Value::Text("top".into())),
        };
        assert!(
            e.answer_questionnaire(v, 5, vec![yes.clone(), wrong_type])
                .is_err()
        );
        let ok = v1::Answer {
            question_id: 2,
            value: Some(Value::SingleChoice(10)),
        };
        e.answer_questionnaire(v, 5, vec![yes, ok]).unwrap();
        assert_eq!(e.counts().unwrap().created.questionnaire_answers, 3);
    }

    #[test]
    fn product_search_finds_by_name_and_code_case_insensitively() {
        let (_d, e) = engine();
        assert_eq!(
            e.search_products("WATER", 3, 10).unwrap()[0].price_minor,
            Some(1999)
        );
        assert_eq!(e.search_products("p7", 3, 10).unwrap().len(), 1);
        assert!(e.search_products("juice", 3, 10).unwrap().is_empty());
        assert!(e.search_products("100%", 3, 10).unwrap().is_empty());
    }
}
