//! The SQL dialect: everything that differs between SQLite and PostgreSQL or that builds
//! statement text, in one place. Placeholders and `IN` lists, bulk inserts (multi-row
//! `VALUES` on SQLite, `unnest` of arrays on PostgreSQL), row locks, and the keyed reads
//! most domain operations are made of. Statement text is only ever assembled here from
//! constants of ours and placeholders; values are always bound.
use std::fmt::Write as _;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AnyConnection};

use super::{Backend, Result, Store};

/// Which backend a connection talks to (the store knows its own: [`Store::backend`]).
pub fn is_sqlite(conn: &AnyConnection) -> bool {
    conn.backend_name() == "SQLite"
}

/// `$from, ..., $(from+n-1)`, or `?, ...` where anonymous (SQLite: binding by position
/// avoids its linear lookup of numbered parameter names).
pub fn placeholders(from: usize, n: usize, anonymous: bool) -> String {
    if anonymous {
        return vec!["?"; n].join(", ");
    }
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `SELECT ... WHERE <col> IN (...)` in chunks of 500; `$1..$fixed` are the fixed
/// arguments, `{}` in the statement is where the list goes.
///
/// On PostgreSQL these statements are not kept prepared: a cached generic plan is made while
/// the tables are small (a new database, the first minute before autovacuum analyses) and
/// then kept, and for `id IN (...)` that plan was a sequential scan whose cost grew with every
/// batch (measured: 12,000 scans reading 211 million rows in a 30 s benchmark). Planned per
/// execution they use the primary key whatever the statistics say.
macro_rules! select_in {
    ($tx:expr, $row:ty, $sql:expr, [$($fixed:expr),*], $items:expr) => {{
        let mut out: Vec<$row> = Vec::new();
        let items: Vec<_> = $items;
        let fixed_count = 0usize $(+ { let _ = &$fixed; 1 })*;
        let sqlite = $crate::store::sql::is_sqlite(&$tx);
        for chunk in items.chunks(500) {
            let mut sql = format!(
                $sql,
                $crate::store::sql::placeholders(fixed_count + 1, chunk.len(), sqlite)
            );
            if sqlite {
                // sqlx numbers anonymous parameters from 1 whatever named ones come before.
                for i in 1..=fixed_count {
                    sql = sql.replacen(&format!("${i}"), "?", 1);
                }
            }
            let mut q = sqlx::query_as::<_, $row>(sqlx::AssertSqlSafe(sql)).persistent(sqlite);
            $(q = q.bind($fixed);)*
            for item in chunk {
                q = q.bind(item.clone());
            }
            out.extend(q.fetch_all(&mut *$tx).await?);
        }
        out
    }};
}
pub(crate) use select_in;

/// A row sqlx can decode from the `Any` driver.
pub trait FromRow: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin {}
impl<T> FromRow for T where T: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin {}

/// The value bound to the one placeholder (`$1`) of a keyed read.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    Id(i64),
    Text(&'a str),
}

impl From<i64> for Key<'_> {
    fn from(id: i64) -> Self {
        Key::Id(id)
    }
}

impl<'a> From<&'a str> for Key<'a> {
    fn from(s: &'a str) -> Self {
        Key::Text(s)
    }
}

impl<'a> From<&'a String> for Key<'a> {
    fn from(s: &'a String) -> Self {
        Key::Text(s)
    }
}

fn keyed<T: FromRow>(
    sql: &'static str,
    key: Key<'_>,
) -> sqlx::query::QueryAs<'static, Any, T, AnyArguments> {
    let q = sqlx::query_as::<_, T>(sql);
    match key {
        Key::Id(id) => q.bind(id),
        Key::Text(s) => q.bind(s.to_owned()),
    }
}

/// Declares the store's reads by fetch: each is one statement, `$1` bound to a key (`..._by`)
/// or its values bound in order, fetched as one row, an optional row or every row.
macro_rules! fetches {
    ($($(#[$km:meta])* $by:ident, $(#[$vm:meta])* $vals:ident -> $out:ty = $fetch:ident;)*) => {
        impl Store {
            $(
                $(#[$km])*
                pub async fn $by<'k, T: FromRow>(
                    &self,
                    sql: &'static str,
                    key: impl Into<Key<'k>>,
                ) -> Result<$out> {
                    Ok(keyed(sql, key.into()).$fetch(self.pool()).await?)
                }

                $(#[$vm])*
                pub async fn $vals<T: FromRow>(&self, sql: &'static str, vals: &[Val]) -> Result<$out> {
                    Ok(bind_vals_as(sqlx::query_as::<_, T>(sql), vals)
                        .$fetch(self.pool())
                        .await?)
                }
            )*
        }
    };
}

fetches! {
    /// The row `sql` finds for `key` (`$1`); `StoreError::NotFound` when there is none.
    one_by,
    /// The row a statement finds with its values bound in order (`NotFound` without one).
    one -> T = fetch_one;
    /// The row `sql` finds for `key` (`$1`), if any.
    opt_by,
    /// The row a statement finds with its values bound in order, if any.
    opt -> Option<T> = fetch_optional;
    /// Every row `sql` finds for `key` (`$1`).
    all_by,
    /// Every row a statement finds with its values bound in order.
    rows -> Vec<T> = fetch_all;
}

impl Store {
    /// The one column of the row `sql` finds for `key` (`$1`), if any (an owner's id, ...).
    pub async fn opt_col_by<'k, C>(
        &self,
        sql: &'static str,
        key: impl Into<Key<'k>>,
    ) -> Result<Option<C>>
    where
        (C,): FromRow,
    {
        Ok(self.opt_by::<(C,)>(sql, key).await?.map(|(c,)| c))
    }

    /// Every row of a statement without arguments.
    pub async fn all<T: FromRow>(&self, sql: &'static str) -> Result<Vec<T>> {
        Ok(sqlx::query_as::<_, T>(sql).fetch_all(self.pool()).await?)
    }

    /// Makes writers of one distributor's master data that read before they write (imports
    /// that merge a file with what is stored) take turns, until `tx` ends: on PostgreSQL one
    /// statement locks the distributor's row (`FOR NO KEY UPDATE`: inserts elsewhere that only
    /// reference it are not held up); SQLite's single writer already serialises them.
    pub(crate) async fn serialise_distributor(
        &self,
        tx: &mut super::WriteTx,
        distributor_id: i64,
    ) -> Result<()> {
        if self.backend() == Backend::Postgres {
            exec_on(
                tx,
                "SELECT id FROM distributors WHERE id = $1 FOR NO KEY UPDATE",
                &[Val::I(distributor_id)],
            )
            .await?;
        }
        Ok(())
    }

    /// ` FOR UPDATE` where the backend has row locks (PostgreSQL); SQLite's single writer
    /// already excludes others.
    pub(crate) fn for_update(&self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }
}

/// A value of a bulk-inserted row.
#[derive(Debug, Clone)]
pub enum Val {
    I(i64),
    N(Option<i64>),
    F(Option<f64>),
    O(Option<String>),
    B(Vec<u8>),
    S(String),
}

/// Inserts rows in bulk: multi-row `VALUES` on SQLite, `unnest` of arrays on PostgreSQL.
pub async fn insert_rows(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Val>],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    if !is_sqlite(conn) {
        return insert_unnest(conn, table, columns, rows).await;
    }
    // SQLite allows 32766 parameters per statement; stay well below. It looks numbered
    // parameters (`$n`) up by name, linearly: with thousands of them per statement that
    // lookup dominated ingest (measured with perf). Anonymous `?` bind by position instead.
    let chunk_rows = (8000 / columns.len().max(1)).max(1);
    let row_marks = format!("({})", vec!["?"; columns.len()].join(", "));
    for chunk in rows.chunks(chunk_rows) {
        // Only placeholders are interpolated; table and column names are constants of ours.
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {}",
            columns.join(", "),
            vec![row_marks.as_str(); chunk.len()].join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            for v in row {
                q = match v {
                    Val::I(i) => q.bind(*i),
                    Val::N(o) => q.bind(*o),
                    Val::F(f) => q.bind(*f),
                    Val::O(o) => q.bind(o.as_deref()),
                    Val::B(b) => q.bind(b.as_slice()),
                    Val::S(s) => q.bind(s.as_str()),
                };
            }
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// PostgreSQL: one `INSERT ... SELECT FROM unnest(...)` with one array per column, sent as
/// array literals in text parameters (the Any driver binds no arrays). The statement text is
/// the same whatever the row count, so it is prepared once per connection, and PostgreSQL
/// neither parses nor plans one expression per value as it does for a `VALUES` list with
/// thousands of parameters.
async fn insert_unnest(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Val>],
) -> Result<()> {
    let mut arrays: Vec<String> = vec![String::from("{"); columns.len()];
    let mut types: Vec<&str> = vec!["text"; columns.len()];
    for (r, row) in rows.iter().enumerate() {
        debug_assert_eq!(row.len(), columns.len(), "row width of {table}");
        for (c, v) in row.iter().enumerate() {
            let out = &mut arrays[c];
            if r > 0 {
                out.push(',');
            }
            // Writing to a String cannot fail.
            let ty = match v {
                Val::I(i) | Val::N(Some(i)) => {
                    let _ = write!(out, "{i}");
                    "int8"
                }
                Val::N(None) => {
                    out.push_str("NULL");
                    "int8"
                }
                Val::F(Some(f)) => {
                    // Rust prints the shortest text that reads back as the same f64.
                    let _ = write!(out, "{f}");
                    "float8"
                }
                Val::F(None) => {
                    out.push_str("NULL");
                    "float8"
                }
                Val::O(None) => {
                    out.push_str("NULL");
                    "text"
                }
                Val::O(Some(s)) | Val::S(s) => {
                    push_quoted(out, s);
                    "text"
                }
                Val::B(b) => {
                    // bytea's hex form, its backslash escaped for the array literal.
                    out.push_str("\"\\\\x");
                    for byte in b {
                        let _ = write!(out, "{byte:02x}");
                    }
                    out.push('"');
                    "bytea"
                }
            };
            if r == 0 {
                types[c] = ty;
            }
            debug_assert_eq!(types[c], ty, "{table}.{} mixes value kinds", columns[c]);
        }
    }
    let args = types
        .iter()
        .enumerate()
        .map(|(i, ty)| format!("${}::text::{ty}[]", i + 1))
        .collect::<Vec<_>>()
        .join(", ");
    // Only placeholders and type names are interpolated; table and column names are
    // constants of ours.
    let sql = format!(
        "INSERT INTO {table} ({}) SELECT * FROM unnest({args})",
        columns.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for mut a in arrays {
        a.push('}');
        q = q.bind(a);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// Appends `s` as a double-quoted element of a PostgreSQL array literal.
fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
}

/// A value that can stand in a bulk-inserted row.
pub trait IntoVal {
    fn into_val(self) -> Val;
}

/// `impl IntoVal` for each type, by the [`Val`] its value `v` becomes.
macro_rules! into_vals {
    ($($ty:ty => |$v:ident| $val:expr;)*) => {
        $(
            impl IntoVal for $ty {
                fn into_val(self) -> Val {
                    let $v = self;
                    $val
                }
            }
        )*
    };
}

into_vals! {
    i64 => |v| Val::I(v);
    i32 => |v| Val::I(v as i64);
    bool => |v| Val::I(v as i64);
    Option<i64> => |v| Val::N(v);
    f64 => |v| Val::F(Some(v));
    Option<f64> => |v| Val::F(v);
    String => |v| Val::S(v);
    &str => |v| Val::S(v.to_string());
    &String => |v| Val::S(v.clone());
    Option<String> => |v| Val::O(v);
    Option<&str> => |v| Val::O(v.map(str::to_string));
    Vec<u8> => |v| Val::B(v);
}

/// A row of a table, its columns and their values declared together (see [`table_row!`]).
pub trait TableRow {
    const TABLE: &'static str;
    const COLUMNS: &'static [&'static str];
    fn into_vals(self) -> Vec<Val>;
}

/// Declares a struct whose fields are the columns of a table, in order, and how it is
/// inserted: `table_row! { /// docs \n pub VisitRow => "visits" { id: String, ... } }`.
macro_rules! table_row {
    ($(#[$meta:meta])* $vis:vis $name:ident => $table:literal { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        $vis struct $name {
            $($(#[$fmeta])* pub $field: $ty),*
        }

        impl $crate::store::sql::TableRow for $name {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),*];
            fn into_vals(self) -> Vec<$crate::store::sql::Val> {
                use $crate::store::sql::IntoVal;
                vec![$(self.$field.into_val()),*]
            }
        }
    };
}
pub(crate) use table_row;

/// Inserts typed rows in bulk (see [`insert_rows`]).
pub async fn insert<R: TableRow>(conn: &mut AnyConnection, rows: Vec<R>) -> Result<()> {
    let rows: Vec<Vec<Val>> = rows.into_iter().map(TableRow::into_vals).collect();
    insert_rows(conn, R::TABLE, R::COLUMNS, &rows).await
}

/// Binds `$vals` to a query or query_as in order.
macro_rules! bind_each {
    ($q:expr, $vals:expr) => {{
        let mut q = $q;
        for v in $vals {
            q = match v {
                Val::I(i) => q.bind(*i),
                Val::N(o) => q.bind(*o),
                // A NULL float goes as f32: sqlx's Any driver sends an untyped NULL double
                // that PostgreSQL cannot place.
                Val::F(Some(f)) => q.bind(*f),
                Val::F(None) => q.bind(None::<f32>),
                Val::O(o) => q.bind(o.as_deref()),
                Val::B(b) => q.bind(b.as_slice()),
                Val::S(s) => q.bind(s.as_str()),
            };
        }
        q
    }};
}

fn bind_vals<'q>(
    q: sqlx::query::Query<'q, Any, AnyArguments>,
    vals: &'q [Val],
) -> sqlx::query::Query<'q, Any, AnyArguments> {
    bind_each!(q, vals)
}

pub(crate) fn bind_vals_as<'q, T: FromRow>(
    q: sqlx::query::QueryAs<'q, Any, T, AnyArguments>,
    vals: &'q [Val],
) -> sqlx::query::QueryAs<'q, Any, T, AnyArguments> {
    bind_each!(q, vals)
}

/// Runs a statement with its values bound in order (`$1`, `$2`, ...) on a connection or
/// transaction; returns the rows it changed.
pub async fn exec_on(conn: &mut AnyConnection, sql: &'static str, vals: &[Val]) -> Result<u64> {
    Ok(bind_vals(sqlx::query(sql), vals)
        .execute(conn)
        .await?
        .rows_affected())
}

/// The row a statement returns, with its values bound in order, on a connection or
/// transaction.
pub async fn one_on<T: FromRow>(
    conn: &mut AnyConnection,
    sql: &'static str,
    vals: &[Val],
) -> Result<T> {
    Ok(bind_vals_as(sqlx::query_as::<_, T>(sql), vals)
        .fetch_one(conn)
        .await?)
}

/// Every row a statement returns, with its values bound in order, on a connection or
/// transaction.
pub async fn rows_on<T: FromRow>(
    conn: &mut AnyConnection,
    sql: &'static str,
    vals: &[Val],
) -> Result<Vec<T>> {
    Ok(bind_vals_as(sqlx::query_as::<_, T>(sql), vals)
        .fetch_all(conn)
        .await?)
}

/// The id a statement returns (`INSERT ... RETURNING id`, `UPDATE ... RETURNING id`), its
/// values bound in order, on a connection or transaction.
pub async fn id_on(conn: &mut AnyConnection, sql: &'static str, vals: &[Val]) -> Result<i64> {
    let (id,): (i64,) = one_on(conn, sql, vals).await?;
    Ok(id)
}

impl Store {
    /// Runs a statement with its values bound in order; returns the rows it changed.
    pub async fn exec(&self, sql: &'static str, vals: &[Val]) -> Result<u64> {
        Ok(bind_vals(sqlx::query(sql), vals)
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    /// Runs statements, each with its values bound in order, in one write transaction.
    pub async fn exec_each(&self, statements: &[(&'static str, &[Val])]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for (sql, vals) in statements {
            exec_on(&mut tx, sql, vals).await?;
        }
        tx.commit().await
    }

    /// The id a statement returns (`INSERT ... RETURNING id`), its values bound in order.
    pub async fn one_id(&self, sql: &'static str, vals: &[Val]) -> Result<i64> {
        let (id,): (i64,) = self.one(sql, vals).await?;
        Ok(id)
    }
}

/// Declares reads of one statement each, one entry a read: its name and key (bound to `$1`,
/// or none), what it returns, and the read that runs the statement (`one_by`, `opt_by`,
/// `all_by`, `opt_col_by`, or `all` without a key).
macro_rules! keyed_reads {
    ($($(#[$m:meta])* $name:ident($($arg:ident: $key:ty)?) -> $out:ty = $read:ident($sql:expr);)*) => {
        impl $crate::store::Store {
            $(
                $(#[$m])*
                pub async fn $name(&self $(, $arg: $key)?) -> $crate::store::Result<$out> {
                    self.$read($sql $(, $arg)?).await
                }
            )*
        }
    };
}
pub(crate) use keyed_reads;
