//! Positions and the staff bound to them, as the back office edits them (the binding itself
//! is made by `Store::bind_staff` in `world`).
use super::sql::{IntoVal, Val, keyed_reads};
use super::world::UNSET_MAIN_BINDINGS;
use super::{Result, Store};

/// A position as pickers show it.
#[derive(Debug, Clone)]
pub struct PositionRef {
    pub id: i64,
    pub distributor_id: i64,
    pub name: String,
    pub distributor_code: String,
}

/// A person's binding to a position.
#[derive(Debug, Clone)]
pub struct Binding {
    pub distributor_id: i64,
    pub position_id: i64,
    pub position: String,
    pub first_name: String,
    pub last_name: String,
    pub external_code: String,
    pub is_main: bool,
    pub valid_from: String,
    pub valid_to: Option<String>,
}

keyed_reads! {
    /// The distributor of a live position (`None` for no such position, or an ended one).
    position_distributor(id: i64) -> Option<i64> = opt_col_by(
        "SELECT distributor_id FROM org_units WHERE id = $1 AND kind = 'position' AND ended_at_ms IS NULL"
    );
}

impl Store {
    /// Positions of every distributor (at most 2,000), by distributor code and name.
    pub async fn positions(&self) -> Result<Vec<PositionRef>> {
        let rows: Vec<(i64, i64, String, String)> = self.rows(
            "SELECT p.id, p.distributor_id, p.name, d.code FROM org_units p JOIN distributors d ON d.id = p.distributor_id \
             WHERE p.kind = 'position' AND p.ended_at_ms IS NULL ORDER BY d.code, p.name LIMIT 2000",
             &[],
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, distributor_id, name, distributor_code)| PositionRef {
                id,
                distributor_id,
                name,
                distributor_code,
            })
            .collect())
    }

    pub async fn binding(&self, id: i64) -> Result<Option<Binding>> {
        let row: Option<(i64, i64, String, String, String, String, i64, String, Option<String>)> =
            self.opt(
                "SELECT st.distributor_id, ps.position_id, p.name, st.first_name, st.last_name, st.external_code, \
                 ps.is_main, ps.valid_from, ps.valid_to FROM position_staff ps JOIN staff st ON st.id = ps.staff_id \
                 JOIN org_units p ON p.id = ps.position_id WHERE ps.id = $1",
                &[id.into_val()],
            )
            .await?;
        Ok(row.map(|r| Binding {
            distributor_id: r.0,
            position_id: r.1,
            position: r.2,
            first_name: r.3,
            last_name: r.4,
            external_code: r.5,
            is_main: r.6 != 0,
            valid_from: r.7,
            valid_to: r.8,
        }))
    }

    /// Ends a binding on a date (it is no longer the main one).
    pub async fn end_binding(&self, id: i64, valid_to: &str) -> Result<()> {
        self.exec(
            "UPDATE position_staff SET valid_to = $1, is_main = 0 WHERE id = $2",
            &[valid_to.into_val(), id.into_val()],
        )
        .await?;
        Ok(())
    }

    /// Makes a binding the main one of its position (the others of that position stop being
    /// main), in one transaction.
    pub async fn make_main_binding(&self, id: i64, position_id: i64) -> Result<()> {
        self.exec_each(&[
            (UNSET_MAIN_BINDINGS, &[Val::I(position_id)]),
            (
                "UPDATE position_staff SET is_main = 1 WHERE id = $1",
                &[Val::I(id)],
            ),
        ])
        .await
    }
}
