//! Maps with Leaflet: a visit's *Map* tab (reference location green, the visit's fixes
//! orange, the line between them with its distance, the accuracy circle) and one agent's day
//! with every visit colored by its band. Markers are vector layers, so they show even when no
//! tile can load. Leaflet's own files come from its npm package (served from
//! `WebSettings::leaflet_dir`) or from a configurable URL; they are never in the repository.
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::pages::VisitRow;
use super::{T, WebResult, WebUser, fmt_time, json_script, layout};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/visits/day-map", get(day_map))
}

pub async fn map_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("map.js"),
    )
}

/// Leaflet's files from its npm package directory: `leaflet.js`, `leaflet.css`, `images/*`.
pub async fn leaflet_file(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    match &state.web.leaflet_dir {
        Some(dir) => library_file(dir, &file).await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A file of a front-end library's npm `dist` directory: only plain relative names of the
/// kinds a page loads (scripts, styles, images, source maps).
pub async fn library_file(dir: &std::path::Path, file: &str) -> Response {
    let safe = !file.is_empty()
        && file
            .split('/')
            .all(|part| !part.is_empty() && part != ".." && !part.starts_with('.'))
        && file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if !safe {
        return StatusCode::NOT_FOUND.into_response();
    }
    let content_type = match file.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("map") => "application/json",
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match tokio::fs::read(dir.join(file)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "max-age=86400"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The `<link>`/`<script>` of Leaflet and our map code.
fn map_assets(state: &AppState) -> Markup {
    let base = state.web.leaflet_base();
    html! {
        link rel="stylesheet" href={(base) "/leaflet.css"};
        script src={(base) "/leaflet.js"} {}
        script src="/assets/map.js" defer {}
    }
}

fn e7(v: i64) -> f64 {
    v as f64 / 1e7
}

/// Where the previous visit was, when the visit raised `implausible_travel`: the point the
/// agent would have had to come from, the label of the trip, and a link to that visit.
pub struct Travel {
    lat_e7: i64,
    lon_e7: i64,
    label: String,
    previous: Option<(String, String)>,
}

/// The travel evidence of a visit's signals, if it has any.
pub fn travel_evidence(
    t: &T,
    tz: &str,
    signals: &[(String, String, String)],
    previous: Option<&(String, i64, String)>,
) -> Option<Travel> {
    let (_, variant, args) = signals.iter().find(|s| s.0 == "implausible_travel")?;
    let args = fieldsync_protocol::signals::decode_args(args);
    let arg = |k: &str| args.iter().find(|a| a.0 == k).map(|a| a.1.as_str());
    let lat_e7 = arg("from_lat")?.parse().ok()?;
    let lon_e7 = arg("from_lon")?.parse().ok()?;
    let pairs: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Some(Travel {
        lat_e7,
        lon_e7,
        label: t.f(&format!("signal.implausible_travel.{variant}"), &pairs),
        previous: previous.map(|(id, started, outlet)| {
            (
                format!("/visits/{id}"),
                t.f(
                    "visit.previous",
                    &[("outlet", outlet), ("time", &fmt_time(*started, tz))],
                ),
            )
        }),
    })
}

/// The visit card's *Map* tab; with travel evidence, the previous visit's position too
/// (purple) and the trip from it to this visit's first fix, labelled with its speed.
pub fn visit_map(
    state: &AppState,
    t: &T,
    v: &VisitRow,
    fixes: &[(String, i64, i64, i64, String, i64, i64)],
    travel: Option<Travel>,
) -> Markup {
    let previous = match &travel {
        Some(tr) => json!({
            "lat": e7(tr.lat_e7), "lon": e7(tr.lon_e7), "label": tr.label,
            "title": tr.previous.as_ref().map(|p| p.1.clone()).unwrap_or_else(|| t.s("map.previous_visit")),
        }),
        None => serde_json::Value::Null,
    };
    let reference = match (v.ref_lat_e7, v.ref_lon_e7) {
        (Some(lat), Some(lon)) => {
            json!({"lat": e7(lat), "lon": e7(lon), "label": t.s("map.reference")})
        }
        _ => serde_json::Value::Null,
    };
    let fixes_json: Vec<_> = fixes
        .iter()
        .map(|(phase, lat, lon, acc_dm, provider, mock, _)| {
            json!({
                "lat": e7(*lat), "lon": e7(*lon), "accuracy_m": *acc_dm as f64 / 10.0,
                "label": format!("{} · {} · ±{:.0} m{}", t.value("phase", phase), provider, *acc_dm as f64 / 10.0,
                    if *mock != 0 { format!(" · {}", t.s("col.mock")) } else { String::new() }),
            })
        })
        .collect();
    let data = json!({
        "kind": "visit",
        "tiles": state.web.tile_url,
        "reference": reference,
        "fixes": fixes_json,
        "previous": previous,
        "distance_label": v.distance.map(|d| t.f("map.distance", &[("m", &format!("{d:.0}"))])),
    });
    html! {
        (map_assets(state))
        div.legend {
            span.dot.green {} " " (t.s("map.reference")) "  "
            span.dot.orange {} " " (t.s("map.visit_fix"))
            @if let Some(d) = v.distance { "  · " span #map-distance { (t.f("map.distance", &[("m", &format!("{d:.0}"))])) } }
            @if travel.is_some() { "  " span.dot.purple {} " " (t.s("map.previous_visit")) }
        }
        @if let Some(tr) = &travel {
            p.warning #map-travel {
                strong { (t.s("signal.implausible_travel")) } ": " (tr.label)
                @if let Some((href, title)) = &tr.previous { " · " a href=(href) { (title) } }
            }
        }
        @if v.ref_lat_e7.is_none() { p.warning #no-reference { (t.s("map.no_reference")) } }
        @if fixes.is_empty() { p.warning #no-fix { (t.s("map.no_fix")) } }
        div #map .map {}
        script #map-data type="application/json" { (json_script(&data)) }
    }
}

#[derive(Deserialize, Default)]
struct DayQuery {
    #[serde(default)]
    agent: String,
    #[serde(default)]
    date: String,
}

/// Band colors of the day map.
fn band_color(band: &str) -> &'static str {
    match band {
        "within" => "#2e7d32",
        "near" => "#9ccc65",
        "beyond" => "#f9a825",
        "far_beyond" => "#c62828",
        "no_fix" => "#757575",
        _ => "#5c6bc0",
    }
}

async fn day_map(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<DayQuery>,
) -> WebResult<Markup> {
    let t = user.t();
    let tz = &user.timezone;
    let date = if q.date.trim().is_empty() {
        super::today(state.clock.now(), tz)
    } else {
        q.date.trim().to_string()
    };
    let agents: Vec<(i64, i64, String)> = user
        .visible(state.store.agents().await?, |a| a.distributor_id)
        .map(|a| (a.id, a.distributor_id, a.login))
        .collect();
    let chosen = agents.iter().find(|a| a.2 == q.agent.trim());
    let mut visits_json = Vec::new();
    let mut listed = Vec::new();
    if let (Some((agent_id, _, _)), Some(start)) = (chosen, super::day_start_ms(&date, tz)) {
        let end = super::day_end_ms(&date, tz).unwrap_or(start + 86_400_000);
        let rows = state.store.agent_day(*agent_id, start, end).await?;
        for v in rows {
            let (id, started, band, outlet, distance) =
                (v.id, v.started_device_ms, v.band, v.outlet, v.distance_m);
            let signals: Vec<String> = v.signals.iter().map(|s| t.value("signal", s)).collect();
            if let Some((lat, lon)) = v.first_fix_e7 {
                let mut label = format!(
                    "{} · {} · {}",
                    fmt_time(started, tz),
                    outlet,
                    t.value("band", &band)
                );
                if !signals.is_empty() {
                    label = format!("{label} · {}", signals.join(", "));
                }
                visits_json.push(json!({
                    "lat": e7(lat), "lon": e7(lon), "color": band_color(&band), "band": band,
                    "flagged": !signals.is_empty(),
                    "href": format!("/visits/{id}"),
                    "label": label,
                }));
            }
            listed.push((id, started, band, outlet, distance, signals));
        }
    }
    let data = json!({"kind": "day", "tiles": state.web.tile_url, "visits": visits_json});
    let body = html! {
        form.filters method="get" action="/visits/day-map" {
            label { (t.s("col.agent"))
                select #day-agent name="agent" {
                    option value="" { "—" }
                    @for (_, _, login) in &agents { option value=(login) selected[Some(login) == chosen.map(|c| &c.2)] { (login) } }
                }
            }
            label { (t.s("col.date")) input #day-date type="date" name="date" value=(date); }
            button type="submit" { (t.s("list.apply")) }
        }
        div.legend {
            @for b in super::lists::BANDS { span.dot style={"background:" (band_color(b))} {} " " (t.value("band", b)) "  " }
            span.dot.flagged {} " " (t.s("map.flagged"))
        }
        @if chosen.is_some() {
            (map_assets(&state))
            div #map .map {}
            script #map-data type="application/json" { (json_script(&data)) }
            table.list #day-visits {
                thead { tr { th { (t.s("col.started")) } th { (t.s("col.outlet")) } th { (t.s("col.band")) } th { (t.s("col.distance_m")) } th { (t.s("col.signals")) } } }
                tbody { @for (id, started, band, outlet, distance, signals) in &listed { tr class=(if signals.is_empty() { "" } else { "flagged" }) {
                    td { a href={"/visits/" (id)} { (fmt_time(*started, tz)) } } td { (outlet) }
                    td { span class={"band band-" (band)} { (t.value("band", band)) } }
                    td { (distance.map(|d| format!("{d:.0}")).unwrap_or_default()) }
                    td.signals { @for s in signals { span.tag { (s) } " " } }
                } } }
            }
        } @else { p { (t.s("map.choose_agent")) } }
    };
    Ok(layout(&t, &user, &t.s("nav.day_map"), body))
}
