//! What a list is: its table and joins, whose rows are whose, its columns and how each is
//! read, filtered and linked. The lists themselves are in [`super::specs`].
use super::query::ListQuery;

/// Rows per page.
pub const PAGE_SIZE: i64 = 50;

/// Most rows an export may hold.
pub const EXPORT_CAP: i64 = 10_000;

/// A list page counts its matching rows up to this many ("more than 1000").
pub const COUNT_CAP: i64 = 1_000;

/// How a column's value is read and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
    /// Integer minor units.
    Money,
    /// ms since the epoch, shown in the user's time zone.
    Time,
    /// A distance in metres (REAL).
    Meters,
    /// A value with translations under this catalogue prefix.
    Enum(&'static str),
    /// Names between commas (`,a,b,`; empty for none), each translated under this prefix.
    Tags(&'static str),
    /// 0/1.
    Flag,
    /// Degrees of latitude or longitude stored as an integer of 10^-7 degrees, shown with 7
    /// decimals (as an import reads them back).
    Degrees,
}

/// How a column can be filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    None,
    /// Case-insensitive substring.
    Contains,
    /// Exact integer.
    Equals,
    /// From / to calendar dates (Time columns).
    DateRange,
    /// One of these values (Enum columns).
    Choice(&'static [&'static str]),
    /// "Only rows where this is empty" (e.g. outlets without mapping).
    Missing,
    /// Yes / no (Flag columns).
    YesNo,
    /// Rows whose Tags column lists this name, or any name at all (`*`).
    Tag(&'static [&'static str]),
}

/// One column of a list.
#[derive(Debug, Clone, Copy)]
pub struct Col {
    pub key: &'static str,
    /// Catalogue key of the header.
    pub label: &'static str,
    /// The select expression.
    pub sql: &'static str,
    pub kind: Kind,
    pub filter: Filter,
    /// Shown when no view chose the columns.
    pub default: bool,
    /// A link: (path prefix, SQL of the id appended to it).
    pub link: Option<(&'static str, &'static str)>,
    /// For a `Contains` filter on a joined table's column: find the matching ids in that
    /// (small) table first and filter the list's own indexed column by them.
    pub lookup: Option<Lookup>,
    /// The import column this column's value goes back to: an export "for import" writes the
    /// columns that have one, under these names and in the import's formats, so that the file
    /// imported back changes nothing.
    pub import: Option<&'static str>,
}

/// How a `Contains` filter on a joined column becomes `list_column IN (ids)`.
#[derive(Debug, Clone, Copy)]
pub struct Lookup {
    /// The list's column holding the joined row's id (e.g. `v.mobile_user_id`).
    pub column: &'static str,
    /// The joined table, its text column and its distributor column, e.g.
    /// `("mobile_users", "login", "distributor_id")`.
    pub table: &'static str,
    pub text: &'static str,
    pub distributor: &'static str,
}

/// Most ids a lookup filter hands on; with more matches the filter stays a join condition.
pub(super) const LOOKUP_MAX: usize = 2_000;
/// Up to this many looked-up ids, the database uses the list column's own index for them.
pub(super) const LOOKUP_INDEXED: usize = 50;

impl Col {
    pub const fn new(key: &'static str, label: &'static str, sql: &'static str, kind: Kind) -> Col {
        Col {
            key,
            label,
            sql,
            kind,
            filter: Filter::None,
            default: true,
            link: None,
            lookup: None,
            import: None,
        }
    }
    /// The column goes back to the import column `name` (see [`Col::import`]).
    pub const fn imports(mut self, name: &'static str) -> Col {
        self.import = Some(name);
        self
    }
    pub const fn filter(mut self, filter: Filter) -> Col {
        self.filter = filter;
        self
    }
    pub const fn hidden(mut self) -> Col {
        self.default = false;
        self
    }
    pub const fn link(mut self, prefix: &'static str, id_sql: &'static str) -> Col {
        self.link = Some((prefix, id_sql));
        self
    }
    pub const fn lookup(
        mut self,
        column: &'static str,
        table: &'static str,
        text: &'static str,
        distributor: &'static str,
    ) -> Col {
        self.lookup = Some(Lookup {
            column,
            table,
            text,
            distributor,
        });
        self
    }
}

/// A table joined to a list's own: `alias` is what columns and other joins refer to it by.
#[derive(Debug, Clone, Copy)]
pub struct Join {
    pub alias: &'static str,
    /// `JOIN table alias ON ...` or `LEFT JOIN ...`.
    pub sql: &'static str,
}

impl Join {
    pub const fn new(alias: &'static str, sql: &'static str) -> Join {
        Join { alias, sql }
    }
}

/// A list: what it selects from, whose rows are whose, its columns and default order.
#[derive(Debug)]
pub struct ListSpec {
    pub key: &'static str,
    /// Catalogue key of the title.
    pub title: &'static str,
    /// The page's path (export is `PATH/export`).
    pub path: &'static str,
    /// The list's own table and alias (`visits v`).
    pub base: &'static str,
    /// The tables joined to it. Every join is to at most one row, and inner joins follow
    /// foreign keys, so a join that no used column needs is left out.
    pub joins: &'static [Join],
    /// The column holding the row's distributor id (the sync point).
    pub scope: &'static str,
    /// A condition every row meets ("1 = 1" for none).
    pub base_where: &'static str,
    pub cols: &'static [Col],
    /// Default sort column key and direction.
    pub sort: &'static str,
    pub desc: bool,
    /// Unique expression that makes the order total (for stable paging).
    pub tiebreak: &'static str,
    /// A default date window (days back from today) on the first DateRange column.
    pub default_days: Option<i64>,
}

impl ListSpec {
    pub fn col(&self, key: &str) -> Option<&Col> {
        self.cols.iter().find(|c| c.key == key)
    }

    /// The columns shown, in order.
    pub fn visible(&self, q: &ListQuery) -> Vec<&Col> {
        let mut chosen: Vec<&Col> = Vec::new();
        for c in q.cols.iter().filter_map(|k| self.col(k)) {
            if !chosen.iter().any(|seen| seen.key == c.key) {
                chosen.push(c);
            }
        }
        if chosen.is_empty() {
            self.cols.iter().filter(|c| c.default).collect()
        } else {
            chosen
        }
    }

    /// Fills in the default date window when the request names no dates.
    pub fn with_defaults(&self, mut q: ListQuery, now: i64, tz: &str) -> ListQuery {
        if let Some(days) = self.default_days
            && let Some(c) = self.cols.iter().find(|c| c.filter == Filter::DateRange)
        {
            let from = format!("f.{}.from", c.key);
            let to = format!("f.{}.to", c.key);
            if !q.params.iter().any(|(k, _)| *k == from || *k == to) {
                let today = fieldsync_protocol::dates::date_at(now, tz);
                let start = today
                    .checked_sub(jiff::Span::new().days(days - 1))
                    .unwrap_or(today);
                q.params.push((from, start.to_string()));
                q.params.push((to, today.to_string()));
            }
        }
        q
    }
}
