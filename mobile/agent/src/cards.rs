//! Shared outlet cards on the phone (docs/protocol.md §7.7, §8.6).
//!
//! Three tables keep a card: `cards` holds the document merged from what the server sent;
//! `card_inbox` holds card bytes a pull stored without parsing them (a first pull of
//! thousands of cards stays a copy of blobs), merged into `cards` the first time the card is
//! read; `card_local` holds this phone's own changes until the server sends them back, so
//! that a refused change can be taken out again. The card shown is `cards` plus `card_local`.
use fieldsync_protocol::automerge::{ActorId, Automerge, Change, ReadDoc};
use fieldsync_protocol::cards::{self, CardEdit, CardError, CardView, Role};
use fieldsync_protocol::v1::{self, mutation::Kind};
use rusqlite::{OptionalExtension, Transaction, params};

use crate::workflows::WorkflowError;
use crate::{Engine, store};

/// A card as the outlet screen shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardScreen {
    pub view: CardView,
    /// This phone's own changes the server has not sent back yet.
    pub pending: usize,
    /// This phone's actor (hex), to tell own entries apart.
    pub own_actor: Option<String>,
}

/// Merges the pulled, unparsed bytes of a card into its stored document; returns it.
fn merged_server_doc(tx: &Transaction<'_>, outlet_id: i64) -> Result<Automerge, WorkflowError> {
    let stored: Option<Vec<u8>> = tx
        .query_row(
            "SELECT doc FROM cards WHERE outlet_id = ?1",
            [outlet_id],
            |r| r.get(0),
        )
        .optional()?;
    let mut doc = match stored {
        Some(b) => cards::load(&b).map_err(card_error)?,
        None => cards::genesis(),
    };
    let inbox: Vec<(i64, Vec<u8>)> = {
        let mut stmt =
            tx.prepare_cached("SELECT id, bytes FROM card_inbox WHERE outlet_id = ?1 ORDER BY id")?;
        stmt.query_map([outlet_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    if !inbox.is_empty() {
        for (_, bytes) in &inbox {
            // What the server sent it accepted; bytes that do not load are skipped rather than
            // making the card unreadable.
            let _ = doc.load_incremental(bytes);
        }
        tx.execute(
            "INSERT OR REPLACE INTO cards (outlet_id, doc) VALUES (?1, ?2)",
            params![outlet_id, doc.save()],
        )?;
        tx.execute("DELETE FROM card_inbox WHERE outlet_id = ?1", [outlet_id])?;
    }
    // Own changes the server sent back are no longer pending.
    let local: Vec<String> = {
        let mut stmt = tx.prepare_cached("SELECT hash FROM card_local WHERE outlet_id = ?1")?;
        stmt.query_map([outlet_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    for hash in local {
        if let Ok(h) = hash.parse()
            && doc.get_change_by_hash(&h).is_some()
        {
            tx.execute("DELETE FROM card_local WHERE hash = ?1", [&hash])?;
        }
    }
    Ok(doc)
}

/// The server's document plus this phone's pending changes, and how many are pending.
fn materialize(tx: &Transaction<'_>, outlet_id: i64) -> Result<(Automerge, usize), WorkflowError> {
    let mut doc = merged_server_doc(tx, outlet_id)?;
    let local: Vec<Vec<u8>> = {
        let mut stmt =
            tx.prepare_cached("SELECT bytes FROM card_local WHERE outlet_id = ?1 ORDER BY id")?;
        stmt.query_map([outlet_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    let changes: Vec<Change> = local
        .iter()
        .filter_map(|b| Change::try_from(&b[..]).ok())
        .collect();
    let pending = changes.len();
    if !changes.is_empty() {
        doc.apply_changes(changes)
            .map_err(|e| card_error(CardError::Malformed(e.to_string())))?;
    }
    Ok((doc, pending))
}

fn card_error(e: CardError) -> WorkflowError {
    WorkflowError::InvalidCard(e.to_string())
}

fn own_actor(tx: &Transaction<'_>) -> rusqlite::Result<Option<ActorId>> {
    Ok(store::get_meta(tx, "card_actor")?
        .filter(|b| b.len() == 16)
        .map(|b| ActorId::from(b.as_slice())))
}

/// Stores a card's bytes from a pull, unparsed.
pub(crate) fn store_pulled(tx: &Transaction<'_>, card: &v1::OutletCard) -> rusqlite::Result<()> {
    if card.payload() == v1::CardPayload::CardDocument {
        // A whole document supersedes whatever was waiting.
        tx.prepare_cached("DELETE FROM card_inbox WHERE outlet_id = ?1")?
            .execute([card.outlet_id])?;
    }
    tx.prepare_cached("INSERT INTO card_inbox (outlet_id, bytes) VALUES (?1, ?2)")?
        .execute(params![card.outlet_id, card.automerge])?;
    Ok(())
}

/// Drops an outlet's card (its tombstone arrived).
pub(crate) fn drop_card(tx: &Transaction<'_>, outlet_id: i64) -> rusqlite::Result<()> {
    for table in ["cards", "card_inbox", "card_local"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE outlet_id = ?1"),
            [outlet_id],
        )?;
    }
    Ok(())
}

/// A refused card change: it and this phone's later changes to the same card (which build on
/// it) are taken out, so the card shows what the server has.
pub(crate) fn forget_refused(tx: &Transaction<'_>, m: &v1::Mutation) -> rusqlite::Result<()> {
    let Some(Kind::CardChanged(c)) = &m.kind else {
        return Ok(());
    };
    let hashes: Vec<String> = c
        .changes
        .iter()
        .filter_map(|b| Change::try_from(&b[..]).ok())
        .map(|ch| ch.hash().to_string())
        .collect();
    for h in hashes {
        let id: Option<i64> = tx
            .query_row("SELECT id FROM card_local WHERE hash = ?1", [&h], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(id) = id {
            tx.execute(
                "DELETE FROM card_local WHERE outlet_id = ?1 AND id >= ?2",
                params![c.outlet_id, id],
            )?;
        }
    }
    Ok(())
}

impl Engine {
    /// The card of an outlet as the outlet screen shows it.
    pub fn card(&self, outlet_id: i64) -> Result<CardScreen, WorkflowError> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let (doc, pending) = materialize(&tx, outlet_id)?;
        let own = own_actor(&tx)?.map(|a| cards::actor_hex(&a));
        tx.commit()?;
        Ok(CardScreen {
            view: CardView::read(&doc),
            pending,
            own_actor: own,
        })
    }

    /// The card's document as this phone has it (server's plus pending), for tests and the
    /// simulators' convergence checks.
    pub fn card_doc(&self, outlet_id: i64) -> Result<Automerge, WorkflowError> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let (doc, _) = materialize(&tx, outlet_id)?;
        tx.commit()?;
        Ok(doc)
    }

    /// Saves a card form: one Automerge change by this phone's actor, checked like the server
    /// will check it, stored at once and pushed with the next sync. `Ok(false)`: nothing
    /// changed.
    pub fn edit_card(&self, outlet_id: i64, edits: &[CardEdit]) -> Result<bool, WorkflowError> {
        let name = self
            .profile()?
            .and_then(|p| p.mobile_user)
            .map(|u| {
                if u.staff_name.is_empty() {
                    u.login
                } else {
                    u.staff_name
                }
            })
            .unwrap_or_default();
        let mut changed = false;
        self.act_maybe(|tx, now| {
            let exists: Option<i64> = tx
                .query_row("SELECT id FROM outlets WHERE id = ?1", [outlet_id], |r| {
                    r.get(0)
                })
                .optional()?;
            if exists.is_none() {
                return Err(WorkflowError::UnknownOutlet(outlet_id));
            }
            let Some(actor) = own_actor(tx)? else {
                return Err(WorkflowError::NotSynced);
            };
            let (mut doc, _) = materialize(tx, outlet_id)?;
            let Some(change) = cards::edit(&mut doc, &actor, Role::Agent, &name, now, edits)
                .map_err(card_error)?
            else {
                return Ok(None);
            };
            tx.execute(
                "INSERT INTO card_local (hash, outlet_id, bytes) VALUES (?1, ?2, ?3)",
                params![change.hash().to_string(), outlet_id, change.raw_bytes()],
            )?;
            changed = true;
            Ok(Some(Kind::CardChanged(v1::CardChanged {
                outlet_id,
                changes: vec![change.raw_bytes().to_vec()],
            })))
        })?;
        Ok(changed)
    }
}
