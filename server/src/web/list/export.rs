//! Export of a list: the visible columns and every matching row, as CSV or XLSX, up to
//! [`EXPORT_CAP`] rows.
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Cell, Col, EXPORT_CAP, Kind, ListSpec, Value};
use crate::AppState;
use crate::web::{WebError, WebResult, WebUser};

/// `PATH/export?format=csv|xlsx&...` (every export route): the visible columns and every
/// matching row, up to [`EXPORT_CAP`]; beyond it a clear refusal that asks to narrow the
/// filter.
pub async fn serve_export(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
    spec: &'static ListSpec,
) -> WebResult<Response> {
    let t = user.t();
    let q = super::views::resolve_view(&state, &user, spec, raw.as_deref()).await?;
    let q = spec.with_defaults(q, state.clock.now(), &user.timezone);
    let b = state
        .store
        .list_select(spec, &q, &user.scope, &user.timezone)
        .await?;
    let cols = spec.visible(&q);
    let count = state.store.list_count(spec, &b, EXPORT_CAP).await?;
    if count > EXPORT_CAP {
        let message = t.f("list.export_cap", &[("n", &EXPORT_CAP.to_string())]);
        return Err(WebError::Page(StatusCode::UNPROCESSABLE_ENTITY, message));
    }
    // "For import": the columns an import reads back, under its names and in its formats.
    let for_import = q.get("layout") == Some("import");
    let cols = if for_import {
        let cols: Vec<&Col> = spec.cols.iter().filter(|c| c.import.is_some()).collect();
        if cols.is_empty() {
            return Err(WebError::not_found(&t));
        }
        cols
    } else {
        cols
    };
    let raw_rows = state
        .store
        .list_rows(spec, &b, &cols, (EXPORT_CAP, 0))
        .await?;
    let (headers, rows): (Vec<String>, _) = if for_import {
        let rows = raw_rows
            .iter()
            .map(|row| {
                cols.iter()
                    .zip(row)
                    .map(|(c, raw)| Cell {
                        text: import_text(c, &raw.value),
                        href: None,
                    })
                    .collect()
            })
            .collect();
        (
            cols.iter()
                .filter_map(|c| c.import)
                .map(String::from)
                .collect(),
            rows,
        )
    } else {
        (
            cols.iter().map(|c| t.s(c.label)).collect(),
            super::cells(&cols, &raw_rows, &t, &user.timezone),
        )
    };
    let name = if for_import {
        format!("{}-import", spec.key.replace('_', "-"))
    } else {
        spec.key.replace('_', "-")
    };
    match q.get("format").unwrap_or("csv") {
        "xlsx" => {
            let bytes = xlsx(&headers, &cols, &rows, for_import).map_err(|e| {
                tracing::error!(error = %e, "xlsx export");
                WebError::Internal
            })?;
            Ok((
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                            .to_string(),
                    ),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}.xlsx\""),
                    ),
                ],
                bytes,
            )
                .into_response())
        }
        _ => {
            let mut out = String::from("\u{feff}");
            let line = |out: &mut String, fields: &mut dyn Iterator<Item = &str>| {
                let v: Vec<String> = fields.map(csv_field).collect();
                out.push_str(&v.join(","));
                out.push_str("\r\n");
            };
            line(&mut out, &mut headers.iter().map(String::as_str));
            for r in &rows {
                line(&mut out, &mut r.iter().map(|c| c.text.as_str()));
            }
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}.csv\""),
                    ),
                ],
                out,
            )
                .into_response())
        }
    }
}

/// A CSV field: quoted when needed; a value a spreadsheet could run as a formula is prefixed
/// with `'` ([`crate::store::imports::formula_like`]; an import drops it again).
fn csv_field(s: &str) -> String {
    let s = if crate::store::imports::formula_like(s) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// A value as an import reads it: text as stored, flags `yes`/`no`, coordinates with 7
/// decimals, nothing translated or formatted for reading.
fn import_text(c: &Col, v: &Value) -> String {
    match (c.kind, v) {
        (_, Value::Null) => String::new(),
        (Kind::Flag, Value::Int(0)) => "no".into(),
        (Kind::Flag, Value::Int(_)) => "yes".into(),
        (Kind::Degrees, Value::Int(i)) => fieldsync_protocol::location::e7_text(*i),
        (Kind::Tags(_), Value::Text(s)) => s.trim_matches(',').replace(',', " "),
        (_, Value::Int(i)) => i.to_string(),
        (_, Value::Real(f)) => f.to_string(),
        (_, Value::Text(s)) => s.clone(),
    }
}

/// An XLSX sheet of the rows; numbers as numbers unless the file is for import, where every
/// cell is the text the import reads back (a code "007" stays "007").
fn xlsx(
    headers: &[String],
    cols: &[&Col],
    rows: &[Vec<Cell>],
    for_import: bool,
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let bold = rust_xlsxwriter::Format::new().set_bold();
    for (i, h) in headers.iter().enumerate() {
        sheet.write_string_with_format(0, i as u16, h, &bold)?;
    }
    for (r, row) in rows.iter().enumerate() {
        for (i, cell) in row.iter().enumerate() {
            let numeric =
                !for_import && matches!(cols[i].kind, Kind::Int | Kind::Money | Kind::Meters);
            match cell.text.parse::<f64>() {
                Ok(v) if numeric => sheet.write_number(r as u32 + 1, i as u16, v)?,
                _ => sheet.write_string(r as u32 + 1, i as u16, &cell.text)?,
            };
        }
    }
    book.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("-12.5"), "-12.5");
        assert_eq!(csv_field("\t=1+2"), "'\t=1+2");
        assert_eq!(csv_field("\r=1+2"), "\"'\r=1+2\"");
    }

    #[test]
    fn xlsx_exports_hold_the_headers_text_and_numbers() {
        use std::io::Read;
        let cols = [
            Col::new("code", "col.code", "o.code", Kind::Text),
            Col::new("sum", "col.order_sum", "x", Kind::Money),
        ];
        let cols: Vec<&Col> = cols.iter().collect();
        let cell = |s: &str| Cell {
            text: s.to_string(),
            href: None,
        };
        let rows = vec![
            vec![cell("<O-1 & \"Ко\">"), cell("1234.50")],
            vec![cell("O-2"), cell("")],
        ];
        let bytes = xlsx(&["Code".into(), "Order sum".into()], &cols, &rows, false).unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut read = |name: &str| {
            let mut s = String::new();
            zip.by_name(name).unwrap().read_to_string(&mut s).unwrap();
            s
        };
        let strings = read("xl/sharedStrings.xml");
        assert!(strings.contains("Code") && strings.contains("Order sum"));
        assert!(
            strings.contains("&lt;O-1 &amp; &quot;Ко&quot;&gt;")
                || strings.contains("&lt;O-1 &amp; \"Ко\"&gt;")
        );
        let sheet = read("xl/worksheets/sheet1.xml");
        assert!(
            sheet.contains("<v>1234.5</v>"),
            "money is a number cell: {sheet}"
        );
    }
}
