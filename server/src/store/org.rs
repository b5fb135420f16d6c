//! The org structure as key users keep it: a tree of regions, teams, territories and
//! positions per distributor. Units are created under a parent, renamed, moved to another
//! parent and ended; codes are unique per distributor.
//!
//! Kinds stay sensible: a region is at the top, a team sits under a region, a territory under
//! a team or a region, a position under a territory (its phone sees the territory's outlets).
//! A unit never moves under itself or a unit below it, nor to another distributor, and nothing
//! is placed under an ended unit. A unit is ended only when nothing below it is active: no
//! live unit under it, and for a position no open staff binding and no mobile user.
//!
//! Moving a position to another territory moves what its phone pulls. The change log is keyed
//! by scope (the territory for outlets) and the phone's cursor is already past the new
//! territory's outlets, so the move writes, in its own transaction, change-log rows scoped to
//! the position itself: a tombstone for every outlet the phone may hold that is not in the new
//! territory (the old territory's outlets, and any outlet an earlier move showed it), and the
//! full state of every outlet of the new territory, each with a fresh number from the
//! `change_seq` counter. A later change of an outlet is recorded for its territory with a
//! newer number and wins. Other phones read neither scope, so nothing changes for them.
//! See docs/protocol.md §8.4.
use std::collections::BTreeSet;

use fieldsync_protocol::v1::EntityKind;

use super::editors::{MAX_CODE_CHARS, MAX_NAME_CHARS};
use super::sql::{IntoVal, Val, exec_on, id_on, one_on, rows_on};
use super::world::{ChangeRef, commit_changes};
use super::{Problem, Result, Store, StoreError, WriteTx};

/// The kinds of org units, from the top of the tree down.
pub const KINDS: &[&str] = &["region", "team", "territory", "position"];

/// The kinds a unit of `kind` may sit under; empty: only at the top.
pub fn parent_kinds(kind: &str) -> &'static [&'static str] {
    match kind {
        "team" => &["region"],
        "territory" => &["region", "team"],
        "position" => &["territory"],
        _ => &[],
    }
}

/// One org unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgUnit {
    pub id: i64,
    pub distributor_id: i64,
    pub parent_id: Option<i64>,
    pub kind: String,
    pub code: String,
    pub name: String,
    pub ended_at_ms: Option<i64>,
}

type OrgRow = (i64, i64, Option<i64>, String, String, String, Option<i64>);

impl From<OrgRow> for OrgUnit {
    fn from((id, distributor_id, parent_id, kind, code, name, ended_at_ms): OrgRow) -> Self {
        OrgUnit {
            id,
            distributor_id,
            parent_id,
            kind,
            code,
            name,
            ended_at_ms,
        }
    }
}

/// A name as stored: trimmed, 1 to [`MAX_NAME_CHARS`] characters.
pub(crate) fn checked_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(StoreError::Refused(Problem::OrgCodeOrName));
    }
    Ok(name.to_string())
}

/// A code as stored: trimmed, 1 to [`MAX_CODE_CHARS`] characters without spaces.
fn checked_code(code: &str) -> Result<String> {
    let code = code.trim();
    if code.is_empty()
        || code.chars().count() > MAX_CODE_CHARS
        || code.chars().any(char::is_whitespace)
    {
        return Err(StoreError::Refused(Problem::OrgCodeOrName));
    }
    Ok(code.to_string())
}

/// The unit `id` of `distributor_id` in `tx` (`NotFound` for none, or another distributor's).
async fn unit_on(tx: &mut WriteTx, distributor_id: i64, id: i64) -> Result<OrgUnit> {
    let sql = "SELECT id, distributor_id, parent_id, kind, code, name, ended_at_ms
               FROM org_units WHERE id = $1 AND distributor_id = $2";
    let row: OrgRow = one_on(tx, sql, &[Val::I(id), Val::I(distributor_id)]).await?;
    Ok(row.into())
}

/// Checks that a unit of `kind` may sit under `parent` (a live unit of the same distributor,
/// of a kind above it; none only for a region).
async fn check_place(
    tx: &mut WriteTx,
    distributor_id: i64,
    kind: &str,
    parent: Option<i64>,
) -> Result<()> {
    let allowed = parent_kinds(kind);
    let Some(parent) = parent else {
        return match allowed.is_empty() {
            true => Ok(()),
            false => Err(StoreError::Refused(Problem::OrgBadParent)),
        };
    };
    let parent = match unit_on(tx, distributor_id, parent).await {
        Err(StoreError::NotFound) => return Err(StoreError::Refused(Problem::OrgUnknownParent)),
        other => other?,
    };
    if parent.ended_at_ms.is_some() {
        return Err(StoreError::Refused(Problem::OrgEnded));
    }
    if !allowed.contains(&parent.kind.as_str()) {
        return Err(StoreError::Refused(Problem::OrgBadParent));
    }
    Ok(())
}

/// A code taken meanwhile (the unique index answered; the check before it reads under the
/// distributor's turn, so only a writer outside the editor gets here) as the refusal.
fn code_taken(e: StoreError) -> StoreError {
    match e {
        StoreError::Conflict(_) => StoreError::Refused(Problem::OrgCodeTaken),
        other => other,
    }
}

super::sql::keyed_reads! {
    /// The live mobile user (id, login) of a position, if it has one.
    position_mobile_user(id: i64) -> Option<(i64, String)> = opt_by(
        "SELECT id, login FROM mobile_users WHERE position_id = $1 AND deleted_at_ms IS NULL"
    );
}

impl Store {
    /// The org units of a distributor, by code.
    pub async fn org_tree(&self, distributor_id: i64) -> Result<Vec<OrgUnit>> {
        let rows: Vec<OrgRow> = self
            .rows(
                "SELECT id, distributor_id, parent_id, kind, code, name, ended_at_ms
                 FROM org_units WHERE distributor_id = $1 ORDER BY code, id",
                &[distributor_id.into_val()],
            )
            .await?;
        Ok(rows.into_iter().map(OrgUnit::from).collect())
    }

    /// One org unit, if it exists.
    pub async fn org_unit(&self, id: i64) -> Result<Option<OrgUnit>> {
        let row: Option<OrgRow> = self
            .opt(
                "SELECT id, distributor_id, parent_id, kind, code, name, ended_at_ms
                 FROM org_units WHERE id = $1",
                &[id.into_val()],
            )
            .await?;
        Ok(row.map(OrgUnit::from))
    }

    /// Creates a unit of `kind` under `parent` (none: at the top); returns its id. The code
    /// is unique per distributor.
    pub async fn add_org_unit(
        &self,
        distributor_id: i64,
        parent: Option<i64>,
        kind: &str,
        code: &str,
        name: &str,
    ) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        // Writers of the tree take turns, so a parent is never ended under a new child.
        self.serialise_distributor(&mut tx, distributor_id).await?;
        let id = add_org_unit_on(&mut tx, distributor_id, parent, kind, code, name).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Renames a live unit of `distributor_id`.
    pub async fn rename_org_unit(&self, distributor_id: i64, id: i64, name: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        rename_org_unit_on(&mut tx, distributor_id, id, name).await?;
        tx.commit().await
    }

    /// Moves a live unit of `distributor_id` under another parent of the same distributor
    /// (never under itself or a unit below it). A position moved to another territory takes
    /// its phone along: see the module's documentation.
    pub async fn move_org_unit(
        &self,
        distributor_id: i64,
        id: i64,
        parent: Option<i64>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // Outlet edits and imports of the distributor take turns with the move, so the
        // outlets read below are the territories' outlets when the move commits.
        self.serialise_distributor(&mut tx, distributor_id).await?;
        let changes = move_org_unit_on(&mut tx, distributor_id, id, parent).await?;
        commit_changes(tx, distributor_id, &changes).await
    }

    /// Ends a live unit of `distributor_id` at `now`, when nothing below it is active; the
    /// refusal says what still is. Decided by one statement.
    pub async fn end_org_unit(&self, distributor_id: i64, id: i64, now: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        self.serialise_distributor(&mut tx, distributor_id).await?;
        let unit = unit_on(&mut tx, distributor_id, id).await?;
        if unit.ended_at_ms.is_some() {
            return Err(StoreError::Refused(Problem::OrgEnded));
        }
        let ended = exec_on(
            &mut tx,
            "UPDATE org_units SET ended_at_ms = $2 WHERE id = $1 AND ended_at_ms IS NULL
               AND NOT EXISTS (SELECT 1 FROM org_units c WHERE c.parent_id = $1 AND c.ended_at_ms IS NULL)
               AND NOT EXISTS (SELECT 1 FROM position_staff ps WHERE ps.position_id = $1 AND ps.valid_to IS NULL)
               AND NOT EXISTS (SELECT 1 FROM mobile_users m WHERE m.position_id = $1 AND m.deleted_at_ms IS NULL)",
            &[Val::I(id), Val::I(now)],
        )
        .await?;
        if ended == 1 {
            return tx.commit().await;
        }
        // Refused: say why.
        let (units, staff, users): (i64, i64, i64) = one_on(
            &mut tx,
            "SELECT (SELECT COUNT(*) FROM org_units c WHERE c.parent_id = $1 AND c.ended_at_ms IS NULL),
                    (SELECT COUNT(*) FROM position_staff ps WHERE ps.position_id = $1 AND ps.valid_to IS NULL),
                    (SELECT COUNT(*) FROM mobile_users m WHERE m.position_id = $1 AND m.deleted_at_ms IS NULL)",
            &[Val::I(id)],
        )
        .await?;
        Err(StoreError::Refused(if units > 0 {
            Problem::OrgActiveBelow
        } else if staff > 0 {
            Problem::OrgHasStaff
        } else if users > 0 {
            Problem::OrgHasMobileUser
        } else {
            Problem::OrgEnded
        }))
    }
}

/// The change-log rows that move a position's phone from territory `from` to `to`: the
/// full state of every live outlet of `to`, and a tombstone for every outlet it may hold
/// that is not in `to` (the live outlets of `from`, and the outlets an earlier move showed
/// it, which may have left that territory since and would otherwise stay visible to a phone
/// that pulls the position's scope from the start).
async fn position_moved(
    tx: &mut WriteTx,
    distributor_id: i64,
    position: i64,
    from: i64,
    to: i64,
) -> Result<Vec<ChangeRef>> {
    let live =
        "SELECT id FROM outlets WHERE distributor_id = $1 AND territory_id = $2 AND deleted = 0";
    let ids = |rows: Vec<(i64,)>| rows.into_iter().map(|r| r.0).collect::<BTreeSet<i64>>();
    let arriving = ids(rows_on(tx, live, &[Val::I(distributor_id), Val::I(to)]).await?);
    let mut leaving = ids(rows_on(tx, live, &[Val::I(distributor_id), Val::I(from)]).await?);
    leaving.extend(ids(rows_on(
        tx,
        "SELECT entity_id FROM change_log WHERE entity_kind = $1 AND scope_id = $2 AND deleted = 0",
        &[Val::I(EntityKind::Outlet as i64), Val::I(position)],
    )
    .await?));
    let outlet = EntityKind::Outlet;
    let gone = leaving.difference(&arriving);
    let mut changes: Vec<ChangeRef> = gone
        .map(|id| ChangeRef::delete(outlet, *id, position))
        .collect();
    changes.extend(
        arriving
            .iter()
            .map(|id| ChangeRef::upsert(outlet, *id, position)),
    );
    // The shared cards of the arriving outlets, whole (the territory's card rows lie behind
    // the phone's cursor).
    let cards = rows_on(
        tx,
        "SELECT c.outlet_id FROM card_docs c JOIN outlets o ON o.id = c.outlet_id
         WHERE o.distributor_id = $1 AND o.territory_id = $2 AND o.deleted = 0",
        &[Val::I(distributor_id), Val::I(to)],
    )
    .await?;
    changes.extend(
        cards
            .into_iter()
            .map(|(id,)| ChangeRef::upsert(EntityKind::OutletCard, id, position)),
    );
    Ok(changes)
}

/// Creates a unit in `tx` (see [`Store::add_org_unit`]); the caller has taken the
/// distributor's turn. A refusal comes before anything is written.
pub(crate) async fn add_org_unit_on(
    tx: &mut WriteTx,
    distributor_id: i64,
    parent: Option<i64>,
    kind: &str,
    code: &str,
    name: &str,
) -> Result<i64> {
    if !KINDS.contains(&kind) {
        return Err(StoreError::Refused(Problem::OrgBadKind));
    }
    let (code, name) = (checked_code(code)?, checked_name(name)?);
    check_place(tx, distributor_id, kind, parent).await?;
    let (taken,): (i64,) = one_on(
        tx,
        "SELECT COUNT(*) FROM org_units WHERE distributor_id = $1 AND code = $2",
        &[Val::I(distributor_id), Val::S(code.clone())],
    )
    .await?;
    if taken > 0 {
        return Err(StoreError::Refused(Problem::OrgCodeTaken));
    }
    id_on(
        tx,
        "INSERT INTO org_units (distributor_id, parent_id, kind, code, name)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        &[
            Val::I(distributor_id),
            Val::N(parent),
            kind.into_val(),
            Val::S(code),
            Val::S(name),
        ],
    )
    .await
    .map_err(code_taken)
}

/// Renames a live unit in `tx` (see [`Store::rename_org_unit`]).
pub(crate) async fn rename_org_unit_on(
    tx: &mut WriteTx,
    distributor_id: i64,
    id: i64,
    name: &str,
) -> Result<()> {
    let name = checked_name(name)?;
    let unit = unit_on(tx, distributor_id, id).await?;
    if unit.ended_at_ms.is_some() {
        return Err(StoreError::Refused(Problem::OrgEnded));
    }
    exec_on(
        tx,
        "UPDATE org_units SET name = $2 WHERE id = $1",
        &[Val::I(id), Val::S(name)],
    )
    .await?;
    Ok(())
}

/// Moves a live unit in `tx` (see [`Store::move_org_unit`]); the caller has taken the
/// distributor's turn and records the returned changes (a moved position's phone) in the
/// same transaction. A refusal comes before anything is written.
pub(crate) async fn move_org_unit_on(
    tx: &mut WriteTx,
    distributor_id: i64,
    id: i64,
    parent: Option<i64>,
) -> Result<Vec<ChangeRef>> {
    let unit = unit_on(tx, distributor_id, id).await?;
    if unit.ended_at_ms.is_some() {
        return Err(StoreError::Refused(Problem::OrgEnded));
    }
    if let Some(parent) = parent {
        // Walks up from the new parent: meeting the unit means it would be its own ancestor.
        let (loops,): (i64,) = one_on(
            tx,
            "WITH RECURSIVE up (id, parent_id, depth) AS (
                 SELECT id, parent_id, 0 FROM org_units WHERE id = $1
                 UNION ALL
                 SELECT o.id, o.parent_id, up.depth + 1 FROM org_units o
                 JOIN up ON o.id = up.parent_id WHERE up.depth < 64)
             SELECT COUNT(*) FROM up WHERE id = $2",
            &[Val::I(parent), Val::I(id)],
        )
        .await?;
        if loops > 0 {
            return Err(StoreError::Refused(Problem::OrgCycle));
        }
    }
    check_place(tx, distributor_id, &unit.kind, parent).await?;
    if unit.parent_id == parent {
        return Ok(Vec::new());
    }
    exec_on(
        tx,
        "UPDATE org_units SET parent_id = $2 WHERE id = $1",
        &[Val::I(id), Val::N(parent)],
    )
    .await?;
    match (unit.kind.as_str(), unit.parent_id, parent) {
        ("position", Some(from), Some(to)) => {
            position_moved(tx, distributor_id, id, from, to).await
        }
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_sit_under_the_kinds_above_them() {
        assert!(parent_kinds("region").is_empty());
        assert_eq!(parent_kinds("position"), &["territory"]);
        for kind in KINDS {
            let rank = KINDS.iter().position(|k| k == kind).unwrap();
            for parent in parent_kinds(kind) {
                assert!(KINDS.iter().position(|k| k == parent).unwrap() < rank);
            }
        }
    }
}
