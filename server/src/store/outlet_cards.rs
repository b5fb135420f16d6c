//! Shared outlet cards on the server: one Automerge document per outlet (`card_docs`), every
//! accepted change kept (`card_log`) and announced in the change log, and the actors that may
//! make changes (`card_actors`). The card's shape and checks are `fieldsync_protocol::cards`.
//!
//! How a device learns what it lacks (docs/protocol.md §8.6): each accepted change gets its
//! own change-log row (`OUTLET_CARD_CHANGE`, never renumbered), so a device's cursor says
//! exactly which changes it has. Once a card has [`COMPACT_AT`] such rows they are replaced by
//! one `OUTLET_CARD` row serving the whole document, *at the sequence number of the newest row
//! it replaces*: a device already past it has every change it replaces and never receives it;
//! a device behind it (a new phone, one offline for days) receives the document instead of
//! the changes. A first pull therefore carries at most one document and fewer than
//! [`COMPACT_AT`] changes per edited card.
use std::collections::HashMap;

use fieldsync_protocol::automerge::{self, ActorId, Automerge};
use fieldsync_protocol::cards::{self, CardEdit, CardError, CardView, Role};
use fieldsync_protocol::v1::EntityKind;
use rand::RngCore;

use super::sql::select_in;
use super::world::{ChangeRef, allocate_seqs, record_changes};
use super::{Result, Store, WriteTx, now_ms};

/// Live change rows of one card at which they are compacted into its document row.
pub const COMPACT_AT: i64 = 16;
/// Live change rows at which a card is compacted whatever devices still lack.
pub const COMPACT_ALL_AT: i64 = 64;
/// A device that pulled within this long counts as live for compaction.
pub const LIVE_DEVICE_MS: i64 = 7 * 24 * 3600 * 1000;

/// One change accepted from a push or a key user, to store.
#[derive(Debug, Clone)]
pub struct AcceptedChange {
    pub outlet_id: i64,
    pub hash: String,
    pub actor: String,
    pub bytes: Vec<u8>,
    pub device_time_ms: i64,
}

/// A card document read under its row lock, as the push found it.
pub struct LockedCard {
    pub doc: Automerge,
    /// Saved size before this push (for the size limit).
    pub saved_bytes: usize,
    /// The saved document after this push's changes, made once when they were checked.
    pub saved: Option<Vec<u8>>,
}

/// A card's history entry for the back office.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub actor: String,
    pub name: String,
    pub kind: String,
    pub device_time_ms: i64,
    pub received_at_ms: i64,
    pub summary: Vec<String>,
}

/// What the back office shows of a card.
#[derive(Debug, Clone)]
pub struct CardPage {
    pub view: CardView,
    pub heads: String,
    /// Names of actors as the server knows them (device → mobile user, key user).
    pub names: HashMap<String, String>,
    pub history: Vec<HistoryEntry>,
}

fn random_actor() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    cards::actor_hex(&ActorId::from(b))
}

/// Hex of an actor as stored, back to bytes.
pub fn actor_bytes(hex: &str) -> Vec<u8> {
    ActorId::try_from(hex)
        .map(|a| a.to_bytes().to_vec())
        .unwrap_or_default()
}

/// Reads and locks the documents of `outlet_ids` (sorted, so two writers never deadlock),
/// creating the rows of cards never edited (with the genesis document) so that there is a row
/// to lock: two devices editing one card then take turns and neither change is lost.
pub(crate) async fn lock_cards(
    tx: &mut WriteTx,
    for_update: &str,
    distributor_id: i64,
    outlet_ids: &[i64],
) -> Result<HashMap<i64, LockedCard>> {
    let mut ids = outlet_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let genesis = cards::genesis();
    let (doc0, heads0) = (genesis.save(), cards::heads_hex(&genesis));
    let now = now_ms();
    for id in &ids {
        sqlx::query(
            "INSERT INTO card_docs (outlet_id, distributor_id, doc, heads, doc_bytes, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (outlet_id) DO NOTHING",
        )
        .bind(*id)
        .bind(distributor_id)
        .bind(doc0.clone())
        .bind(heads0.clone())
        .bind(doc0.len() as i64)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    let mut rows: Vec<(i64, Vec<u8>)> = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT outlet_id, doc FROM card_docs WHERE outlet_id IN ({}) ORDER BY outlet_id{for_update}",
            super::sql::placeholders(1, chunk.len(), false)
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        rows.extend(q.fetch_all(&mut **tx).await?);
    }
    let mut out = HashMap::new();
    for (id, bytes) in rows {
        // A stored document holds the genesis change: it loads as it is.
        let doc = Automerge::load(&bytes).map_err(|e| {
            super::StoreError::Invalid(format!("card of outlet {id} does not load: {e}"))
        })?;
        out.insert(
            id,
            LockedCard {
                doc,
                saved_bytes: bytes.len(),
                saved: None,
            },
        );
    }
    Ok(out)
}

/// The actors whose changes a device may send: those of every device of its mobile user (a
/// reinstalled phone may still hold changes its earlier installation made).
pub(crate) async fn device_actors(tx: &mut WriteTx, mobile_user_id: i64) -> Result<Vec<ActorId>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT actor FROM card_actors WHERE mobile_user_id = $1")
            .bind(mobile_user_id)
            .fetch_all(&mut **tx)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(a,)| ActorId::try_from(a.as_str()).ok())
        .collect())
}

/// Stores accepted changes and the new documents in the transaction: a `card_log` row and a
/// change-log row per change (scope: the outlet's territory), the document, and compaction of
/// cards with [`COMPACT_AT`] live rows.
pub(crate) async fn store_changes(
    tx: &mut WriteTx,
    distributor_id: i64,
    scope_of: &HashMap<i64, i64>,
    changes: &[AcceptedChange],
    docs: &HashMap<i64, LockedCard>,
    now: i64,
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    // Each change's id is the change-log number handed out for it: one counter update, then
    // one multi-row insert into each table (not two statements a change).
    let first = allocate_seqs(tx, changes.len()).await?;
    let scope = |outlet: i64| scope_of.get(&outlet).copied().unwrap_or(-1);
    for (chunk_no, chunk) in changes.chunks(400).enumerate() {
        let base = first + (chunk_no * 400) as i64;
        let rows = |width: usize| {
            (0..chunk.len())
                .map(|r| {
                    let cols: Vec<String> =
                        (1..=width).map(|c| format!("${}", r * width + c)).collect();
                    format!("({})", cols.join(", "))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let sql = format!(
            "INSERT INTO card_log (id, outlet_id, distributor_id, hash, actor, bytes, device_time_ms, received_at_ms) VALUES {}",
            rows(8)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, c) in chunk.iter().enumerate() {
            let id = base + i as i64;
            q = q
                .bind(id)
                .bind(c.outlet_id)
                .bind(distributor_id)
                .bind(c.hash.clone())
                .bind(c.actor.clone())
                .bind(c.bytes.clone())
                .bind(c.device_time_ms)
                .bind(now);
        }
        q.execute(&mut **tx).await?;
        let sql = format!(
            "INSERT INTO change_log (seq, distributor_id, entity_kind, entity_id, scope_id, deleted) VALUES {}",
            rows(6)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, c) in chunk.iter().enumerate() {
            let id = base + i as i64;
            q = q
                .bind(id)
                .bind(distributor_id)
                .bind(EntityKind::OutletCardChange as i32 as i64)
                .bind(id)
                .bind(scope(c.outlet_id))
                .bind(0_i64);
        }
        q.execute(&mut **tx).await?;
    }
    let mut per_card: HashMap<i64, i64> = HashMap::new();
    for c in changes {
        *per_card.entry(c.outlet_id).or_default() += 1;
    }
    let mut touched: Vec<(i64, i64)> = per_card.into_iter().collect();
    touched.sort_unstable();
    for (outlet, n) in touched {
        let Some(card) = docs.get(&outlet) else {
            continue;
        };
        let saved = card.saved.clone().unwrap_or_else(|| card.doc.save());
        let (live,): (i64,) = sqlx::query_as(
            "UPDATE card_docs SET doc = $1, heads = $2, doc_bytes = $3, changes = changes + $4,
                live_rows = live_rows + $4, updated_at_ms = $5
             WHERE outlet_id = $6 RETURNING live_rows",
        )
        .bind(saved.clone())
        .bind(cards::heads_hex(&card.doc))
        .bind(saved.len() as i64)
        .bind(n)
        .bind(now)
        .bind(outlet)
        .fetch_one(&mut **tx)
        .await?;
        if live >= COMPACT_AT {
            // What every live device already has is compacted without any of them noticing;
            // past COMPACT_ALL_AT rows, everything (a device that stopped syncing then gets
            // the document, which is still correct).
            let upto = if live >= COMPACT_ALL_AT {
                i64::MAX
            } else {
                low_water_mark(tx, distributor_id, now).await?
            };
            compact(tx, distributor_id, outlet, scope(outlet), upto).await?;
        }
    }
    Ok(())
}

/// The change-log position every live device of the distributor (not revoked, pulled in the
/// last week) has confirmed storing; `i64::MAX` when there is none.
async fn low_water_mark(tx: &mut WriteTx, distributor_id: i64, now: i64) -> Result<i64> {
    let (h,): (Option<i64>,) = sqlx::query_as(
        "SELECT MIN(d.pulled_seq) FROM devices d JOIN mobile_users u ON u.id = d.mobile_user_id
         WHERE u.distributor_id = $1 AND d.revoked_at_ms IS NULL AND d.pulled_at_ms >= $2",
    )
    .bind(distributor_id)
    .bind(now - LIVE_DEVICE_MS)
    .fetch_one(&mut **tx)
    .await?;
    Ok(h.unwrap_or(i64::MAX))
}

/// Replaces a card's live change rows up to change-log position `upto` by its document row,
/// at the newest replaced row's sequence number (see the module's documentation for why
/// that is sound). A document row already numbered later (written when the outlet moved to
/// this territory) keeps its number: moved back, devices between the two would miss it.
pub(crate) async fn compact(
    tx: &mut WriteTx,
    distributor_id: i64,
    outlet_id: i64,
    scope_id: i64,
    upto: i64,
) -> Result<()> {
    let (newest,): (Option<i64>,) = sqlx::query_as(
        "SELECT MAX(id) FROM card_log WHERE outlet_id = $1 AND compacted = 0 AND id <= $2",
    )
    .bind(outlet_id)
    .bind(upto)
    .fetch_one(&mut **tx)
    .await?;
    let Some(newest) = newest else {
        return Ok(());
    };
    sqlx::query(
        "DELETE FROM change_log WHERE entity_kind = $1 AND entity_id IN
            (SELECT id FROM card_log WHERE outlet_id = $2 AND compacted = 0 AND id <= $3)",
    )
    .bind(EntityKind::OutletCardChange as i32 as i64)
    .bind(outlet_id)
    .bind(newest)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO change_log (seq, distributor_id, entity_kind, entity_id, scope_id, deleted)
         VALUES ($1, $2, $3, $4, $5, 0)
         ON CONFLICT (entity_kind, entity_id, scope_id) DO UPDATE SET deleted = 0,
            seq = CASE WHEN change_log.seq > excluded.seq THEN change_log.seq ELSE excluded.seq END",
    )
    .bind(newest)
    .bind(distributor_id)
    .bind(EntityKind::OutletCard as i32 as i64)
    .bind(outlet_id)
    .bind(scope_id)
    .execute(&mut **tx)
    .await?;
    let done = sqlx::query(
        "UPDATE card_log SET compacted = 1 WHERE outlet_id = $1 AND compacted = 0 AND id <= $2",
    )
    .bind(outlet_id)
    .bind(newest)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    sqlx::query("UPDATE card_docs SET live_rows = live_rows - $1 WHERE outlet_id = $2")
        .bind(done as i64)
        .bind(outlet_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Why a key user's card edit did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyUserEditError {
    NoSuchOutlet,
    Refused(CardError),
}

impl Store {
    /// This device's card actor (16 bytes), created on first use.
    pub async fn device_card_actor(&self, device_id: i64) -> Result<Vec<u8>> {
        let found: Option<(String,)> =
            sqlx::query_as("SELECT actor FROM card_actors WHERE device_id = $1")
                .bind(device_id)
                .fetch_optional(self.pool())
                .await?;
        if let Some((a,)) = found {
            return Ok(actor_bytes(&a));
        }
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO card_actors (actor, distributor_id, kind, device_id, mobile_user_id, name, created_at_ms)
             SELECT $1, u.distributor_id, 'device', d.id, u.id,
                COALESCE((SELECT s.first_name || ' ' || s.last_name FROM position_staff ps
                          JOIN staff s ON s.id = ps.staff_id
                          WHERE ps.position_id = u.position_id AND ps.is_main = 1 AND ps.valid_to IS NULL
                          ORDER BY ps.id DESC LIMIT 1), u.login), $2
             FROM devices d JOIN mobile_users u ON u.id = d.mobile_user_id WHERE d.id = $3
             ON CONFLICT (device_id) DO NOTHING",
        )
        .bind(random_actor())
        .bind(now_ms())
        .bind(device_id)
        .execute(&mut *tx)
        .await?;
        let (a,): (String,) = sqlx::query_as("SELECT actor FROM card_actors WHERE device_id = $1")
            .bind(device_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(actor_bytes(&a))
    }

    async fn key_user_actor(
        tx: &mut WriteTx,
        key_user_id: i64,
        distributor_id: i64,
        name: &str,
    ) -> Result<ActorId> {
        sqlx::query(
            "INSERT INTO card_actors (actor, distributor_id, kind, key_user_id, name, created_at_ms)
             VALUES ($1, $2, 'key_user', $3, $4, $5) ON CONFLICT (key_user_id) DO NOTHING",
        )
        .bind(random_actor())
        .bind(distributor_id)
        .bind(key_user_id)
        .bind(name)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        let (a,): (String,) =
            sqlx::query_as("SELECT actor FROM card_actors WHERE key_user_id = $1")
                .bind(key_user_id)
                .fetch_one(&mut **tx)
                .await?;
        Ok(ActorId::try_from(a.as_str()).expect("stored actors are hex"))
    }

    /// A key user's saved card form: one change by the key user's actor, validated like a
    /// device's, stored like a push. Accepting a proposal also writes the master data
    /// (`accepted` runs in the same transaction, given the proposal's value).
    pub async fn edit_card_as_key_user(
        &self,
        distributor_id: i64,
        outlet_id: i64,
        key_user_id: i64,
        key_user_name: &str,
        edits: &[CardEdit],
    ) -> Result<std::result::Result<Option<String>, KeyUserEditError>> {
        let mut tx = self.begin_write().await?;
        let outlet: Option<(Option<i64>,)> = sqlx::query_as(
            "SELECT territory_id FROM outlets WHERE id = $1 AND distributor_id = $2 AND deleted = 0",
        )
        .bind(outlet_id)
        .bind(distributor_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((territory,)) = outlet else {
            return Ok(Err(KeyUserEditError::NoSuchOutlet));
        };
        let actor =
            Self::key_user_actor(&mut tx, key_user_id, distributor_id, key_user_name).await?;
        let mut docs = lock_cards(&mut tx, self.for_update(), distributor_id, &[outlet_id]).await?;
        let card = docs.get_mut(&outlet_id).expect("locked");
        // Accepted proposals, read before the edit removes them: their values become master data.
        let view = CardView::read(&card.doc);
        let accepted_values: Vec<(String, String)> = edits
            .iter()
            .filter_map(|e| match e {
                CardEdit::Decide {
                    field,
                    accept: true,
                } => view
                    .proposals
                    .get(field)
                    .map(|f| (field.clone(), f.value.clone())),
                _ => None,
            })
            .collect();
        let before_bytes = card.saved_bytes;
        let now = now_ms();
        let change = match cards::edit(
            &mut card.doc,
            &actor,
            Role::KeyUser,
            key_user_name,
            now,
            edits,
        ) {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(Ok(None)),
            Err(e) => return Ok(Err(KeyUserEditError::Refused(e))),
        };
        let saved = card.doc.save();
        if let Err(e) = cards::check_size(before_bytes, saved.len()) {
            return Ok(Err(KeyUserEditError::Refused(e)));
        }
        card.saved = Some(saved);
        let accepted = AcceptedChange {
            outlet_id,
            hash: change.hash().to_string(),
            actor: cards::actor_hex(&actor),
            bytes: change.raw_bytes().to_vec(),
            device_time_ms: now,
        };
        let scope: HashMap<i64, i64> = [(outlet_id, territory.unwrap_or(-1))].into();
        store_changes(
            &mut tx,
            distributor_id,
            &scope,
            std::slice::from_ref(&accepted),
            &docs,
            now,
        )
        .await?;
        if !accepted_values.is_empty() {
            for (field, value) in &accepted_values {
                if let Err(e) = write_proposal(&mut tx, outlet_id, field, value).await? {
                    return Ok(Err(KeyUserEditError::Refused(e)));
                }
            }
            record_changes(
                &mut tx,
                distributor_id,
                &[ChangeRef::upsert(
                    EntityKind::Outlet,
                    outlet_id,
                    territory.unwrap_or(-1),
                )],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Ok(Some(accepted.hash)))
    }

    /// The card of an outlet (the genesis card when never edited), with its history.
    pub async fn outlet_card(&self, outlet_id: i64) -> Result<CardPage> {
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT doc FROM card_docs WHERE outlet_id = $1")
                .bind(outlet_id)
                .fetch_optional(self.pool())
                .await?;
        let doc = match row {
            Some((bytes,)) => cards::load(&bytes).map_err(|e| {
                super::StoreError::Invalid(format!("card of outlet {outlet_id}: {e}"))
            })?,
            None => cards::genesis(),
        };
        let log: Vec<(String, Vec<u8>, i64, i64, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT l.actor, l.bytes, l.device_time_ms, l.received_at_ms, a.name, a.kind
             FROM card_log l LEFT JOIN card_actors a ON a.actor = l.actor
             WHERE l.outlet_id = $1 ORDER BY l.id DESC LIMIT 200",
        )
        .bind(outlet_id)
        .fetch_all(self.pool())
        .await?;
        let mut names = HashMap::new();
        let history = log
            .into_iter()
            .map(
                |(actor, bytes, device_time_ms, received_at_ms, name, kind)| {
                    let name = name.unwrap_or_else(|| actor.chars().take(8).collect());
                    names.insert(actor.clone(), name.clone());
                    HistoryEntry {
                        summary: automerge::Change::try_from(&bytes[..])
                            .map(|c| cards::summarize(&c))
                            .unwrap_or_default(),
                        actor,
                        name,
                        kind: kind.unwrap_or_default(),
                        device_time_ms,
                        received_at_ms,
                    }
                },
            )
            .collect();
        let view = CardView::read(&doc);
        let missing: Vec<String> = view
            .authors
            .keys()
            .filter(|a| !names.contains_key(*a))
            .cloned()
            .collect();
        if !missing.is_empty() {
            let mut conn = self.pool().acquire().await?;
            let rows = select_in!(
                conn,
                (String, String),
                "SELECT actor, name FROM card_actors WHERE actor IN ({})",
                [],
                missing
            );
            names.extend(rows);
        }
        Ok(CardPage {
            heads: cards::heads_hex(&doc),
            view,
            names,
            history,
        })
    }

    /// The stored document of a card, if it was ever edited (tests, simulators).
    pub async fn outlet_card_doc(&self, outlet_id: i64) -> Result<Option<Automerge>> {
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT doc FROM card_docs WHERE outlet_id = $1")
                .bind(outlet_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.and_then(|(b,)| cards::load(&b).ok()))
    }
}

/// Writes an accepted proposal's value into the outlet's master data.
async fn write_proposal(
    tx: &mut WriteTx,
    outlet_id: i64,
    field: &str,
    value: &str,
) -> Result<std::result::Result<(), CardError>> {
    let value = value.trim();
    let sql = match field {
        "name" => "UPDATE outlets SET name = $1 WHERE id = $2",
        "address" => "UPDATE outlets SET address = $1 WHERE id = $2",
        "channel" => "UPDATE outlets SET channel = $1 WHERE id = $2",
        "location" => {
            let parsed = value.split_once(',').and_then(|(a, b)| {
                let (lat, lon): (i64, i64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                ((-900_000_000..=900_000_000).contains(&lat)
                    && (-1_800_000_000..=1_800_000_000).contains(&lon))
                .then_some((lat, lon))
            });
            let Some((lat, lon)) = parsed else {
                return Ok(Err(CardError::NotACardField(format!(
                    "location {value:?} (expected lat_e7,lon_e7)"
                ))));
            };
            sqlx::query("UPDATE outlets SET lat_e7 = $1, lon_e7 = $2 WHERE id = $3")
                .bind(lat)
                .bind(lon)
                .bind(outlet_id)
                .execute(&mut **tx)
                .await?;
            return Ok(Ok(()));
        }
        other => return Ok(Err(CardError::NotACardField(other.to_string()))),
    };
    if value.is_empty() {
        return Ok(Err(CardError::NotACardField(format!("{field} (empty)"))));
    }
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(value)
        .bind(outlet_id)
        .execute(&mut **tx)
        .await?;
    Ok(Ok(()))
}
