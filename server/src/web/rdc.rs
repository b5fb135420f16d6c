//! Distribution centres (RDC) in the back office: the directory with a form to add one, an
//! RDC's card (its fields, the outlets attached to it with their shares, which the outlet
//! loader sets), and the redistribution of its invoices — run again for chosen dates and
//! invoices, idempotent — with the parts it wrote and the latest runs.
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Change, Fields, WebError, WebResult, WebUser, create_block, csrf_field, distributor_field,
    fmt_money, fmt_time, layout, today, user_distributor_ids, user_distributors,
};
use crate::AppState;
use crate::store::rdc::{METHODS, RdcForm, RunScope};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rdcs", get(rdcs_page).post(create_rdc))
        .route("/rdcs/{id}", get(rdc_card).post(edit_rdc))
        .route("/rdcs/{id}/run", post(run))
}

fn method_key(m: &str) -> &'static str {
    match m {
        "equal" => "rdc.method_equal",
        "orders" => "rdc.method_orders",
        _ => "rdc.method_shares",
    }
}

fn percent(share_milli: i64) -> String {
    let s = format!("{}.{:03}", share_milli / 1000, share_milli % 1000);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn form_fields(user: &WebUser, f: &RdcForm) -> Markup {
    let t = user.t();
    html! {
        label { (t.s("rdc.outlet_code")) input #rdc-outlet name="outlet_code" value=(f.outlet_code) required maxlength="64"; }
        label { (t.s("col.name")) input #rdc-name name="name" value=(f.name) required maxlength="200"; }
        label { (t.s("rdc.activity_type")) input #rdc-activity name="activity_type" value=(f.activity_type) maxlength="100"; }
        label { (t.s("rdc.method"))
            select #rdc-method name="method" {
                @for m in METHODS { option value=(m) selected[f.method == m] { (t.s(method_key(m))) } }
            }
        }
        label.check { input #rdc-to-self type="checkbox" name="to_self" value="1" checked[f.to_self]; (t.s("rdc.to_self")) }
        label { (t.s("rdc.active_from")) input #rdc-from type="date" name="active_from" value=(f.active_from); }
        label { (t.s("rdc.active_to")) input #rdc-to type="date" name="active_to" value=(f.active_to); }
        label.check { input #rdc-active type="checkbox" name="active" value="1" checked[f.active]; (t.s("rdc.active")) }
        label { (t.s("rdc.comment")) textarea #rdc-comment name="comment" maxlength="1000" { (f.comment) } }
    }
}

fn sent(f: &Fields) -> RdcForm {
    RdcForm {
        outlet_code: f.get("outlet_code").to_string(),
        name: f.get("name").to_string(),
        activity_type: f.get("activity_type").to_string(),
        comment: f.get("comment").to_string(),
        method: f.get("method").to_string(),
        to_self: f.get("to_self") == "1",
        active_from: f.get("active_from").to_string(),
        active_to: f.get("active_to").to_string(),
        active: f.get("active") == "1",
    }
}

async fn rdcs_page(State(state): State<AppState>, user: WebUser) -> WebResult<Markup> {
    let t = user.t();
    let ids = user_distributor_ids(&state, &user).await?;
    let rdcs = state.store.rdcs(&ids).await?;
    let distributors = user_distributors(&state, &user).await?;
    let body = html! {
        p.hint { (t.s("rdc.hint")) }
        table.list #rdcs {
            thead { tr {
                th { (t.s("rdc.outlet_code")) } th { (t.s("col.name")) } th { (t.s("rdc.method")) }
                th.num { (t.s("rdc.outlets")) } th { (t.s("rdc.period")) } th { (t.s("col.state")) }
            } }
            tbody {
                @if rdcs.is_empty() { tr { td.empty colspan="6" { (t.s("rdc.none")) } } }
                @for r in &rdcs {
                    tr.rdc data-rdc=(r.id) {
                        td { a href={"/rdcs/" (r.id)} { (r.form.outlet_code) } }
                        td { (r.form.name) }
                        td { (t.s(method_key(&r.form.method))) }
                        td.num { (r.outlets.len()) }
                        td { (r.form.active_from) " – " (r.form.active_to) }
                        td { (t.s(if r.form.active { "rdc.active" } else { "rdc.inactive" })) }
                    }
                }
            }
        }
        (create_block(&t, &user, "create-rdc", "rdc.create", html! {
            form.editor method="post" action="/rdcs" {
                (csrf_field(&user))
                (distributor_field(&t, &distributors))
                (form_fields(&user, &RdcForm { method: "shares".into(), active: true, ..Default::default() }))
                button #save-new-rdc type="submit" { (t.s("common.create")) }
            }
        }))
    };
    Ok(layout(&t, &user, &t.s("nav.rdcs"), body))
}

async fn create_rdc(
    State(state): State<AppState>,
    Change(user, f): Change<Fields>,
) -> WebResult<Response> {
    let t = user.t();
    let d =
        super::picked(&user, f.get("distributor_id"))?.ok_or_else(|| WebError::not_found(&t))?;
    user.check_distributor(d)?;
    match state.store.save_rdc(d, None, &sent(&f)).await? {
        Ok(id) => Ok(Redirect::to(&format!("/rdcs/{id}")).into_response()),
        Err(why) => Err(WebError::Page(
            axum::http::StatusCode::BAD_REQUEST,
            format!("{} {why}", t.s("rdc.refused")),
        )),
    }
}

async fn edit_rdc(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Change(user, f): Change<Fields>,
) -> WebResult<Response> {
    let t = user.t();
    let rdc = user.found(state.store.rdc(id).await?, |r| r.distributor_id)?;
    match state
        .store
        .save_rdc(rdc.distributor_id, Some(id), &sent(&f))
        .await?
    {
        Ok(id) => Ok(Redirect::to(&format!("/rdcs/{id}")).into_response()),
        Err(why) => Err(WebError::Page(
            axum::http::StatusCode::BAD_REQUEST,
            format!("{} {why}", t.s("rdc.refused")),
        )),
    }
}

#[derive(Deserialize, Default)]
struct CardQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    run: Option<i64>,
}

async fn rdc_card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
    Query(q): Query<CardQuery>,
) -> WebResult<Markup> {
    let t = user.t();
    let rdc = user.found(state.store.rdc(id).await?, |r| r.distributor_id)?;
    let today = today(state.clock.now(), &user.timezone);
    let from = if fieldsync_protocol::dates::is_date(&q.from) {
        q.from.clone()
    } else {
        format!("{}-01", &today[..7])
    };
    let to = if fieldsync_protocol::dates::is_date(&q.to) {
        q.to.clone()
    } else {
        today.clone()
    };
    let parts = state.store.rdc_result(id, &from, &to, 2_000).await?;
    let runs = state.store.rdc_runs(rdc.distributor_id, 10).await?;
    let total_money: i64 = parts.iter().map(|p| p.7).sum();
    let total_qty: i64 = parts.iter().map(|p| p.6).sum();
    let tz = &user.timezone;
    let share_sum: i64 = rdc.outlets.iter().map(|o| o.3).sum();
    let body = html! {
        @if let Some(run) = q.run { p.ok #run-done { (t.f("rdc.run_done", &[("run", &run.to_string())])) } }
        h2 { (t.s("rdc.outlets")) }
        table.list #rdc-outlets {
            thead { tr { th { (t.s("col.code")) } th { (t.s("col.name")) } th.num { (t.s("rdc.share")) } } }
            tbody {
                @if rdc.outlets.is_empty() { tr { td.empty colspan="3" { (t.s("rdc.no_outlets")) } } }
                @for (oid, code, name, share) in &rdc.outlets {
                    tr { td { a href={"/outlets/" (oid)} { (code) } } td { (name) } td.num { (percent(*share)) " %" } }
                }
            }
            tfoot { tr.total { td colspan="2" { (t.s("list.total")) } td.num #share-total { (percent(share_sum)) " %" } } }
        }
        p.hint { (t.s("rdc.loader_hint")) }
        @if user.can_write() {
            h2 { (t.s("rdc.run")) }
            form.inline #rdc-run method="post" action={"/rdcs/" (id) "/run"} {
                (csrf_field(&user))
                label { (t.s("rdc.from")) input #run-from type="date" name="from" value=(from) required; }
                label { (t.s("rdc.to")) input #run-to type="date" name="to" value=(to) required; }
                label { (t.s("rdc.invoices")) input #run-invoices name="invoices" placeholder=(t.s("rdc.all_invoices")); }
                button #run-now type="submit" { (t.s("rdc.run_now")) }
            }
        }
        h2 { (t.s("rdc.result")) }
        form.inline method="get" action={"/rdcs/" (id)} {
            label { (t.s("rdc.from")) input type="date" name="from" value=(from); }
            label { (t.s("rdc.to")) input type="date" name="to" value=(to); }
            button type="submit" { (t.s("list.apply")) }
        }
        table.list #rdc-result {
            thead { tr {
                th { (t.s("receivables.invoice")) } th { "#" } th { (t.s("col.date")) } th { (t.s("col.outlet")) }
                th { (t.s("col.product")) } th.num { (t.s("col.quantity")) } th.num { (t.s("receivables.amount")) }
            } }
            tbody {
                @if parts.is_empty() { tr { td.empty colspan="7" { (t.s("rdc.nothing_yet")) } } }
                @for (invoice, line, code, name, date, product, q, amount) in &parts {
                    tr.part { td { (invoice) } td { (line) } td { (date) } td { (code) " · " (name) }
                        td { (product) } td.num { (super::fmt_qty(*q)) } td.num { (fmt_money(*amount)) } }
                }
            }
            tfoot { tr.total {
                td colspan="5" { (t.s("list.total")) }
                td.num #result-qty { (super::fmt_qty(total_qty)) } td.num #result-money { (fmt_money(total_money)) }
            } }
        }
        h2 { (t.s("rdc.runs")) }
        table.list #rdc-runs {
            tbody {
                @for (run, started, from, to, status, invoices, lines, parts, failures, message) in &runs {
                    tr data-run=(run) {
                        td { (run) } td { (fmt_time(*started, tz)) } td { (from) " – " (to) } td.status { (status) }
                        td.num { (invoices) } td.num { (lines) } td.num { (parts) } td.num.failures { (failures) }
                        td { pre { (message) } }
                    }
                }
            }
        }
        h2 { (t.s("rdc.card")) }
        @if user.can_write() {
            form.editor #rdc-form method="post" action={"/rdcs/" (id)} {
                (csrf_field(&user))
                (form_fields(&user, &rdc.form))
                button #save-rdc type="submit" { (t.s("common.save")) }
            }
        }
    };
    let title = format!("{} · {}", rdc.form.outlet_code, rdc.form.name);
    Ok(layout(&t, &user, &title, body))
}

async fn run(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Change(user, f): Change<Fields>,
) -> WebResult<Response> {
    let t = user.t();
    let rdc = user.found(state.store.rdc(id).await?, |r| r.distributor_id)?;
    let (from, to) = (f.get("from").trim(), f.get("to").trim());
    if !fieldsync_protocol::dates::is_date(from) || !fieldsync_protocol::dates::is_date(to) {
        return Err(WebError::bad(&t, "rdc.bad_dates"));
    }
    let invoices: Vec<String> = f
        .get("invoices")
        .split([',', ' ', ';', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(1000)
        .map(String::from)
        .collect();
    let report = state
        .store
        .redistribute(
            rdc.distributor_id,
            &RunScope {
                from: from.into(),
                to: to.into(),
                rdc_ids: vec![id],
                invoices,
            },
            state.clock.now(),
        )
        .await?;
    // The lines it could not redistribute go to the user by mail too, as a file to act on.
    if !report.failures.is_empty()
        && let Some((email, lang)) = state.store.key_user_mail(user.id).await?
    {
        let letter = crate::mail::letters::rdc_failures(
            &lang,
            &email,
            report.id,
            &report.failures,
            state.store.public_url(),
        );
        state.store.queue_mail(&letter, state.clock.now()).await?;
    }
    Ok(Redirect::to(&format!("/rdcs/{id}?from={from}&to={to}&run={}", report.id)).into_response())
}
