//! Claims from the field and the list of claim types they name. Agents create and register
//! claims on their phones (`ClaimSaved`, `ClaimDeleted` through the push, see `ingest`); the
//! distributor receives registered claims through the API's feed, acknowledges them and moves
//! them Registered → Being considered → Accepted / Declined, in the API or the portal. Every
//! stage change reaches the agent's phone as a `ClaimStatus`.
use std::collections::HashMap;

use fieldsync_protocol::claims::{self, MAX_ANSWER_CHARS};
use fieldsync_protocol::v1::{self, EntityKind};
use serde::Serialize;

use super::sql::{IntoVal, Val, exec_on, id_on, rows_on};
use super::world::{ChangeRef, commit_changes, record_changes};
use super::{Result, Store, StoreError};

/// A claim type (no parent) or subtype, as the key user's list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimReasonRow {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub name: String,
    pub active: bool,
}

/// A line of a claim as the distributor reads it.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimLineOut {
    pub line_no: i64,
    pub order_id: String,
    pub order_number: i64,
    pub order_line_no: i64,
    pub product_id: i64,
    pub product_code: String,
    pub product_name: String,
    pub quantity_milli: i64,
    pub claim_type: String,
    pub claim_subtype: String,
}

/// A claim as the feed, the API and the portal give it.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimOut {
    pub id: String,
    pub number: i64,
    pub stage: String,
    pub outlet_id: i64,
    pub outlet_code: String,
    pub outlet_name: String,
    pub agent_login: String,
    pub visit_id: Option<String>,
    pub comment: String,
    pub answer: String,
    pub saved_device_ms: i64,
    pub received_at_ms: i64,
    pub registered_at_ms: Option<i64>,
    pub stage_changed_ms: i64,
    pub handed_over: bool,
    /// Its place in the feed (`next_cursor` is the last one's).
    pub feed_seq: Option<i64>,
    pub lines: Vec<ClaimLineOut>,
}

/// A page of the claims feed.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimFeedPage {
    pub claims: Vec<ClaimOut>,
    pub next_cursor: i64,
    pub has_more: bool,
}

/// Why a stage change was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum StageRefusal {
    UnknownClaim,
    UnknownStage(String),
    Illegal { from: String, to: String },
    Invalid(String),
}

impl Store {
    /// The distributor's claim types and subtypes, types first, by name.
    pub async fn claim_reasons(&self, d: i64) -> Result<Vec<ClaimReasonRow>> {
        let rows: Vec<(i64, Option<i64>, String, i64)> = self
            .rows(
                "SELECT id, parent_id, name, active FROM claim_reasons WHERE distributor_id = $1
                 ORDER BY COALESCE(parent_id, id), CASE WHEN parent_id IS NULL THEN 0 ELSE 1 END, name",
                &[d.into_val()],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, parent_id, name, active)| ClaimReasonRow {
                id,
                parent_id,
                name,
                active: active != 0,
            })
            .collect())
    }

    /// The distributor of a claim type or subtype.
    pub async fn claim_reason_distributor(&self, id: i64) -> Result<Option<i64>> {
        let row: Option<(i64,)> = self
            .opt(
                "SELECT distributor_id FROM claim_reasons WHERE id = $1",
                &[id.into_val()],
            )
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// Adds a claim type (`parent` None) or a subtype of an active type; returns its id, or
    /// why it was refused. Phones get it with their next sync.
    pub async fn add_claim_reason(
        &self,
        d: i64,
        parent: Option<i64>,
        name: &str,
        now: i64,
    ) -> Result<std::result::Result<i64, String>> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Ok(Err("a name of 1 to 100 characters is required".into()));
        }
        let mut tx = self.begin_write().await?;
        if let Some(p) = parent {
            let found: Vec<(i64,)> = rows_on(
                &mut tx,
                "SELECT id FROM claim_reasons WHERE id = $1 AND distributor_id = $2 AND parent_id IS NULL AND active = 1",
                &[Val::I(p), Val::I(d)],
            )
            .await?;
            if found.is_empty() {
                return Ok(Err("a subtype belongs to an active type".into()));
            }
        }
        let id = id_on(
            &mut tx,
            "INSERT INTO claim_reasons (distributor_id, parent_id, name, active, created_at_ms)
             VALUES ($1, $2, $3, 1, $4) RETURNING id",
            &[Val::I(d), Val::N(parent), name.into_val(), Val::I(now)],
        )
        .await?;
        commit_changes(tx, d, &[ChangeRef::upsert(EntityKind::ClaimReason, id, 0)]).await?;
        Ok(Ok(id))
    }

    /// Deactivates (phones drop it; claims that name it keep it; a type's subtypes follow it)
    /// or reactivates a claim type or subtype (not found: a subtype of an inactive type).
    pub async fn set_claim_reason_active(&self, d: i64, id: i64, active: bool) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // Deactivating a type takes its subtypes along; reactivating brings back the one row
        // (a subtype only under an active type).
        let touched: Vec<(i64,)> = if active {
            rows_on(
                &mut tx,
                "UPDATE claim_reasons SET active = 1 WHERE distributor_id = $1 AND id = $2
                   AND (parent_id IS NULL OR parent_id IN (SELECT p.id FROM claim_reasons p WHERE p.active = 1))
                 RETURNING id",
                &[Val::I(d), Val::I(id)],
            )
            .await?
        } else {
            rows_on(
                &mut tx,
                "UPDATE claim_reasons SET active = 0 WHERE distributor_id = $1 AND (id = $2 OR parent_id = $2)
                 RETURNING id",
                &[Val::I(d), Val::I(id)],
            )
            .await?
        };
        if touched.is_empty() {
            return Err(StoreError::NotFound);
        }
        let changes: Vec<ChangeRef> = touched
            .iter()
            .map(|(r,)| {
                if active {
                    ChangeRef::upsert(EntityKind::ClaimReason, *r, 0)
                } else {
                    ChangeRef::delete(EntityKind::ClaimReason, *r, 0)
                }
            })
            .collect();
        commit_changes(tx, d, &changes).await
    }

    /// Registered claims not yet acknowledged, in the order they were registered, after the
    /// feed cursor (a claim's `feed_seq`, given at registration: a draft registered late comes
    /// after what the feed already handed over).
    pub async fn claim_feed(&self, d: i64, after: i64, limit: i64) -> Result<ClaimFeedPage> {
        let limit = limit.clamp(1, 500);
        let rows: Vec<(String,)> = self
            .rows(
                "SELECT id FROM claims WHERE distributor_id = $1 AND feed_seq > $2 AND deleted_at_ms IS NULL
                 AND handed_over_at_ms IS NULL ORDER BY feed_seq LIMIT $3",
                &[d.into_val(), after.into_val(), (limit + 1).into_val()],
            )
            .await?;
        let has_more = rows.len() as i64 > limit;
        let ids: Vec<String> = rows.into_iter().take(limit as usize).map(|r| r.0).collect();
        let claims = self.claims_by_id(d, &ids).await?;
        Ok(ClaimFeedPage {
            next_cursor: claims.last().and_then(|c| c.feed_seq).unwrap_or(after),
            claims,
            has_more,
        })
    }

    /// Acknowledges claims: they leave the feed for good. Returns each id's result:
    /// acknowledged, already_acknowledged or unknown.
    pub async fn acknowledge_claims(
        &self,
        d: i64,
        ids: &[String],
        now: i64,
    ) -> Result<Vec<(String, &'static str)>> {
        let mut tx = self.begin_write().await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            // One statement decides: a second server acknowledging the same claim changes
            // nothing.
            let done = exec_on(
                &mut tx,
                "UPDATE claims SET handed_over_at_ms = $1 WHERE id = $2 AND distributor_id = $3
                 AND stage <> 'draft' AND deleted_at_ms IS NULL AND handed_over_at_ms IS NULL",
                &[Val::I(now), id.clone().into_val(), Val::I(d)],
            )
            .await?;
            let result = if done == 1 {
                "acknowledged"
            } else {
                let known: Vec<(i64,)> = rows_on(
                    &mut tx,
                    "SELECT number FROM claims WHERE id = $1 AND distributor_id = $2 AND stage <> 'draft'
                     AND deleted_at_ms IS NULL",
                    &[id.clone().into_val(), Val::I(d)],
                )
                .await?;
                if known.is_empty() {
                    "unknown"
                } else {
                    "already_acknowledged"
                }
            };
            out.push((id.clone(), result));
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Claims of a distributor by id (drafts and deleted ones are not the distributor's), in
    /// the order asked.
    pub async fn claims_by_id(&self, d: i64, ids: &[String]) -> Result<Vec<ClaimOut>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = super::sql::placeholders(2, ids.len(), false);
        let sql = format!(
            "SELECT c.id, c.number, c.stage, c.outlet_id, o.code, o.name, mu.login, c.visit_id, c.comment,
                    c.answer, c.saved_device_ms, c.received_at_ms, c.registered_at_ms, c.stage_changed_ms,
                    c.handed_over_at_ms, c.feed_seq
             FROM claims c JOIN outlets o ON o.id = c.outlet_id JOIN mobile_users mu ON mu.id = c.mobile_user_id
             WHERE c.distributor_id = $1 AND c.stage <> 'draft' AND c.deleted_at_ms IS NULL AND c.id IN ({list})"
        );
        type Row = (
            String,
            i64,
            String,
            i64,
            String,
            String,
            String,
            Option<String>,
            String,
            String,
            i64,
            i64,
            Option<i64>,
            i64,
            Option<i64>,
            Option<i64>,
        );
        let mut q = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql)).bind(d);
        for id in ids {
            q = q.bind(id);
        }
        let heads = q.fetch_all(self.pool()).await?;
        let sql = format!(
            "SELECT l.claim_id, l.line_no, l.order_id, COALESCE(ord.number, 0), l.order_line_no, l.product_id,
                    p.code, p.name, l.quantity_milli, COALESCE(t.name, ''), COALESCE(s.name, '')
             FROM claim_lines l JOIN products p ON p.id = l.product_id
             LEFT JOIN orders ord ON ord.id = l.order_id
             LEFT JOIN claim_reasons t ON t.id = l.type_id LEFT JOIN claim_reasons s ON s.id = l.subtype_id
             WHERE l.claim_id IN ({}) ORDER BY l.claim_id, l.line_no",
            super::sql::placeholders(1, ids.len(), false)
        );
        let mut q = sqlx::query_as::<
            _,
            (
                String,
                i64,
                String,
                i64,
                i64,
                i64,
                String,
                String,
                i64,
                String,
                String,
            ),
        >(sqlx::AssertSqlSafe(sql));
        for id in ids {
            q = q.bind(id);
        }
        let mut lines: HashMap<String, Vec<ClaimLineOut>> = HashMap::new();
        for (
            claim,
            line_no,
            order_id,
            order_number,
            order_line_no,
            product_id,
            code,
            name,
            q,
            t,
            st,
        ) in q.fetch_all(self.pool()).await?
        {
            lines.entry(claim).or_default().push(ClaimLineOut {
                line_no,
                order_id,
                order_number,
                order_line_no,
                product_id,
                product_code: code,
                product_name: name,
                quantity_milli: q,
                claim_type: t,
                claim_subtype: st,
            });
        }
        let mut by_id: HashMap<String, ClaimOut> = heads
            .into_iter()
            .map(|r| {
                let id = r.0.clone();
                (
                    id.clone(),
                    ClaimOut {
                        lines: lines.remove(&id).unwrap_or_default(),
                        id,
                        number: r.1,
                        stage: r.2,
                        outlet_id: r.3,
                        outlet_code: r.4,
                        outlet_name: r.5,
                        agent_login: r.6,
                        visit_id: r.7,
                        comment: r.8,
                        answer: r.9,
                        saved_device_ms: r.10,
                        received_at_ms: r.11,
                        registered_at_ms: r.12,
                        stage_changed_ms: r.13,
                        handed_over: r.14.is_some(),
                        feed_seq: r.15,
                    },
                )
            })
            .collect();
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// The newest claims of these distributors (registered or later), optionally of one
    /// stage, for the portal's list.
    pub async fn claim_list(
        &self,
        distributors: &[i64],
        stage: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ClaimOut>> {
        let mut out = Vec::new();
        for d in distributors {
            let rows: Vec<(String,)> = self
                .rows(
                    "SELECT id FROM claims WHERE distributor_id = $1 AND stage <> 'draft' AND deleted_at_ms IS NULL
                     AND ($2 = '' OR stage = $2) ORDER BY number DESC LIMIT $3",
                    &[
                        d.into_val(),
                        stage.unwrap_or("").into_val(),
                        limit.clamp(1, 1000).into_val(),
                    ],
                )
                .await?;
            let ids: Vec<String> = rows.into_iter().map(|r| r.0).collect();
            out.extend(self.claims_by_id(*d, &ids).await?);
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.number));
        Ok(out)
    }

    /// The distributor of a claim, if it is one the distributor sees (not a draft).
    pub async fn claim_distributor(&self, id: &str) -> Result<Option<i64>> {
        let row: Option<(i64,)> = self
            .opt(
                "SELECT distributor_id FROM claims WHERE id = $1 AND stage <> 'draft' AND deleted_at_ms IS NULL",
                &[id.into_val()],
            )
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// A claim's stages so far: (stage, answer, source, at).
    pub async fn claim_history(&self, id: &str) -> Result<Vec<(String, String, String, i64)>> {
        self.rows(
            "SELECT stage, answer, source, changed_at_ms FROM claim_stage_history WHERE claim_id = $1 ORDER BY id",
            &[id.into_val()],
        )
        .await
    }

    /// Moves a claim to a new stage on the distributor's word (`source`: "api" or
    /// "portal:LOGIN"). The move is decided by one conditional update: of two servers
    /// answering at once, the second finds the stage moved and is refused. The agent's phone
    /// gets the stage with its next sync.
    pub async fn set_claim_stage(
        &self,
        d: i64,
        id: &str,
        to: &str,
        answer: &str,
        source: &str,
        now: i64,
    ) -> Result<std::result::Result<ClaimOut, StageRefusal>> {
        let Some(to_stage) = claims::stage_from_name(to.trim()) else {
            return Ok(Err(StageRefusal::UnknownStage(to.trim().to_string())));
        };
        let answer = answer.trim();
        if answer.chars().count() > MAX_ANSWER_CHARS {
            return Ok(Err(StageRefusal::Invalid(format!(
                "the answer is longer than {MAX_ANSWER_CHARS} characters"
            ))));
        }
        if to_stage == v1::ClaimStage::ClaimDeclined && answer.is_empty() {
            return Ok(Err(StageRefusal::Invalid(
                "a declined claim needs an answer saying why".into(),
            )));
        }
        let mut tx = self.begin_write().await?;
        let found: Vec<(String, i64, i64)> = rows_on(
            &mut tx,
            "SELECT stage, number, position_id FROM claims WHERE id = $1 AND distributor_id = $2
             AND stage <> 'draft' AND deleted_at_ms IS NULL",
            &[id.into_val(), Val::I(d)],
        )
        .await?;
        let Some((from, number, position)) = found.into_iter().next() else {
            return Ok(Err(StageRefusal::UnknownClaim));
        };
        let from_stage = claims::stage_from_name(&from).unwrap_or(v1::ClaimStage::ClaimDraft);
        if !claims::distributor_move_allowed(from_stage, to_stage) {
            return Ok(Err(StageRefusal::Illegal {
                from,
                to: claims::stage_name(to_stage).into(),
            }));
        }
        let moved = exec_on(
            &mut tx,
            "UPDATE claims SET stage = $1, answer = CASE WHEN $2 = '' THEN answer ELSE $2 END,
                stage_changed_ms = $3, handed_over_at_ms = COALESCE(handed_over_at_ms, $3)
             WHERE id = $4 AND stage = $5",
            &[
                claims::stage_name(to_stage).into_val(),
                answer.into_val(),
                Val::I(now),
                id.into_val(),
                from.clone().into_val(),
            ],
        )
        .await?;
        if moved != 1 {
            return Ok(Err(StageRefusal::Illegal {
                from,
                to: claims::stage_name(to_stage).into(),
            }));
        }
        exec_on(
            &mut tx,
            "INSERT INTO claim_stage_history (claim_id, stage, answer, source, changed_at_ms)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                id.into_val(),
                claims::stage_name(to_stage).into_val(),
                answer.into_val(),
                source.into_val(),
                Val::I(now),
            ],
        )
        .await?;
        record_changes(
            &mut tx,
            d,
            &[ChangeRef::upsert(EntityKind::ClaimStatus, number, position)],
        )
        .await?;
        tx.commit().await?;
        let claim = self
            .claims_by_id(d, &[id.to_string()])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)?;
        Ok(Ok(claim))
    }
}
