//! The order's life: its states, the names they are stored and exchanged under, and which
//! moves are allowed. One definition for the phone, ingest, pull, the distributor API, the
//! back office and the OpenAPI document.
use crate::v1::OrderState;

/// Every state an order can be in, in their usual sequence (the final refusals last).
pub const ALL: [OrderState; 9] = [
    OrderState::Placed,
    OrderState::Accepted,
    OrderState::Confirmed,
    OrderState::Invoiced,
    OrderState::Shipped,
    OrderState::Delivered,
    OrderState::Completed,
    OrderState::Rejected,
    OrderState::Cancelled,
];

/// The names of [`ALL`], for filters and API schemas.
pub const NAMES: [&str; 9] = [
    ALL[0].name(),
    ALL[1].name(),
    ALL[2].name(),
    ALL[3].name(),
    ALL[4].name(),
    ALL[5].name(),
    ALL[6].name(),
    ALL[7].name(),
    ALL[8].name(),
];

impl OrderState {
    /// The name stored in the database and used by the distributor API ("placed", ...).
    pub const fn name(self) -> &'static str {
        match self {
            OrderState::Unspecified => "unspecified",
            OrderState::Placed => "placed",
            OrderState::Accepted => "accepted",
            OrderState::Confirmed => "confirmed",
            OrderState::Invoiced => "invoiced",
            OrderState::Shipped => "shipped",
            OrderState::Delivered => "delivered",
            OrderState::Completed => "completed",
            OrderState::Rejected => "rejected",
            OrderState::Cancelled => "cancelled",
        }
    }

    /// The state of a stored or sent name; `None` for anything else.
    pub fn from_name(s: &str) -> Option<OrderState> {
        ALL.into_iter().find(|st| st.name() == s)
    }

    /// Position in the forward sequence; `None` for the refusals.
    fn rank(self) -> Option<u8> {
        match self {
            OrderState::Placed => Some(0),
            OrderState::Accepted => Some(1),
            OrderState::Confirmed => Some(2),
            OrderState::Invoiced => Some(3),
            OrderState::Shipped => Some(4),
            OrderState::Delivered => Some(5),
            OrderState::Completed => Some(6),
            _ => None,
        }
    }

    /// Nothing leaves a final state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderState::Completed | OrderState::Rejected | OrderState::Cancelled
        )
    }

    /// Rejected or cancelled: such a move needs a reason.
    pub fn is_refusal(self) -> bool {
        matches!(self, OrderState::Rejected | OrderState::Cancelled)
    }

    /// Whether the distributor may move an order from `self` to `to`. Forward moves may skip
    /// steps (a system that only reports shipments goes placed → shipped); rejection and
    /// cancellation are possible until the goods left the warehouse; nothing leaves a final
    /// state and nothing returns to placed.
    pub fn may_move_to(self, to: OrderState) -> bool {
        if self.is_final() {
            return false;
        }
        if to.is_refusal() {
            return matches!(
                self,
                OrderState::Placed | OrderState::Accepted | OrderState::Confirmed
            );
        }
        matches!((self.rank(), to.rank()), (Some(a), Some(b)) if b > a)
    }

    /// Whether the agent may still cancel the order from the phone: only before the
    /// distributor confirmed it.
    pub fn agent_may_cancel(self) -> bool {
        matches!(self, OrderState::Placed | OrderState::Accepted)
    }

    /// The line quantity a move to this state reports: confirmed quantities on confirmation,
    /// shipped quantities from invoicing on; none otherwise.
    pub fn reported_quantity(self) -> Option<ReportedQuantity> {
        match self {
            OrderState::Confirmed => Some(ReportedQuantity::Confirmed),
            OrderState::Invoiced | OrderState::Shipped | OrderState::Delivered => {
                Some(ReportedQuantity::Shipped)
            }
            _ => None,
        }
    }
}

/// Which per-line quantity a status report carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportedQuantity {
    Confirmed,
    Shipped,
}

/// Whether the distributor may move an order between two named states; unknown names never.
pub fn transition_allowed(from: &str, to: &str) -> bool {
    match (OrderState::from_name(from), OrderState::from_name(to)) {
        (Some(a), Some(b)) => a.may_move_to(b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine() {
        assert!(transition_allowed("placed", "accepted"));
        assert!(transition_allowed("placed", "shipped"));
        assert!(transition_allowed("confirmed", "invoiced"));
        assert!(transition_allowed("accepted", "rejected"));
        assert!(!transition_allowed("shipped", "rejected"));
        assert!(!transition_allowed("confirmed", "accepted"));
        assert!(!transition_allowed("completed", "delivered"));
        assert!(!transition_allowed("cancelled", "accepted"));
        assert!(!transition_allowed("placed", "placed"));
        assert!(!transition_allowed("placed", "draft"));
        assert!(!transition_allowed("accepted", "placed"));
        for s in ALL {
            assert_eq!(OrderState::from_name(s.name()), Some(s));
        }
        assert!(OrderState::Accepted.agent_may_cancel());
        assert!(!OrderState::Confirmed.agent_may_cancel());
    }
}
