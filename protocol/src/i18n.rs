//! Translation catalogues: the format both the app and the back office keep their strings in.
//!
//! A catalogue is a tab-separated text, one key per line: `key<TAB>English<TAB>Ukrainian<TAB>
//! Russian`; blank lines and lines starting with `#` are skipped. `{name}` placeholders are
//! filled by [`fill`]. Each side embeds its own catalogue file; the parsing and the checks
//! live here once.
use std::collections::HashMap;

/// A language of fieldsync's user interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    #[default]
    En,
    Uk,
    Ru,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::Uk, Lang::Ru];

    /// BCP 47 code, as stored in settings and accounts.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Uk => "uk",
            Lang::Ru => "ru",
        }
    }

    /// The language of a code; `None` for a code fieldsync does not speak.
    pub fn parse(s: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == s.trim())
    }

    /// The language's name in itself, for language pickers.
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

/// A parsed catalogue.
#[derive(Debug, Default)]
pub struct Catalogue {
    table: HashMap<&'static str, [&'static str; 3]>,
}

impl Catalogue {
    /// Parses a catalogue; also returns the lines that are not `key\ten\tuk\tru` with three
    /// non-empty translations, and duplicate keys (the first one wins).
    pub fn parse(text: &'static str) -> (Catalogue, Vec<String>) {
        let mut table = HashMap::new();
        let mut problems = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let cols: Vec<&'static str> = line.split('\t').collect();
            match cols.as_slice() {
                [key, en, uk, ru] if !en.is_empty() && !uk.is_empty() && !ru.is_empty() => {
                    if table.contains_key(key) {
                        problems.push(format!("line {}: duplicate key {key}", n + 1));
                    } else {
                        table.insert(*key, [*en, *uk, *ru]);
                    }
                }
                _ => problems.push(format!("line {}: expected 4 non-empty columns", n + 1)),
            }
        }
        (Catalogue { table }, problems)
    }

    /// Everything wrong with a catalogue text: the lines [`Catalogue::parse`] reports, then
    /// the [`Catalogue::inconsistencies`] of what it parsed. Empty when the text is sound; the
    /// app's and the back office's tests check their own catalogue with it.
    pub fn problems(text: &'static str) -> Vec<String> {
        let (catalogue, mut problems) = Catalogue::parse(text);
        problems.extend(catalogue.inconsistencies());
        problems
    }

    /// The string for `key` in `lang`, if the catalogue has the key.
    pub fn get(&self, key: &str, lang: Lang) -> Option<&'static str> {
        self.table.get(key).map(|row| row[lang.column()])
    }

    pub fn contains(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// Lines whose translations do not carry the same placeholders as the English, or whose
    /// Ukrainian is the English unchanged (not translated). Empty when the catalogue is sound.
    pub fn inconsistencies(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (key, [en, uk, ru]) in &self.table {
            let p = placeholders(en);
            if p != placeholders(uk) {
                out.push(format!("{key}: Ukrainian placeholders differ"));
            }
            if p != placeholders(ru) {
                out.push(format!("{key}: Russian placeholders differ"));
            }
            if en == uk && en.chars().any(char::is_alphabetic) && en.len() > 3 {
                out.push(format!("{key}: Ukrainian not translated"));
            }
        }
        out.sort();
        out
    }
}

/// Fills `{name}` placeholders of a template.
pub fn fill<V: AsRef<str>>(template: &str, args: &[(&str, V)]) -> String {
    let mut s = template.to_string();
    for (name, value) in args {
        s = s.replace(&format!("{{{name}}}"), value.as_ref());
    }
    s
}

/// The placeholder names of a template, sorted.
pub fn placeholders(s: &str) -> Vec<&str> {
    let mut out: Vec<&str> = s
        .split('{')
        .skip(1)
        .filter_map(|p| p.split_once('}').map(|(name, _)| name))
        .collect();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reports_broken_lines_and_fills_placeholders() {
        let (c, problems) = Catalogue::parse(
            "# comment\n\na.b\tHello {who}\tПривіт {who}\tПривет {who}\nbroken\tonly\ntwo\tx\t\ty\na.b\tagain\tще\tещё\n",
        );
        assert_eq!(
            problems,
            vec![
                "line 4: expected 4 non-empty columns",
                "line 5: expected 4 non-empty columns",
                "line 6: duplicate key a.b",
            ]
        );
        assert_eq!(c.get("a.b", Lang::Uk), Some("Привіт {who}"));
        assert_eq!(c.get("a.c", Lang::En), None);
        assert_eq!(fill("Hello {who}", &[("who", "Olena")]), "Hello Olena");
        assert!(c.inconsistencies().is_empty());
        let (bad, _) = Catalogue::parse("k\tHello {who}\tHello {who}\tПривет {whom}\n");
        assert_eq!(
            bad.inconsistencies(),
            vec![
                "k: Russian placeholders differ",
                "k: Ukrainian not translated"
            ]
        );
        // Broken lines first, then the inconsistencies of the lines that parsed.
        let problems = Catalogue::problems("k\tHello {who}\tHello {who}\tПривет {whom}\nbroken\n");
        assert_eq!(problems[0], "line 2: expected 4 non-empty columns");
        assert_eq!(problems[1..], bad.inconsistencies());
        assert_eq!(Lang::parse(" uk "), Some(Lang::Uk));
        assert_eq!(Lang::parse("de"), None);
    }
}
