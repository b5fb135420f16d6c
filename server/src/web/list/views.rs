//! Saved views: a key user's named choice of columns and filter for a list.
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};

use super::{ListQuery, ListSpec};
use crate::AppState;
use crate::web::{Fields, Posted, WebError, WebResult, WebUser};

/// A saved view of a list.
pub(super) struct View {
    pub(super) id: i64,
    pub(super) name: String,
}

pub(super) async fn views(state: &AppState, user: &WebUser, list: &str) -> WebResult<Vec<View>> {
    Ok(state
        .store
        .list_views(user.id, list)
        .await?
        .into_iter()
        .map(|v| View {
            id: v.id,
            name: v.name,
        })
        .collect())
}

/// Applies `view=ID` (the user's own saved view): its columns and its filter.
pub(super) async fn resolve_view(
    state: &AppState,
    user: &WebUser,
    spec: &ListSpec,
    raw: Option<&str>,
) -> WebResult<ListQuery> {
    let q = ListQuery::parse(raw);
    super::check_query(&q, &user.t())?;
    let Some(id) = q.get("view").and_then(|v| v.parse::<i64>().ok()) else {
        return Ok(q);
    };
    let row = state.store.list_view(id, user.id, spec.key).await?;
    let Some((columns, query)) = row else {
        return Err(WebError::not_found(&user.t()));
    };
    let mut v = ListQuery::parse(Some(&query));
    v.cols = columns
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    v.params.push(("view".into(), id.to_string()));
    Ok(v)
}

/// Saves a view (the form's `list`, `name` and `query`): the checked columns (`col`) ordered
/// by their position numbers (`pos.KEY`), and the filter.
pub async fn save_view(
    State(state): State<AppState>,
    Posted(user, form): Posted<Fields>,
) -> WebResult<Response> {
    let t = user.t();
    let Some(spec) = crate::store::list::specs::spec(form.get("list")) else {
        return Err(WebError::not_found(&t));
    };
    let name = form.get("name").trim();
    if name.is_empty() || name.chars().count() > 60 {
        return Err(WebError::bad(&t, "list.view_name_needed"));
    }
    let mut chosen: Vec<(i64, usize, &str)> = form
        .0
        .iter()
        .filter(|(k, _)| k == "col")
        .filter_map(|(_, v)| spec.cols.iter().position(|c| c.key == v))
        .map(|i| {
            let key = spec.cols[i].key;
            let pos = form
                .get(&format!("pos.{key}"))
                .trim()
                .parse::<i64>()
                .unwrap_or(i64::MAX);
            (pos, i, key)
        })
        .collect();
    if chosen.is_empty() {
        return Err(WebError::bad(&t, "list.view_needs_columns"));
    }
    chosen.sort();
    let columns: Vec<&str> = chosen.iter().map(|(_, _, k)| *k).collect();
    let id = state
        .store
        .save_list_view(
            user.id,
            spec.key,
            name,
            &columns.join(","),
            form.get("query"),
        )
        .await?;
    Ok(Redirect::to(&format!("{}?view={id}", spec.path)).into_response())
}
