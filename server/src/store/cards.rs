//! Reads behind the back office's cards (mobile users, visits, sync sessions, outlets,
//! products, warehouses, routes, questionnaires, the org tree): one statement each, scoped
//! by the caller's checks of the distributor they return.
#![allow(clippy::type_complexity)]
use super::sql::{IntoVal, keyed_reads};
use super::{Result, Store};

/// What a local record can be mapped to a global one of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapped {
    Outlet,
    Product,
}

impl Mapped {
    fn table(self) -> &'static str {
        match self {
            Mapped::Outlet => "outlets",
            Mapped::Product => "products",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Mapped::Outlet => "global_outlet_id",
            Mapped::Product => "global_product_id",
        }
    }
}

keyed_reads! {
    positions_without_mobile_user() -> Vec<(i64, i64, String, String)> = all(
        "SELECT p.id, p.distributor_id, p.name, d.code FROM org_units p \
         JOIN distributors d ON d.id = p.distributor_id \
         WHERE p.kind = 'position' AND p.ended_at_ms IS NULL \
         AND NOT EXISTS (SELECT 1 FROM mobile_users mu WHERE mu.position_id = p.id AND mu.deleted_at_ms IS NULL) \
         ORDER BY d.code, p.name LIMIT 500"
    );
    /// The distributor and kind of a live (not ended) org unit.
    org_unit_kind(id: i64) -> Option<(i64, String)> = opt_by(
        "SELECT distributor_id, kind FROM org_units WHERE id = $1 AND ended_at_ms IS NULL"
    );
    mobile_user_head(id: i64) -> Option<(i64, String, String, String, i64, Option<i64>, Option<i64>)> = opt_by(
        "SELECT mu.distributor_id, mu.login, p.name, d.code, mu.created_at_ms, mu.disabled_at_ms, mu.deleted_at_ms FROM mobile_users mu \
         JOIN org_units p ON p.id = mu.position_id JOIN distributors d ON d.id = mu.distributor_id \
         WHERE mu.id = $1"
    );
    mobile_user_device(id: i64) -> Option<(String, String, String, i64, Option<i64>)> = opt_by(
        "SELECT device_uid, model, app_version, activated_at_ms, last_sync_at_ms FROM devices \
         WHERE mobile_user_id = $1 AND revoked_at_ms IS NULL ORDER BY id DESC LIMIT 1"
    );
    mobile_user_login(id: i64) -> Option<(i64, String)> = opt_by(
        "SELECT distributor_id, login FROM mobile_users WHERE id = $1"
    );
    visit_head(id: &str) -> Option<(i64, i64, String, String, String, String, i64, i64, Option<i64>, i64, String)> = opt_by(
        "SELECT v.distributor_id, v.outlet_id, o.code, o.name, o.address, mu.login, v.mobile_user_id, \
         v.started_device_ms, v.ended_device_ms, v.started_received_ms, v.location_band \
         FROM visits v JOIN outlets o ON o.id = v.outlet_id JOIN mobile_users mu ON mu.id = v.mobile_user_id \
         WHERE v.id = $1"
    );
    visit_location(id: &str) -> (Option<f64>, Option<f64>, i64, Option<i64>, Option<i64>) = one_by(
        "SELECT v.distance_m, v.accuracy_m, v.mock_location, o.lat_e7, o.lon_e7 \
         FROM visits v JOIN outlets o ON o.id = v.outlet_id WHERE v.id = $1"
    );
    visit_fix_rows(id: &str) -> Vec<(String, i64, i64, i64, String, i64, i64)> = all_by(
        "SELECT phase, lat_e7, lon_e7, accuracy_dm, provider, mock, device_time_ms FROM gps_fixes \
         WHERE visit_id = $1 ORDER BY device_time_ms, phase, fix_no"
    );
    /// The signals a visit raised with their evidence: (signal, variant, args).
    visit_signal_rows(id: &str) -> Vec<(String, String, String)> = all_by(
        "SELECT signal, variant, args FROM visit_signals WHERE visit_id = $1"
    );
    /// The visit the same mobile user received before this one: (id, started, outlet).
    visit_previous(id: &str) -> Option<(String, i64, String)> = opt_by(
        "SELECT p.id, p.started_device_ms, o.name FROM visits v \
         JOIN visits p ON p.id = v.previous_visit_id JOIN outlets o ON o.id = p.outlet_id \
         WHERE v.id = $1"
    );
    visit_orders(id: &str) -> Vec<(String, i64, i64, i64, String)> = all_by(
        "SELECT id, number, total_minor, line_count, state FROM orders WHERE visit_id = $1 ORDER BY number"
    );
    visit_checks(id: &str) -> Vec<(String, String, i64)> = all_by(
        "SELECT p.code, p.name, dc.present FROM distribution_checks dc JOIN products p ON p.id = dc.product_id \
         WHERE dc.visit_id = $1 ORDER BY p.code"
    );
    visit_answers(id: &str) -> Vec<(String, String, String, Option<String>, Option<f64>)> = all_by(
        "SELECT q.name, qu.text, a.value_kind, a.value_text, a.value_number FROM questionnaire_answers a \
         JOIN questionnaires q ON q.id = a.questionnaire_id JOIN questions qu ON qu.id = a.question_id \
         WHERE a.visit_id = $1 ORDER BY q.name, qu.position"
    );
    visit_choice_labels(id: &str) -> Vec<(i64, String)> = all_by(
        "SELECT c.id, c.label FROM question_choices c WHERE c.question_id IN \
         (SELECT a.question_id FROM questionnaire_answers a WHERE a.visit_id = $1)"
    );
    sync_session_head(id: &str) -> Option<(i64, String, String, String, String, i64, Option<i64>, i64)> = opt_by(
        "SELECT s.distributor_id, s.mode, mu.login, dv.model, s.app_version, s.started_at_ms, s.finished_at_ms, s.last_request_at_ms \
         FROM sync_sessions s JOIN mobile_users mu ON mu.id = s.mobile_user_id JOIN devices dv ON dv.id = s.device_id \
         WHERE s.id = $1"
    );
    sync_session_counts(id: &str) -> (i64, i64, i64, i64, i64, i64, i64, i64, Option<String>) = one_by(
        "SELECT requests, mutations_applied, mutations_duplicate, mutations_refused, changes_pulled, bytes_up, bytes_down, clock_skew_ms, error \
         FROM sync_sessions WHERE id = $1"
    );
    sync_session_items(id: &str) -> Vec<(String, Option<String>, Option<String>, Option<String>, Option<String>, Option<i64>)> = all_by(
        "SELECT i.item_kind, i.visit_id, o.code, o.name, o.address, i.order_total_minor FROM sync_session_items i \
         LEFT JOIN outlets o ON o.id = i.outlet_id WHERE i.session_id = $1 ORDER BY i.id"
    );
    outlet_distributor(id: i64) -> Option<(i64,)> = opt_by(
        "SELECT distributor_id FROM outlets WHERE id = $1"
    );
    outlet_card_head(id: i64) -> (String, String, String, String, String, String, Option<i64>, Option<i64>, i64, Option<String>) = one_by(
        "SELECT o.code, o.name, o.address, o.contact_name, o.phone, o.channel, o.lat_e7, o.lon_e7, o.is_global, g.code \
         FROM outlets o LEFT JOIN outlets g ON g.id = o.global_outlet_id WHERE o.id = $1"
    );
    outlet_distributor_code(id: i64) -> (String,) = one_by(
        "SELECT d.code FROM outlets o JOIN distributors d ON d.id = o.distributor_id WHERE o.id = $1"
    );
    outlet_recent_visits(id: i64) -> Vec<(String, i64, String, Option<f64>, String)> = all_by(
        "SELECT v.id, v.started_device_ms, v.location_band, v.distance_m, mu.login FROM visits v \
         JOIN mobile_users mu ON mu.id = v.mobile_user_id WHERE v.outlet_id = $1 ORDER BY v.started_device_ms DESC LIMIT 10"
    );
    product_card(id: i64) -> Option<(i64, String, String, String, String, i64, i64, Option<String>)> = opt_by(
        "SELECT p.distributor_id, p.code, p.name, p.unit, p.category, p.must_stock, p.is_global, g.code \
         FROM products p LEFT JOIN products g ON g.id = p.global_product_id WHERE p.id = $1"
    );
    route_head(id: i64) -> Option<(i64, String, String, i64)> = opt_by(
        "SELECT r.distributor_id, r.route_date, p.name, p.id FROM routes r JOIN org_units p ON p.id = r.position_id WHERE r.id = $1"
    );
    route_stops(id: i64) -> Vec<(i64, i64, String, String, String)> = all_by(
        "SELECT rs.stop_order, o.id, o.code, o.name, o.address FROM route_stops rs JOIN outlets o ON o.id = rs.outlet_id \
         WHERE rs.route_id = $1 ORDER BY rs.stop_order"
    );
    org_staff_rows() -> Vec<(i64, String, String, i64)> = all(
        "SELECT ps.position_id, st.first_name, st.last_name, ps.is_main FROM position_staff ps \
         JOIN staff st ON st.id = ps.staff_id WHERE ps.valid_to IS NULL ORDER BY ps.is_main DESC, st.last_name"
    );
}

impl Store {
    pub async fn visit_fix_for_outlet(
        &self,
        visit_id: &str,
        outlet_id: i64,
    ) -> Result<Option<(i64, i64)>> {
        self.opt(
            "SELECT f.lat_e7, f.lon_e7 FROM gps_fixes f JOIN visits v ON v.id = f.visit_id \
             WHERE f.visit_id = $1 AND v.outlet_id = $2 ORDER BY CASE WHEN f.phase = 'start' THEN 0 ELSE 1 END, f.accuracy_dm LIMIT 1",
            &[visit_id.into_val(), outlet_id.into_val()],
        )
        .await
    }

    /// The distributor of a local outlet or product and whether it is itself global.
    pub async fn mapping_subject(&self, kind: Mapped, id: i64) -> Result<Option<(i64, bool)>> {
        let row: Option<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT distributor_id, is_global FROM {} WHERE id = $1",
            kind.table()
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(d, g)| (d, g != 0)))
    }

    /// The global outlet or product with this code.
    pub async fn global_by_code(&self, kind: Mapped, code: &str) -> Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM {} WHERE code = $1 AND is_global = 1 AND deleted = 0 LIMIT 1",
            kind.table()
        )))
        .bind(code)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.0))
    }

    /// Maps a local outlet or product to a global one (`None`: unmaps it).
    pub async fn set_global_mapping(
        &self,
        kind: Mapped,
        id: i64,
        global: Option<i64>,
    ) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {} SET {} = $1 WHERE id = $2",
            kind.table(),
            kind.column()
        )))
        .bind(global)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
