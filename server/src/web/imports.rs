//! Import jobs in the back office and the portal: upload a CSV or XLSX file, read each job's
//! log (status, rows read / applied / refused, every refused row with its line and reason).
use axum::Router;
use axum::extract::{Multipart, Path, State};
use axum::routing::get;
use maud::{Markup, html};

use super::{WebError, WebResult, WebUser, fmt_time, layout};
use crate::AppState;
use crate::store::imports::{ImportScope, KINDS};
use crate::store::keyusers::Role;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/imports",
            get(list)
                .post(upload)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::exchange::IMPORT_BODY_LIMIT,
                )),
        )
        .route("/imports/{id}", get(job_card))
}

async fn list(State(state): State<AppState>, user: WebUser) -> WebResult<Markup> {
    let t = user.t();
    let ds = super::user_distributors(&state, &user).await?;
    // Only the user's distributors, filtered before the limit: many jobs of another
    // distributor must not push this one's out of the list.
    let ids: Vec<i64> = ds.iter().map(|(id, _)| *id).collect();
    let jobs = state.store.import_jobs(&ids, 500).await?;
    let code = |id: i64| ds.iter().find(|d| d.0 == id).map(|d| d.1.clone());
    let tz = &user.timezone;
    // Only the head office grants sync points.
    let head_office = user.role == Role::HeadOffice;
    let body = html! {
        @if user.can_write() && !ds.is_empty() {
            form.inline #upload method="post" action="/imports" enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(user.csrf_token);
                (super::distributor_select(&t, &ds))
                label { (t.s("imports.kind")) select #import-kind name="kind" { @for k in KINDS.iter().filter(|k| k.0 != "sync_points" || head_office) { option value=(k.0) { (t.value("import_kind", k.0)) } } } }
                label { (t.s("imports.file")) input #import-file type="file" name="file" accept=".csv,.xlsx" required; }
                label { input #import-dry-run type="checkbox" name="dry_run" value="1"; " " (t.s("imports.dry_run")) }
                button #upload-submit type="submit" { (t.s("imports.upload")) }
            }
            p.hint { (t.s("imports.formats")) " " a href="/api/v1/openapi.json" { "OpenAPI" } }
        }
        table.list #import-jobs {
            thead { tr { th { "#" } th { (t.s("col.distributor")) } th { (t.s("imports.kind")) } th { (t.s("imports.source")) }
                th { (t.s("imports.file")) } th { (t.s("col.state")) } th { (t.s("imports.read")) } th { (t.s("imports.applied")) }
                th { (t.s("imports.refused")) } th { (t.s("col.started")) } } }
            tbody {
                @for j in jobs.iter().filter(|j| code(j.distributor_id).is_some()) { tr {
                    td { a href={"/imports/" (j.id)} { (j.id) } } td { (code(j.distributor_id).unwrap_or_default()) }
                    td { (t.value("import_kind", &j.kind)) } td { (j.source) } td { (j.file_name) }
                    td { span class={"job job-" (j.status)} { (t.value("import_status", &j.status)) } }
                    td { (j.rows_read) } td { (j.rows_applied) } td { (j.rows_refused) } td { (fmt_time(j.started_at_ms, tz)) }
                } }
            }
        }
    };
    Ok(layout(&t, &user, &t.s("nav.imports"), body))
}

async fn job_card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
) -> WebResult<Markup> {
    let job = user.found(state.store.import_job(id).await?, |j| j.distributor_id)?;
    let t = user.t();
    let tz = &user.timezone;
    let body = html! {
        dl.facts {
            dt { (t.s("imports.kind")) } dd { (t.value("import_kind", &job.kind)) }
            dt { (t.s("imports.file")) } dd { (job.file_name) " (" (job.format) ", " (job.source) ")" }
            dt { (t.s("col.state")) } dd #job-status {
                (t.value("import_status", &job.status))
                @if job.status == "running" {
                    " · " span.hint #job-running { (t.s("imports.running_hint")) } " "
                    a href={"/imports/" (id)} { (t.s("imports.reload")) }
                }
            }
            @if !job.message.is_empty() { dt { (t.s("imports.message")) } dd #job-message { (job.message) } }
            dt { (t.s("imports.read")) } dd #job-read { (job.rows_read) }
            dt { (t.s("imports.applied")) } dd #job-applied { (job.rows_applied) }
            dt { (t.s("imports.refused")) } dd #job-refused { (job.rows_refused) }
            dt { (t.s("col.started")) } dd { (fmt_time(job.started_at_ms, tz)) }
        }
        h2 { (t.s("imports.refused_rows")) }
        table.list #job-errors {
            thead { tr { th { (t.s("imports.line")) } th { (t.s("col.reason")) } } }
            tbody {
                @if job.errors.is_empty() { tr { td.empty colspan="2" { (t.s("list.empty")) } } }
                @for (line, reason) in &job.errors { tr { td { (line) } td { (reason) } } }
            }
        }
        p { a href="/imports" { (t.s("nav.imports")) } }
    };
    Ok(layout(
        &t,
        &user,
        &t.f("imports.job", &[("id", &id.to_string())]),
        body,
    ))
}

/// A file uploaded from the form: the CSRF token, distributor, kind and file are fields of
/// the multipart body.
async fn upload(
    State(state): State<AppState>,
    user: WebUser,
    mut form: Multipart,
) -> WebResult<Markup> {
    let t = user.t();
    let (mut csrf, mut distributor, mut kind) = (String::new(), 0i64, String::new());
    let (mut file_name, mut bytes) = (String::new(), bytes::Bytes::new());
    let mut dry_run = false;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|_| WebError::bad(&t, "imports.bad_upload"))?
    {
        match field.name().unwrap_or_default() {
            "csrf" => csrf = field.text().await.unwrap_or_default(),
            "distributor_id" => {
                distributor = field
                    .text()
                    .await
                    .unwrap_or_default()
                    .trim()
                    .parse()
                    .unwrap_or(0)
            }
            "kind" => kind = field.text().await.unwrap_or_default(),
            "dry_run" => dry_run = field.text().await.unwrap_or_default() == "1",
            "file" => {
                file_name = field.file_name().unwrap_or_default().to_string();
                bytes = field
                    .bytes()
                    .await
                    .map_err(|_| WebError::bad(&t, "imports.bad_upload"))?;
            }
            _ => {}
        }
    }
    user.check_csrf(&csrf)?;
    user.check_write()?;
    user.check_distributor(distributor)?;
    let format = if file_name.to_lowercase().ends_with(".xlsx") {
        "xlsx"
    } else {
        "csv"
    };
    let scope = match user.role {
        Role::HeadOffice => ImportScope::HeadOffice,
        _ => ImportScope::Distributor,
    };
    let started = state
        .store
        .start_import_as(
            scope,
            distributor,
            &kind,
            &format!("upload:{}", user.login),
            &file_name,
            format,
            bytes,
            state.clock.now(),
            dry_run,
        )
        .await?;
    // A small file's log is shown at once; a big one's job card says it is running (the
    // import goes on in the background) and the user reloads it.
    let id = started.id;
    if let Ok(job) = started
        .within(std::time::Duration::from_secs(UPLOAD_WAIT_S))
        .await
    {
        job?;
    }
    job_card(State(state), user, Path(id)).await
}

/// Seconds an upload waits for its job before showing the job card of a running import.
const UPLOAD_WAIT_S: u64 = 10;
