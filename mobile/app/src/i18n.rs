//! The translation catalogue: every string the agent reads, in English, Ukrainian and Russian.
//! `catalogue.tsv` holds one key per line (key, English, Ukrainian, Russian); `{name}`
//! placeholders are filled by [`T::f`].
use std::collections::HashMap;
use std::sync::OnceLock;

use fieldsync_agent::WorkflowError;
use fieldsync_protocol::location::Band;
use fieldsync_protocol::v1::ErrorCode;

const CATALOGUE: &str = include_str!("catalogue.tsv");

/// A language of the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    #[default]
    En,
    Uk,
    Ru,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::Uk, Lang::Ru];

    /// BCP 47 code, stored in settings.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Uk => "uk",
            Lang::Ru => "ru",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == s.trim())
    }

    /// The language's name in itself, for the language picker.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Uk => "Українська",
            Lang::Ru => "Русский",
        }
    }

    fn column(self) -> usize {
        match self {
            Lang::En => 0,
            Lang::Uk => 1,
            Lang::Ru => 2,
        }
    }
}

type Table = HashMap<&'static str, [&'static str; 3]>;

/// Parses the catalogue; lines that are not `key<TAB>en<TAB>uk<TAB>ru` are reported.
fn parse(text: &'static str) -> (Table, Vec<String>) {
    let mut table = HashMap::new();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&'static str> = line.split('\t').collect();
        match cols.as_slice() {
            [key, en, uk, ru] if !en.is_empty() && !uk.is_empty() && !ru.is_empty() => {
                if table.insert(*key, [*en, *uk, *ru]).is_some() {
                    problems.push(format!("line {}: duplicate key {key}", n + 1));
                }
            }
            _ => problems.push(format!("line {}: expected 4 non-empty columns", n + 1)),
        }
    }
    (table, problems)
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| parse(CATALOGUE).0)
}

/// The string for `key` (English when a language lacks it, the key itself when unknown).
pub fn tr(lang: Lang, key: &str) -> &str {
    match table().get(key) {
        Some(row) => row[lang.column()],
        None => key,
    }
}

/// Translator handed to components: copyable, bound to the current language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct T(pub Lang);

impl T {
    pub fn s(&self, key: &str) -> &'static str {
        match table().get(key) {
            Some(row) => row[self.0.column()],
            None => {
                debug_assert!(false, "missing translation key {key}");
                ""
            }
        }
    }

    /// The string for `key` with `{name}` placeholders filled.
    pub fn f(&self, key: &str, args: &[(&str, String)]) -> String {
        let mut s = self.s(key).to_string();
        for (name, value) in args {
            s = s.replace(&format!("{{{name}}}"), value);
        }
        s
    }

    /// An order state as the distributor reported it ("placed", "confirmed", ...).
    pub fn order_state(&self, state: &str) -> String {
        let key = format!("order_state.{state}");
        if table().contains_key(key.as_str()) {
            self.s(&key).to_string()
        } else {
            state.to_string()
        }
    }

    pub fn band(&self, band: Band) -> &'static str {
        self.s(&format!("band.{}", band.as_str()))
    }

    /// The kind of an outbox entry ("order_placed", ...).
    pub fn kind(&self, kind: &str) -> String {
        let key = format!("kind.{kind}");
        if table().contains_key(key.as_str()) {
            self.s(&key).to_string()
        } else {
            kind.to_string()
        }
    }

    /// Why the server refused a mutation, by its error code name.
    pub fn refusal(&self, code: &str) -> &'static str {
        let key = format!("refusal.{code}");
        if table().contains_key(key.as_str()) {
            self.s(&key)
        } else {
            self.s("refusal.other")
        }
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

    fn placeholders(s: &str) -> Vec<String> {
        let mut out: Vec<String> = s
            .split('{')
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(name, _)| name.to_string()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn catalogue_is_complete_and_consistent() {
        let (table, problems) = parse(CATALOGUE);
        assert!(problems.is_empty(), "{problems:?}");
        for (key, [en, uk, ru]) in &table {
            let p = placeholders(en);
            assert_eq!(p, placeholders(uk), "{key}: Ukrainian placeholders");
            assert_eq!(p, placeholders(ru), "{key}: Russian placeholders");
            assert_ne!(en, uk, "{key}: Ukrainian not translated");
        }
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
                    if !table().contains_key(key) {
                        missing.push(key.to_string());
                    }
                }
            }
        }
        assert!(used > 100, "found only {used} uses: the scan is broken");
        assert!(missing.is_empty(), "missing keys: {missing:?}");
        for b in [
            Band::Within,
            Band::Near,
            Band::Beyond,
            Band::FarBeyond,
            Band::NoFix,
            Band::NoReference,
        ] {
            assert!(table().contains_key(format!("band.{}", b.as_str()).as_str()));
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
