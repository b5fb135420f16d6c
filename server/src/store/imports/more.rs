//! The kinds whose rules live elsewhere in the store, called rather than copied: org units
//! and positions (the org tree editor's rules, [`super::super::org`]), price lists
//! ([`super::super::pricing`]) and sync points of key users ([`super::super::tenants`]).
//! Each runs in one transaction, row after row in file order; a refused row writes nothing
//! (every check comes before its row's first write) and the others are applied.
use std::collections::{HashMap, HashSet};

use super::super::keyusers::Role;
use super::super::org::{add_org_unit_on, checked_name, move_org_unit_on, rename_org_unit_on};
use super::super::pricing::{PriceListForm, save_price_list_on};
use super::super::sql::{Val, exec_on, rows_on};
use super::super::tenants::Actor;
use super::super::world::{PatchReport, finish_patch, record_changes};
use super::super::{Problem, Result, Store, StoreError, WriteTx};
use super::{ImportScope, Refused, Table, cell};

/// What an import kind answers: rows applied and refused rows, or why the whole file is.
type Outcome = std::result::Result<(i64, Refused), String>;

/// A refusal of the store's rules as the reason of a refused row; any other error stays one.
fn refusal<T>(r: Result<T>) -> Result<std::result::Result<T, String>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(StoreError::Refused(p)) => Ok(Err(p.to_string())),
        Err(e) => Err(e),
    }
}

/// A yes/no cell of an optional column: `None` without the column, an empty cell is no.
fn flag(t: &Table, r: &[String], column: &str) -> std::result::Result<Option<bool>, String> {
    if t.col(column).is_none() {
        return Ok(None);
    }
    match cell(t, r, column).to_lowercase().as_str() {
        "" | "0" | "no" | "false" => Ok(Some(false)),
        "1" | "yes" | "true" => Ok(Some(true)),
        other => Err(format!("{column} {other:?} is not yes/no")),
    }
}

/// An org unit row of a file.
struct UnitRow {
    line: i64,
    code: String,
    name: String,
    /// Empty: not given (needed only for a new unit).
    kind: String,
    /// `None` without the column (the unit stays where it is), `Some("")` at the top.
    parent: Option<String>,
}

/// A stored org unit as the import tracks it.
#[derive(Clone)]
struct Unit {
    id: i64,
    kind: String,
    name: String,
    parent_id: Option<i64>,
}

impl Store {
    /// Org units and positions by code: a new code is created under its parent (its kind
    /// needed), a known one renamed and moved when its parent code changes (a position's
    /// phone follows it, as in the org editor); its kind never changes. A parent may come
    /// later in the file than its children.
    pub(super) async fn import_org_units(
        &self,
        d: i64,
        t: &Table,
        report: &mut PatchReport,
        dry_run: bool,
    ) -> Result<Outcome> {
        let mut refused = Refused::new();
        let has_parent = t.col("parent_code").is_some();
        let mut pending = Vec::new();
        for (line, r) in &t.rows {
            let (code, name) = (cell(t, r, "code"), cell(t, r, "name"));
            if code.is_empty() || name.is_empty() {
                refused.push((*line, "code and name are required".into()));
                continue;
            }
            pending.push(UnitRow {
                line: *line,
                code: code.into(),
                name: name.into(),
                kind: cell(t, r, "kind").to_lowercase(),
                parent: has_parent.then(|| cell(t, r, "parent_code").to_string()),
            });
        }
        let mut tx = self.begin_write().await?;
        // The org editor's writers take turns with this import.
        self.serialise_distributor(&mut tx, d).await?;
        let stored: Vec<(i64, String, String, String, Option<i64>)> = rows_on(
            &mut tx,
            "SELECT id, code, kind, name, parent_id FROM org_units WHERE distributor_id = $1",
            &[Val::I(d)],
        )
        .await?;
        let mut code_of: HashMap<i64, String> = HashMap::new();
        let mut units: HashMap<String, Unit> = HashMap::new();
        for (id, code, kind, name, parent_id) in stored {
            code_of.insert(id, code.clone());
            units.insert(
                code,
                Unit {
                    id,
                    kind,
                    name,
                    parent_id,
                },
            );
        }
        let mut applied = 0;
        // Passes in file order: a row whose parent is a new unit of a later row waits for it.
        loop {
            let waiting: HashSet<String> = pending
                .iter()
                .filter(|r| !units.contains_key(&r.code))
                .map(|r| r.code.clone())
                .collect();
            let (mut next, mut progress) = (Vec::new(), false);
            for row in pending {
                let parent = match row.parent.as_deref() {
                    None => None,
                    Some("") => Some(None),
                    Some(p) if p == row.code => {
                        refused.push((row.line, Problem::OrgCycle.to_string()));
                        progress = true;
                        continue;
                    }
                    Some(p) => match units.get(p) {
                        Some(u) => Some(Some(u.id)),
                        None if waiting.contains(p) => {
                            next.push(row);
                            continue;
                        }
                        None => {
                            refused
                                .push((row.line, format!("no org unit {p:?} to place it under")));
                            progress = true;
                            continue;
                        }
                    },
                };
                progress = true;
                let done =
                    unit_row(&mut tx, d, &row, parent, &mut units, &mut code_of, report).await?;
                match done {
                    Ok(()) => applied += 1,
                    Err(reason) => refused.push((row.line, reason)),
                }
            }
            if next.is_empty() {
                break;
            }
            if !progress {
                // Only rows waiting for each other are left: their parent codes go round.
                for row in next {
                    refused.push((
                        row.line,
                        format!(
                            "parent {:?} waits for a unit below it in this file: {}",
                            row.parent.unwrap_or_default(),
                            Problem::OrgCycle
                        ),
                    ));
                }
                break;
            }
            pending = next;
        }
        refused.sort_by_key(|r| r.0);
        // A moved position's changes are recorded with its move.
        finish_patch(tx, d, &[], dry_run).await?;
        Ok(Ok((applied, refused)))
    }

    /// Price lists by name: a new name is created (payment form `cash` unless given), a
    /// known one changes its payment form; `default` yes makes it the one new outlets get,
    /// no (or empty) stops it being that.
    pub(super) async fn import_price_lists(
        &self,
        d: i64,
        t: &Table,
        report: &mut PatchReport,
        dry_run: bool,
    ) -> Result<Outcome> {
        let mut refused = Refused::new();
        let has_form = t.col("payment_form").is_some();
        let mut tx = self.begin_write().await?;
        self.serialise_distributor(&mut tx, d).await?;
        // By name, the oldest list wins (the prices and outlets imports read them so).
        let stored: Vec<(i64, String, String)> = rows_on(
            &mut tx,
            "SELECT id, name, payment_form FROM price_lists WHERE distributor_id = $1 ORDER BY id DESC",
            &[Val::I(d)],
        )
        .await?;
        let mut lists: HashMap<String, (i64, String)> = stored
            .into_iter()
            .map(|(id, name, form)| (name, (id, form)))
            .collect();
        let (mut default,): (Option<i64>,) = super::super::sql::one_on(
            &mut tx,
            "SELECT default_price_list_id FROM distributors WHERE id = $1",
            &[Val::I(d)],
        )
        .await?;
        let mut applied = 0;
        for (line, r) in &t.rows {
            let name = cell(t, r, "name");
            if name.is_empty() {
                refused.push((*line, "name is required".into()));
                continue;
            }
            let is_default = match flag(t, r, "default") {
                Ok(f) => f,
                Err(reason) => {
                    refused.push((*line, reason));
                    continue;
                }
            };
            let known = lists.get(name).cloned();
            let form_cell = cell(t, r, "payment_form").to_lowercase();
            let payment_form = match (&known, has_form) {
                (_, true) if form_cell.is_empty() => "cash".to_string(),
                (_, true) => form_cell,
                (Some((_, stored)), false) => stored.clone(),
                (None, false) => "cash".to_string(),
            };
            let mut diffs = Vec::new();
            let id = match &known {
                Some((id, before)) if *before == payment_form => *id,
                _ => {
                    let form = PriceListForm {
                        name,
                        payment_form: &payment_form,
                    };
                    let saved = refusal(
                        save_price_list_on(&mut tx, d, known.as_ref().map(|k| k.0), &form).await,
                    )?;
                    let (id, change) = match saved {
                        Ok(v) => v,
                        Err(reason) => {
                            refused.push((*line, reason));
                            continue;
                        }
                    };
                    record_changes(&mut tx, d, &[change]).await?;
                    if let Some((_, before)) = &known {
                        diffs.push(("payment_form", before.clone(), payment_form.clone()));
                    }
                    id
                }
            };
            lists.insert(name.to_string(), (id, payment_form));
            let after = match is_default {
                Some(true) => Some(id),
                Some(false) if default == Some(id) => None,
                _ => default,
            };
            if after != default {
                exec_on(
                    &mut tx,
                    "UPDATE distributors SET default_price_list_id = $2 WHERE id = $1",
                    &[Val::I(d), Val::N(after)],
                )
                .await?;
                diffs.push((
                    "default",
                    (default == Some(id)).to_string(),
                    (after == Some(id)).to_string(),
                ));
                default = after;
            }
            applied += 1;
            if known.is_none() {
                report.created += 1;
            } else if diffs.is_empty() {
                report.unchanged += 1;
            } else {
                report.changed += 1;
                report.note_changes(name, &diffs);
            }
        }
        finish_patch(tx, d, &[], dry_run).await?;
        Ok(Ok((applied, refused)))
    }

    /// Which key users see which distributors: a row grants the distributor to the login
    /// (`granted` no, or empty, takes it back). The head office's only, by the rules of the
    /// accounts page: active distributors only, never to a head office account, and never
    /// the last sync point of an account that needs one or would see everything without.
    pub(super) async fn import_sync_points(
        &self,
        scope: ImportScope,
        t: &Table,
        report: &mut PatchReport,
        dry_run: bool,
    ) -> Result<Outcome> {
        if scope != ImportScope::HeadOffice {
            return Ok(Err(
                "sync points are granted by the head office only: a distributor's \
                 API key or login cannot grant sync points, not even its own"
                    .into(),
            ));
        }
        let actor = Actor {
            id: 0,
            role: Role::HeadOffice,
            grants: Vec::new(),
            active: Vec::new(),
        };
        let mut refused = Refused::new();
        let mut tx = self.begin_write().await?;
        let users: Vec<(i64, String, String)> =
            rows_on(&mut tx, "SELECT id, login, role FROM key_users", &[]).await?;
        let users: HashMap<String, (i64, Role)> = users
            .into_iter()
            .map(|(id, login, role)| (login, (id, Role::parse(&role).unwrap_or(Role::ReadOnly))))
            .collect();
        let distributors: Vec<(i64, String, Option<i64>)> = rows_on(
            &mut tx,
            "SELECT id, code, deactivated_at_ms FROM distributors",
            &[],
        )
        .await?;
        let distributors: HashMap<String, (i64, bool)> = distributors
            .into_iter()
            .map(|(id, code, off)| (code, (id, off.is_none())))
            .collect();
        let grants: Vec<(i64, i64)> = rows_on(
            &mut tx,
            "SELECT key_user_id, distributor_id FROM key_user_sync_points",
            &[],
        )
        .await?;
        let mut grants: HashMap<i64, Vec<i64>> =
            grants.into_iter().fold(HashMap::new(), |mut m, (u, d)| {
                m.entry(u).or_default().push(d);
                m
            });
        let mut applied = 0;
        for (line, r) in &t.rows {
            let (login, code) = (cell(t, r, "login"), cell(t, r, "distributor_code"));
            let outcome = sync_point_row(
                &mut tx,
                &actor,
                (login, code),
                flag(t, r, "granted"),
                &users,
                &distributors,
                &mut grants,
                report,
            )
            .await?;
            match outcome {
                Ok(()) => applied += 1,
                Err(reason) => refused.push((*line, reason)),
            }
        }
        // Grants are no distributor's master data: no change-log rows.
        match dry_run {
            true => tx.rollback().await?,
            false => tx.commit().await?,
        }
        Ok(Ok((applied, refused)))
    }
}

/// Applies one org unit row (its parent already resolved: `None` stays, `Some(None)` top).
async fn unit_row(
    tx: &mut WriteTx,
    d: i64,
    row: &UnitRow,
    parent: Option<Option<i64>>,
    units: &mut HashMap<String, Unit>,
    code_of: &mut HashMap<i64, String>,
    report: &mut PatchReport,
) -> Result<std::result::Result<(), String>> {
    if let Err(reason) = refusal(checked_name(&row.name))? {
        return Ok(Err(reason));
    }
    let code = |id: Option<i64>, code_of: &HashMap<i64, String>| {
        id.and_then(|id| code_of.get(&id).cloned())
            .unwrap_or_default()
    };
    let Some(unit) = units.get(&row.code).cloned() else {
        if row.kind.is_empty() {
            return Ok(Err(
                "kind is required for a new org unit: region, team, territory or position".into(),
            ));
        }
        let parent = parent.flatten();
        let added = add_org_unit_on(tx, d, parent, &row.kind, &row.code, &row.name).await;
        let id = match refusal(added)? {
            Ok(id) => id,
            Err(reason) => return Ok(Err(reason)),
        };
        report.created += 1;
        code_of.insert(id, row.code.clone());
        let unit = Unit {
            id,
            kind: row.kind.clone(),
            name: row.name.clone(),
            parent_id: parent,
        };
        units.insert(row.code.clone(), unit);
        return Ok(Ok(()));
    };
    if !row.kind.is_empty() && row.kind != unit.kind {
        return Ok(Err(format!(
            "org unit {:?} is a {}; its kind does not change",
            row.code, unit.kind
        )));
    }
    let mut diffs = Vec::new();
    let mut after = unit.clone();
    // The move first: every refusal of a rename (an ended unit) refuses the move before it.
    if let Some(parent) = parent.filter(|p| *p != unit.parent_id) {
        let changes = match refusal(move_org_unit_on(tx, d, unit.id, parent).await)? {
            Ok(c) => c,
            Err(reason) => return Ok(Err(reason)),
        };
        // Recorded now: the same position may move again further down the file.
        record_changes(tx, d, &changes).await?;
        diffs.push((
            "parent",
            code(unit.parent_id, code_of),
            code(parent, code_of),
        ));
        after.parent_id = parent;
    }
    if row.name != unit.name {
        if let Err(reason) = refusal(rename_org_unit_on(tx, d, unit.id, &row.name).await)? {
            return Ok(Err(reason));
        }
        diffs.push(("name", unit.name.clone(), row.name.clone()));
        after.name = row.name.clone();
    }
    if diffs.is_empty() {
        report.unchanged += 1;
    } else {
        report.changed += 1;
        report.note_changes(&row.code, &diffs);
    }
    units.insert(row.code.clone(), after);
    Ok(Ok(()))
}

/// Applies one sync point row: grants or takes back `distributor_code` of `login`.
#[allow(clippy::too_many_arguments)]
async fn sync_point_row(
    tx: &mut WriteTx,
    actor: &Actor,
    (login, code): (&str, &str),
    granted: std::result::Result<Option<bool>, String>,
    users: &HashMap<String, (i64, Role)>,
    distributors: &HashMap<String, (i64, bool)>,
    grants: &mut HashMap<i64, Vec<i64>>,
    report: &mut PatchReport,
) -> Result<std::result::Result<(), String>> {
    if login.is_empty() || code.is_empty() {
        return Ok(Err("login and distributor_code are required".into()));
    }
    let Some((user, role)) = users.get(login).copied() else {
        return Ok(Err(format!("no key user {login:?}")));
    };
    let Some((d, active)) = distributors.get(code).copied() else {
        return Ok(Err(Problem::UnknownDistributor(code.into()).to_string()));
    };
    let grant = match granted {
        Ok(g) => g.unwrap_or(true),
        Err(reason) => return Ok(Err(reason)),
    };
    if role == Role::HeadOffice {
        return Ok(Err(format!(
            "{login:?} is a head office account: it sees every distributor without sync points"
        )));
    }
    let held = grants.entry(user).or_default();
    let has = held.contains(&d);
    if grant == has {
        report.unchanged += 1;
        return Ok(Ok(()));
    }
    if grant {
        if !actor.may_grant(d, active) {
            return Ok(Err(format!(
                "distributor {code:?} is inactive; reactivate it before granting it"
            )));
        }
        exec_on(
            tx,
            "INSERT INTO key_user_sync_points (key_user_id, distributor_id) VALUES ($1, $2)",
            &[Val::I(user), Val::I(d)],
        )
        .await?;
        held.push(d);
        report.created += 1;
        return Ok(Ok(()));
    }
    let after: Vec<i64> = held.iter().copied().filter(|g| *g != d).collect();
    if let Some(p) = actor.refusal(role, &after) {
        return Ok(Err(p.to_string()));
    }
    if role == Role::ReadOnly && after.is_empty() {
        return Ok(Err(
            "a read-only account keeps its last sync point: without one it would see every distributor"
                .into(),
        ));
    }
    exec_on(
        tx,
        "DELETE FROM key_user_sync_points WHERE key_user_id = $1 AND distributor_id = $2",
        &[Val::I(user), Val::I(d)],
    )
    .await?;
    *held = after;
    report.changed += 1;
    report.note_changes(login, &[("sync_point", code.to_string(), String::new())]);
    Ok(Ok(()))
}
