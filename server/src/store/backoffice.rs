//! Reads the back office shows that belong to no other domain module: the distributors a
//! user picks from, the agents of the map and an agent's day on it.
use super::sql::IntoVal;
use super::{Result, Store};

/// A distributor as pickers show it.
#[derive(Debug, Clone)]
pub struct DistributorRef {
    pub id: i64,
    pub code: String,
}

/// A mobile user as pickers show it.
#[derive(Debug, Clone)]
pub struct AgentRef {
    pub id: i64,
    pub distributor_id: i64,
    pub login: String,
}

/// One visit of an agent's day on the map, with its first fix (start fixes first).
#[derive(Debug, Clone)]
pub struct DayVisit {
    pub id: String,
    pub started_device_ms: i64,
    pub band: String,
    pub outlet: String,
    pub distance_m: Option<f64>,
    pub first_fix_e7: Option<(i64, i64)>,
    /// The field-truth signals it raised, by name.
    pub signals: Vec<String>,
}

/// One agent's visits in one period, with how many raised each field-truth signal.
#[derive(Debug, Clone)]
pub struct AgentSignals {
    pub mobile_user_id: i64,
    pub distributor_id: i64,
    pub login: String,
    pub visits: i64,
    /// Visits that raised at least one signal.
    pub flagged: i64,
    /// Per signal of `fieldsync_protocol::signals::Signal::ALL`, in that order.
    pub by_signal: [i64; 9],
}

impl Store {
    /// Per mobile user, the visits started in `[start_ms, end_ms)` (device time) and how many
    /// raised each signal: one aggregate over `visits_started`.
    pub async fn agent_signals(&self, start_ms: i64, end_ms: i64) -> Result<Vec<AgentSignals>> {
        #[allow(clippy::type_complexity)]
        let rows: Vec<(
            i64,
            i64,
            String,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
        )> = self
            .rows(
                "SELECT v.mobile_user_id, v.distributor_id, mu.login, COUNT(*), \
                 SUM(CASE WHEN v.signals <> '' THEN 1 ELSE 0 END), \
                 SUM(CASE WHEN v.signals LIKE '%,mocked,%' THEN 1 ELSE 0 END), \
                 SUM(CASE WHEN v.signals LIKE '%,off_site,%' THEN 1 ELSE 0 END), \
                 SUM(CASE WHEN v.signals LIKE '%,no_fix,%' THEN 1 ELSE 0 END), \
                 SUM(CASE WHEN v.signals LIKE '%,implausible_travel,%' THEN 1 ELSE 0 END), \
                 SUM(CASE WHEN v.signals LIKE '%,repeated_fix,%' THEN 1 ELSE 0 END), \
                 SUM(CASE WHEN v.signals LIKE '%,too_accurate,%' THEN 1 ELSE 0 END), \
                 SUM(CASE WHEN v.signals LIKE '%,on_reference,%' THEN 1 ELSE 0 END), \
                 SUM(CASE WHEN v.signals LIKE '%,clock_jump,%' THEN 1 ELSE 0 END), \
                 SUM(CASE WHEN v.signals LIKE '%,short_stay,%' THEN 1 ELSE 0 END) \
                 FROM visits v JOIN mobile_users mu ON mu.id = v.mobile_user_id \
                 WHERE v.started_device_ms >= $1 AND v.started_device_ms < $2 \
                 GROUP BY v.mobile_user_id, v.distributor_id, mu.login",
                &[start_ms.into_val(), end_ms.into_val()],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| AgentSignals {
                mobile_user_id: r.0,
                distributor_id: r.1,
                login: r.2,
                visits: r.3,
                flagged: r.4,
                by_signal: [r.5, r.6, r.7, r.8, r.9, r.10, r.11, r.12, r.13],
            })
            .collect())
    }

    /// Every distributor, by code.
    pub async fn distributors(&self) -> Result<Vec<DistributorRef>> {
        let rows: Vec<(i64, String)> = self
            .rows("SELECT id, code FROM distributors ORDER BY code", &[])
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, code)| DistributorRef { id, code })
            .collect())
    }

    /// Every mobile user, by login.
    pub async fn agents(&self) -> Result<Vec<AgentRef>> {
        let rows: Vec<(i64, i64, String)> = self
            .rows(
                "SELECT id, distributor_id, login FROM mobile_users ORDER BY login",
                &[],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, distributor_id, login)| AgentRef {
                id,
                distributor_id,
                login,
            })
            .collect())
    }

    /// The visits a mobile user started in `[start_ms, end_ms)` (device time), in order.
    pub async fn agent_day(
        &self,
        mobile_user_id: i64,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<DayVisit>> {
        #[allow(clippy::type_complexity)]
        let rows: Vec<(String, i64, String, String, Option<f64>, Option<i64>, Option<i64>, String)> = self.rows(
            "SELECT v.id, v.started_device_ms, v.location_band, o.name, v.distance_m, \
             (SELECT f.lat_e7 FROM gps_fixes f WHERE f.visit_id = v.id ORDER BY CASE WHEN f.phase = 'start' THEN 0 ELSE 1 END, f.fix_no LIMIT 1), \
             (SELECT f.lon_e7 FROM gps_fixes f WHERE f.visit_id = v.id ORDER BY CASE WHEN f.phase = 'start' THEN 0 ELSE 1 END, f.fix_no LIMIT 1), \
             v.signals FROM visits v JOIN outlets o ON o.id = v.outlet_id \
             WHERE v.mobile_user_id = $1 AND v.started_device_ms >= $2 AND v.started_device_ms < $3 \
             ORDER BY v.started_device_ms",
            &[mobile_user_id.into_val(), start_ms.into_val(), end_ms.into_val()],
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, started, band, outlet, distance, lat, lon, signals)| DayVisit {
                    id,
                    started_device_ms: started,
                    band,
                    outlet,
                    distance_m: distance,
                    first_fix_e7: lat.zip(lon),
                    signals: fieldsync_protocol::signals::decode_list(&signals)
                        .map(str::to_string)
                        .collect(),
                },
            )
            .collect())
    }
}
