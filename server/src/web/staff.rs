//! Staff and their binding to positions: who holds a position, whether as its main person,
//! from and to which dates. Names are in Latin letters; external codes are generated.
use axum::Form;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::list::list_page;
use super::lists;
use super::{WebError, WebResult, WebUser, csrf_field, layout};
use crate::AppState;

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
    s.trim().parse::<jiff::civil::Date>().is_ok()
}

async fn positions(state: &AppState, user: &WebUser) -> WebResult<Vec<(i64, String, String)>> {
    let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(
        "SELECT p.id, p.distributor_id, p.name, d.code FROM org_units p JOIN distributors d ON d.id = p.distributor_id \
         WHERE p.kind = 'position' ORDER BY d.code, p.name LIMIT 2000",
    )
    .fetch_all(state.store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .filter(|r| user.scope.allows(r.1))
        .map(|(id, _, name, code)| (id, name, code))
        .collect())
}

async fn staff_list(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> WebResult<Markup> {
    let t = user.t();
    let positions = positions(&state, &user).await?;
    let today = super::today(state.clock.now(), &user.timezone);
    let extra = html! {
        p { a href="/org-units" { (t.s("nav.org_units")) } }
        @if user.can_write() {
            details.create #bind-staff {
                summary { (t.s("staff.bind")) }
                form method="post" action="/staff" {
                    (csrf_field(&user))
                    label { (t.s("col.first_name")) input name="first_name" required pattern="[A-Za-z][A-Za-z' \\-]*"; }
                    label { (t.s("col.last_name")) input name="last_name" required pattern="[A-Za-z][A-Za-z' \\-]*"; }
                    label { (t.s("col.position"))
                        select name="position_id" { @for (id, name, code) in &positions { option value=(id) { (code) " · " (name) } } }
                    }
                    label { (t.s("col.main")) input type="checkbox" name="main" value="1" checked; }
                    label { (t.s("col.valid_from")) input type="date" name="valid_from" value=(today); }
                    p.hint { (t.s("staff.latin_hint")) }
                    button #bind-staff-submit type="submit" { (t.s("common.create")) }
                }
            }
        }
    };
    list_page(&state, &user, &lists::STAFF, raw.as_deref(), extra).await
}

#[derive(Deserialize)]
struct BindForm {
    #[serde(default)]
    csrf: String,
    first_name: String,
    last_name: String,
    position_id: i64,
    #[serde(default)]
    main: String,
    valid_from: String,
}

async fn position_distributor(state: &AppState, user: &WebUser, id: i64) -> WebResult<i64> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT distributor_id FROM org_units WHERE id = $1 AND kind = 'position'")
            .bind(id)
            .fetch_optional(state.store.pool())
            .await?;
    let Some((d,)) = row else {
        return Err(WebError::not_found(&user.t()));
    };
    user.check_distributor(d)?;
    Ok(d)
}

async fn bind_staff(
    State(state): State<AppState>,
    user: WebUser,
    Form(form): Form<BindForm>,
) -> WebResult<Response> {
    user.check_csrf(&form.csrf)?;
    user.check_write()?;
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
async fn binding(
    state: &AppState,
    user: &WebUser,
    id: i64,
) -> WebResult<(
    i64,
    String,
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
)> {
    let row: Option<(i64, i64, String, String, String, String, i64, String, Option<String>)> =
        sqlx::query_as(
            "SELECT st.distributor_id, ps.position_id, p.name, st.first_name, st.last_name, st.external_code, \
             ps.is_main, ps.valid_from, ps.valid_to FROM position_staff ps JOIN staff st ON st.id = ps.staff_id \
             JOIN org_units p ON p.id = ps.position_id WHERE ps.id = $1",
        )
        .bind(id)
        .fetch_optional(state.store.pool())
        .await?;
    let Some(r) = row else {
        return Err(WebError::not_found(&user.t()));
    };
    user.check_distributor(r.0)?;
    Ok((r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8))
}

async fn binding_card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
) -> WebResult<Markup> {
    let t = user.t();
    let (_, position, first, last, code, main, from, to) = binding(&state, &user, id).await?;
    let today = super::today(state.clock.now(), &user.timezone);
    let yes_no = |b: bool| {
        if b {
            t.s("common.yes")
        } else {
            t.s("common.no")
        }
    };
    let body = html! {
        dl.facts {
            dt { (t.s("col.first_name")) } dd { (first) }
            dt { (t.s("col.last_name")) } dd { (last) }
            dt { (t.s("col.external_code")) } dd { (code) }
            dt { (t.s("col.position")) } dd { (position) }
            dt { (t.s("col.main")) } dd #binding-main { (yes_no(main != 0)) }
            dt { (t.s("col.valid_from")) } dd { (from) }
            dt { (t.s("col.valid_to")) } dd #binding-to { (to.clone().unwrap_or_default()) }
        }
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
    #[serde(default)]
    csrf: String,
    valid_to: String,
}

async fn end_binding(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
    Form(form): Form<EndForm>,
) -> WebResult<Response> {
    user.check_csrf(&form.csrf)?;
    user.check_write()?;
    let (_, _, _, _, _, _, from, _) = binding(&state, &user, id).await?;
    let to = form.valid_to.trim();
    if !valid_date(to) || to < from.as_str() {
        return Err(WebError::bad(&user.t(), "staff.bad_date"));
    }
    sqlx::query("UPDATE position_staff SET valid_to = $1, is_main = 0 WHERE id = $2")
        .bind(to)
        .bind(id)
        .execute(state.store.pool())
        .await?;
    Ok(Redirect::to(&format!("/staff/{id}")).into_response())
}

async fn make_main(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
    Form(form): Form<super::auth::CsrfForm>,
) -> WebResult<Response> {
    user.check_csrf(&form.csrf)?;
    user.check_write()?;
    let (position_id, ..) = binding(&state, &user, id).await?;
    let mut tx = state.store.begin_write().await?;
    sqlx::query(
        "UPDATE position_staff SET is_main = 0 WHERE position_id = $1 AND valid_to IS NULL",
    )
    .bind(position_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE position_staff SET is_main = 1 WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
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
