//! Warehouses as key users keep them: create one (its code unique per distributor), rename
//! it, deactivate and reactivate it, bind and unbind positions for the document type
//! "order" (a position may order only from a warehouse it is bound to).
//!
//! What a phone holds is a warehouse of its position: the change log keys warehouses by the
//! bound position (scope = the position), one row per binding. So every change writes one
//! change-log row per bound position: a rename or a reactivation the warehouse's full state,
//! a deactivation a tombstone; binding a position writes its row (a tombstone when the
//! warehouse is inactive), unbinding a tombstone, and the unbound phone drops the warehouse
//! with its next pull. An inactive warehouse keeps its bindings and orders; the pull never
//! sends it and a pushed order from it is refused like one from an unbound warehouse.
use fieldsync_protocol::v1::EntityKind;

use super::editors::{MAX_CODE_CHARS, MAX_NAME_CHARS};
use super::sql::{IntoVal, Val, exec_on, id_on, one_on, rows_on};
use super::world::{ChangeRef, commit_changes};
use super::{Problem, Result, Store, StoreError, WriteTx};

/// A warehouse as its card shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warehouse {
    pub id: i64,
    pub distributor_id: i64,
    pub distributor: String,
    pub code: String,
    pub name: String,
    pub active: bool,
}

/// A position as pickers and the bindings table show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionRef {
    pub id: i64,
    pub code: String,
    pub name: String,
}

impl From<(i64, String, String)> for PositionRef {
    fn from((id, code, name): (i64, String, String)) -> Self {
        PositionRef { id, code, name }
    }
}

/// The trimmed code and name of a new warehouse, or the problem with them.
fn checked(code: &str, name: &str) -> Result<(String, String)> {
    let (code, name) = (code.trim(), name.trim());
    let bad = |s: &str, max: usize| s.is_empty() || s.chars().count() > max;
    if bad(code, MAX_CODE_CHARS)
        || code.chars().any(char::is_whitespace)
        || bad(name, MAX_NAME_CHARS)
    {
        return Err(StoreError::Refused(Problem::WarehouseCodeOrName));
    }
    Ok((code.to_string(), name.to_string()))
}

/// Whether the warehouse `id` of `distributor_id` is active (`NotFound` for none, or another
/// distributor's).
async fn active_on(tx: &mut WriteTx, distributor_id: i64, id: i64) -> Result<bool> {
    let (active,): (i64,) = one_on(
        tx,
        "SELECT active FROM warehouses WHERE id = $1 AND distributor_id = $2",
        &[Val::I(id), Val::I(distributor_id)],
    )
    .await?;
    Ok(active != 0)
}

/// One change-log row per position bound to the warehouse for orders: its full state while
/// `active`, else a tombstone. Whatever changes a warehouse's name (this editor, an import)
/// sends it to the phones with these.
pub(crate) async fn bound_changes(
    tx: &mut WriteTx,
    id: i64,
    active: bool,
) -> Result<Vec<ChangeRef>> {
    let bound: Vec<(i64,)> = rows_on(
        tx,
        "SELECT position_id FROM warehouse_positions WHERE warehouse_id = $1 AND document_type = 'order'",
        &[Val::I(id)],
    )
    .await?;
    let change = |p: i64| match active {
        true => ChangeRef::upsert(EntityKind::Warehouse, id, p),
        false => ChangeRef::delete(EntityKind::Warehouse, id, p),
    };
    Ok(bound.into_iter().map(|(p,)| change(p)).collect())
}

impl Store {
    /// A warehouse's card, if it exists.
    pub async fn warehouse(&self, id: i64) -> Result<Option<Warehouse>> {
        let row: Option<(i64, String, String, String, i64)> = self
            .opt(
                "SELECT w.distributor_id, d.code, w.code, w.name, w.active
                 FROM warehouses w JOIN distributors d ON d.id = w.distributor_id WHERE w.id = $1",
                &[id.into_val()],
            )
            .await?;
        Ok(row.map(
            |(distributor_id, distributor, code, name, active)| Warehouse {
                id,
                distributor_id,
                distributor,
                code,
                name,
                active: active != 0,
            },
        ))
    }

    /// The positions bound to a warehouse for orders, by code.
    pub async fn warehouse_positions(&self, id: i64) -> Result<Vec<PositionRef>> {
        let rows: Vec<(i64, String, String)> = self
            .rows(
                "SELECT p.id, p.code, p.name FROM warehouse_positions wp JOIN org_units p ON p.id = wp.position_id
                 WHERE wp.warehouse_id = $1 AND wp.document_type = 'order' ORDER BY p.code, p.id",
                &[id.into_val()],
            )
            .await?;
        Ok(rows.into_iter().map(PositionRef::from).collect())
    }

    /// The live positions of a distributor, by code.
    pub async fn live_positions(&self, distributor_id: i64) -> Result<Vec<PositionRef>> {
        let rows: Vec<(i64, String, String)> = self
            .rows(
                "SELECT id, code, name FROM org_units
                 WHERE distributor_id = $1 AND kind = 'position' AND ended_at_ms IS NULL ORDER BY code, id",
                &[distributor_id.into_val()],
            )
            .await?;
        Ok(rows.into_iter().map(PositionRef::from).collect())
    }

    /// Creates a warehouse of `distributor_id` (active, bound to no position); returns its
    /// id. The code is unique per distributor, checked under the distributor's turn.
    pub async fn create_warehouse(
        &self,
        distributor_id: i64,
        code: &str,
        name: &str,
    ) -> Result<i64> {
        let (code, name) = checked(code, name)?;
        let mut tx = self.begin_write().await?;
        self.serialise_distributor(&mut tx, distributor_id).await?;
        let (taken,): (i64,) = one_on(
            &mut tx,
            "SELECT COUNT(*) FROM warehouses WHERE distributor_id = $1 AND code = $2",
            &[Val::I(distributor_id), Val::S(code.clone())],
        )
        .await?;
        if taken > 0 {
            return Err(StoreError::Refused(Problem::WarehouseCodeTaken));
        }
        let id = id_on(
            &mut tx,
            "INSERT INTO warehouses (distributor_id, code, name) VALUES ($1, $2, $3) RETURNING id",
            &[Val::I(distributor_id), Val::S(code), Val::S(name)],
        )
        .await
        .map_err(|e| match e {
            // An import wrote the code meanwhile.
            StoreError::Conflict(_) => StoreError::Refused(Problem::WarehouseCodeTaken),
            other => other,
        })?;
        tx.commit().await?;
        Ok(id)
    }

    /// Renames a warehouse of `distributor_id` (its code stays); the phones of its bound
    /// positions get the new name with their next pull.
    pub async fn rename_warehouse(&self, distributor_id: i64, id: i64, name: &str) -> Result<()> {
        let (_, name) = checked("-", name)?;
        let mut tx = self.begin_write().await?;
        let active = active_on(&mut tx, distributor_id, id).await?;
        exec_on(
            &mut tx,
            "UPDATE warehouses SET name = $2 WHERE id = $1",
            &[Val::I(id), Val::S(name)],
        )
        .await?;
        let changes = match active {
            true => bound_changes(&mut tx, id, true).await?,
            // Inactive: no phone holds it, and reactivating sends the name.
            false => Vec::new(),
        };
        commit_changes(tx, distributor_id, &changes).await
    }

    /// Deactivates (`active` false) or reactivates a warehouse of `distributor_id`: its bound
    /// positions' phones drop it or get it back with their next pull; the bindings stay.
    /// Nothing happens when it already is so.
    pub async fn set_warehouse_active(
        &self,
        distributor_id: i64,
        id: i64,
        active: bool,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        if active_on(&mut tx, distributor_id, id).await? == active {
            return Ok(());
        }
        exec_on(
            &mut tx,
            "UPDATE warehouses SET active = $2 WHERE id = $1",
            &[Val::I(id), active.into_val()],
        )
        .await?;
        let changes = bound_changes(&mut tx, id, active).await?;
        commit_changes(tx, distributor_id, &changes).await
    }

    /// Binds (`bind`) or unbinds a live position of `distributor_id` to one of its warehouses
    /// for the document type "order"; the position's phone gets the warehouse (while active)
    /// or drops it with its next pull.
    pub async fn bind_warehouse(
        &self,
        distributor_id: i64,
        id: i64,
        position_id: i64,
        bind: bool,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // The position is not ended under a new binding.
        self.serialise_distributor(&mut tx, distributor_id).await?;
        let active = active_on(&mut tx, distributor_id, id).await?;
        let (live,): (i64,) = one_on(
            &mut tx,
            "SELECT COUNT(*) FROM org_units
             WHERE id = $1 AND distributor_id = $2 AND kind = 'position' AND ended_at_ms IS NULL",
            &[Val::I(position_id), Val::I(distributor_id)],
        )
        .await?;
        if live == 0 && bind {
            return Err(StoreError::Refused(Problem::WarehouseUnknownPosition));
        }
        let binding = [Val::I(id), Val::I(position_id)];
        let change = if bind {
            exec_on(
                &mut tx,
                "INSERT INTO warehouse_positions (warehouse_id, position_id, document_type)
                 VALUES ($1, $2, 'order') ON CONFLICT DO NOTHING",
                &binding,
            )
            .await?;
            match active {
                true => ChangeRef::upsert(EntityKind::Warehouse, id, position_id),
                false => ChangeRef::delete(EntityKind::Warehouse, id, position_id),
            }
        } else {
            let gone = exec_on(
                &mut tx,
                "DELETE FROM warehouse_positions
                 WHERE warehouse_id = $1 AND position_id = $2 AND document_type = 'order'",
                &binding,
            )
            .await?;
            if gone == 0 {
                return Ok(());
            }
            ChangeRef::delete(EntityKind::Warehouse, id, position_id)
        };
        commit_changes(tx, distributor_id, &[change]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warehouse_code_has_no_spaces_and_a_name_is_required() {
        assert_eq!(
            checked(" W3 ", " North ").unwrap(),
            ("W3".to_string(), "North".to_string())
        );
        for (code, name) in [("W 3", "North"), ("", "North"), ("W3", "  ")] {
            assert!(matches!(
                checked(code, name),
                Err(StoreError::Refused(Problem::WarehouseCodeOrName))
            ));
        }
    }
}
