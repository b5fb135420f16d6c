//! Field truth at ingest: once a batch's rows are written, the signals of every visit it
//! started or ended are computed from what is stored (its fixes, its outlet's reference, its
//! device and receive times, the device's preceding action, the same mobile user's previous
//! visit) and stored with the visit, in the same transaction. The rules are
//! `fieldsync_protocol::signals`; a signal flags, it never refuses.
//!
//! The previous visit is the one the same mobile user started before this one in the order
//! the server received them (by receive time, then by the device's sequence number), not by
//! the device's clock: a back-dated visit must not become the "previous visit" of the honest
//! ones recorded before it.
//!
//! A fixed number of statements per batch, whatever its size: one read of the visits (with
//! its outlet's reference and its distributor's bands by key), one look-up of the previous
//! visit (with its end) of each user's first visit in the batch on `visits_user_received`,
//! one of the fixes of the visits it did not start (the fixes of those it started are the
//! batch's own), then the rewrite of the evidence (every touched visit's, so evidence left
//! behind by a partial restore never blocks a re-push) and one update of the visits whose
//! signals or previous visit changed.
use super::rows::FixRow;
use crate::store::Result;
use crate::store::sql::{insert, is_sqlite, placeholders, select_in, table_row};
use fieldsync_protocol::location::Bands;
use fieldsync_protocol::signals::{
    self, PreviousVisit, Provider, SignalFix, Thresholds, VisitFacts,
};
use sqlx::AnyConnection;
use std::collections::{HashMap, HashSet};

table_row! {
    /// One signal a visit raised, with its evidence.
    pub(super) SignalRow => "visit_signals" {
        visit_id: String,
        signal: String,
        variant: String,
        args: String,
    }
}

/// A visit as the signals read it: id, started, ended, received, preceding action, stored
/// signals, stored previous visit, outlet's reference (lat, lon), distributor's bands (near,
/// mid, far), mobile user, start's sequence number.
type VisitRead = (
    String,
    i64,
    Option<i64>,
    i64,
    Option<i64>,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
);

/// A visit's fixes as the signals read them: (end phase, fix number, fix), by visit.
pub(super) type FixMap = HashMap<String, Vec<(bool, i64, SignalFix)>>;

fn signal_fix(
    phase: &str,
    lat: i64,
    lon: i64,
    accuracy_dm: i64,
    provider: &str,
    mock: bool,
    at: i64,
) -> SignalFix {
    SignalFix {
        lat_e7: lat as i32,
        lon_e7: lon as i32,
        accuracy_m: accuracy_dm as f64 / 10.0,
        provider: Provider::parse(provider),
        mock,
        device_time_ms: at,
        end: phase == "end",
    }
}

/// The fixes a batch writes for the visits it started: all the fixes those visits have.
pub(super) fn fixes_of(rows: &[FixRow], started: &HashSet<String>) -> FixMap {
    let mut map = FixMap::new();
    for r in rows.iter().filter(|r| started.contains(&r.visit_id)) {
        let f = signal_fix(
            &r.phase,
            r.lat_e7,
            r.lon_e7,
            r.accuracy_dm,
            &r.provider,
            r.mock,
            r.device_time_ms,
        );
        map.entry(r.visit_id.clone())
            .or_default()
            .push((f.end, r.fix_no, f));
    }
    map
}

/// Computes and stores the signals of these visits; `started` are those this batch started,
/// `batch_fixes` their fixes ([`fixes_of`]).
pub(super) async fn record_signals(
    conn: &mut AnyConnection,
    visit_ids: &[String],
    started: &HashSet<String>,
    batch_fixes: FixMap,
) -> Result<()> {
    if visit_ids.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = {
        let mut seen = HashSet::new();
        visit_ids
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .cloned()
            .collect()
    };
    // The outlet's and the distributor's columns come from look-ups by key, not joins: a
    // join lets SQLite's planner, misled by statistics taken while `visits` was empty (the
    // seed's ANALYZE), scan the visits table on every batch.
    let visits: Vec<VisitRead> = select_in!(
        conn,
        VisitRead,
        "SELECT v.id, v.started_device_ms, v.ended_device_ms, v.started_received_ms,
            v.preceding_device_ms, v.signals, v.previous_visit_id,
            (SELECT o.lat_e7 FROM outlets o WHERE o.id = v.outlet_id),
            (SELECT o.lon_e7 FROM outlets o WHERE o.id = v.outlet_id),
            (SELECT d.band_near_m FROM distributors d WHERE d.id = v.distributor_id),
            (SELECT d.band_mid_m FROM distributors d WHERE d.id = v.distributor_id),
            (SELECT d.band_far_m FROM distributors d WHERE d.id = v.distributor_id),
            v.mobile_user_id, v.started_seq
         FROM visits v WHERE v.id IN ({})",
        [],
        ids.clone()
    );
    let (previous_of, previous_ends) = previous_visits(conn, &visits, started).await?;
    let previous_ids: Vec<String> = visits
        .iter()
        .filter_map(|v| previous_of.get(&v.0).cloned())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    // Fixes of visits this batch started are the batch's own; the others' are read.
    let mut fixes = batch_fixes;
    let fix_ids: Vec<String> = ids
        .iter()
        .chain(previous_ids.iter())
        .filter(|id| !started.contains(*id))
        .cloned()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if !fix_ids.is_empty() {
        for (visit_id, phase, fix_no, lat, lon, acc, provider, mock, at) in select_in!(
            conn,
            (String, String, i64, i64, i64, i64, String, i64, i64),
            "SELECT visit_id, phase, fix_no, lat_e7, lon_e7, accuracy_dm, provider, mock, device_time_ms
             FROM gps_fixes WHERE visit_id IN ({})",
            [],
            fix_ids
        ) {
            let f = signal_fix(&phase, lat, lon, acc, &provider, mock != 0, at);
            fixes.entry(visit_id).or_default().push((f.end, fix_no, f));
        }
    }
    // The previous visits' fixes are needed by every visit that follows one: read them
    // before this visit's own are taken out of the map.
    let previous_fixes: HashMap<String, Vec<SignalFix>> = visits
        .iter()
        .filter_map(|v| previous_of.get(&v.0).cloned())
        .collect::<HashSet<_>>()
        .into_iter()
        .map(|id| {
            let f = fixes
                .get(&id)
                .map(|f| {
                    let mut f = f.clone();
                    f.sort_by_key(|(end, no, _)| (*end, *no));
                    f.into_iter().map(|(_, _, f)| f).collect()
                })
                .unwrap_or_default();
            (id, f)
        })
        .collect();
    let mut ordered = |id: &str| -> Vec<SignalFix> {
        let mut f = fixes.remove(id).unwrap_or_default();
        f.sort_by_key(|(end, no, _)| (*end, *no));
        f.into_iter().map(|(_, _, f)| f).collect()
    };
    let mut rows = Vec::new();
    let mut changed = Vec::new();
    for v in &visits {
        let (id, started, ended, received, preceding, stored, stored_prev) =
            (&v.0, v.1, v.2, v.3, v.4, &v.5, &v.6);
        let thresholds = Thresholds {
            bands: Bands {
                near_m: v.9 as u32,
                mid_m: v.10 as u32,
                far_m: v.11 as u32,
            },
            ..Thresholds::default()
        };
        let previous_id = previous_of.get(id).cloned();
        let previous = previous_id.as_ref().and_then(|p| {
            Some(PreviousVisit {
                fixes: previous_fixes.get(p).cloned().unwrap_or_default(),
                ended_device_ms: *previous_ends.get(p)?,
            })
        });
        let facts = VisitFacts {
            fixes: ordered(id),
            reference: v.7.zip(v.8).map(|(a, b)| (a as i32, b as i32)),
            started_device_ms: started,
            ended_device_ms: ended,
            started_received_ms: received,
            preceding_device_ms: preceding,
            previous,
        };
        let found = signals::signals(&facts, &thresholds);
        let list = signals::encode_list(&found);
        if &list != stored || &previous_id != stored_prev {
            changed.push((id.clone(), list, previous_id));
        }
        rows.extend(found.iter().map(|f| SignalRow {
            visit_id: id.clone(),
            signal: f.signal.as_str().into(),
            variant: f.variant.into(),
            args: f.encoded_args(),
        }));
    }
    select_in!(
        conn,
        (i64,),
        "DELETE FROM visit_signals WHERE visit_id IN ({}) RETURNING 1",
        [],
        ids
    );
    insert(conn, rows).await?;
    update_visits(conn, &changed).await
}

/// Each visit's previous visit: the same mobile user's visit received before it (receive
/// time, then the start's sequence number). Between two visits this batch started, nothing
/// else of the user can lie (a batch's starts are received at once and numbered in order), so
/// the one before in the batch is the previous; only each user's first visit here, and
/// visits started earlier that end now, are looked up, with one statement on
/// `visits_user_received`.
async fn previous_visits(
    conn: &mut AnyConnection,
    visits: &[VisitRead],
    started: &HashSet<String>,
) -> Result<(HashMap<String, String>, HashMap<String, i64>)> {
    let mut by_user: HashMap<i64, Vec<&VisitRead>> = HashMap::new();
    for v in visits {
        by_user.entry(v.12).or_default().push(v);
    }
    let mut previous = HashMap::new();
    let mut ends = HashMap::new();
    let mut look_up = Vec::new();
    for list in by_user.values_mut() {
        list.sort_by_key(|v| (v.3, v.13.unwrap_or(0)));
        for (i, v) in list.iter().enumerate() {
            match i.checked_sub(1).map(|j| list[j]) {
                Some(p) if started.contains(&v.0) && started.contains(&p.0) && p.3 == v.3 => {
                    previous.insert(v.0.clone(), p.0.clone());
                    ends.insert(p.0.clone(), p.2.unwrap_or(p.1));
                }
                _ => look_up.push(v.0.clone()),
            }
        }
    }
    if !look_up.is_empty() {
        let found: Vec<(String, Option<String>, Option<i64>)> = select_in!(
            conn,
            (String, Option<String>, Option<i64>),
            "SELECT v.id,
                (SELECT p.id FROM visits p WHERE p.mobile_user_id = v.mobile_user_id
                   AND (p.started_received_ms, p.started_seq) < (v.started_received_ms, v.started_seq)
                 ORDER BY p.started_received_ms DESC, p.started_seq DESC LIMIT 1),
                (SELECT COALESCE(p.ended_device_ms, p.started_device_ms) FROM visits p
                 WHERE p.mobile_user_id = v.mobile_user_id
                   AND (p.started_received_ms, p.started_seq) < (v.started_received_ms, v.started_seq)
                 ORDER BY p.started_received_ms DESC, p.started_seq DESC LIMIT 1)
             FROM visits v WHERE v.id IN ({})",
            [],
            look_up
        );
        for (id, p, end) in found {
            if let (Some(p), Some(end)) = (p, end) {
                ends.insert(p.clone(), end);
                previous.insert(id, p);
            }
        }
    }
    Ok((previous, ends))
}

/// Sets `signals` and `previous_visit_id` of these visits: one `UPDATE ... FROM (VALUES ...)`
/// per 300 visits (SQLite and PostgreSQL both name the columns of a VALUES list `column1`,
/// `column2`, ...).
async fn update_visits(
    conn: &mut AnyConnection,
    changed: &[(String, String, Option<String>)],
) -> Result<()> {
    let sqlite = is_sqlite(conn);
    for chunk in changed.chunks(300) {
        let tuples: Vec<String> = (0..chunk.len())
            .map(|i| format!("({})", placeholders(3 * i + 1, 3, sqlite)))
            .collect();
        let sql = format!(
            "UPDATE visits SET signals = c.column2, previous_visit_id = c.column3 \
             FROM (VALUES {}) AS c WHERE visits.id = c.column1",
            tuples.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(sqlite);
        for (id, list, previous) in chunk {
            q = q.bind(id.clone()).bind(list.clone()).bind(previous.clone());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
