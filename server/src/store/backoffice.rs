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
}

impl Store {
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
        let rows: Vec<(String, i64, String, String, Option<f64>, Option<i64>, Option<i64>)> = self.rows(
            "SELECT v.id, v.started_device_ms, v.location_band, o.name, v.distance_m, \
             (SELECT f.lat_e7 FROM gps_fixes f WHERE f.visit_id = v.id ORDER BY CASE WHEN f.phase = 'start' THEN 0 ELSE 1 END, f.fix_no LIMIT 1), \
             (SELECT f.lon_e7 FROM gps_fixes f WHERE f.visit_id = v.id ORDER BY CASE WHEN f.phase = 'start' THEN 0 ELSE 1 END, f.fix_no LIMIT 1) \
             FROM visits v JOIN outlets o ON o.id = v.outlet_id \
             WHERE v.mobile_user_id = $1 AND v.started_device_ms >= $2 AND v.started_device_ms < $3 \
             ORDER BY v.started_device_ms",
            &[mobile_user_id.into_val(), start_ms.into_val(), end_ms.into_val()],
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, started, band, outlet, distance, lat, lon)| DayVisit {
                id,
                started_device_ms: started,
                band,
                outlet,
                distance_m: distance,
                first_fix_e7: lat.zip(lon),
            })
            .collect())
    }
}
