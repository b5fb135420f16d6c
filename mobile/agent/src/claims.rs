//! Claims on delivered goods, made during a visit: a draft the agent can edit or delete, then
//! registered (sent to the distributor), after which only the distributor moves it (its stage
//! comes back with the pull as a `ClaimStatus`). Each save or deletion is one mutation through
//! the outbox, so it reaches the server exactly once.
use fieldsync_protocol::claims;
use fieldsync_protocol::ids;
use fieldsync_protocol::v1::{self, mutation::Kind};
use rusqlite::{OptionalExtension, Transaction, params};
use uuid::Uuid;

use crate::workflows::open_visit_check;
use crate::{Engine, EngineError, WorkflowError};

/// A line of a claim as the agent enters it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimLineDraft {
    pub order_id: Uuid,
    pub line_no: i64,
    pub quantity_milli: i64,
    pub type_id: i64,
    /// 0: none.
    pub subtype_id: i64,
}

/// A claim as the agent composes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimDraft {
    /// The draft being edited; `None` for a new claim.
    pub claim_id: Option<Uuid>,
    pub visit_id: Option<Uuid>,
    pub outlet_id: i64,
    pub lines: Vec<ClaimLineDraft>,
    pub comment: String,
    /// Send it to the distributor now (it can no longer change).
    pub register: bool,
}

/// An order line a claim can name: from the agent's earlier orders of the outlet that were
/// not cancelled or refused.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimableLine {
    pub order_id: Uuid,
    pub order_number: i64,
    pub order_created_ms: i64,
    pub line_no: i64,
    pub product_id: i64,
    pub product_name: String,
    /// Shipped, else confirmed, else ordered.
    pub max_milli: i64,
}

/// A claim as the screens show it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimView {
    pub id: Uuid,
    pub outlet_id: i64,
    pub visit_id: Option<Uuid>,
    /// 0 until the server's first status arrives.
    pub number: i64,
    /// draft, registered, being_considered, accepted or declined.
    pub stage: String,
    pub comment: String,
    pub answer: String,
    pub created_ms: i64,
    pub lines: Vec<ClaimLineView>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimLineView {
    pub line: ClaimLineDraft,
    pub product_name: String,
    pub type_name: String,
    pub subtype_name: String,
}

impl ClaimView {
    pub fn is_draft(&self) -> bool {
        self.stage == "draft"
    }
}

impl Engine {
    /// Claim types (parent 0) and subtypes: (id, parent id, name), types first by name.
    pub fn claim_reasons(&self) -> Result<Vec<(i64, i64, String)>, EngineError> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT id, parent_id, name FROM claim_reasons
             ORDER BY CASE WHEN parent_id = 0 THEN id ELSE parent_id END, parent_id <> 0, name",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The order lines of an outlet a claim can name, newest order first.
    pub fn claimable_lines(&self, outlet_id: i64) -> Result<Vec<ClaimableLine>, EngineError> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT o.id, o.number, o.created_ms, l.line_no, l.product_id, COALESCE(p.name, ''),
                    COALESCE(l.shipped_quantity_milli, l.confirmed_quantity_milli, l.quantity_milli)
             FROM orders o JOIN order_lines l ON l.order_id = o.id LEFT JOIN products p ON p.id = l.product_id
             WHERE o.outlet_id = ?1 AND o.state NOT IN ('cancelled', 'rejected')
             ORDER BY o.created_ms DESC, l.line_no",
        )?;
        let rows = stmt.query_map([outlet_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, number, created, line_no, product_id, name, max) = row?;
            if let Ok(order_id) = Uuid::parse_str(&id) {
                out.push(ClaimableLine {
                    order_id,
                    order_number: number,
                    order_created_ms: created,
                    line_no,
                    product_id,
                    product_name: name,
                    max_milli: max,
                });
            }
        }
        Ok(out)
    }

    /// The claims of an outlet, newest first.
    pub fn outlet_claims(&self, outlet_id: i64) -> Result<Vec<ClaimView>, EngineError> {
        let ids: Vec<String> = {
            let db = self.db();
            let mut stmt = db.prepare_cached(
                "SELECT id FROM claims WHERE outlet_id = ?1 ORDER BY created_ms DESC",
            )?;
            stmt.query_map([outlet_id], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let mut out = Vec::new();
        for id in ids {
            if let Some(c) = Uuid::parse_str(&id)
                .ok()
                .and_then(|id| self.claim(id).transpose())
            {
                out.push(c?);
            }
        }
        Ok(out)
    }

    /// One claim with its lines.
    pub fn claim(&self, id: Uuid) -> Result<Option<ClaimView>, EngineError> {
        let db = self.db();
        let head = db
            .query_row(
                "SELECT outlet_id, visit_id, number, stage, comment, answer, created_ms FROM claims WHERE id = ?1",
                [id.to_string()],
                |r| {
                    Ok(ClaimView {
                        id,
                        outlet_id: r.get(0)?,
                        visit_id: r
                            .get::<_, Option<String>>(1)?
                            .and_then(|v| Uuid::parse_str(&v).ok()),
                        number: r.get(2)?,
                        stage: r.get(3)?,
                        comment: r.get(4)?,
                        answer: r.get(5)?,
                        created_ms: r.get(6)?,
                        lines: Vec::new(),
                    })
                },
            )
            .optional()?;
        let Some(mut claim) = head else {
            return Ok(None);
        };
        let mut stmt = db.prepare_cached(
            "SELECT l.order_id, l.order_line_no, l.quantity_milli, l.type_id, l.subtype_id,
                    COALESCE(p.name, ''), COALESCE(t.name, ''), COALESCE(s.name, '')
             FROM claim_lines l LEFT JOIN products p ON p.id = l.product_id
             LEFT JOIN claim_reasons t ON t.id = l.type_id LEFT JOIN claim_reasons s ON s.id = l.subtype_id
             WHERE l.claim_id = ?1 ORDER BY l.line_no",
        )?;
        claim.lines = stmt
            .query_map([id.to_string()], |r| {
                Ok(ClaimLineView {
                    line: ClaimLineDraft {
                        order_id: Uuid::parse_str(&r.get::<_, String>(0)?).unwrap_or_default(),
                        line_no: r.get(1)?,
                        quantity_milli: r.get(2)?,
                        type_id: r.get(3)?,
                        subtype_id: r.get(4)?,
                    },
                    product_name: r.get(5)?,
                    type_name: r.get(6)?,
                    subtype_name: r.get(7)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Some(claim))
    }

    /// Saves a claim (new, or a draft replaced whole), registering it when asked. Checked here
    /// as the server checks it: lines of this outlet's orders, no more than delivered, types
    /// from the list. Returns its id.
    pub fn save_claim(&self, draft: ClaimDraft) -> Result<Uuid, WorkflowError> {
        self.act(|tx, now| {
            if let Some(visit) = draft.visit_id {
                open_visit_check(tx, visit)?;
            }
            let id = draft.claim_id.unwrap_or_else(ids::new_id);
            if let Some(stage) = claim_stage(tx, id)?
                && stage != "draft"
            {
                return Err(WorkflowError::ClaimLocked(id));
            }
            let msg = v1::ClaimSaved {
                claim_id: ids::to_wire(id),
                visit_id: draft.visit_id.map(ids::to_wire).unwrap_or_default(),
                outlet_id: draft.outlet_id,
                lines: draft
                    .lines
                    .iter()
                    .map(|l| v1::ClaimLine {
                        order_id: ids::to_wire(l.order_id),
                        line_no: l.line_no.max(0) as u32,
                        quantity_milli: l.quantity_milli,
                        type_id: l.type_id,
                        subtype_id: l.subtype_id,
                    })
                    .collect(),
                comment: draft.comment.trim().to_string(),
                register: draft.register,
            };
            claims::check(&msg).map_err(WorkflowError::InvalidClaim)?;
            let mut products = Vec::with_capacity(draft.lines.len());
            for (i, l) in draft.lines.iter().enumerate() {
                let found: Option<(i64, i64, i64)> = tx
                    .query_row(
                        "SELECT o.outlet_id, l.product_id,
                                COALESCE(l.shipped_quantity_milli, l.confirmed_quantity_milli, l.quantity_milli)
                         FROM orders o JOIN order_lines l ON l.order_id = o.id
                         WHERE o.id = ?1 AND l.line_no = ?2 AND o.state NOT IN ('cancelled', 'rejected')",
                        params![l.order_id.to_string(), l.line_no],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?;
                let Some((outlet, product, max)) = found.filter(|f| f.0 == draft.outlet_id) else {
                    return Err(WorkflowError::InvalidClaim(format!(
                        "line {}: not an order line of this outlet",
                        i + 1
                    )));
                };
                let _ = outlet;
                // Other claims on the same goods count too.
                let others: i64 = tx.query_row(
                    "SELECT COALESCE(SUM(quantity_milli), 0) FROM claim_lines
                     WHERE order_id = ?1 AND order_line_no = ?2 AND claim_id <> ?3",
                    params![l.order_id.to_string(), l.line_no, id.to_string()],
                    |r| r.get(0),
                )?;
                if l.quantity_milli + others > max {
                    return Err(WorkflowError::InvalidClaim(format!(
                        "line {}: more than the {} delivered ({} already claimed)",
                        i + 1,
                        max,
                        others
                    )));
                }
                let type_ok: Option<i64> = tx
                    .query_row(
                        "SELECT parent_id FROM claim_reasons WHERE id = ?1",
                        [l.type_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                let sub_ok = l.subtype_id == 0
                    || tx
                        .query_row(
                            "SELECT parent_id FROM claim_reasons WHERE id = ?1",
                            [l.subtype_id],
                            |r| r.get::<_, i64>(0),
                        )
                        .optional()?
                        == Some(l.type_id);
                if type_ok != Some(0) || !sub_ok {
                    return Err(WorkflowError::InvalidClaim(format!(
                        "line {}: choose a claim type and subtype from the list",
                        i + 1
                    )));
                }
                products.push(product);
            }
            let stage = if draft.register {
                "registered"
            } else {
                "draft"
            };
            tx.execute(
                "INSERT INTO claims (id, outlet_id, visit_id, stage, comment, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT (id) DO UPDATE SET stage = excluded.stage, comment = excluded.comment,
                    updated_ms = excluded.updated_ms",
                params![
                    id.to_string(),
                    draft.outlet_id,
                    draft.visit_id.map(|v| v.to_string()),
                    stage,
                    msg.comment,
                    now
                ],
            )?;
            tx.execute(
                "DELETE FROM claim_lines WHERE claim_id = ?1",
                [id.to_string()],
            )?;
            for (i, (l, product)) in draft.lines.iter().zip(products).enumerate() {
                tx.execute(
                    "INSERT INTO claim_lines (claim_id, line_no, order_id, order_line_no, product_id,
                        quantity_milli, type_id, subtype_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        id.to_string(),
                        i as i64 + 1,
                        l.order_id.to_string(),
                        l.line_no,
                        product,
                        l.quantity_milli,
                        l.type_id,
                        l.subtype_id
                    ],
                )?;
            }
            Ok((id, Kind::ClaimSaved(msg)))
        })
    }

    /// Deletes a draft claim.
    pub fn delete_claim(&self, id: Uuid) -> Result<(), WorkflowError> {
        self.act(|tx, _| {
            match claim_stage(tx, id)? {
                None => return Err(WorkflowError::UnknownClaim(id)),
                Some(s) if s != "draft" => return Err(WorkflowError::ClaimLocked(id)),
                Some(_) => {}
            }
            tx.execute(
                "DELETE FROM claim_lines WHERE claim_id = ?1",
                [id.to_string()],
            )?;
            tx.execute("DELETE FROM claims WHERE id = ?1", [id.to_string()])?;
            Ok((
                (),
                Kind::ClaimDeleted(v1::ClaimDeleted {
                    claim_id: ids::to_wire(id),
                }),
            ))
        })
    }
}

fn claim_stage(tx: &Transaction<'_>, id: Uuid) -> rusqlite::Result<Option<String>> {
    tx.query_row(
        "SELECT stage FROM claims WHERE id = ?1",
        [id.to_string()],
        |r| r.get(0),
    )
    .optional()
}
