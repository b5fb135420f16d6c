//! Master data: writes that devices will pull, recorded in the change log.
use fieldsync_protocol::v1::EntityKind;

use super::sql::IntoVal;
use std::collections::HashMap;

pub use super::sql::{Val, insert_rows};
use super::sql::{exec_on, id_on, insert, one_on, select_in, table_row};
use super::{Problem, Result, Store, StoreError, now_ms};

/// One entry for the change log: an entity as seen by a scope (0 = the whole distributor).
#[derive(Debug, Clone, Copy)]
pub struct ChangeRef {
    pub kind: EntityKind,
    pub entity_id: i64,
    pub scope_id: i64,
    pub deleted: bool,
}

impl ChangeRef {
    pub fn upsert(kind: EntityKind, entity_id: i64, scope_id: i64) -> Self {
        ChangeRef {
            kind,
            entity_id,
            scope_id,
            deleted: false,
        }
    }
    pub fn delete(kind: EntityKind, entity_id: i64, scope_id: i64) -> Self {
        ChangeRef {
            kind,
            entity_id,
            scope_id,
            deleted: true,
        }
    }
}

/// Hands out `n` consecutive change-log numbers; returns the first. The `change_seq` counter
/// row stays locked until commit (PostgreSQL), so numbers become visible in the order they were
/// handed out (see [`record_changes`]).
pub async fn allocate_seqs(tx: &mut super::WriteTx, n: usize) -> Result<i64> {
    let (last,): (i64,) = sqlx::query_as(
        "UPDATE counters SET value = value + $1 WHERE name = 'change_seq' RETURNING value",
    )
    .bind(n as i64)
    .fetch_one(&mut **tx)
    .await?;
    Ok(last - n as i64 + 1)
}

/// Renumbers the given entities in the change log so devices pull them next.
///
/// The `change_seq` counter row is updated first: on PostgreSQL its row lock is held until
/// commit, so change numbers become visible in the order they were handed out and a
/// device's cursor can never pass a change that commits later. Returns the first number handed
/// out (the entries, without repeats, get consecutive numbers in the order given); 0 for none.
pub async fn record_changes(
    tx: &mut super::WriteTx,
    distributor_id: i64,
    changes: &[ChangeRef],
) -> Result<i64> {
    if changes.is_empty() {
        return Ok(0);
    }
    // One entry per (kind, entity, scope), the last one given: PostgreSQL refuses an
    // `ON CONFLICT DO UPDATE` that meets the same key twice in one statement (a file with
    // one outlet code twice did that).
    let mut seen = std::collections::HashSet::new();
    let mut unique: Vec<ChangeRef> = changes
        .iter()
        .rev()
        .filter(|c| seen.insert((c.kind as i32, c.entity_id, c.scope_id)))
        .copied()
        .collect();
    unique.reverse();
    let changes = &unique[..];
    let first = allocate_seqs(tx, changes.len()).await?;
    for (chunk_no, chunk) in changes.chunks(400).enumerate() {
        let mut sql = String::from(
            "INSERT INTO change_log (seq, distributor_id, entity_kind, entity_id, scope_id, deleted) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            let b = i * 6;
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6
            ));
        }
        sql.push_str(
            " ON CONFLICT (entity_kind, entity_id, scope_id) DO UPDATE SET
              seq = excluded.seq, deleted = excluded.deleted, distributor_id = excluded.distributor_id",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, c) in chunk.iter().enumerate() {
            q = q
                .bind(first + (chunk_no * 400 + i) as i64)
                .bind(distributor_id)
                .bind(c.kind as i32 as i64)
                .bind(c.entity_id)
                .bind(c.scope_id)
                .bind(c.deleted as i64);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(first)
}

/// Records the changes (see [`record_changes`]) and commits: the end of every master-data
/// write.
pub async fn commit_changes(
    mut tx: super::WriteTx,
    distributor_id: i64,
    changes: &[ChangeRef],
) -> Result<()> {
    record_changes(&mut tx, distributor_id, changes).await?;
    tx.commit().await
}

/// Ends a batch of master-data writes: records the changes and commits, or in a dry run
/// rolls everything back (the statements ran, so what they found is what a real run would
/// find; no row and no change-log entry stays).
pub async fn finish_patch(
    tx: super::WriteTx,
    distributor_id: i64,
    changes: &[ChangeRef],
    dry_run: bool,
) -> Result<()> {
    if dry_run {
        tx.rollback().await
    } else {
        commit_changes(tx, distributor_id, changes).await
    }
}

/// Makes no open binding of a position (`$1`) its main one.
pub(crate) const UNSET_MAIN_BINDINGS: &str =
    "UPDATE position_staff SET is_main = 0 WHERE position_id = $1 AND valid_to IS NULL";

/// Sets a position's route for a date in `tx` (replacing any earlier one): the route's id
/// and the change its phone pulls.
pub(crate) async fn set_route_on(
    tx: &mut super::WriteTx,
    distributor_id: i64,
    position_id: i64,
    date: &str,
    outlet_ids: &[i64],
) -> Result<(i64, ChangeRef)> {
    let id = id_on(
        tx,
        "INSERT INTO routes (distributor_id, position_id, route_date) VALUES ($1, $2, $3)
         ON CONFLICT (position_id, route_date) DO UPDATE SET route_date = excluded.route_date
         RETURNING id",
        &[Val::I(distributor_id), Val::I(position_id), date.into_val()],
    )
    .await?;
    exec_on(
        tx,
        "DELETE FROM route_stops WHERE route_id = $1",
        &[Val::I(id)],
    )
    .await?;
    insert(tx, RouteStopRow::route(id, outlet_ids.iter().copied())).await?;
    Ok((id, ChangeRef::upsert(EntityKind::Route, id, position_id)))
}

table_row! {
    /// A stop of a route: its outlets are visited by `stop_order`, from 1.
    pub RouteStopRow => "route_stops" {
        route_id: i64,
        stop_order: i64,
        outlet_id: i64,
    }
}

impl RouteStopRow {
    /// The stops of a route that visits these outlets in this order.
    pub fn route(route_id: i64, outlet_ids: impl IntoIterator<Item = i64>) -> Vec<RouteStopRow> {
        outlet_ids
            .into_iter()
            .zip(1..)
            .map(|(outlet_id, stop_order)| RouteStopRow {
                route_id,
                stop_order,
                outlet_id,
            })
            .collect()
    }
}

/// An outlet's fields that an import or an editor may set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutletFields {
    pub name: String,
    pub address: String,
    pub contact_name: String,
    pub phone: String,
    pub channel: String,
    pub territory_id: Option<i64>,
    pub location: Option<(i32, i32)>,
    pub price_list_id: Option<i64>,
}

impl OutletFields {
    /// `$1` (an id), then the fields in the order the outlet statements bind them.
    fn vals(&self, first: i64) -> Vec<Val> {
        vec![
            Val::I(first),
            Val::S(self.name.clone()),
            Val::S(self.address.clone()),
            Val::S(self.contact_name.clone()),
            Val::S(self.phone.clone()),
            Val::S(self.channel.clone()),
            Val::N(self.territory_id),
            Val::N(self.location.map(|l| l.0 as i64)),
            Val::N(self.location.map(|l| l.1 as i64)),
            Val::N(self.price_list_id),
        ]
    }

    /// (field, before, after) of every field that differs.
    fn diff(&self, after: &OutletFields) -> Vec<(&'static str, String, String)> {
        let text = |o: Option<i64>| o.map(|v| v.to_string()).unwrap_or_default();
        let place = |l: Option<(i32, i32)>| {
            l.map(|(a, b)| format!("{:.7}, {:.7}", a as f64 / 1e7, b as f64 / 1e7))
                .unwrap_or_default()
        };
        [
            ("name", self.name.clone(), after.name.clone()),
            ("address", self.address.clone(), after.address.clone()),
            (
                "contact",
                self.contact_name.clone(),
                after.contact_name.clone(),
            ),
            ("phone", self.phone.clone(), after.phone.clone()),
            ("channel", self.channel.clone(), after.channel.clone()),
            (
                "territory",
                text(self.territory_id),
                text(after.territory_id),
            ),
            ("location", place(self.location), place(after.location)),
            (
                "price_list",
                text(self.price_list_id),
                text(after.price_list_id),
            ),
        ]
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .collect()
    }
}

/// How a batch of outlet or product patches is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchMode {
    /// Create new codes, change known ones.
    Apply,
    /// Run what `Apply` runs, then roll it back: the report is what `Apply` would do,
    /// nothing stays written.
    DryRun,
    /// Create new codes only; a live known code refuses the batch (the back office's "new"
    /// forms: decided under the same lock that imports take).
    CreateOnly,
}

impl PatchMode {
    /// An import's mode: `DryRun` or `Apply`.
    pub fn dry(dry_run: bool) -> PatchMode {
        if dry_run {
            PatchMode::DryRun
        } else {
            PatchMode::Apply
        }
    }
}

/// An outlet as an import gives it: a field that is `None` was not in the file and keeps what
/// is stored; `Some` sets it (an empty cell clears it).
#[derive(Debug, Clone, Default)]
pub struct OutletPatch {
    pub code: String,
    pub name: String,
    pub address: Option<String>,
    pub contact_name: Option<String>,
    pub phone: Option<String>,
    pub channel: Option<String>,
    pub territory_id: Option<Option<i64>>,
    pub location: Option<Option<(i32, i32)>>,
    pub price_list_id: Option<Option<i64>>,
}

impl OutletPatch {
    /// The fields after this patch.
    fn apply(&self, mut f: OutletFields) -> OutletFields {
        f.name = self.name.clone();
        let set = |v: &Option<String>, old: &mut String| {
            if let Some(v) = v {
                *old = v.clone();
            }
        };
        set(&self.address, &mut f.address);
        set(&self.contact_name, &mut f.contact_name);
        set(&self.phone, &mut f.phone);
        set(&self.channel, &mut f.channel);
        if let Some(t) = self.territory_id {
            f.territory_id = t;
        }
        if let Some(l) = self.location {
            f.location = l;
        }
        if let Some(p) = self.price_list_id {
            f.price_list_id = p;
        }
        f
    }
}

#[derive(Debug, Clone)]
struct StoredOutlet {
    id: i64,
    fields: OutletFields,
    deleted: bool,
}

/// What an import did, or in a dry run would do, to stored rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchReport {
    pub created: i64,
    pub changed: i64,
    pub unchanged: i64,
    /// Stored rows the import replaces without a successor (the lines of a re-sent invoice
    /// beyond its new last line).
    pub removed: i64,
    /// The first changes: (code, field, before, after).
    pub diffs: Vec<(String, String, String, String)>,
}

/// How many field changes a report keeps.
const REPORTED_DIFFS: usize = 20;

impl PatchReport {
    pub(crate) fn note_changes(&mut self, code: &str, diffs: &[(&'static str, String, String)]) {
        for (field, before, after) in diffs {
            if self.diffs.len() < REPORTED_DIFFS {
                self.diffs.push((
                    code.into(),
                    field.to_string(),
                    before.clone(),
                    after.clone(),
                ));
            }
        }
    }

    pub fn add(&mut self, other: PatchReport) {
        self.created += other.created;
        self.changed += other.changed;
        self.unchanged += other.unchanged;
        self.removed += other.removed;
        for d in other.diffs {
            if self.diffs.len() < REPORTED_DIFFS {
                self.diffs.push(d);
            }
        }
    }

    /// "3 created, 5 changed, 40 unchanged; O1 name: A → B; ..."
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} created, {} changed, {} unchanged",
            self.created, self.changed, self.unchanged
        );
        if self.removed > 0 {
            s.push_str(&format!(", {} removed", self.removed));
        }
        for (code, field, before, after) in &self.diffs {
            s.push_str(&format!("; {code} {field}: {before:?} → {after:?}"));
        }
        s
    }
}

/// A product's fields that an import or an editor may set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductFields {
    pub name: String,
    pub unit: String,
    pub category: String,
    pub brand: String,
    pub must_stock: bool,
    /// The outlet channels the product is must-stock for, sorted; none: every channel (and
    /// none at all when it is not must-stock).
    pub must_stock_channels: Vec<String>,
}

/// At most this many must-stock channels a product, each at most [`MAX_CHANNEL_CHARS`] long:
/// a form or a file cell cannot make one save write an unbounded number of rows.
pub const MAX_MUST_STOCK_CHANNELS: usize = 50;
/// The longest outlet channel a must-stock list names.
pub const MAX_CHANNEL_CHARS: usize = 64;

/// [`must_stock_channels`] when they fit the bounds, the problem otherwise.
pub fn checked_must_stock_channels<S: AsRef<str>>(
    channels: &[S],
) -> std::result::Result<Vec<String>, Problem> {
    let out = must_stock_channels(channels);
    if out.len() > MAX_MUST_STOCK_CHANNELS
        || out.iter().any(|c| c.chars().count() > MAX_CHANNEL_CHARS)
    {
        return Err(Problem::MustStockChannels);
    }
    Ok(out)
}

/// Must-stock channels as stored: trimmed, without empty ones, sorted, each once.
pub fn must_stock_channels<S: AsRef<str>>(channels: &[S]) -> Vec<String> {
    let mut out: Vec<String> = channels
        .iter()
        .map(|c| c.as_ref().trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

impl ProductFields {
    fn diff(&self, after: &ProductFields) -> Vec<(&'static str, String, String)> {
        [
            ("name", self.name.clone(), after.name.clone()),
            ("unit", self.unit.clone(), after.unit.clone()),
            ("category", self.category.clone(), after.category.clone()),
            ("brand", self.brand.clone(), after.brand.clone()),
            (
                "must_stock",
                self.must_stock.to_string(),
                after.must_stock.to_string(),
            ),
            (
                "must_stock_channels",
                self.must_stock_channels.join(";"),
                after.must_stock_channels.join(";"),
            ),
        ]
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .collect()
    }
}

/// A product as an import gives it: `None` fields were not in the file and keep what is
/// stored.
#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    pub code: String,
    pub name: String,
    pub unit: Option<String>,
    pub category: Option<String>,
    pub brand: Option<String>,
    pub must_stock: Option<bool>,
    /// The channels it is must-stock for (empty: every channel); `None` keeps the stored ones.
    /// A product that is not must-stock keeps none.
    pub must_stock_channels: Option<Vec<String>>,
}

/// A question of a questionnaire being created.
#[derive(Debug, Clone)]
pub struct QuestionInput {
    pub text: String,
    /// One of yes_no, number, text, single_choice, multiple_choice, date.
    pub question_type: String,
    pub required: bool,
    pub choices: Vec<String>,
    /// (index of an earlier question in this list, required yes/no answer or choice index).
    pub condition: Option<(usize, QuestionConditionInput)>,
}

#[derive(Debug, Clone, Copy)]
pub enum QuestionConditionInput {
    Yes(bool),
    Choice(usize),
}

impl Store {
    pub async fn create_distributor(&self, code: &str, name: &str, currency: &str) -> Result<i64> {
        self.one_id(
            "INSERT INTO distributors (code, name, currency) VALUES ($1, $2, $3) RETURNING id",
            &[code.into_val(), name.into_val(), currency.into_val()],
        )
        .await
    }

    pub async fn create_org_unit(
        &self,
        distributor_id: i64,
        parent_id: Option<i64>,
        kind: &str,
        code: &str,
        name: &str,
    ) -> Result<i64> {
        self.one_id(
            "INSERT INTO org_units (distributor_id, parent_id, kind, code, name)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[
                Val::I(distributor_id),
                Val::N(parent_id),
                kind.into_val(),
                code.into_val(),
                name.into_val(),
            ],
        )
        .await
    }

    /// Creates a staff member bound to a position from `valid_from` (YYYY-MM-DD). A main
    /// binding takes the "main" flag from the position's other open bindings. Returns the
    /// binding's id.
    pub async fn create_staff_for_position(
        &self,
        distributor_id: i64,
        position_id: i64,
        first_name: &str,
        last_name: &str,
        is_main: bool,
        valid_from: &str,
    ) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let code = format!("ST-{}", uuid::Uuid::now_v7().simple());
        let id = id_on(
            &mut tx,
            "INSERT INTO staff (distributor_id, first_name, last_name, external_code)
             VALUES ($1, $2, $3, $4) RETURNING id",
            &[
                Val::I(distributor_id),
                first_name.into_val(),
                last_name.into_val(),
                Val::S(code),
            ],
        )
        .await?;
        if is_main {
            exec_on(&mut tx, UNSET_MAIN_BINDINGS, &[Val::I(position_id)]).await?;
        }
        let binding = id_on(
            &mut tx,
            "INSERT INTO position_staff (position_id, staff_id, is_main, valid_from) VALUES ($1, $2, $3, $4) RETURNING id",
            &[
                Val::I(position_id),
                Val::I(id),
                is_main.into_val(),
                valid_from.into_val(),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(binding)
    }

    pub async fn create_mobile_user(
        &self,
        distributor_id: i64,
        position_id: i64,
        login: &str,
    ) -> Result<i64> {
        self.one_id(
            "INSERT INTO mobile_users (distributor_id, position_id, login, created_at_ms)
             VALUES ($1, $2, $3, $4) RETURNING id",
            &[
                Val::I(distributor_id),
                Val::I(position_id),
                login.into_val(),
                Val::I(now_ms()),
            ],
        )
        .await
    }

    pub async fn create_price_list(
        &self,
        distributor_id: i64,
        name: &str,
        payment_form: &str,
    ) -> Result<i64> {
        let form = super::pricing::PriceListForm { name, payment_form };
        self.save_price_list(distributor_id, None, &form).await
    }

    /// Applies outlets as an import gives them: a new code is created (with the distributor's
    /// default price list, or its first, when the file names none), a known one is changed
    /// only in what the file has a column for. An outlet that moves to another territory
    /// leaves a tombstone in the old one, so its phones drop it. In `PatchMode::DryRun`
    /// the same statements run and are rolled back: the report says what would have been,
    /// nothing stays written.
    pub async fn upsert_outlets(
        &self,
        distributor_id: i64,
        outlets: &[OutletPatch],
        mode: PatchMode,
    ) -> Result<PatchReport> {
        let dry_run = mode == PatchMode::DryRun;
        type Row = (
            i64,
            String,
            String,
            String,
            String,
            String,
            String,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            i64,
        );
        let mut tx = self.begin_write().await?;
        // Read, merge, write: concurrent imports of this distributor take turns.
        self.serialise_distributor(&mut tx, distributor_id).await?;
        let codes: Vec<String> = outlets.iter().map(|o| o.code.clone()).collect();
        let stored: Vec<Row> = select_in!(
            tx,
            Row,
            "SELECT id, code, name, address, contact_name, phone, channel, territory_id, lat_e7, lon_e7, \
             price_list_id, deleted FROM outlets WHERE distributor_id = $1 AND code IN ({})",
            [distributor_id],
            codes
        );
        let mut stored: HashMap<String, StoredOutlet> = stored
            .into_iter()
            .map(|r| {
                (
                    r.1.clone(),
                    StoredOutlet {
                        id: r.0,
                        fields: OutletFields {
                            name: r.2,
                            address: r.3,
                            contact_name: r.4,
                            phone: r.5,
                            channel: r.6,
                            territory_id: r.7,
                            location: r.8.zip(r.9).map(|(a, b)| (a as i32, b as i32)),
                            price_list_id: r.10,
                        },
                        deleted: r.11 != 0,
                    },
                )
            })
            .collect();
        let (default_price_list,): (Option<i64>,) = one_on(
            &mut tx,
            super::editors::DEFAULT_PRICE_LIST,
            &[Val::I(distributor_id)],
        )
        .await?;
        let mut report = PatchReport::default();
        let mut changes = Vec::new();
        let mut moved: Vec<(i64, i64)> = Vec::new();
        for o in outlets {
            let known = stored.get(&o.code).cloned();
            let before = known.as_ref().map(|k| k.fields.clone());
            let after = o.apply(before.clone().unwrap_or(OutletFields {
                price_list_id: default_price_list,
                ..OutletFields::default()
            }));
            let id = match &known {
                Some(k) if !k.deleted && mode == PatchMode::CreateOnly => {
                    return Err(StoreError::Refused(Problem::OutletCodeTaken));
                }
                Some(k) if !k.deleted && before.as_ref() == Some(&after) => {
                    report.unchanged += 1;
                    continue;
                }
                Some(k) => {
                    report.note_changes(&o.code, &k.fields.diff(&after));
                    report.changed += 1;
                    exec_on(
                        &mut tx,
                        "UPDATE outlets SET name = $2, address = $3, contact_name = $4, phone = $5, \
                         channel = $6, territory_id = $7, lat_e7 = $8, lon_e7 = $9, price_list_id = $10, \
                         deleted = 0 WHERE id = $1",
                        &after.vals(k.id),
                    )
                    .await?;
                    if k.fields.territory_id != after.territory_id {
                        changes.push(ChangeRef::delete(
                            EntityKind::Outlet,
                            k.id,
                            k.fields.territory_id.unwrap_or(-1),
                        ));
                        moved.push((k.id, after.territory_id.unwrap_or(-1)));
                    }
                    k.id
                }
                None => {
                    report.created += 1;
                    let mut vals = after.vals(distributor_id);
                    vals.push(Val::S(o.code.clone()));
                    let (id,): (i64,) = one_on(
                        &mut tx,
                        "INSERT INTO outlets (distributor_id, name, address, contact_name, phone, channel, \
                         territory_id, lat_e7, lon_e7, price_list_id, code, deleted) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0) RETURNING id",
                        &vals,
                    )
                    .await?;
                    id
                }
            };
            changes.push(ChangeRef::upsert(
                EntityKind::Outlet,
                id,
                after.territory_id.unwrap_or(-1),
            ));
            stored.insert(
                o.code.clone(),
                StoredOutlet {
                    id,
                    fields: after,
                    deleted: false,
                },
            );
        }
        // A moved outlet's shared card goes whole to the phones of its new territory (its
        // change rows so far are in the old territory's scope).
        if !moved.is_empty() {
            let ids: Vec<i64> = moved.iter().map(|m| m.0).collect();
            let with_card: Vec<(i64,)> = select_in!(
                tx,
                (i64,),
                "SELECT outlet_id FROM card_docs WHERE outlet_id IN ({})",
                [],
                ids.clone()
            );
            for (id,) in with_card {
                if let Some((_, to)) = moved.iter().find(|m| m.0 == id) {
                    changes.push(ChangeRef::upsert(EntityKind::OutletCard, id, *to));
                }
            }
            // So do its open invoices.
            let with_debt: Vec<(i64,)> = select_in!(
                tx,
                (i64,),
                "SELECT DISTINCT outlet_id FROM receivables WHERE outlet_id IN ({})",
                [],
                ids
            );
            for (id,) in with_debt {
                if let Some((_, to)) = moved.iter().find(|m| m.0 == id) {
                    changes.push(ChangeRef::upsert(EntityKind::Receivables, id, *to));
                }
            }
        }
        finish_patch(tx, distributor_id, &changes, dry_run).await?;
        Ok(report)
    }

    /// Marks an outlet deleted; devices receive a tombstone.
    pub async fn delete_outlet(&self, distributor_id: i64, outlet_id: i64) -> Result<()> {
        self.change_outlet(
            distributor_id,
            outlet_id,
            "UPDATE outlets SET deleted = 1 WHERE id = $1 AND distributor_id = $2 RETURNING territory_id",
            &[],
            true,
        )
        .await
    }

    /// Sets an outlet's reference location (e.g. adopted from a visit's fix).
    pub async fn set_outlet_location(
        &self,
        distributor_id: i64,
        outlet_id: i64,
        lat_e7: i32,
        lon_e7: i32,
    ) -> Result<()> {
        self.change_outlet(
            distributor_id,
            outlet_id,
            "UPDATE outlets SET lat_e7 = $3, lon_e7 = $4 WHERE id = $1 AND distributor_id = $2 RETURNING territory_id",
            &[Val::I(lat_e7 as i64), Val::I(lon_e7 as i64)],
            false,
        )
        .await
    }

    /// Runs an update of one outlet (`$1` its id, `$2` its distributor, then `more`) that
    /// returns its territory, and records the change (a tombstone when `deleted`) for the
    /// devices of that territory.
    async fn change_outlet(
        &self,
        distributor_id: i64,
        outlet_id: i64,
        sql: &'static str,
        more: &[Val],
        deleted: bool,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // An import merging a file with this outlet's row must not overwrite this change.
        self.serialise_distributor(&mut tx, distributor_id).await?;
        let mut vals = vec![Val::I(outlet_id), Val::I(distributor_id)];
        vals.extend_from_slice(more);
        let (territory,): (Option<i64>,) = one_on(&mut tx, sql, &vals).await?;
        let territory = territory.unwrap_or(-1);
        let change = if deleted {
            ChangeRef::delete(EntityKind::Outlet, outlet_id, territory)
        } else {
            ChangeRef::upsert(EntityKind::Outlet, outlet_id, territory)
        };
        commit_changes(tx, distributor_id, &[change]).await
    }

    /// Applies products as an import gives them: a new code is created (unit `pcs` unless
    /// given), a known one changes only in what the file has a column for. In
    /// `PatchMode::DryRun` the same statements run and are rolled back.
    pub async fn upsert_products(
        &self,
        distributor_id: i64,
        products: &[ProductPatch],
        mode: PatchMode,
    ) -> Result<PatchReport> {
        let dry_run = mode == PatchMode::DryRun;
        type Row = (i64, String, String, String, String, i64, i64, String);
        let mut tx = self.begin_write().await?;
        // Read, merge, write: concurrent imports of this distributor take turns.
        self.serialise_distributor(&mut tx, distributor_id).await?;
        let codes: Vec<String> = products.iter().map(|p| p.code.clone()).collect();
        let rows: Vec<Row> = select_in!(
            tx,
            Row,
            "SELECT id, code, name, unit, category, must_stock, deleted, brand FROM products \
             WHERE distributor_id = $1 AND code IN ({})",
            [distributor_id],
            codes.clone()
        );
        let channel_rows: Vec<(String, String)> = select_in!(
            tx,
            (String, String),
            "SELECT p.code, c.channel FROM product_must_stock_channels c \
             JOIN products p ON p.id = c.product_id \
             WHERE p.distributor_id = $1 AND p.code IN ({}) ORDER BY c.channel",
            [distributor_id],
            codes
        );
        let mut channels: HashMap<String, Vec<String>> = HashMap::new();
        for (code, channel) in channel_rows {
            channels.entry(code).or_default().push(channel);
        }
        let mut stored: HashMap<String, (i64, ProductFields, bool)> = rows
            .into_iter()
            .map(|r| {
                let fields = ProductFields {
                    name: r.2,
                    unit: r.3,
                    category: r.4,
                    brand: r.7,
                    must_stock: r.5 != 0,
                    must_stock_channels: channels.remove(&r.1).unwrap_or_default(),
                };
                (r.1, (r.0, fields, r.6 != 0))
            })
            .collect();
        let mut report = PatchReport::default();
        let mut changes = Vec::new();
        for p in products {
            let known = stored.get(&p.code).cloned();
            let mut after = known
                .as_ref()
                .map(|k| k.1.clone())
                .unwrap_or(ProductFields {
                    unit: "pcs".into(),
                    ..ProductFields::default()
                });
            after.name = p.name.clone();
            if let Some(u) = &p.unit {
                after.unit = if u.is_empty() {
                    "pcs".into()
                } else {
                    u.clone()
                };
            }
            if let Some(c) = &p.category {
                after.category = c.clone();
            }
            if let Some(b) = &p.brand {
                after.brand = b.clone();
            }
            if let Some(m) = p.must_stock {
                after.must_stock = m;
            }
            if let Some(c) = &p.must_stock_channels {
                after.must_stock_channels = must_stock_channels(c);
            }
            if !after.must_stock {
                after.must_stock_channels.clear();
            }
            let channels_before = known.as_ref().map(|k| k.1.must_stock_channels.clone());
            let vals = |first: i64| {
                vec![
                    Val::I(first),
                    Val::S(after.name.clone()),
                    Val::S(after.unit.clone()),
                    Val::S(after.category.clone()),
                    Val::I(after.must_stock as i64),
                    Val::S(after.brand.clone()),
                ]
            };
            let id = match &known {
                Some((_, _, deleted)) if !deleted && mode == PatchMode::CreateOnly => {
                    return Err(StoreError::Refused(Problem::ProductCodeTaken));
                }
                Some((_, before, deleted)) if !deleted && *before == after => {
                    report.unchanged += 1;
                    continue;
                }
                Some((id, before, _)) => {
                    report.note_changes(&p.code, &before.diff(&after));
                    report.changed += 1;
                    exec_on(
                        &mut tx,
                        "UPDATE products SET name = $2, unit = $3, category = $4, must_stock = $5, \
                         brand = $6, deleted = 0 WHERE id = $1",
                        &vals(*id),
                    )
                    .await?;
                    *id
                }
                None => {
                    report.created += 1;
                    let mut v = vals(distributor_id);
                    v.push(Val::S(p.code.clone()));
                    let (id,): (i64,) = one_on(
                        &mut tx,
                        "INSERT INTO products (distributor_id, name, unit, category, must_stock, brand, code, deleted) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, 0) RETURNING id",
                        &v,
                    )
                    .await?;
                    id
                }
            };
            if channels_before.as_ref() != Some(&after.must_stock_channels) {
                write_must_stock_channels(&mut tx, id, &after.must_stock_channels).await?;
            }
            changes.push(ChangeRef::upsert(EntityKind::Product, id, 0));
            stored.insert(p.code.clone(), (id, after, false));
        }
        finish_patch(tx, distributor_id, &changes, dry_run).await?;
        Ok(report)
    }

    pub async fn delete_product(&self, distributor_id: i64, product_id: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        id_on(
            &mut tx,
            "UPDATE products SET deleted = 1 WHERE id = $1 AND distributor_id = $2 RETURNING id",
            &[Val::I(product_id), Val::I(distributor_id)],
        )
        .await?;
        let change = ChangeRef::delete(EntityKind::Product, product_id, 0);
        commit_changes(tx, distributor_id, &[change]).await
    }

    /// Sets a position's route for a date (replacing any earlier one); returns the route id.
    pub async fn set_route(
        &self,
        distributor_id: i64,
        position_id: i64,
        date: &str,
        outlet_ids: &[i64],
    ) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let (id, change) =
            set_route_on(&mut tx, distributor_id, position_id, date, outlet_ids).await?;
        commit_changes(tx, distributor_id, &[change]).await?;
        Ok(id)
    }

    /// Creates a questionnaire with its questions; returns its id.
    pub async fn create_questionnaire(
        &self,
        distributor_id: i64,
        name: &str,
        questions: &[QuestionInput],
    ) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let qid = id_on(
            &mut tx,
            "INSERT INTO questionnaires (distributor_id, name, active) VALUES ($1, $2, 1) RETURNING id",
            &[Val::I(distributor_id), name.into_val()],
        )
        .await?;
        let mut question_ids: Vec<i64> = Vec::new();
        let mut choice_ids: Vec<Vec<i64>> = Vec::new();
        for (pos, q) in questions.iter().enumerate() {
            let (cond_q, cond_yes, cond_choice) = match q.condition {
                None => (None, 1, None),
                Some((idx, QuestionConditionInput::Yes(y))) => {
                    (Some(question_ids[idx]), y as i64, None)
                }
                Some((idx, QuestionConditionInput::Choice(c))) => {
                    (Some(question_ids[idx]), 1, Some(choice_ids[idx][c]))
                }
            };
            let id = id_on(
                &mut tx,
                "INSERT INTO questions (questionnaire_id, position, text, question_type, required,
                                        condition_question_id, condition_yes, condition_choice_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[
                    Val::I(qid),
                    Val::I(pos as i64 + 1),
                    Val::S(q.text.clone()),
                    Val::S(q.question_type.clone()),
                    q.required.into_val(),
                    Val::N(cond_q),
                    Val::I(cond_yes),
                    Val::N(cond_choice),
                ],
            )
            .await?;
            let mut ids = Vec::new();
            for (cpos, label) in q.choices.iter().enumerate() {
                let choice = [Val::I(id), Val::I(cpos as i64 + 1), label.into_val()];
                ids.push(
                    id_on(
                        &mut tx,
                        "INSERT INTO question_choices (question_id, position, label) VALUES ($1, $2, $3) RETURNING id",
                        &choice,
                    )
                    .await?,
                );
            }
            question_ids.push(id);
            choice_ids.push(ids);
        }
        let change = ChangeRef::upsert(EntityKind::Questionnaire, qid, 0);
        commit_changes(tx, distributor_id, &[change]).await?;
        Ok(qid)
    }

    /// Looks a distributor up by code.
    pub async fn distributor_id(&self, code: &str) -> Result<i64> {
        self.one_id(
            "SELECT id FROM distributors WHERE code = $1",
            &[code.into_val()],
        )
        .await
    }
}

/// Replaces the must-stock channels of product `id` (none: every channel).
async fn write_must_stock_channels(
    tx: &mut sqlx::AnyConnection,
    id: i64,
    channels: &[String],
) -> Result<()> {
    exec_on(
        tx,
        "DELETE FROM product_must_stock_channels WHERE product_id = $1",
        &[Val::I(id)],
    )
    .await?;
    for channel in channels {
        exec_on(
            tx,
            "INSERT INTO product_must_stock_channels (product_id, channel) VALUES ($1, $2)",
            &[Val::I(id), Val::S(channel.clone())],
        )
        .await?;
    }
    Ok(())
}
