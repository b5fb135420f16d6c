//! The back office's translation catalogue: English, Ukrainian, Russian.
//! `catalogue.tsv` holds one key per line (key, English, Ukrainian, Russian); `{name}`
//! placeholders are filled by [`T::f`].
use std::collections::HashMap;
use std::sync::OnceLock;

const CATALOGUE: &str = include_str!("catalogue.tsv");

/// Languages of the back office, as stored in `key_users.lang`.
pub const LANGS: [(&str, &str); 3] = [("en", "English"), ("uk", "Українська"), ("ru", "Русский")];

type Table = HashMap<&'static str, [&'static str; 3]>;

/// Parses the catalogue; returns the table and the lines that are not `key\ten\tuk\tru`.
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

/// A translator bound to one language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct T(usize);

impl T {
    pub fn new(lang: &str) -> T {
        T(match lang {
            "uk" => 1,
            "ru" => 2,
            _ => 0,
        })
    }

    pub fn lang(&self) -> &'static str {
        LANGS[self.0].0
    }

    /// The string for `key`; the key itself when the catalogue lacks it (a test checks that
    /// every key the code uses is there).
    pub fn s(&self, key: &str) -> String {
        match table().get(key) {
            Some(row) => row[self.0].to_string(),
            None => key.to_string(),
        }
    }

    /// The string for `key` with `{name}` placeholders filled.
    pub fn f(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut s = self.s(key);
        for (name, value) in args {
            s = s.replace(&format!("{{{name}}}"), value);
        }
        s
    }

    /// A translated value of an enumeration (`band.within`, `role.key_user`, ...), or the
    /// value itself when the catalogue has no entry for it.
    pub fn value(&self, prefix: &str, value: &str) -> String {
        let key = format!("{prefix}.{value}");
        match table().get(key.as_str()) {
            Some(row) => row[self.0].to_string(),
            None => value.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_line_has_three_languages_and_matching_placeholders() {
        let (table, problems) = parse(CATALOGUE);
        assert!(problems.is_empty(), "{problems:?}");
        for (key, row) in &table {
            let holes = |s: &str| {
                let mut v: Vec<String> = s
                    .split('{')
                    .skip(1)
                    .filter_map(|p| p.split_once('}').map(|(h, _)| h.to_string()))
                    .collect();
                v.sort();
                v
            };
            assert_eq!(holes(row[0]), holes(row[1]), "{key} (uk)");
            assert_eq!(holes(row[0]), holes(row[2]), "{key} (ru)");
        }
    }

    #[test]
    fn every_key_the_pages_use_is_in_the_catalogue() {
        let (table, _) = parse(CATALOGUE);
        let sources = [
            include_str!("mod.rs"),
            include_str!("auth.rs"),
            include_str!("list.rs"),
            include_str!("lists.rs"),
            include_str!("pages.rs"),
            include_str!("map.rs"),
            include_str!("staff.rs"),
            include_str!("apikeys.rs"),
            include_str!("orders.rs"),
            include_str!("imports.rs"),
        ];
        let mut missing = Vec::new();
        for src in sources {
            for quoted in src
                .split("t.s(\"")
                .skip(1)
                .chain(src.split("t.f(\"").skip(1))
            {
                let key = quoted.split('"').next().unwrap_or_default();
                if !table.contains_key(key) {
                    missing.push(key.to_string());
                }
            }
            for quoted in src.split("label: \"").skip(1) {
                let key = quoted.split('"').next().unwrap_or_default();
                if !table.contains_key(key) {
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
