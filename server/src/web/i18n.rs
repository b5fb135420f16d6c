//! The back office's translation catalogue: English, Ukrainian, Russian.
//! `catalogue.tsv` holds one key per line (key, English, Ukrainian, Russian); `{name}`
//! placeholders are filled by [`T::f`].
use std::sync::OnceLock;

use fieldsync_protocol::i18n::{Catalogue, Lang, fill};

const CATALOGUE: &str = include_str!("catalogue.tsv");

/// Languages of the back office, as stored in `key_users.lang`.
pub const LANGS: [(&str, &str); 3] = [("en", "English"), ("uk", "Українська"), ("ru", "Русский")];

fn table() -> &'static Catalogue {
    static TABLE: OnceLock<Catalogue> = OnceLock::new();
    TABLE.get_or_init(|| Catalogue::parse(CATALOGUE).0)
}

/// A translator bound to one language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct T(Lang);

impl T {
    /// The translator of a stored language code (English for an unknown one).
    pub fn new(lang: &str) -> T {
        T(Lang::parse(lang).unwrap_or_default())
    }

    pub fn lang(&self) -> &'static str {
        self.0.code()
    }

    /// The string for `key`; the key itself when the catalogue lacks it (a test checks that
    /// every key the code uses is there).
    pub fn s(&self, key: &str) -> String {
        table().get(key, self.0).unwrap_or(key).to_string()
    }

    /// The string for `key` with `{name}` placeholders filled.
    pub fn f(&self, key: &str, args: &[(&str, &str)]) -> String {
        fill(table().get(key, self.0).unwrap_or(key), args)
    }

    /// A translated value of an enumeration (`band.within`, `role.key_user`, ...), or the
    /// value itself when the catalogue has no entry for it.
    pub fn value(&self, prefix: &str, value: &str) -> String {
        let key = format!("{prefix}.{value}");
        table().get(&key, self.0).unwrap_or(value).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_line_has_three_languages_and_matching_placeholders() {
        let problems = Catalogue::problems(CATALOGUE);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn every_signal_has_a_name_an_explanation_and_its_evidence_in_the_catalogue() {
        use fieldsync_protocol::signals::{Provider, Signal};
        let (table, _) = Catalogue::parse(CATALOGUE);
        let mut keys: Vec<String> = Vec::new();
        for s in Signal::ALL {
            keys.push(format!("signal.{}", s.as_str()));
            keys.push(format!("signal.{}.explain", s.as_str()));
        }
        // Variants given as literals where the rules raise the signal...
        let rules = include_str!("../../../protocol/src/signals.rs");
        for call in rules.split("found(").skip(1) {
            let call = call.trim_start();
            let Some(rest) = call.strip_prefix("Signal::") else {
                continue;
            };
            let (variant_name, after) = rest.split_once(',').unwrap_or_default();
            let Some(signal) = Signal::ALL
                .iter()
                .find(|s| format!("{s:?}") == variant_name)
            else {
                continue;
            };
            if let Some(lit) = after.trim_start().strip_prefix('"') {
                let v = lit.split('"').next().unwrap_or_default();
                keys.push(format!("signal.{}.{v}", signal.as_str()));
            }
        }
        // ...and those computed from a value.
        for band in ["beyond", "far_beyond"] {
            keys.push(format!("signal.off_site.{band}"));
        }
        for v in ["this_visit", "previous_visit"] {
            keys.push(format!("signal.repeated_fix.{v}"));
        }
        for p in [
            Provider::Gps,
            Provider::Fused,
            Provider::Network,
            Provider::Unknown,
        ] {
            keys.push(format!("signal.too_accurate.{}", p.as_str()));
        }
        assert!(
            keys.len() > 25,
            "the rules' variants were not found: {keys:?}"
        );
        let missing: Vec<&String> = keys.iter().filter(|k| !table.contains(k)).collect();
        assert!(missing.is_empty(), "{missing:?}");
    }

    #[test]
    fn every_key_the_pages_use_is_in_the_catalogue() {
        let (table, _) = Catalogue::parse(CATALOGUE);
        let sources = [
            include_str!("mod.rs"),
            include_str!("auth.rs"),
            include_str!("list/mod.rs"),
            include_str!("list/export.rs"),
            include_str!("list/views.rs"),
            include_str!("../store/list/specs.rs"),
            include_str!("lists.rs"),
            include_str!("pages.rs"),
            include_str!("pricing.rs"),
            include_str!("editors.rs"),
            include_str!("map.rs"),
            include_str!("staff.rs"),
            include_str!("apikeys.rs"),
            include_str!("accounts.rs"),
            include_str!("orders.rs"),
            include_str!("imports.rs"),
            include_str!("warehouses.rs"),
            include_str!("routes.rs"),
            include_str!("truth.rs"),
        ];
        let mut missing = Vec::new();
        for src in sources {
            for quoted in src
                .split("t.s(\"")
                .skip(1)
                .chain(src.split("t.f(\"").skip(1))
            {
                let key = quoted.split('"').next().unwrap_or_default();
                if !table.contains(key) {
                    missing.push(key.to_string());
                }
            }
            for quoted in src.split("label: \"").skip(1) {
                let key = quoted.split('"').next().unwrap_or_default();
                if !table.contains(key) {
                    missing.push(key.to_string());
                }
            }
        }
        missing.sort();
        missing.dedup();
        assert!(missing.is_empty(), "missing translations: {missing:?}");
    }

    #[test]
    fn ukrainian_and_russian_differ_from_english() {
        let uk = T::new("uk");
        let ru = T::new("ru");
        assert_eq!(uk.s("nav.visits"), "Візити");
        assert_eq!(ru.s("nav.visits"), "Визиты");
        assert_eq!(T::new("en").s("nav.visits"), "Visits");
    }
}
