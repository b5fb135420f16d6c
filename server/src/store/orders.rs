//! Orders as the back office reads them: the card of one order and counts by state.
use super::exchange::FeedLine;
use super::sql::{IntoVal, keyed_reads};
use super::{Result, Store};

/// One order with everything its card shows.
#[derive(Debug, Clone)]
pub struct OrderCard {
    pub distributor_id: i64,
    pub number: i64,
    pub visit_id: Option<String>,
    pub outlet: String,
    pub price_list: String,
    pub warehouse: String,
    pub agent: String,
    pub total_minor: i64,
    pub state: String,
    pub placed_device_ms: i64,
    pub comment: String,
    pub delivery_date: String,
    pub document_number: String,
    pub document_date: String,
    pub state_reason: String,
    pub handed_over_at_ms: Option<i64>,
    /// Why the agent ordered although the outlet had overdue debt ('' when none was asked).
    pub overdue_reason: String,
    pub lines: Vec<FeedLine>,
}

keyed_reads! {
    /// The distributor of an order (`None` for no such order).
    order_distributor(id: &str) -> Option<i64> = opt_col_by(
        "SELECT distributor_id FROM orders WHERE id = $1"
    );
}

impl Store {
    /// The card of an order (`None` for no such order).
    pub async fn order_card(&self, id: &str) -> Result<Option<OrderCard>> {
        type Head = (
            i64,
            i64,
            Option<String>,
            String,
            String,
            String,
            String,
            i64,
            String,
            i64,
            String,
        );
        let head: Option<Head> = self.opt(
            "SELECT ord.distributor_id, ord.number, ord.visit_id, o.name, pl.name, w.name, mu.login, \
             ord.total_minor, ord.state, ord.placed_device_ms, ord.comment FROM orders ord \
             JOIN outlets o ON o.id = ord.outlet_id JOIN price_lists pl ON pl.id = ord.price_list_id \
             JOIN warehouses w ON w.id = ord.warehouse_id JOIN mobile_users mu ON mu.id = ord.mobile_user_id \
             WHERE ord.id = $1",
            &[id.into_val()],
        )
        .await?;
        let Some(h) = head else { return Ok(None) };
        let extra: (String, String, String, String, Option<i64>, String) = self.one(
            "SELECT delivery_date, document_number, document_date, state_reason, handed_over_at_ms, overdue_reason FROM orders WHERE id = $1",
            &[id.into_val()],
        ).await?;
        let id = id.to_string();
        let lines = self
            .order_lines(std::slice::from_ref(&id))
            .await?
            .remove(&id);
        Ok(Some(OrderCard {
            distributor_id: h.0,
            number: h.1,
            visit_id: h.2,
            outlet: h.3,
            price_list: h.4,
            warehouse: h.5,
            agent: h.6,
            total_minor: h.7,
            state: h.8,
            placed_device_ms: h.9,
            comment: h.10,
            delivery_date: extra.0,
            document_number: extra.1,
            document_date: extra.2,
            state_reason: extra.3,
            handed_over_at_ms: extra.4,
            overdue_reason: extra.5,
            lines: lines.unwrap_or_default(),
        }))
    }

    /// How many orders of these distributors received in `[from_ms, to_ms)` are in each
    /// state.
    pub async fn order_counts_by_state(
        &self,
        distributor_ids: &[i64],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, i64)>> {
        if distributor_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ps: Vec<String> = (0..distributor_ids.len())
            .map(|i| format!("${}", i + 3))
            .collect();
        let sql = format!(
            "SELECT state, COUNT(*) FROM orders WHERE received_at_ms >= $1 AND received_at_ms < $2 \
             AND distributor_id IN ({}) GROUP BY state",
            ps.join(", ")
        );
        let mut q = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql))
            .bind(from_ms)
            .bind(to_ms);
        for id in distributor_ids {
            q = q.bind(*id);
        }
        Ok(q.fetch_all(self.pool()).await?)
    }
}
