//! Order drafts: an order the agent composes and saves without placing it. Drafts stay on the
//! phone (they are never pushed); placing one turns it into an order and removes the draft in
//! the same transaction.
use rusqlite::{Connection, params};
use uuid::Uuid;

use crate::{Engine, EngineError, OrderDraft};

/// A saved draft as the outlet and visit screens list it.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedDraft {
    pub id: Uuid,
    pub draft: OrderDraft,
    pub updated_ms: i64,
}

pub(crate) fn delete(conn: &Connection, id: Uuid) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM order_draft_lines WHERE draft_id = ?1",
        [id.to_string()],
    )?;
    conn.execute("DELETE FROM order_drafts WHERE id = ?1", [id.to_string()])?;
    Ok(())
}

impl Engine {
    /// Saves (creates or replaces) a draft; returns its id. Lines with a zero quantity are
    /// dropped; an empty draft is still kept so the agent can come back to it.
    pub fn save_order_draft(&self, draft: &OrderDraft) -> Result<Uuid, EngineError> {
        let id = draft
            .draft_id
            .unwrap_or_else(fieldsync_protocol::ids::new_id);
        let now = self.now_ms();
        let mut db = self.db();
        let tx = db.transaction()?;
        delete(&tx, id)?;
        tx.execute(
            "INSERT INTO order_drafts (id, visit_id, outlet_id, warehouse_id, comment, delivery_date, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id.to_string(),
                draft.visit_id.map(|v| v.to_string()),
                draft.outlet_id,
                draft.warehouse_id,
                draft.comment,
                draft.delivery_date,
                now
            ],
        )?;
        for (i, (product_id, qty)) in draft.lines.iter().filter(|l| l.1 > 0).enumerate() {
            tx.execute(
                "INSERT INTO order_draft_lines (draft_id, line_no, product_id, quantity_milli) VALUES (?1, ?2, ?3, ?4)",
                params![id.to_string(), i as i64 + 1, product_id, qty],
            )?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// The drafts of an outlet, newest first.
    pub fn order_drafts(&self, outlet_id: i64) -> Result<Vec<SavedDraft>, EngineError> {
        let ids: Vec<String> = {
            let db = self.db();
            let mut stmt = db.prepare_cached(
                "SELECT id FROM order_drafts WHERE outlet_id = ?1 ORDER BY updated_ms DESC",
            )?;
            stmt.query_map([outlet_id], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(d) = Uuid::parse_str(&id)
                .ok()
                .and_then(|id| self.order_draft(id).transpose())
            {
                out.push(d?);
            }
        }
        Ok(out)
    }

    /// One draft with its lines.
    pub fn order_draft(&self, id: Uuid) -> Result<Option<SavedDraft>, EngineError> {
        use rusqlite::OptionalExtension;
        let db = self.db();
        let head: Option<(Option<String>, i64, i64, String, String, i64)> = db
            .query_row(
                "SELECT visit_id, outlet_id, warehouse_id, comment, delivery_date, updated_ms
                 FROM order_drafts WHERE id = ?1",
                [id.to_string()],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .optional()?;
        let Some((visit, outlet_id, warehouse_id, comment, delivery_date, updated_ms)) = head
        else {
            return Ok(None);
        };
        let mut stmt = db.prepare_cached(
            "SELECT product_id, quantity_milli FROM order_draft_lines WHERE draft_id = ?1 ORDER BY line_no",
        )?;
        let lines = stmt
            .query_map([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(Some(SavedDraft {
            id,
            draft: OrderDraft {
                visit_id: visit.and_then(|v| Uuid::parse_str(&v).ok()),
                outlet_id,
                price_list_id: 0,
                warehouse_id,
                lines,
                comment,
                delivery_date,
                draft_id: Some(id),
                overdue_reason: String::new(),
            },
            updated_ms,
        }))
    }

    /// Throws a draft away.
    pub fn delete_order_draft(&self, id: Uuid) -> Result<(), EngineError> {
        let mut db = self.db();
        let tx = db.transaction()?;
        delete(&tx, id)?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drafts_round_trip_and_are_never_queued() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().join("a.db")).unwrap();
        let draft = OrderDraft {
            outlet_id: 7,
            warehouse_id: 3,
            lines: vec![(11, 2000), (12, 0), (13, 500)],
            comment: "after lunch".into(),
            ..Default::default()
        };
        let id = engine.save_order_draft(&draft).unwrap();
        let saved = engine.order_draft(id).unwrap().unwrap();
        assert_eq!(saved.draft.lines, vec![(11, 2000), (13, 500)]);
        assert_eq!(saved.draft.comment, "after lunch");
        assert_eq!(saved.draft.draft_id, Some(id));
        // Saving again replaces, it does not add.
        let mut again = saved.draft.clone();
        again.lines = vec![(11, 1000)];
        assert_eq!(engine.save_order_draft(&again).unwrap(), id);
        let listed = engine.order_drafts(7).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].draft.lines, vec![(11, 1000)]);
        // Nothing went to the outbox.
        assert_eq!(engine.outbox_status().unwrap().pending, 0);
        engine.delete_order_draft(id).unwrap();
        assert!(engine.order_drafts(7).unwrap().is_empty());
    }
}
