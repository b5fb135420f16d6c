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
//! each one's previous visit as a correlated look-up on `visits_user_received`), one of the
//! previous visits' end times, one of all their fixes, then the rewrite of the evidence and
//! one update per visit whose signals or previous visit changed.
use crate::store::Result;
use crate::store::sql::{insert, select_in, table_row};
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

/// A visit as the signals read it.
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
    Option<String>,
);

/// The stored form of a visit's signal names: `,a,b,` (empty when none), so that a filter
/// can look for `,name,`.
pub fn signal_list(found: &[signals::Found]) -> String {
    if found.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = found.iter().map(|f| f.signal.as_str()).collect();
    format!(",{},", names.join(","))
}

/// Computes and stores the signals of these visits.
pub(super) async fn record_signals(conn: &mut AnyConnection, visit_ids: &[String]) -> Result<()> {
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
    let visits: Vec<VisitRead> = select_in!(
        conn,
        VisitRead,
        "SELECT v.id, v.started_device_ms, v.ended_device_ms, v.started_received_ms,
            v.preceding_device_ms, v.signals, v.previous_visit_id, o.lat_e7, o.lon_e7,
            d.band_near_m, d.band_mid_m, d.band_far_m,
            (SELECT p.id FROM visits p WHERE p.mobile_user_id = v.mobile_user_id
               AND (p.started_received_ms < v.started_received_ms
                    OR (p.started_received_ms = v.started_received_ms
                        AND COALESCE(p.started_seq, 0) < COALESCE(v.started_seq, 0)))
             ORDER BY p.started_received_ms DESC, p.started_seq DESC LIMIT 1)
         FROM visits v JOIN outlets o ON o.id = v.outlet_id
         JOIN distributors d ON d.id = v.distributor_id
         WHERE v.id IN ({})",
        [],
        ids.clone()
    );
    let previous_ids: Vec<String> = visits
        .iter()
        .filter_map(|v| v.12.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let previous_end: HashMap<String, i64> = select_in!(
        conn,
        (String, i64),
        "SELECT id, COALESCE(ended_device_ms, started_device_ms) FROM visits WHERE id IN ({})",
        [],
        previous_ids.clone()
    )
    .into_iter()
    .collect();
    let mut fix_ids = ids.clone();
    fix_ids.extend(previous_ids);
    let mut fixes: HashMap<String, Vec<(bool, i64, SignalFix)>> = HashMap::new();
    for (visit_id, phase, fix_no, lat, lon, acc, provider, mock, at) in select_in!(
        conn,
        (String, String, i64, i64, i64, i64, String, i64, i64),
        "SELECT visit_id, phase, fix_no, lat_e7, lon_e7, accuracy_dm, provider, mock, device_time_ms
         FROM gps_fixes WHERE visit_id IN ({})",
        [],
        fix_ids
    ) {
        let end = phase == "end";
        fixes.entry(visit_id).or_default().push((
            end,
            fix_no,
            SignalFix {
                lat_e7: lat as i32,
                lon_e7: lon as i32,
                accuracy_m: acc as f64 / 10.0,
                provider: Provider::parse(&provider),
                mock: mock != 0,
                device_time_ms: at,
                end,
            },
        ));
    }
    // The previous visits' fixes are needed by every visit that follows one: read them
    // before this visit's own are taken out of the map.
    let previous_fixes: HashMap<String, Vec<SignalFix>> = visits
        .iter()
        .filter_map(|v| v.12.clone())
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
        let previous = v.12.as_ref().and_then(|p| {
            Some(PreviousVisit {
                fixes: previous_fixes.get(p).cloned().unwrap_or_default(),
                ended_device_ms: *previous_end.get(p)?,
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
        let list = signal_list(&found);
        if &list != stored || &v.12 != stored_prev {
            changed.push((id.clone(), list, v.12.clone()));
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
    for (id, list, previous) in changed {
        sqlx::query("UPDATE visits SET signals = $1, previous_visit_id = $2 WHERE id = $3")
            .bind(list)
            .bind(previous)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
