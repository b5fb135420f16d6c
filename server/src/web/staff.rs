//! Staff and their binding to positions: who holds a position, whether as its main person,
//! from and to which dates. Names are in Latin letters; external codes are generated.
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::list::list_page;
use super::lists;
use super::{
    Change, WebError, WebResult, WebUser, create_block, csrf_field, facts, layout, position_select,
    text,
};
use crate::AppState;
use crate::store::staff::Binding;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/staff", get(staff_list).post(bind_staff))
        .route("/staff/{id}", get(binding_card))
        .route("/staff/{id}/end", post(end_binding))
        .route("/staff/{id}/main", post(make_main))
}

/// A name in Latin letters (with spaces, hyphens and apostrophes inside).
pub fn latin_name(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty()
        && s.len() <= 60
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphabetic() || c == ' ' || c == '-' || c == '\'')
}

fn valid_date(s: &str) -> bool {
    fieldsync_protocol::dates::is_date(s.trim())
}

async fn positions(state: &AppState, user: &WebUser) -> WebResult<Vec<(i64, String, String)>> {
    let all = state.store.positions().await?;
    Ok(user
        .visible(all, |p| p.distributor_id)
        .map(|p| (p.id, p.name, p.distributor_code))
        .collect())
}

async fn staff_list(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> WebResult<Markup> {
    let positions = positions(&state, &user).await?;
    let t = user.t();
    let today = super::today(state.clock.now(), &user.timezone);
    let form = html! {
        form method="post" action="/staff" {
            (csrf_field(&user))
            label { (t.s("col.first_name")) input name="first_name" required pattern="[A-Za-z][A-Za-z' \\-]*"; }
            label { (t.s("col.last_name")) input name="last_name" required pattern="[A-Za-z][A-Za-z' \\-]*"; }
            label { (t.s("col.position")) (position_select(&positions)) }
            label { (t.s("col.main")) input type="checkbox" name="main" value="1" checked; }
            label { (t.s("col.valid_from")) input type="date" name="valid_from" value=(today); }
            p.hint { (t.s("staff.latin_hint")) }
            button #bind-staff-submit type="submit" { (t.s("common.create")) }
        }
    };
    let extra = html! {
        p { a href="/org" { (t.s("nav.org_units")) } }
        (create_block(&t, &user, "bind-staff", "staff.bind", form))
    };
    list_page(State(state), user, RawQuery(raw), &lists::STAFF, extra).await
}

#[derive(Deserialize)]
struct BindForm {
    first_name: String,
    last_name: String,
    position_id: i64,
    #[serde(default)]
    main: String,
    valid_from: String,
}

async fn position_distributor(state: &AppState, user: &WebUser, id: i64) -> WebResult<i64> {
    user.found(state.store.position_distributor(id).await?, |d| *d)
}

async fn bind_staff(
    State(state): State<AppState>,
    Change(user, form): Change<BindForm>,
) -> WebResult<Response> {
    let t = user.t();
    if !latin_name(&form.first_name) || !latin_name(&form.last_name) {
        return Err(WebError::bad(&t, "staff.latin_hint"));
    }
    if !valid_date(&form.valid_from) {
        return Err(WebError::bad(&t, "staff.bad_date"));
    }
    let d = position_distributor(&state, &user, form.position_id).await?;
    let binding = state
        .store
        .create_staff_for_position(
            d,
            form.position_id,
            form.first_name.trim(),
            form.last_name.trim(),
            form.main == "1",
            form.valid_from.trim(),
        )
        .await?;
    Ok(Redirect::to(&format!("/staff/{binding}")).into_response())
}

/// A binding in the user's scope: (distributor, position id, position name, first, last,
/// external code, main, from, to).
async fn binding(state: &AppState, user: &WebUser, id: i64) -> WebResult<Binding> {
    user.found(state.store.binding(id).await?, |b| b.distributor_id)
}

async fn binding_card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
) -> WebResult<Markup> {
    let Binding {
        position,
        first_name: first,
        last_name: last,
        external_code: code,
        is_main,
        valid_from: from,
        valid_to: to,
        ..
    } = binding(&state, &user, id).await?;
    let t = user.t();
    let main = is_main as i64;
    let today = super::today(state.clock.now(), &user.timezone);
    let yes_no = |b: bool| {
        if b {
            t.s("common.yes")
        } else {
            t.s("common.no")
        }
    };
    let body = html! {
        (facts(&[
            (t.s("col.first_name"), text(first.clone())),
            (t.s("col.last_name"), text(last.clone())),
            (t.s("col.external_code"), text(code)),
            (t.s("col.position"), text(position)),
            (t.s("col.main"), html! { span #binding-main { (yes_no(main != 0)) } }),
            (t.s("col.valid_from"), text(from)),
            (t.s("col.valid_to"), html! { span #binding-to { (to.clone().unwrap_or_default()) } }),
        ]))
        @if user.can_write() && to.is_none() {
            @if main == 0 {
                form.inline method="post" action={"/staff/" (id) "/main"} {
                    (csrf_field(&user))
                    button #make-main type="submit" { (t.s("staff.make_main")) }
                }
                " "
            }
            form.inline method="post" action={"/staff/" (id) "/end"} {
                (csrf_field(&user))
                label { (t.s("col.valid_to")) input type="date" name="valid_to" value=(today); }
                button #end-binding type="submit" { (t.s("staff.end")) }
            }
        }
        p { a href="/staff" { (t.s("nav.staff")) } }
    };
    Ok(layout(&t, &user, &format!("{first} {last}"), body))
}

#[derive(Deserialize)]
struct EndForm {
    valid_to: String,
}

async fn end_binding(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Change(user, form): Change<EndForm>,
) -> WebResult<Response> {
    let from = binding(&state, &user, id).await?.valid_from;
    let to = form.valid_to.trim();
    if !valid_date(to) || to < from.as_str() {
        return Err(WebError::bad(&user.t(), "staff.bad_date"));
    }
    state.store.end_binding(id, to).await?;
    Ok(Redirect::to(&format!("/staff/{id}")).into_response())
}

async fn make_main(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Change(user, _): Change,
) -> WebResult<Response> {
    let position_id = binding(&state, &user, id).await?.position_id;
    state.store.make_main_binding(id, position_id).await?;
    Ok(Redirect::to(&format!("/staff/{id}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_names_are_latin_letters() {
        assert!(latin_name("Olena"));
        assert!(latin_name("Mary-Jane O'Neil"));
        assert!(!latin_name("Олена"));
        assert!(!latin_name(""));
        assert!(!latin_name("-Olena"));
        assert!(!latin_name("R2D2"));
    }
}
