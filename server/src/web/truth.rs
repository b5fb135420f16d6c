//! Field truth by agent: per week, each agent's visits, how many raised a signal and which,
//! the agents with the largest share flagged first, so a supervisor knows who to talk to.
//! Every count links to the visits list filtered to those visits.
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;

use fieldsync_protocol::dates;
use fieldsync_protocol::signals::Signal;

use super::{WebResult, WebUser, layout};
use crate::AppState;
use crate::store::backoffice::AgentSignals;

/// How many weeks the page shows unless asked, and at most.
const DEFAULT_WEEKS: i64 = 4;
const MAX_WEEKS: i64 = 12;

pub fn router() -> Router<AppState> {
    Router::new().route("/visits/signals", get(summary))
}

#[derive(Deserialize, Default)]
struct SummaryQuery {
    #[serde(default)]
    weeks: Option<i64>,
}

/// The Monday (day number) of the week holding `day` (1970-01-01, day 0, was a Thursday).
fn monday_of(day: i64) -> i64 {
    day - (day + 3).rem_euclid(7)
}

/// Share of `part` in `whole` as a whole percent, `0` for an empty week.
fn percent(part: i64, whole: i64) -> i64 {
    if whole == 0 {
        0
    } else {
        (part * 100 + whole / 2) / whole
    }
}

/// The visits list filtered to one agent, one week and, when given, one signal (`*`: any).
fn visits_href(login: &str, from: &str, to: &str, signal: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("f.agent", login)
        .append_pair("f.started.from", from)
        .append_pair("f.started.to", to)
        .append_pair("f.signals", signal)
        .finish();
    format!("/visits?{query}")
}

async fn summary(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<SummaryQuery>,
) -> WebResult<Markup> {
    let t = user.t();
    let tz = user.timezone.as_str();
    let weeks = q.weeks.unwrap_or(DEFAULT_WEEKS).clamp(1, MAX_WEEKS);
    let today = dates::day_number(dates::date_at(state.clock.now(), tz));
    let this_monday = monday_of(today);
    let mut sections = Vec::new();
    for w in 0..weeks {
        let monday = this_monday - 7 * w;
        let (Some(first), Some(last), Some(next)) = (
            dates::from_day_number(monday),
            dates::from_day_number(monday + 6),
            dates::from_day_number(monday + 7),
        ) else {
            continue;
        };
        let (Some(start), Some(end)) = (
            dates::day_start_ms(first, tz),
            dates::day_start_ms(next, tz),
        ) else {
            continue;
        };
        let mut rows: Vec<AgentSignals> = user
            .visible(state.store.agent_signals(start, end).await?, |r| {
                r.distributor_id
            })
            .collect();
        rows.sort_by(|a, b| {
            (b.flagged * a.visits)
                .cmp(&(a.flagged * b.visits))
                .then(b.flagged.cmp(&a.flagged))
                .then(a.login.cmp(&b.login))
        });
        sections.push((dates::format(first), dates::format(last), rows));
    }
    let body = html! {
        p { (t.s("truth.intro")) }
        form.filters method="get" action="/visits/signals" {
            label { (t.s("truth.weeks"))
                input #truth-weeks type="number" name="weeks" min="1" max=(MAX_WEEKS) value=(weeks);
            }
            button type="submit" { (t.s("list.apply")) }
        }
        @for (from, to, rows) in &sections {
            h2 { (t.f("truth.week", &[("from", from), ("to", to)])) }
            @if rows.is_empty() { p.empty { (t.s("truth.no_visits")) } }
            @else {
                table.list.truth data-week=(from) {
                    thead { tr {
                        th { (t.s("col.agent")) } th.num { (t.s("nav.visits")) }
                        th.num { (t.s("truth.flagged")) } th.num { (t.s("truth.share")) }
                        @for s in Signal::ALL { th.num title=(t.s(&format!("signal.{}.explain", s.as_str()))) { (t.s(&format!("signal.{}", s.as_str()))) } }
                    } }
                    tbody { @for r in rows { tr data-agent=(r.login) {
                        td { a href=(visits_href(&r.login, from, to, "")) { (r.login) } }
                        td.num { (r.visits) }
                        td.num.flagged { @if r.flagged > 0 { a href=(visits_href(&r.login, from, to, "*")) { (r.flagged) } } @else { "0" } }
                        td.num.share { (percent(r.flagged, r.visits)) " %" }
                        @for (i, s) in Signal::ALL.iter().enumerate() {
                            td.num data-signal=(s.as_str()) {
                                @if r.by_signal[i] > 0 { a href=(visits_href(&r.login, from, to, s.as_str())) { (r.by_signal[i]) } }
                            }
                        }
                    } } }
                }
            }
        }
    };
    Ok(layout(&t, &user, &t.s("nav.signals"), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday() {
        // 1970-01-01 (day 0) was a Thursday: its week began on Monday 1969-12-29 (day -3).
        assert_eq!(monday_of(0), -3);
        assert_eq!(monday_of(-3), -3);
        assert_eq!(monday_of(3), -3);
        assert_eq!(monday_of(4), 4);
        let d = dates::parse("2026-12-04").unwrap(); // a Friday
        assert_eq!(
            dates::format(dates::from_day_number(monday_of(dates::day_number(d))).unwrap()),
            "2026-11-30"
        );
    }

    #[test]
    fn shares_round_to_whole_percents() {
        assert_eq!(percent(0, 0), 0);
        assert_eq!(percent(1, 3), 33);
        assert_eq!(percent(2, 3), 67);
        assert_eq!(percent(5, 5), 100);
    }

    #[test]
    fn links_carry_agent_week_and_signal_as_the_list_reads_them() {
        let href = visits_href("o'brien & co", "2026-11-30", "2026-12-06", "*");
        let query = href.strip_prefix("/visits?").unwrap();
        assert!(!query.contains(' ') && !query.contains('\''), "{query}");
        let q = crate::store::list::ListQuery::parse(Some(query));
        assert_eq!(q.get("f.agent"), Some("o'brien & co"));
        assert_eq!(q.get("f.started.from"), Some("2026-11-30"));
        assert_eq!(q.get("f.started.to"), Some("2026-12-06"));
        assert_eq!(q.get("f.signals"), Some("*"));
    }
}
