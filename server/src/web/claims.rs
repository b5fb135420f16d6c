//! Claims in the back office and the distributor's portal: the registered claims of the
//! user's distributors by stage, a claim's card (its lines with the orders they name, its
//! history) with the stage form (the same moves as the API), and, for key users, the list of
//! claim types and subtypes the agents pick from.
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use fieldsync_protocol::claims::{distributor_move_allowed, stage_from_name};
use fieldsync_protocol::v1::ClaimStage;
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Change, Fields, WebError, WebResult, WebUser, csrf_field, distributor_field, fmt_time, layout,
    user_distributor_ids, user_distributors,
};
use crate::AppState;
use crate::store::claims::StageRefusal;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/claims", get(claims_page))
        .route("/claims/{id}", get(claim_card))
        .route("/claims/{id}/stage", post(change_stage))
        .route("/claim-types", get(types_page).post(add_type))
        .route("/claim-types/{id}/{action}", post(type_action))
}

/// The stages a distributor sees, in order.
const STAGES: [&str; 4] = ["registered", "being_considered", "accepted", "declined"];

fn stage_key(stage: &str) -> &'static str {
    match stage {
        "registered" => "claims.stage_registered",
        "being_considered" => "claims.stage_being_considered",
        "accepted" => "claims.stage_accepted",
        "declined" => "claims.stage_declined",
        _ => "claims.stage_draft",
    }
}

#[derive(Deserialize, Default)]
struct ClaimsQuery {
    #[serde(default)]
    stage: String,
}

async fn claims_page(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<ClaimsQuery>,
) -> WebResult<Markup> {
    let t = user.t();
    let ids = user_distributor_ids(&state, &user).await?;
    let stage = STAGES.iter().find(|s| **s == q.stage).copied();
    let claims = state.store.claim_list(&ids, stage, 500).await?;
    let tz = &user.timezone;
    let body = html! {
        nav.tabs #claim-tabs {
            a href="/claims" class=[stage.is_none().then_some("on")] { (t.s("claims.all")) }
            @for s in STAGES {
                a href={"/claims?stage=" (s)} data-stage=(s) class=[(stage == Some(s)).then_some("on")] { (t.s(stage_key(s))) }
            }
        }
        table.list #claims {
            thead { tr {
                th { "№" } th { (t.s("claims.received")) } th { (t.s("col.outlet")) } th { (t.s("claims.agent")) }
                th.num { (t.s("claims.lines")) } th { (t.s("col.state")) }
            } }
            tbody {
                @if claims.is_empty() { tr { td.empty colspan="6" { (t.s("claims.none")) } } }
                @for c in &claims {
                    tr.claim data-claim=(c.id) data-stage=(c.stage) {
                        td { a href={"/claims/" (c.id)} { (c.number) } }
                        td { (fmt_time(c.received_at_ms, tz)) }
                        td { (c.outlet_code) " · " (c.outlet_name) }
                        td { (c.agent_login) }
                        td.num { (c.lines.len()) }
                        td.stage { (t.s(stage_key(&c.stage))) }
                    }
                }
            }
        }
        @if user.role != crate::store::keyusers::Role::Distributor {
            p { a #claim-types-link href="/claim-types" { (t.s("claims.types")) } }
        }
    };
    Ok(layout(&t, &user, &t.s("nav.claims"), body))
}

async fn claim_card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> WebResult<Markup> {
    let t = user.t();
    let d = user.found(state.store.claim_distributor(&id).await?, |d| *d)?;
    let claim = state
        .store
        .claims_by_id(d, std::slice::from_ref(&id))
        .await?
        .pop()
        .ok_or_else(|| WebError::not_found(&t))?;
    let history = state.store.claim_history(&id).await?;
    let tz = &user.timezone;
    let from = stage_from_name(&claim.stage).unwrap_or(ClaimStage::ClaimDraft);
    let next: Vec<&str> = STAGES
        .iter()
        .copied()
        .filter(|s| stage_from_name(s).is_some_and(|to| distributor_move_allowed(from, to)))
        .collect();
    let body = html! {
        (super::facts(&[
            (t.s("col.state"), html! { span #claim-stage { (t.s(stage_key(&claim.stage))) } }),
            (t.s("col.outlet"), html! { a href={"/outlets/" (claim.outlet_id)} { (claim.outlet_code) " · " (claim.outlet_name) } }),
            (t.s("claims.agent"), super::text(claim.agent_login.clone())),
            (t.s("claims.received"), html! { span #claim-received { (fmt_time(claim.received_at_ms, tz)) } }),
            (t.s("claims.comment"), super::text(claim.comment.clone())),
            (t.s("claims.answer"), html! { span #claim-answer { (claim.answer) } }),
        ]))
        table.list #claim-lines {
            thead { tr {
                th { (t.s("claims.order")) } th { (t.s("col.product")) } th.num { (t.s("claims.quantity")) }
                th { (t.s("claims.type")) } th { (t.s("claims.subtype")) }
            } }
            tbody {
                @for l in &claim.lines {
                    tr {
                        td { a href={"/orders/" (l.order_id)} { (l.order_number) } " / " (l.order_line_no) }
                        td { (l.product_code) " · " (l.product_name) }
                        td.num { (super::fmt_qty(l.quantity_milli)) }
                        td { (l.claim_type) } td { (l.claim_subtype) }
                    }
                }
            }
        }
        @if user.can_write() && !next.is_empty() {
            form.editor #claim-stage-form method="post" action={"/claims/" (claim.id) "/stage"} {
                (csrf_field(&user))
                label { (t.s("claims.next_stage"))
                    select #next-stage name="stage" {
                        @for s in &next { option value=(s) { (t.s(stage_key(s))) } }
                    }
                }
                label { (t.s("claims.answer")) textarea #stage-answer name="answer" maxlength="1000" {} }
                p.hint { (t.s("claims.decline_hint")) }
                button #change-stage type="submit" { (t.s("common.save")) }
            }
        }
        h2 { (t.s("claims.history")) }
        table.list #claim-history {
            tbody {
                @for (stage, answer, source, at) in &history {
                    tr { td { (fmt_time(*at, tz)) } td { (t.s(stage_key(stage))) } td { (answer) } td { (source) } }
                }
            }
        }
    };
    Ok(layout(
        &t,
        &user,
        &t.f("claims.title_one", &[("number", &claim.number.to_string())]),
        body,
    ))
}

async fn change_stage(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Change(user, f): Change<Fields>,
) -> WebResult<Response> {
    let t = user.t();
    let d = user.found(state.store.claim_distributor(&id).await?, |d| *d)?;
    let source = format!("portal:{}", user.login);
    match state
        .store
        .set_claim_stage(
            d,
            &id,
            f.get("stage"),
            f.get("answer"),
            &source,
            state.clock.now(),
        )
        .await?
    {
        Ok(_) => Ok(Redirect::to(&format!("/claims/{id}")).into_response()),
        Err(StageRefusal::UnknownClaim) => Err(WebError::not_found(&t)),
        Err(StageRefusal::Illegal { from, to }) => Err(WebError::Page(
            axum::http::StatusCode::CONFLICT,
            t.f(
                "claims.illegal",
                &[
                    ("from", &t.s(stage_key(&from))),
                    ("to", &t.s(stage_key(&to))),
                ],
            ),
        )),
        Err(StageRefusal::UnknownStage(_)) => Err(WebError::bad(&t, "claims.bad_stage")),
        Err(StageRefusal::Invalid(_)) => Err(WebError::bad(&t, "claims.decline_hint")),
    }
}

async fn types_page(State(state): State<AppState>, user: WebUser) -> WebResult<Markup> {
    let t = user.t();
    let distributors = user_distributors(&state, &user).await?;
    let mut lists = Vec::new();
    for (d, code) in &distributors {
        lists.push((*d, code.clone(), state.store.claim_reasons(*d).await?));
    }
    let body = html! {
        p.hint { (t.s("claims.types_hint")) }
        @for (d, code, reasons) in &lists {
            h2 { (code) }
            table.list.claim-types data-distributor=(d) {
                tbody {
                    @if reasons.is_empty() { tr { td.empty colspan="3" { (t.s("claims.no_types")) } } }
                    @for r in reasons {
                        tr data-reason=(r.id) class=[(!r.active).then_some("inactive")] {
                            td { @if r.parent_id.is_some() { "— " } (r.name) }
                            td { (t.s(if r.active { "claims.active" } else { "claims.inactive" })) }
                            td {
                                @if user.can_write() {
                                    form method="post" action={"/claim-types/" (r.id) "/" (if r.active { "deactivate" } else { "activate" })} {
                                        (csrf_field(&user))
                                        button type="submit" { (t.s(if r.active { "claims.deactivate" } else { "claims.activate" })) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if user.can_write() && !distributors.is_empty() {
            form.editor #claim-type-form method="post" action="/claim-types" {
                (csrf_field(&user))
                (distributor_field(&t, &distributors))
                label { (t.s("claims.type_name")) input #claim-type-name name="name" required maxlength="100"; }
                label { (t.s("claims.parent"))
                    select #claim-type-parent name="parent_id" {
                        option value="" { (t.s("claims.new_type")) }
                        @for (_, code, reasons) in &lists {
                            @for r in reasons.iter().filter(|r| r.parent_id.is_none() && r.active) {
                                option value=(r.id) { (code) " · " (r.name) }
                            }
                        }
                    }
                }
                button #save-claim-type type="submit" { (t.s("common.create")) }
            }
        }
    };
    Ok(layout(&t, &user, &t.s("claims.types"), body))
}

async fn add_type(
    State(state): State<AppState>,
    Change(user, f): Change<Fields>,
) -> WebResult<Response> {
    let t = user.t();
    let d =
        super::picked(&user, f.get("distributor_id"))?.ok_or_else(|| WebError::not_found(&t))?;
    user.check_distributor(d)?;
    let parent = super::picked(&user, f.get("parent_id"))?;
    match state
        .store
        .add_claim_reason(d, parent, f.get("name"), state.clock.now())
        .await?
    {
        Ok(_) => Ok(Redirect::to("/claim-types").into_response()),
        Err(_) => Err(WebError::bad(&t, "claims.bad_type")),
    }
}

async fn type_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(i64, String)>,
    Change(user, _f): Change<Fields>,
) -> WebResult<Response> {
    let t = user.t();
    let active = match action.as_str() {
        "activate" => true,
        "deactivate" => false,
        _ => return Err(WebError::not_found(&t)),
    };
    let d = user.found(state.store.claim_reason_distributor(id).await?, |d| *d)?;
    state
        .store
        .set_claim_reason_active(d, id, active)
        .await
        .map_err(|e| WebError::store(&t, e))?;
    Ok(Redirect::to("/claim-types").into_response())
}
