//! Imports from distributors' systems: local outlets, local products, warehouses, stock,
//! actual sales (invoices with lines) and routes, from CSV, XLSX or JSON rows. Every import
//! is a job with a log: status, rows read / applied / refused, and each refused row with its
//! line number and reason.
//!
//! Outlets, products and warehouses declare their rows independent: valid rows are applied,
//! refused ones are logged (status `partial`). Stock, actual sales and routes are applied whole
//! or not at all (status `failed` with every refused row logged). A file that cannot be read
//! at all, or lacks a required column, is refused before anything is applied. The distributor
//! is the source of truth for its local outlets and products: an import overwrites edits made
//! in the back office.
use std::collections::HashMap;

use serde::Serialize;

use super::sql::{IntoVal, insert, rows_on, table_row};
use super::world::{OutletPatch, PatchMode, PatchReport, ProductPatch, finish_patch};
use super::{Result, Store};

mod more;
mod write;
use write::{
    Names, PriceRow, keyed_chunks, reverse, write_prices, write_routes, write_sales, write_stock,
    write_warehouses,
};

table_row! {
    /// A refused row of an import job, with its reason.
    ImportErrorRow => "import_errors" {
        job_id: i64,
        line_no: i64,
        reason: String,
    }
}

table_row! {
    /// A line of an invoice of actual sales, from the import job that brought it.
    SaleRow => "actual_sales" {
        distributor_id: i64,
        invoice_number: String,
        line_no: i64,
        invoice_date: String,
        outlet_id: i64,
        product_id: i64,
        quantity_milli: i64,
        amount_minor: i64,
        job_id: i64,
    }
}

/// The kinds of import, with their columns (required ones first) and whether rows are
/// independent.
pub const KINDS: [(&str, &[&str], &[&str], bool); 12] = [
    (
        "outlets",
        &["code", "name"],
        &[
            "address",
            "contact",
            "phone",
            "channel",
            "latitude",
            "longitude",
            "territory_code",
            "price_list",
            "rdc_code",
            "rdc_share",
        ],
        true,
    ),
    (
        "products",
        &["code", "name"],
        &[
            "unit",
            "category",
            "brand",
            "must_stock",
            "must_stock_channels",
        ],
        true,
    ),
    ("warehouses", &["code", "name"], &[], true),
    (
        "prices",
        &["price_list", "product_code", "price"],
        &["valid_from"],
        true,
    ),
    (
        "stock",
        &["warehouse_code", "product_code", "quantity"],
        &[],
        false,
    ),
    (
        "sales",
        &[
            "invoice_number",
            "invoice_date",
            "outlet_code",
            "product_code",
            "quantity",
            "amount",
        ],
        &[],
        false,
    ),
    (
        "receivables",
        &[
            "invoice_number",
            "outlet_code",
            "invoice_date",
            "due_date",
            "amount",
        ],
        &["paid", "currency"],
        true,
    ),
    (
        "plans",
        &["period", "target"],
        &[
            "outlet_code",
            "position_code",
            "category",
            "brand",
            "measure",
        ],
        true,
    ),
    (
        "routes",
        &["date", "position_code", "stop", "outlet_code"],
        &[],
        false,
    ),
    (
        "org_units",
        &["code", "name"],
        &["kind", "parent_code"],
        true,
    ),
    ("price_lists", &["name"], &["payment_form", "default"], true),
    (
        "sync_points",
        &["login", "distributor_code"],
        &["granted"],
        true,
    ),
];

/// Who sends an import: a distributor (its API key, or a back-office user within its sync
/// points) or the head office. Only the head office grants sync points: a distributor must
/// not widen anyone's scope, its own included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportScope {
    Distributor,
    HeadOffice,
}

/// Rows read from a file: header names (lower case) and (line number, cells).
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<(i64, Vec<String>)>,
}

impl Table {
    fn col(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == name)
    }
}

/// Limits of what an import file may hold, checked while reading, before anything is
/// allocated for it: a small hostile file (a workbook with a cell in XFD1048576, a zip bomb,
/// a JSON file whose every row has new keys) is refused with a message, not read into memory.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Data rows (the header not counted).
    pub rows: usize,
    /// Columns of the header, and the highest column a value may sit in.
    pub columns: usize,
    /// Non-empty cells in all.
    pub cells: usize,
    /// Decompressed bytes of any one part of an XLSX file, and of all parts together.
    pub part_bytes: u64,
    pub total_bytes: u64,
    /// Parts (files) inside an XLSX file.
    pub parts: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            rows: 500_000,
            columns: 256,
            cells: 5_000_000,
            part_bytes: 256 << 20,
            total_bytes: 512 << 20,
            parts: 1_000,
        }
    }
}

impl ReadLimits {
    fn too_many_rows(&self) -> String {
        format!("the file has more than {} rows; split it", self.rows)
    }
    fn too_many_columns(&self) -> String {
        format!("the file has more than {} columns", self.columns)
    }
    fn too_many_cells(&self) -> String {
        format!(
            "the file has more than {} filled cells; split it",
            self.cells
        )
    }
}

/// Whether a spreadsheet could take this text for a formula (OWASP's CSV injection list: a
/// leading `= + - @`, TAB or CR; a `-` only when the text is not a number), looking past any
/// leading `'`. The back office's CSV exports put one `'` before such a value, and reading a
/// CSV file drops it again ([`undefused`]), so that a file exported and imported back is the
/// same data, whatever the value starts with.
pub fn formula_like(s: &str) -> bool {
    let r = s.trim_start_matches('\'');
    r.starts_with(['=', '+', '@', '\t', '\r']) || (r.starts_with('-') && r.parse::<f64>().is_err())
}

/// A CSV cell as it was before an export defused it (see [`formula_like`]).
fn undefused(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if formula_like(cell) => rest,
        _ => cell,
    }
}

/// Reads CSV (UTF-8, comma or semicolon, first line the header).
pub fn read_csv(bytes: &[u8], limits: &ReadLimits) -> std::result::Result<Table, String> {
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
        .map_err(|_| "the file is not UTF-8 text".to_string())?;
    let first = text.lines().next().unwrap_or_default();
    let delimiter = if first.matches(';').count() > first.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("the header line cannot be read: {e}"))?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    if headers.len() > limits.columns {
        return Err(limits.too_many_columns());
    }
    let mut rows = Vec::new();
    let mut cells_seen = 0usize;
    // Line numbers from byte offsets (the csv crate's own line count skips empty lines).
    let (mut seen_byte, mut seen_line) = (0usize, 1i64);
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("record {}: {e}", i + 1))?;
        let mut byte = record
            .position()
            .map(|p| p.byte() as usize)
            .unwrap_or(seen_byte)
            .min(text.len());
        // The reported start may sit on the end of the previous line or on empty lines.
        while byte < text.len() && matches!(text.as_bytes()[byte], b'\r' | b'\n') {
            byte += 1;
        }
        if byte >= seen_byte {
            seen_line += text.as_bytes()[seen_byte..byte]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as i64;
            seen_byte = byte;
        }
        let line = seen_line;
        // Cells past the header's columns have no name and are not kept.
        let cells: Vec<String> = record
            .iter()
            .take(headers.len())
            .map(|c| undefused(c.trim()).to_string())
            .collect();
        if cells.iter().all(String::is_empty) {
            continue;
        }
        cells_seen += cells.len();
        if rows.len() >= limits.rows {
            return Err(limits.too_many_rows());
        }
        if cells_seen > limits.cells {
            return Err(limits.too_many_cells());
        }
        rows.push((line, cells));
    }
    Ok(Table { headers, rows })
}

/// Checks the parts of an XLSX (zip) file by decompressing them into nothing, counting:
/// the sizes a zip declares can lie, and calamine reads some parts whole.
fn check_zip(bytes: &[u8], limits: &ReadLimits) -> std::result::Result<(), String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("the file is not an XLSX workbook: {e}"))?;
    if zip.len() > limits.parts {
        return Err(format!("the workbook has more than {} parts", limits.parts));
    }
    let mut total = 0u64;
    for i in 0..zip.len() {
        let part = zip
            .by_index(i)
            .map_err(|e| format!("the file is not an XLSX workbook: {e}"))?;
        let name = part.name().map(|n| n.to_string()).unwrap_or_default();
        let size = std::io::copy(
            &mut std::io::Read::take(part, limits.part_bytes + 1),
            &mut std::io::sink(),
        )
        .map_err(|e| format!("the workbook part {name} cannot be read: {e}"))?;
        total += size;
        if size > limits.part_bytes || total > limits.total_bytes {
            return Err(format!(
                "the workbook unpacks to more than {} MiB; split it",
                limits.part_bytes.min(limits.total_bytes) >> 20
            ));
        }
    }
    Ok(())
}

/// Reads the first sheet of an XLSX workbook (its first filled row the header). Cells are
/// streamed one by one and only filled ones are kept, so the size a sheet claims (or the
/// position of its last cell) costs nothing.
pub fn read_xlsx(bytes: &[u8], limits: &ReadLimits) -> std::result::Result<Table, String> {
    use calamine::{Data, Reader, Xlsx};
    check_zip(bytes, limits)?;
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes))
        .map_err(|e| format!("the file is not an XLSX workbook: {e}"))?;
    let name = book
        .sheet_names()
        .first()
        .cloned()
        .ok_or_else(|| "the workbook has no sheet".to_string())?;
    let text = |d: Data| match d {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Data::Float(f) => format!("{f}"),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => (if b { "1" } else { "0" }).to_string(),
        // Excel's serial day 25569 is 1970-01-01.
        Data::DateTime(dt) => {
            fieldsync_protocol::dates::format_day_number(dt.as_f64().floor() as i64 - 25_569)
        }
        Data::DateTimeIso(s) => s.chars().take(10).collect(),
        other => other.to_string(),
    };
    let mut reader = book
        .worksheet_cells_reader(&name)
        .map_err(|e| format!("sheet {name}: {e}"))?;
    // (row, column, text) of every filled cell, in the order the sheet lists them.
    let mut cells: Vec<(u32, u32, String)> = Vec::new();
    let mut rows_seen = 0usize;
    let mut last_row = None;
    while let Some(c) = reader
        .next_cell()
        .map_err(|e| format!("sheet {name}: {e}"))?
    {
        let (row, col) = c.get_position();
        let value = text(Data::from(c.get_value().clone()));
        if value.is_empty() {
            continue;
        }
        if col as usize >= limits.columns {
            return Err(format!(
                "a value sits in column {} (row {}); at most {} columns are read",
                col + 1,
                row + 1,
                limits.columns
            ));
        }
        if cells.len() >= limits.cells {
            return Err(limits.too_many_cells());
        }
        if last_row != Some(row) {
            rows_seen += 1;
            last_row = Some(row);
            // The header row plus `rows` data rows.
            if rows_seen > limits.rows + 1 {
                return Err(limits.too_many_rows());
            }
        }
        cells.push((row, col, value));
    }
    drop(reader);
    cells.sort_by_key(|(r, c, _)| (*r, *c));
    let mut grouped: Vec<(u32, Vec<(u32, String)>)> = Vec::new();
    for (r, c, v) in cells {
        match grouped.last_mut() {
            Some((row, vals)) if *row == r => vals.push((c, v)),
            _ => grouped.push((r, vec![(c, v)])),
        }
    }
    if grouped.len() > limits.rows + 1 {
        return Err(limits.too_many_rows());
    }
    let mut grouped = grouped.into_iter();
    let (_, header_cells) = grouped
        .next()
        .ok_or_else(|| "the sheet is empty".to_string())?;
    let width = header_cells
        .iter()
        .map(|(c, _)| *c as usize + 1)
        .max()
        .unwrap_or(0);
    if width.saturating_mul(grouped.len()) > limits.cells {
        return Err(limits.too_many_cells());
    }
    let mut headers = vec![String::new(); width];
    for (c, v) in header_cells {
        headers[c as usize] = v.to_lowercase();
    }
    let rows = grouped
        .filter_map(|(r, vals)| {
            let mut row = vec![String::new(); width];
            for (c, v) in vals {
                if let Some(slot) = row.get_mut(c as usize) {
                    *slot = v;
                }
            }
            // Excel rows are numbered from 1.
            (!row.iter().all(String::is_empty)).then_some((r as i64 + 1, row))
        })
        .collect();
    Ok(Table { headers, rows })
}

/// Reads `{"rows": [{"code": ..., ...}, ...]}`; line numbers are the rows' positions. Keys
/// are matched without regard to case; at most `limits.columns` different keys.
pub fn read_json(bytes: &[u8], limits: &ReadLimits) -> std::result::Result<Table, String> {
    #[derive(serde::Deserialize)]
    struct Body {
        rows: Vec<serde_json::Map<String, serde_json::Value>>,
    }
    let body: Body = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() {
            format!("expected {{\"rows\": [ {{...}}, ... ]}}: {e}")
        } else {
            format!("the body is not JSON: {e}")
        }
    })?;
    if body.rows.len() > limits.rows {
        return Err(limits.too_many_rows());
    }
    let mut headers: Vec<String> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(body.rows.len());
    let mut cells_seen = 0usize;
    for (i, obj) in body.rows.into_iter().enumerate() {
        let mut cells: Vec<(usize, String)> = Vec::with_capacity(obj.len());
        for (k, v) in obj {
            let key = k.to_lowercase();
            let col = match index.get(&key) {
                Some(c) => *c,
                None => {
                    if headers.len() >= limits.columns {
                        return Err(format!(
                            "the rows have more than {} different keys",
                            limits.columns
                        ));
                    }
                    headers.push(key.clone());
                    index.insert(key, headers.len() - 1);
                    headers.len() - 1
                }
            };
            let text = match v {
                serde_json::Value::String(s) => s.trim().to_string(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            cells.push((col, text));
        }
        cells_seen += cells.len();
        if cells_seen > limits.cells {
            return Err(limits.too_many_cells());
        }
        out.push((i as i64 + 1, cells));
    }
    // Rows become as wide as the header only now that every key is known.
    let width = headers.len();
    if width.saturating_mul(out.len()) > limits.cells {
        return Err(limits.too_many_cells());
    }
    let rows = out
        .into_iter()
        .map(|(line, cells)| {
            let mut row = vec![String::new(); width];
            for (c, v) in cells {
                row[c] = v;
            }
            (line, row)
        })
        .collect();
    Ok(Table { headers, rows })
}

/// A decimal with up to `scale` fraction digits as an integer of 10^-scale units
/// ("1.5" with scale 3 -> 1500; "12,30" with scale 2 -> 1230).
pub fn parse_decimal(s: &str, scale: u32) -> Option<i64> {
    let s = s.trim().replace(',', ".").replace(' ', "");
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > scale as usize
        || int.len() > 12
    {
        return None;
    }
    let unit = 10i64.pow(scale);
    let int: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac_val: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<i64>().ok()? * 10i64.pow(scale - frac.len() as u32)
    };
    let v = int * unit + frac_val;
    Some(if neg { -v } else { v })
}

/// A job as shown in its log.
#[derive(Debug, Clone, Serialize)]
pub struct ImportJob {
    pub id: i64,
    pub distributor_id: i64,
    pub kind: String,
    pub source: String,
    pub file_name: String,
    pub format: String,
    /// `done`, `partial` (independent rows, some refused) or `failed` (nothing applied).
    pub status: String,
    pub message: String,
    pub rows_read: i64,
    pub rows_applied: i64,
    pub rows_refused: i64,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub errors: Vec<(i64, String)>,
}

/// A task that is aborted when this guard is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How long an import job's lease lasts; it is renewed every third of it while it runs.
pub const IMPORT_LEASE_MS: i64 = 30_000;
/// Imports a server runs at once, and how many more may wait for a turn.
pub const IMPORTS_AT_ONCE: usize = 2;
pub const IMPORTS_WAITING: usize = 6;

/// Rows of an independent import written per transaction (SQLite has one writer: between
/// chunks, queued pushes get their turn).
pub const WRITE_CHUNK: usize = 1_000;

/// Most refused rows a job log keeps.
const MAX_LOGGED_ERRORS: usize = 1000;

type Refused = Vec<(i64, String)>;

fn cell<'a>(t: &Table, row: &'a [String], name: &str) -> &'a str {
    t.col(name)
        .and_then(|i| row.get(i))
        .map(String::as_str)
        .unwrap_or("")
}

/// Parses every row with `parse`; a row it refuses is logged with its line and the reason.
fn parse_rows<T>(
    t: &Table,
    refused: &mut Refused,
    mut parse: impl FnMut(&[String]) -> std::result::Result<T, String>,
) -> Vec<T> {
    let mut ok = Vec::new();
    for (line, r) in &t.rows {
        match parse(r) {
            Ok(v) => ok.push(v),
            Err(reason) => refused.push((*line, reason)),
        }
    }
    ok
}

/// The code and name of an outlet or product row, both required.
fn code_and_name<'a>(
    t: &Table,
    r: &'a [String],
) -> std::result::Result<(&'a str, &'a str), String> {
    let (code, name) = (cell(t, r, "code"), cell(t, r, "name"));
    if code.is_empty() || name.is_empty() || code.len() > 64 {
        return Err("code and name are required (code at most 64 characters)".into());
    }
    Ok((code, name))
}

/// A reference by code or name in an optional column: `None` without the column (what is
/// stored stays), `Some(None)` for an empty cell (it is cleared), else the row it names
/// among `known` (`what` says what it is in the refusal).
fn optional_ref(
    t: &Table,
    r: &[String],
    column: &str,
    known: &HashMap<String, i64>,
    what: &str,
) -> std::result::Result<Option<Option<i64>>, String> {
    match (t.col(column).is_some(), cell(t, r, column)) {
        (false, _) => Ok(None),
        (true, "") => Ok(Some(None)),
        (true, c) => match known.get(c) {
            Some(id) => Ok(Some(Some(*id))),
            None => Err(format!("no {what} {c:?}")),
        },
    }
}

/// The refused rows of a file as a CSV the user can fix and send again: the line, the
/// reason, then the row's cells under the file's own headers (at most the logged rows).
fn refused_rows_file(t: &Table, refused: &Refused) -> Vec<u8> {
    if refused.is_empty() {
        return Vec::new();
    }
    let by_line: HashMap<i64, &Vec<String>> = t.rows.iter().map(|(l, r)| (*l, r)).collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["line".to_string(), "reason".to_string()];
    header.extend(t.headers.iter().cloned());
    let _ = w.write_record(&header);
    for (line, reason) in refused.iter().take(MAX_LOGGED_ERRORS) {
        let mut record = vec![line.to_string(), reason.clone()];
        if let Some(cells) = by_line.get(line) {
            // Cells that a spreadsheet would run as a formula are quoted as text.
            record.extend(cells.iter().map(|c| {
                if formula_like(c) {
                    format!("'{c}")
                } else {
                    c.clone()
                }
            }));
        }
        let _ = w.write_record(&record);
    }
    w.into_inner().unwrap_or_default()
}

/// An import handed to its background task: the job's id at once, its outcome when it ends.
pub struct StartedImport {
    pub id: i64,
    outcome: tokio::sync::oneshot::Receiver<Result<ImportJob>>,
}

/// The error of an import whose task ended without an outcome (it panicked): its job stays
/// `running` until its lease runs out and it is marked failed.
fn lost_outcome() -> super::StoreError {
    super::StoreError::Invalid("the import stopped without an outcome".into())
}

impl StartedImport {
    /// The finished job; waits as long as the import runs.
    pub async fn finished(self) -> Result<ImportJob> {
        self.outcome.await.unwrap_or_else(|_| Err(lost_outcome()))
    }

    /// The finished job if it ends within `wait`; otherwise `Err(self)` to ask again (the
    /// import goes on either way).
    pub async fn within(
        mut self,
        wait: std::time::Duration,
    ) -> std::result::Result<Result<ImportJob>, StartedImport> {
        match tokio::time::timeout(wait, &mut self.outcome).await {
            Ok(outcome) => Ok(outcome.unwrap_or_else(|_| Err(lost_outcome()))),
            Err(_) => Err(self),
        }
    }
}

impl Store {
    /// Records an import job and runs it in the background; returns at once with its id. At
    /// most [`IMPORTS_AT_ONCE`] run at once per server and [`IMPORTS_WAITING`] more wait;
    /// beyond that the import is refused at once (`StoreError::Busy`, 503) and nothing is
    /// recorded. The job does not depend on the request that sent it: a client that hangs up
    /// or a request timeout leaves it running. While it waits and runs the job holds a lease
    /// that it renews; if the server dies, any server marks it failed once the lease has run
    /// out (see [`Store::recover_import_jobs`]).
    ///
    /// The import runs in the scope of a distributor (its API key or its key users); see
    /// [`Store::start_import_as`] for the head office's.
    #[allow(clippy::too_many_arguments)]
    pub async fn start_import(
        &self,
        distributor_id: i64,
        kind: &str,
        source: &str,
        file_name: &str,
        format: &str,
        bytes: bytes::Bytes,
        now: i64,
        dry_run: bool,
    ) -> Result<StartedImport> {
        self.start_import_as(
            ImportScope::Distributor,
            distributor_id,
            kind,
            source,
            file_name,
            format,
            bytes,
            now,
            dry_run,
        )
        .await
    }

    /// [`Store::start_import`] for a sender of this scope: only the head office's imports
    /// may grant sync points.
    #[allow(clippy::too_many_arguments)]
    pub async fn start_import_as(
        &self,
        scope: ImportScope,
        distributor_id: i64,
        kind: &str,
        source: &str,
        file_name: &str,
        format: &str,
        bytes: bytes::Bytes,
        now: i64,
        dry_run: bool,
    ) -> Result<StartedImport> {
        let admitted = self.import_admission()?;
        let (id,): (i64,) = self.one(
            "INSERT INTO import_jobs (distributor_id, kind, source, file_name, format, status, started_at_ms, lease_until_ms) \
             VALUES ($1, $2, $3, $4, $5, 'running', $6, $7) RETURNING id",
            &[distributor_id.into_val(), kind.into_val(), source.into_val(), (file_name.chars().take(200).collect::<String>()).into_val(), format.into_val(), now.into_val(), (super::now_ms() + IMPORT_LEASE_MS).into_val()],
        )
        .await?;
        let job = ImportJob {
            id,
            distributor_id,
            kind: kind.into(),
            source: source.into(),
            file_name: file_name.into(),
            format: format.into(),
            status: "failed".into(),
            message: String::new(),
            rows_read: 0,
            rows_applied: 0,
            rows_refused: 0,
            started_at_ms: now,
            finished_at_ms: None,
            errors: Vec::new(),
        };
        let (tx, outcome) = tokio::sync::oneshot::channel();
        let store = self.clone();
        tokio::spawn(async move {
            // Renews the lease while the job waits for its turn and runs; stops with the task.
            let _renewer = AbortOnDrop(tokio::spawn({
                let store = store.clone();
                async move {
                    let period = std::time::Duration::from_millis(IMPORT_LEASE_MS as u64 / 3);
                    loop {
                        tokio::time::sleep(period).await;
                        let _ = store
                            .exec(
                                "UPDATE import_jobs SET lease_until_ms = $1 WHERE id = $2 AND status = 'running'",
                                &[(super::now_ms() + IMPORT_LEASE_MS).into_val(), id.into_val()],
                            )
                            .await;
                    }
                }
            }));
            let _slot = (admitted, store.import_turn().await);
            let _ = tx.send(store.run_import_job(job, bytes, dry_run, scope).await);
        });
        Ok(StartedImport { id, outcome })
    }

    /// Marks failed the import jobs whose server stopped while running them (their lease ran
    /// out). Returns how many.
    pub async fn recover_import_jobs(&self, now: i64) -> Result<u64> {
        self.exec("UPDATE import_jobs SET status = 'failed', finished_at_ms = $1, \
             message = 'the server running this import stopped before it finished; send the file again' \
             WHERE status = 'running' AND lease_until_ms < $1", &[now.into_val()]).await
    }

    /// Reads the file of a job just recorded as running, applies it and records the outcome.
    async fn run_import_job(
        &self,
        mut job: ImportJob,
        bytes: bytes::Bytes,
        dry_run: bool,
        scope: ImportScope,
    ) -> Result<ImportJob> {
        let (id, distributor_id, now) = (job.id, job.distributor_id, job.started_at_ms);
        let kind = job.kind.clone();
        let kind = kind.as_str();
        let mut report = PatchReport::default();
        // Reading is CPU work: it runs on a blocking thread, not on the request threads.
        let table = {
            let format = job.format.clone();
            tokio::task::spawn_blocking(move || {
                let limits = ReadLimits::default();
                match format.as_str() {
                    "csv" => read_csv(&bytes, &limits),
                    "xlsx" => read_xlsx(&bytes, &limits),
                    "json" => read_json(&bytes, &limits),
                    other => Err(format!("unknown format {other:?}: use csv, xlsx or json")),
                }
            })
            .await
            .unwrap_or_else(|_| Err("the file could not be read".into()))
        };
        let spec = KINDS.iter().find(|k| k.0 == kind);
        let mut refused_file = Vec::new();
        let outcome: std::result::Result<(i64, Refused), String> = match (table, spec) {
            (Err(e), _) => Err(e),
            (_, None) => Err(format!(
                "unknown import {kind:?}: use {}",
                KINDS.map(|k| k.0).join(", ")
            )),
            (Ok(t), Some((_, required, _, independent))) => {
                job.rows_read = t.rows.len() as i64;
                let missing: Vec<&str> = required
                    .iter()
                    .copied()
                    .filter(|c| t.col(c).is_none())
                    .collect();
                if !missing.is_empty() {
                    Err(format!("required columns missing: {}", missing.join(", ")))
                } else {
                    let outcome = self
                        .apply_import(
                            distributor_id,
                            kind,
                            &t,
                            *independent,
                            id,
                            &mut report,
                            dry_run,
                            scope,
                        )
                        .await?;
                    if let Ok((_, refused)) = &outcome {
                        refused_file = refused_rows_file(&t, refused);
                    }
                    outcome
                }
            }
        };
        match outcome {
            Err(message) => {
                job.status = "failed".into();
                job.message = message;
            }
            Ok((applied, refused)) => {
                job.rows_applied = applied;
                job.rows_refused = refused.len() as i64;
                job.status = if refused.is_empty() {
                    "done"
                } else if applied > 0 {
                    "partial"
                } else {
                    "failed"
                }
                .into();
                job.message = if applied == 0 && !refused.is_empty() && spec.is_some_and(|s| !s.3) {
                    "nothing was applied: the file is applied whole or not at all".into()
                } else {
                    report.summary()
                };
                if dry_run {
                    job.status = "checked".into();
                    job.message = format!("dry run, nothing was written: {}", job.message);
                }
                job.errors = refused;
            }
        }
        let finished = super::now_ms().max(now);
        job.finished_at_ms = Some(finished);
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE import_jobs SET status = $1, message = $2, rows_read = $3, rows_applied = $4, \
             rows_refused = $5, finished_at_ms = $6 WHERE id = $7",
        )
        .bind(&job.status)
        .bind(&job.message)
        .bind(job.rows_read)
        .bind(job.rows_applied)
        .bind(job.rows_refused)
        .bind(finished)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let rows: Vec<ImportErrorRow> = job
            .errors
            .iter()
            .take(MAX_LOGGED_ERRORS)
            .map(|(line, reason)| ImportErrorRow {
                job_id: id,
                line_no: *line,
                reason: reason.clone(),
            })
            .collect();
        insert(&mut tx, rows).await?;
        // The key user who uploaded the file hears how it went, with the refused rows
        // attached, if they gave a mail address (in the same transaction as the outcome).
        if let Some(login) = job.source.strip_prefix("upload:") {
            let to: Vec<(String, String)> = rows_on(
                &mut tx,
                "SELECT email, lang FROM key_users WHERE login = $1 AND email <> '' AND disabled_at_ms IS NULL",
                &[login.into_val()],
            )
            .await?;
            if let Some((email, lang)) = to.first() {
                let letter = crate::mail::letters::import_result(
                    lang,
                    email,
                    &job,
                    refused_file,
                    self.public_url(),
                );
                super::mail::queue_on(&mut tx, &letter, finished).await?;
            }
        }
        tx.commit().await?;
        Ok(job)
    }

    /// Validates and applies the rows. Independent kinds apply their valid rows; the others
    /// apply nothing when a row is refused.
    #[allow(clippy::too_many_arguments)]
    async fn apply_import(
        &self,
        d: i64,
        kind: &str,
        t: &Table,
        independent: bool,
        job_id: i64,
        report: &mut PatchReport,
        dry_run: bool,
        scope: ImportScope,
    ) -> Result<std::result::Result<(i64, Refused), String>> {
        let mut refused: Refused = Vec::new();
        // The distributor's rows of a table by a column; the last row read of a name wins.
        let ids_by = |column: &'static str, table: &'static str, extra: &'static str| async move {
            let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {column}, id FROM {table} WHERE distributor_id = $1{extra}"
            )))
            .bind(d)
            .fetch_all(self.pool())
            .await?;
            Ok::<HashMap<String, i64>, super::StoreError>(rows.into_iter().collect())
        };
        // By name, the oldest row wins (read last).
        let names = |table: &'static str| ids_by("name", table, " ORDER BY id DESC");
        let codes = |table: &'static str, extra: &'static str| ids_by("code", table, extra);
        match kind {
            "outlets" => {
                let territories = codes("org_units", "").await?;
                let price_lists = names("price_lists").await?;
                let has = |c: &str| t.col(c).is_some();
                let text = |r: &[String], c: &str| has(c).then(|| cell(t, r, c).to_string());
                let ok = parse_rows(t, &mut refused, |r| {
                    let (code, name) = code_and_name(t, r)?;
                    // Coordinates go together: both columns absent keep the stored place, both
                    // cells empty clear it.
                    let location = if !has("latitude") && !has("longitude") {
                        None
                    } else {
                        let (lat, lon) = (cell(t, r, "latitude"), cell(t, r, "longitude"));
                        match (parse_decimal(lat, 7), parse_decimal(lon, 7)) {
                            _ if lat.is_empty() && lon.is_empty() => Some(None),
                            (Some(a), Some(b))
                                if a.abs() <= 900_000_000 && b.abs() <= 1_800_000_000 =>
                            {
                                Some(Some((a as i32, b as i32)))
                            }
                            _ => {
                                return Err(format!(
                                    "coordinates {lat:?}, {lon:?} are not a place on the globe"
                                ));
                            }
                        }
                    };
                    Ok(OutletPatch {
                        code: code.into(),
                        name: name.into(),
                        address: text(r, "address"),
                        contact_name: text(r, "contact"),
                        phone: text(r, "phone"),
                        channel: text(r, "channel"),
                        territory_id: optional_ref(
                            t,
                            r,
                            "territory_code",
                            &territories,
                            "territory",
                        )?,
                        location,
                        price_list_id: optional_ref(
                            t,
                            r,
                            "price_list",
                            &price_lists,
                            "price list",
                        )?,
                    })
                });
                let n = ok.len() as i64;
                // In chunks, each its own transaction: a phone's push waits for one chunk at
                // most, never for the whole file.
                for chunk in keyed_chunks(ok, WRITE_CHUNK, |o| o.code.clone()) {
                    report.add(
                        self.upsert_outlets(d, &chunk, PatchMode::dry(dry_run))
                            .await?,
                    );
                }
                // The RDC an outlet is attached to, with its share (percent; an empty share
                // with a code: 100; an empty code: detached).
                if has("rdc_code") && !dry_run {
                    let outlet_ids = codes("outlets", " AND deleted = 0").await?;
                    let mut attach: Vec<(i64, String, i64, i64)> = Vec::new();
                    for (line, r) in &t.rows {
                        if refused.iter().any(|x| x.0 == *line) {
                            continue;
                        }
                        let Some(id) = outlet_ids.get(cell(t, r, "code")) else {
                            continue;
                        };
                        let share = cell(t, r, "rdc_share");
                        let share = if share.is_empty() {
                            Some(100_000)
                        } else {
                            parse_decimal(share, 3).filter(|v| (0..=100_000).contains(v))
                        };
                        match share {
                            Some(s) => {
                                attach.push((*line, cell(t, r, "rdc_code").to_string(), *id, s))
                            }
                            None => refused
                                .push((*line, "rdc_share is a percent from 0 to 100".to_string())),
                        }
                    }
                    let mut tx = self.begin_write().await?;
                    let rows: Vec<(String, i64, i64)> =
                        attach.iter().map(|a| (a.1.clone(), a.2, a.3)).collect();
                    for (i, why) in self.attach_to_rdcs(&mut tx, d, &rows).await? {
                        refused.push((attach[i].0, why));
                    }
                    tx.commit().await?;
                    refused.sort();
                }
                Ok(Ok((n, refused)))
            }
            "products" => {
                let has = |c: &str| t.col(c).is_some();
                let ok = parse_rows(t, &mut refused, |r| {
                    let (code, name) = code_and_name(t, r)?;
                    let must = match cell(t, r, "must_stock").to_lowercase().as_str() {
                        _ if !has("must_stock") => None,
                        "" | "0" | "no" | "false" => Some(false),
                        "1" | "yes" | "true" => Some(true),
                        other => return Err(format!("must_stock {other:?} is not yes/no")),
                    };
                    Ok(ProductPatch {
                        code: code.into(),
                        name: name.into(),
                        unit: has("unit").then(|| cell(t, r, "unit").to_string()),
                        category: has("category").then(|| cell(t, r, "category").to_string()),
                        brand: has("brand").then(|| cell(t, r, "brand").to_string()),
                        must_stock: must,
                        // `traditional;modern`; an empty cell: every channel.
                        must_stock_channels: match has("must_stock_channels") {
                            false => None,
                            true => {
                                let cell = cell(t, r, "must_stock_channels");
                                let listed: Vec<&str> = cell.split(';').collect();
                                Some(
                                    super::world::checked_must_stock_channels(&listed)
                                        .map_err(|p| p.to_string())?,
                                )
                            }
                        },
                    })
                });
                let n = ok.len() as i64;
                for chunk in keyed_chunks(ok, WRITE_CHUNK, |p| p.code.clone()) {
                    report.add(
                        self.upsert_products(d, &chunk, PatchMode::dry(dry_run))
                            .await?,
                    );
                }
                Ok(Ok((n, refused)))
            }
            "prices" => {
                let price_lists = names("price_lists").await?;
                let products = codes("products", " AND deleted = 0").await?;
                let mut rows: Vec<PriceRow> = Vec::new();
                for (line, r) in &t.rows {
                    let list = cell(t, r, "price_list");
                    let Some(list_id) = price_lists.get(list) else {
                        refused.push((*line, format!("no price list {list:?}")));
                        continue;
                    };
                    let product = cell(t, r, "product_code");
                    let Some(product_id) = products.get(product) else {
                        refused.push((*line, format!("no product {product:?}")));
                        continue;
                    };
                    let price = cell(t, r, "price");
                    let Some(minor) = parse_decimal(price, 2).filter(|m| *m >= 0) else {
                        refused.push((
                            *line,
                            format!("price {price:?} is not an amount like 12.50"),
                        ));
                        continue;
                    };
                    // The first day the price applies; no column or an empty cell: since
                    // always.
                    let from = cell(t, r, "valid_from").trim();
                    if !from.is_empty() && !fieldsync_protocol::dates::is_date(from) {
                        refused.push((
                            *line,
                            format!("valid_from {from:?} is not a date like 2026-12-31"),
                        ));
                        continue;
                    }
                    let label = match from {
                        "" => format!("{list}/{product}"),
                        _ => format!("{list}/{product} from {from}"),
                    };
                    rows.push(PriceRow {
                        list_id: *list_id,
                        product_id: *product_id,
                        price_minor: minor,
                        valid_from: from.to_string(),
                        label,
                    });
                }
                let n = rows.len() as i64;
                for chunk in keyed_chunks(rows, WRITE_CHUNK, |r| (r.list_id, r.product_id)) {
                    let mut tx = self.begin_write().await?;
                    let changes = write_prices(&mut tx, &chunk, report).await?;
                    finish_patch(tx, d, &changes, dry_run).await?;
                }
                Ok(Ok((n, refused)))
            }
            "warehouses" => {
                let mut rows: Vec<(String, String)> = Vec::new();
                for (line, r) in &t.rows {
                    let (code, name) = (cell(t, r, "code"), cell(t, r, "name"));
                    if code.is_empty() || name.is_empty() {
                        refused.push((*line, "code and name are required".into()));
                        continue;
                    }
                    rows.push((code.to_string(), name.to_string()));
                }
                let n = rows.len() as i64;
                for chunk in keyed_chunks(rows, WRITE_CHUNK, |r| r.0.clone()) {
                    let mut tx = self.begin_write().await?;
                    let changes = write_warehouses(&mut tx, d, &chunk, report).await?;
                    finish_patch(tx, d, &changes, dry_run).await?;
                }
                Ok(Ok((n, refused)))
            }
            "stock" => {
                let warehouses = codes("warehouses", "").await?;
                let products = codes("products", " AND deleted = 0").await?;
                let mut rows = Vec::new();
                for (line, r) in &t.rows {
                    let (wc, pc) = (cell(t, r, "warehouse_code"), cell(t, r, "product_code"));
                    let q = parse_decimal(cell(t, r, "quantity"), 3);
                    match (warehouses.get(wc), products.get(pc), q) {
                        (None, _, _) => refused.push((*line, format!("no warehouse {wc:?}"))),
                        (_, None, _) => refused.push((*line, format!("no product {pc:?}"))),
                        (_, _, None) => refused.push((
                            *line,
                            format!("quantity {:?} is not a number", cell(t, r, "quantity")),
                        )),
                        (Some(w), Some(p), Some(q)) => rows.push((*w, *p, q, format!("{wc}/{pc}"))),
                    }
                }
                if !refused.is_empty() || independent {
                    return Ok(Ok((0, refused)));
                }
                let mut tx = self.begin_write().await?;
                let changes = write_stock(&mut tx, d, &rows, report).await?;
                finish_patch(tx, d, &changes, dry_run).await?;
                Ok(Ok((rows.len() as i64, refused)))
            }
            "sales" => {
                let outlets = codes("outlets", "").await?;
                let products = codes("products", "").await?;
                let mut rows: Vec<SaleRow> = Vec::with_capacity(t.rows.len());
                let mut line_of: HashMap<String, i64> = HashMap::new();
                for (line, r) in &t.rows {
                    let invoice = cell(t, r, "invoice_number");
                    let date = cell(t, r, "invoice_date");
                    let o = outlets.get(cell(t, r, "outlet_code"));
                    let p = products.get(cell(t, r, "product_code"));
                    let q = parse_decimal(cell(t, r, "quantity"), 3);
                    let a = parse_decimal(cell(t, r, "amount"), 2);
                    let reason = if invoice.is_empty() {
                        Some("invoice_number is required".to_string())
                    } else if fieldsync_protocol::dates::parse_day_number(date).is_none() {
                        Some(format!("invoice_date {date:?} is not YYYY-MM-DD"))
                    } else if o.is_none() {
                        Some(format!("no outlet {:?}", cell(t, r, "outlet_code")))
                    } else if p.is_none() {
                        Some(format!("no product {:?}", cell(t, r, "product_code")))
                    } else if q.is_none() {
                        Some(format!(
                            "quantity {:?} is not a number",
                            cell(t, r, "quantity")
                        ))
                    } else if a.is_none() {
                        Some(format!(
                            "amount {:?} is not a sum of money",
                            cell(t, r, "amount")
                        ))
                    } else {
                        None
                    };
                    if let Some(reason) = reason {
                        refused.push((*line, reason));
                        continue;
                    }
                    let n = line_of.entry(invoice.to_string()).or_insert(0);
                    *n += 1;
                    rows.push(SaleRow {
                        distributor_id: d,
                        invoice_number: invoice.into(),
                        line_no: *n,
                        invoice_date: date.into(),
                        outlet_id: *o.expect("checked"),
                        product_id: *p.expect("checked"),
                        quantity_milli: q.expect("checked"),
                        amount_minor: a.expect("checked"),
                        job_id,
                    });
                }
                if !refused.is_empty() {
                    return Ok(Ok((0, refused)));
                }
                let count = rows.len();
                let mut tx = self.begin_write().await?;
                let names = Names {
                    outlets: reverse(&outlets),
                    products: reverse(&products),
                };
                let sold_at: std::collections::BTreeSet<i64> =
                    rows.iter().map(|r| r.outlet_id).collect();
                let periods: std::collections::BTreeSet<String> = rows
                    .iter()
                    .map(|r| r.invoice_date.chars().take(7).collect())
                    .collect();
                write_sales(&mut tx, d, rows, &names, report).await?;
                // The plans these sales count toward are sent again.
                let plans = super::plans::touched_plans(
                    &mut tx,
                    d,
                    &sold_at,
                    &Default::default(),
                    &periods,
                )
                .await?;
                finish_patch(tx, d, &plans, dry_run).await?;
                // A big load changes the table's size by orders of magnitude; without fresh
                // statistics PostgreSQL plans the next file's replace step as a full scan per
                // chunk (measured: 40 s instead of 1 s for the second 100,000-line file).
                if !dry_run && count >= 10_000 && self.backend() == super::Backend::Postgres {
                    self.exec("ANALYZE actual_sales", &[]).await?;
                }
                Ok(Ok((count as i64, refused)))
            }
            "receivables" => {
                let outlets = codes("outlets", " AND deleted = 0").await?;
                let ok = parse_rows(t, &mut refused, |r| {
                    let number = cell(t, r, "invoice_number");
                    if number.is_empty() || number.chars().count() > 100 {
                        return Err("invoice_number is required (at most 100 characters)".into());
                    }
                    let code = cell(t, r, "outlet_code");
                    let outlet_id = *outlets
                        .get(code)
                        .ok_or_else(|| format!("no outlet {code:?}"))?;
                    let date = |c: &str| {
                        let v = cell(t, r, c);
                        fieldsync_protocol::dates::is_date(v)
                            .then(|| v.to_string())
                            .ok_or_else(|| format!("{c} {v:?} is not a date like 2026-12-31"))
                    };
                    let (invoice_date, due_date) = (date("invoice_date")?, date("due_date")?);
                    let amount = |c: &str, empty_is_zero: bool| {
                        let v = cell(t, r, c);
                        if v.is_empty() && empty_is_zero {
                            return Ok(0);
                        }
                        parse_decimal(v, 2)
                            .filter(|m| *m >= 0)
                            .ok_or_else(|| format!("{c} {v:?} is not an amount like 12.50"))
                    };
                    let (amount_minor, paid_minor) =
                        (amount("amount", false)?, amount("paid", true)?);
                    let currency = cell(t, r, "currency").to_uppercase();
                    if !currency.is_empty()
                        && (currency.len() != 3
                            || !currency.bytes().all(|b| b.is_ascii_uppercase()))
                    {
                        return Err(format!("currency {currency:?} is not an ISO code like UAH"));
                    }
                    Ok(super::receivables::InvoiceRow {
                        label: format!("{number} ({code})"),
                        invoice_number: number.into(),
                        outlet_id,
                        invoice_date,
                        due_date,
                        amount_minor,
                        paid_minor,
                        currency,
                    })
                });
                let n = ok.len() as i64;
                let now = super::now_ms();
                for chunk in keyed_chunks(ok, WRITE_CHUNK, |r| r.invoice_number.clone()) {
                    let mut tx = self.begin_write().await?;
                    let changes = super::receivables::write_receivables(
                        &mut tx, d, &chunk, job_id, now, report,
                    )
                    .await?;
                    finish_patch(tx, d, &changes, dry_run).await?;
                }
                Ok(Ok((n, refused)))
            }
            "plans" => {
                let outlets = codes("outlets", " AND deleted = 0").await?;
                let positions = codes("org_units", " AND kind = 'position'").await?;
                let ok = parse_rows(t, &mut refused, |r| {
                    let (oc, pc) = (cell(t, r, "outlet_code"), cell(t, r, "position_code"));
                    let (scope, scope_id) = match (oc.is_empty(), pc.is_empty()) {
                        (false, true) => (
                            "outlet",
                            *outlets.get(oc).ok_or_else(|| format!("no outlet {oc:?}"))?,
                        ),
                        (true, false) => (
                            "position",
                            *positions
                                .get(pc)
                                .ok_or_else(|| format!("no position {pc:?}"))?,
                        ),
                        _ => return Err("give outlet_code or position_code, one of them".into()),
                    };
                    let measure = match cell(t, r, "measure").to_lowercase().as_str() {
                        "" | "money" => "money",
                        "quantity" => "quantity",
                        other => return Err(format!("measure {other:?} is money or quantity")),
                    };
                    let raw = cell(t, r, "target");
                    let target = parse_decimal(raw, if measure == "money" { 2 } else { 3 })
                        .filter(|v| *v > 0)
                        .ok_or_else(|| format!("target {raw:?} is not a positive number"))?;
                    Ok(super::plans::PlanForm {
                        period: cell(t, r, "period").to_string(),
                        scope: scope.into(),
                        scope_id,
                        category: cell(t, r, "category").to_string(),
                        brand: cell(t, r, "brand").to_string(),
                        measure: measure.into(),
                        target,
                    })
                });
                let lines: Vec<i64> = t
                    .rows
                    .iter()
                    .map(|(line, _)| *line)
                    .filter(|l| !refused.iter().any(|r| r.0 == *l))
                    .collect();
                let mut applied = 0;
                let now = super::now_ms();
                for (chunk_no, chunk) in ok.chunks(WRITE_CHUNK).enumerate() {
                    let mut tx = self.begin_write().await?;
                    // A refused row is logged and the chunk is written again without it.
                    let mut rows: Vec<(i64, super::plans::PlanForm)> = chunk
                        .iter()
                        .cloned()
                        .enumerate()
                        .map(|(i, f)| (lines[chunk_no * WRITE_CHUNK + i], f))
                        .collect();
                    let (changes, counted) = loop {
                        let forms: Vec<_> = rows.iter().map(|r| r.1.clone()).collect();
                        let mut counted = PatchReport::default();
                        match super::plans::write_plans(&mut tx, d, &forms, now, &mut counted)
                            .await?
                        {
                            Ok(changes) => break (changes, counted),
                            Err((i, reason)) => {
                                tx.rollback().await?;
                                refused.push((rows[i].0, reason));
                                rows.remove(i);
                                tx = self.begin_write().await?;
                            }
                        }
                    };
                    applied += rows.len() as i64;
                    report.add(counted);
                    finish_patch(tx, d, &changes, dry_run).await?;
                }
                refused.sort();
                Ok(Ok((applied, refused)))
            }
            "routes" => {
                let positions = codes("org_units", " AND kind = 'position'").await?;
                let outlets = codes("outlets", " AND deleted = 0").await?;
                let mut routes: std::collections::BTreeMap<(i64, String), Vec<(i64, i64)>> =
                    Default::default();
                for (line, r) in &t.rows {
                    let date = cell(t, r, "date");
                    let pos = positions.get(cell(t, r, "position_code"));
                    let outlet = outlets.get(cell(t, r, "outlet_code"));
                    let stop = cell(t, r, "stop").parse::<i64>().ok().filter(|s| *s > 0);
                    match (
                        fieldsync_protocol::dates::parse_day_number(date),
                        pos,
                        outlet,
                        stop,
                    ) {
                        (None, ..) => {
                            refused.push((*line, format!("date {date:?} is not YYYY-MM-DD")))
                        }
                        (_, None, ..) => refused.push((
                            *line,
                            format!("no position {:?}", cell(t, r, "position_code")),
                        )),
                        (_, _, None, _) => refused
                            .push((*line, format!("no outlet {:?}", cell(t, r, "outlet_code")))),
                        (_, _, _, None) => {
                            refused.push((*line, "stop is a positive whole number".into()))
                        }
                        (Some(_), Some(p), Some(o), Some(s)) => routes
                            .entry((*p, date.to_string()))
                            .or_default()
                            .push((s, *o)),
                    }
                }
                if !refused.is_empty() {
                    return Ok(Ok((0, refused)));
                }
                let routes: Vec<((i64, String), Vec<i64>)> = routes
                    .into_iter()
                    .map(|(key, mut stops)| {
                        stops.sort();
                        (key, stops.into_iter().map(|s| s.1).collect())
                    })
                    .collect();
                let applied = routes.iter().map(|r| r.1.len() as i64).sum();
                let names = Names {
                    outlets: reverse(&outlets),
                    products: reverse(&positions),
                };
                let mut tx = self.begin_write().await?;
                let changes = write_routes(&mut tx, d, &routes, &names, report).await?;
                finish_patch(tx, d, &changes, dry_run).await?;
                Ok(Ok((applied, refused)))
            }
            "org_units" => self.import_org_units(d, t, report, dry_run).await,
            "price_lists" => self.import_price_lists(d, t, report, dry_run).await,
            "sync_points" => self.import_sync_points(scope, t, report, dry_run).await,
            _ => Ok(Err("unknown import kind".into())),
        }
    }

    /// The newest `limit` jobs of these distributors (without their error lines), newest
    /// first. Filtered before the limit: many jobs of another distributor never push these
    /// out.
    pub async fn import_jobs(&self, distributor_ids: &[i64], limit: i64) -> Result<Vec<ImportJob>> {
        if distributor_ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=distributor_ids.len())
            .map(|i| format!("${i}"))
            .collect();
        let sql = format!(
            "SELECT id, distributor_id, kind, source, file_name, format, status, message, rows_read, rows_applied, \
             rows_refused, started_at_ms, finished_at_ms \
             FROM import_jobs WHERE distributor_id IN ({}) ORDER BY id DESC LIMIT ${}",
            marks.join(", "),
            distributor_ids.len() + 1
        );
        type Row = (
            i64,
            i64,
            String,
            String,
            String,
            String,
            String,
            String,
            i64,
            i64,
            i64,
            i64,
            Option<i64>,
        );
        let mut query = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql));
        for id in distributor_ids {
            query = query.bind(*id);
        }
        let rows = query.bind(limit).fetch_all(self.pool()).await?;
        Ok(rows
            .into_iter()
            .map(|r| ImportJob {
                id: r.0,
                distributor_id: r.1,
                kind: r.2,
                source: r.3,
                file_name: r.4,
                format: r.5,
                status: r.6,
                message: r.7,
                rows_read: r.8,
                rows_applied: r.9,
                rows_refused: r.10,
                started_at_ms: r.11,
                finished_at_ms: r.12,
                errors: Vec::new(),
            })
            .collect())
    }

    /// A job with its logged errors, if it belongs to one of these distributors.
    pub async fn import_job(&self, id: i64) -> Result<Option<ImportJob>> {
        let row: Option<(i64, String, String, String, String, String, String, i64, i64, i64, i64, Option<i64>)> =
            self.opt(
                "SELECT distributor_id, kind, source, file_name, format, status, message, rows_read, rows_applied, \
                 rows_refused, started_at_ms, finished_at_ms FROM import_jobs WHERE id = $1",
                &[id.into_val()],
            )
            .await?;
        let Some(r) = row else { return Ok(None) };
        let errors: Vec<(i64, String)> = self
            .rows(
                "SELECT line_no, reason FROM import_errors WHERE job_id = $1 ORDER BY line_no",
                &[id.into_val()],
            )
            .await?;
        Ok(Some(ImportJob {
            id,
            distributor_id: r.0,
            kind: r.1,
            source: r.2,
            file_name: r.3,
            format: r.4,
            status: r.5,
            message: r.6,
            rows_read: r.7,
            rows_applied: r.8,
            rows_refused: r.9,
            started_at_ms: r.10,
            finished_at_ms: r.11,
            errors,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_become_integers_of_their_scale() {
        assert_eq!(parse_decimal("1.5", 3), Some(1500));
        assert_eq!(parse_decimal("12,30", 2), Some(1230));
        assert_eq!(parse_decimal("-0.5", 2), Some(-50));
        assert_eq!(parse_decimal("50.4501234", 7), Some(504_501_234));
        assert_eq!(parse_decimal("1.2345", 3), None);
        assert_eq!(parse_decimal("abc", 2), None);
        assert_eq!(parse_decimal("", 2), None);
    }

    #[test]
    fn csv_with_semicolons_a_bom_and_quotes_is_read() {
        let limits = ReadLimits::default();
        let t = read_csv(
            "\u{feff}Code;Name\r\nA1;\"Shop; corner\"\r\n\r\nA2;Kiosk\r\n".as_bytes(),
            &limits,
        )
        .unwrap();
        assert_eq!(t.headers, vec!["code", "name"]);
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0].1[1], "Shop; corner");
        assert_eq!(t.rows[1].0, 4, "line numbers count the skipped empty line");
        assert!(read_csv(&[0xff, 0xfe, 0x00], &limits).is_err());
    }

    fn workbook(cells: &[(u32, u16, &str)]) -> Vec<u8> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (r, c, v) in cells {
            sheet.write_string(*r, *c, *v).unwrap();
        }
        book.save_to_buffer().unwrap()
    }

    #[test]
    fn a_workbook_with_a_cell_in_the_last_row_and_column_is_refused_without_allocating_the_sheet() {
        // The attack that killed the process: two cells, A1 and XFD1048576 (the sheet then
        // claims 1,048,576 x 16,384 cells; calamine's dense range asked for 512 GiB).
        let bytes = workbook(&[(0, 0, "code"), (1_048_575, 16_383, "x")]);
        assert!(bytes.len() < 10_000);
        let err = read_xlsx(&bytes, &ReadLimits::default()).unwrap_err();
        assert_eq!(
            err,
            "a value sits in column 16384 (row 1048576); at most 256 columns are read"
        );
        // Far down but within the columns: refused by the row limit, not read.
        let bytes = workbook(&[(0, 0, "code"), (0, 1, "name"), (1_048_575, 1, "x")]);
        let limits = ReadLimits {
            rows: 10,
            ..ReadLimits::default()
        };
        let t = read_xlsx(&bytes, &limits).unwrap();
        assert_eq!(t.rows, vec![(1_048_576, vec![String::new(), "x".into()])]);
        let many: Vec<(u32, u16, &str)> = (0..20).map(|r| (r, 0, "v")).collect();
        assert_eq!(
            read_xlsx(&workbook(&many), &limits).unwrap_err(),
            "the file has more than 10 rows; split it"
        );
    }

    #[test]
    fn a_workbook_is_read_sparsely_with_excel_line_numbers() {
        let bytes = workbook(&[
            (2, 1, "Code"),
            (2, 2, "Name"),
            (3, 1, "A1"),
            (3, 2, "Shop"),
            (6, 2, "Kiosk"),
        ]);
        let t = read_xlsx(&bytes, &ReadLimits::default()).unwrap();
        assert_eq!(t.headers, vec!["", "code", "name"]);
        assert_eq!(
            t.rows,
            vec![
                (4, vec!["".into(), "A1".into(), "Shop".into()]),
                (7, vec!["".into(), "".into(), "Kiosk".into()]),
            ]
        );
    }

    #[test]
    fn a_zip_bomb_is_refused_by_its_unpacked_size() {
        use std::io::Write;
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buf);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("xl/sharedStrings.xml", options).unwrap();
        let block = vec![b' '; 1 << 20];
        for _ in 0..3 {
            zip.write_all(&block).unwrap();
        }
        zip.finish().unwrap();
        let bytes = buf.into_inner();
        assert!(bytes.len() < 20_000, "{} bytes", bytes.len());
        let limits = ReadLimits {
            part_bytes: 2 << 20,
            total_bytes: 4 << 20,
            ..ReadLimits::default()
        };
        assert_eq!(
            read_xlsx(&bytes, &limits).unwrap_err(),
            "the workbook unpacks to more than 2 MiB; split it"
        );
    }

    #[test]
    fn json_rows_with_ever_new_keys_are_refused_at_the_column_limit() {
        // The quadratic attack: every row a new key (111 KB took 4.2 s and 1.4 GB).
        let rows: Vec<String> = (0..5_000).map(|i| format!("{{\"k{i}\": 1}}")).collect();
        let body = format!("{{\"rows\": [{}]}}", rows.join(","));
        assert_eq!(
            read_json(body.as_bytes(), &ReadLimits::default()).unwrap_err(),
            "the rows have more than 256 different keys"
        );
        let t = read_json(
            br#"{"rows": [{"Code": "A", "name": "Shop"}, {"NAME": "Kiosk", "code": 7}]}"#,
            &ReadLimits::default(),
        )
        .unwrap();
        assert_eq!(t.headers, vec!["code", "name"]);
        assert_eq!(t.rows[1], (2, vec!["7".into(), "Kiosk".into()]));
        assert!(
            read_json(br#"{"rows": ["x"]}"#, &ReadLimits::default())
                .unwrap_err()
                .starts_with("expected {\"rows\"")
        );
    }

    #[test]
    fn csv_with_too_many_columns_or_rows_is_refused() {
        let header = (0..300)
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            read_csv(header.as_bytes(), &ReadLimits::default()).unwrap_err(),
            "the file has more than 256 columns"
        );
        let limits = ReadLimits {
            rows: 2,
            ..ReadLimits::default()
        };
        assert_eq!(
            read_csv(b"code,name\na,b\nc,d\ne,f\n", &limits).unwrap_err(),
            "the file has more than 2 rows; split it"
        );
    }
}
