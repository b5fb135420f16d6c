//! The translation catalogue: every string the agent reads, in English, Ukrainian and Russian.
//! `catalogue.tsv` holds one key per line (key, English, Ukrainian, Russian); `{name}`
//! placeholders are filled by [`T::f`].
use std::sync::OnceLock;

use fieldsync_agent::WorkflowError;
pub use fieldsync_protocol::i18n::Lang;
use fieldsync_protocol::i18n::{Catalogue, fill};
use fieldsync_protocol::location::Band;
use fieldsync_protocol::v1::ErrorCode;

const CATALOGUE: &str = include_str!("catalogue.tsv");

fn table() -> &'static Catalogue {
    static TABLE: OnceLock<Catalogue> = OnceLock::new();
    TABLE.get_or_init(|| Catalogue::parse(CATALOGUE).0)
}

/// The string for `key` (the key itself when unknown).
pub fn tr(lang: Lang, key: &str) -> &str {
    table().get(key, lang).unwrap_or(key)
}

/// Translator handed to components: copyable, bound to the current language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct T(pub Lang);

impl T {
    pub fn s(&self, key: &str) -> &'static str {
        match table().get(key, self.0) {
            Some(s) => s,
            None => {
                debug_assert!(false, "missing translation key {key}");
                ""
            }
        }
    }

    /// The string for `key` with `{name}` placeholders filled.
    pub fn f(&self, key: &str, args: &[(&str, String)]) -> String {
        fill(self.s(key), args)
    }

    /// The entry `prefix.value` of an enumeration's translations, if the catalogue has one.
    fn value(&self, prefix: &str, value: &str) -> Option<&'static str> {
        table().get(&format!("{prefix}.{value}"), self.0)
    }

    /// An order state as the distributor reported it ("placed", "confirmed", ...).
    pub fn order_state(&self, state: &str) -> String {
        self.value("order_state", state)
            .unwrap_or(state)
            .to_string()
    }

    pub fn band(&self, band: Band) -> &'static str {
        self.s(&format!("band.{}", band.as_str()))
    }

    /// The kind of an outbox entry ("order_placed", ...).
    pub fn kind(&self, kind: &str) -> String {
        self.value("kind", kind).unwrap_or(kind).to_string()
    }

    /// Why the server refused a mutation, by its error code name.
    pub fn refusal(&self, code: &str) -> &'static str {
        self.value("refusal", code)
            .unwrap_or_else(|| self.s("refusal.other"))
    }

    /// Why an activation with a PIN was refused.
    pub fn pin_error(&self, code: ErrorCode, retry_after_ms: i64) -> String {
        match code {
            ErrorCode::PinUsed => self.s("pin.used").to_string(),
            ErrorCode::PinRevoked => self.s("pin.revoked").to_string(),
            ErrorCode::PinLocked => self.f(
                "pin.locked",
                &[(
                    "minutes",
                    ((retry_after_ms + 59_999) / 60_000).max(1).to_string(),
                )],
            ),
            _ => self.s("pin.wrong").to_string(),
        }
    }

    /// Why a local action was not taken.
    pub fn workflow_error(&self, e: &WorkflowError) -> String {
        match e {
            WorkflowError::VisitInProgress(_) => self.s("workflow.visit_in_progress").to_string(),
            WorkflowError::VisitEnded(_) => self.s("workflow.visit_ended").to_string(),
            WorkflowError::EmptyOrder => self.s("order.empty").to_string(),
            WorkflowError::UnknownWarehouse(_) => self.s("order.pick_warehouse").to_string(),
            WorkflowError::NoPrice(..) => self.s("order.price_missing").to_string(),
            WorkflowError::NotCancellable(..) => self.s("workflow.not_cancellable").to_string(),
            WorkflowError::OverdueReasonRequired => {
                self.s("order.overdue_reason_missing").to_string()
            }
            WorkflowError::InvalidAnswer { problem, .. } => {
                self.f("questionnaire.invalid", &[("detail", problem.clone())])
            }
            other => self.f("workflow.other", &[("detail", other.to_string())]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_complete_and_consistent() {
        let problems = Catalogue::problems(CATALOGUE);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn every_key_the_screens_use_is_in_the_catalogue() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/ui");
        let mut missing = Vec::new();
        let mut used = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let text = text.replace("\\\"", "\"");
            for call in ["t.s(\"", "t.f(\""] {
                for part in text.split(call).skip(1) {
                    let key = part.split('"').next().unwrap();
                    used += 1;
                    if !table().contains(key) {
                        missing.push(key.to_string());
                    }
                }
            }
        }
        assert!(used > 100, "found only {used} uses: the scan is broken");
        assert!(missing.is_empty(), "missing keys: {missing:?}");
        for b in Band::ALL {
            assert!(table().contains(format!("band.{}", b.as_str()).as_str()));
        }
    }

    #[test]
    fn placeholders_are_filled_per_language() {
        assert_eq!(
            T(Lang::En).f(
                "today.progress",
                &[("done", "2".into()), ("total", "5".into())]
            ),
            "2 of 5 visited"
        );
        assert_eq!(
            T(Lang::Uk).f(
                "today.progress",
                &[("done", "2".into()), ("total", "5".into())]
            ),
            "Відвідано 2 з 5"
        );
        assert_eq!(
            T(Lang::Ru).pin_error(ErrorCode::PinLocked, 14 * 60_000 + 1),
            "Слишком много неверных PIN-кодов. Попробуйте снова через 15 мин."
        );
        assert_eq!(T(Lang::En).order_state("confirmed"), "Confirmed");
    }
}
