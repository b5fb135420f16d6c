//! Routes as key users plan them: a week plan per position. For each weekday (Monday to
//! Sunday) the ordered outlets the position visits, generated for a range of dates (a start
//! date and 1 to [`MAX_WEEKS`] weeks). Saving replaces the position's routes of those dates,
//! in one transaction:
//! - a date whose weekday has outlets gets a route with exactly those stops in that order
//!   (the route keeps its id when there was one, so the phone replaces it in place);
//! - a date whose weekday has none loses its route (a tombstone for the position's phone);
//! - a route that already has visits is kept as it is, and the outcome lists its date.
//!
//! Nothing outside the range and nothing of another position changes. The outlets are the
//! live outlets of the position's territory: those are the outlets its phone holds (outlets
//! reach the phones by territory), so a route never names an outlet the phone cannot show.
//! Every route written or removed is one change-log row scoped to the position, which its
//! phone reads with its next pull (a route is written as the routes import writes it,
//! [`set_route_on`]).
use std::collections::{HashMap, HashSet};

use fieldsync_protocol::dates;
use fieldsync_protocol::v1::EntityKind;

use super::sql::{IntoVal, Val, exec_on, rows_on};
use super::world::{ChangeRef, commit_changes, set_route_on};
use super::{Problem, Result, Store, StoreError, WriteTx};

/// The most weeks one save generates.
pub const MAX_WEEKS: i64 = 13;

/// The most stops of one day.
pub const MAX_STOPS: usize = 200;

/// The weekday of a day number (days since 1970-01-01, a Thursday): 0 Monday .. 6 Sunday.
pub fn weekday(day: i64) -> usize {
    (day + 3).rem_euclid(7) as usize
}

/// A position as its week plan page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPosition {
    pub id: i64,
    pub distributor_id: i64,
    pub distributor: String,
    pub code: String,
    pub name: String,
    pub territory_id: Option<i64>,
    pub territory: String,
    /// Not ended: only a live position gets a new plan.
    pub live: bool,
}

/// An outlet a plan may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOutlet {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub address: String,
}

impl From<(i64, String, String, String)> for PlanOutlet {
    fn from((id, code, name, address): (i64, String, String, String)) -> Self {
        PlanOutlet {
            id,
            code,
            name,
            address,
        }
    }
}

/// What a key user saves: the outlet codes of each weekday in stop order (Monday first), for
/// `weeks` weeks from `from` (`YYYY-MM-DD`).
#[derive(Debug, Clone, Default)]
pub struct WeekPlan {
    pub from: String,
    pub weeks: i64,
    pub days: [Vec<String>; 7],
}

/// What a save did, by date.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOutcome {
    /// Routes written (created or replaced).
    pub written: Vec<String>,
    /// Routes removed: their weekday has no outlets.
    pub removed: Vec<String>,
    /// Routes kept as they were because they have visits.
    pub kept: Vec<String>,
}

/// A route of a position as the plan page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRoute {
    pub id: i64,
    pub date: String,
    pub stops: i64,
    pub visits: i64,
}

/// Removes a route of a position with its stops; returns the tombstone for its phone.
async fn remove_route(tx: &mut WriteTx, id: i64, position_id: i64) -> Result<ChangeRef> {
    let route = [Val::I(id)];
    exec_on(tx, "DELETE FROM route_stops WHERE route_id = $1", &route).await?;
    exec_on(tx, "DELETE FROM routes WHERE id = $1", &route).await?;
    Ok(ChangeRef::delete(EntityKind::Route, id, position_id))
}

/// The day numbers a plan covers, or the problem with its range.
fn plan_days(plan: &WeekPlan) -> Result<std::ops::Range<i64>> {
    let from = dates::parse_day_number(plan.from.trim());
    match from {
        Some(from) if (1..=MAX_WEEKS).contains(&plan.weeks) => Ok(from..from + plan.weeks * 7),
        _ => Err(StoreError::Refused(Problem::WeekPlanDates)),
    }
}

/// Each weekday's outlet ids in stop order, from the plan's codes and the outlets it may
/// name (code → id); the first unknown code is the refusal.
fn plan_stops(plan: &WeekPlan, outlets: &HashMap<String, i64>) -> Result<[Vec<i64>; 7]> {
    let mut days: [Vec<i64>; 7] = Default::default();
    for (day, codes) in days.iter_mut().zip(&plan.days) {
        let mut seen = HashSet::new();
        for code in codes.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
            let Some(id) = outlets.get(code) else {
                return Err(StoreError::Refused(Problem::WeekPlanOutlet(code.into())));
            };
            if !seen.insert(*id) || day.len() == MAX_STOPS {
                return Err(StoreError::Refused(Problem::WeekPlanStops));
            }
            day.push(*id);
        }
    }
    Ok(days)
}

impl Store {
    /// A position of any distributor as its plan page shows it, if it is one.
    pub async fn plan_position(&self, id: i64) -> Result<Option<PlanPosition>> {
        type Row = (
            i64,
            String,
            String,
            String,
            Option<i64>,
            Option<String>,
            i64,
        );
        let row: Option<Row> = self
            .opt(
                "SELECT p.distributor_id, d.code, p.code, p.name, t.id, t.name,
                        CASE WHEN p.ended_at_ms IS NULL THEN 1 ELSE 0 END
                 FROM org_units p JOIN distributors d ON d.id = p.distributor_id
                 LEFT JOIN org_units t ON t.id = p.parent_id
                 WHERE p.id = $1 AND p.kind = 'position'",
                &[id.into_val()],
            )
            .await?;
        Ok(row.map(
            |(distributor_id, distributor, code, name, territory_id, territory, live)| {
                PlanPosition {
                    id,
                    distributor_id,
                    distributor,
                    code,
                    name,
                    territory_id,
                    territory: territory.unwrap_or_default(),
                    live: live != 0,
                }
            },
        ))
    }

    /// The live outlets of a territory, by code: what a plan of its positions may name.
    pub async fn territory_outlets(&self, territory_id: i64) -> Result<Vec<PlanOutlet>> {
        let rows: Vec<(i64, String, String, String)> = self
            .rows(
                "SELECT id, code, name, address FROM outlets
                 WHERE territory_id = $1 AND deleted = 0 ORDER BY code, id",
                &[territory_id.into_val()],
            )
            .await?;
        Ok(rows.into_iter().map(PlanOutlet::from).collect())
    }

    /// The position's plan as its routes show it: for each weekday the stops of its latest
    /// route on that weekday (among its latest 100 routes), empty for none.
    pub async fn current_week_plan(&self, position_id: i64) -> Result<[Vec<PlanOutlet>; 7]> {
        let routes: Vec<(i64, String)> = self
            .rows(
                "SELECT id, route_date FROM routes WHERE position_id = $1
                 ORDER BY route_date DESC LIMIT 100",
                &[position_id.into_val()],
            )
            .await?;
        let mut latest: [Option<i64>; 7] = [None; 7];
        for (id, date) in routes {
            if let Some(day) = dates::parse_day_number(&date) {
                latest[weekday(day)].get_or_insert(id);
            }
        }
        let mut plan: [Vec<PlanOutlet>; 7] = Default::default();
        for (day, route) in plan.iter_mut().zip(latest) {
            let Some(route) = route else { continue };
            let rows: Vec<(i64, String, String, String)> = self
                .rows(
                    "SELECT o.id, o.code, o.name, o.address FROM route_stops s
                     JOIN outlets o ON o.id = s.outlet_id
                     WHERE s.route_id = $1 ORDER BY s.stop_order",
                    &[route.into_val()],
                )
                .await?;
            *day = rows.into_iter().map(PlanOutlet::from).collect();
        }
        Ok(plan)
    }

    /// The position's routes from `from` (`YYYY-MM-DD`) on, first `limit` by date, with their
    /// numbers of stops and visits.
    pub async fn position_routes(
        &self,
        position_id: i64,
        from: &str,
        limit: i64,
    ) -> Result<Vec<PlannedRoute>> {
        let rows: Vec<(i64, String, i64, i64)> = self
            .rows(
                "SELECT r.id, r.route_date,
                        (SELECT COUNT(*) FROM route_stops s WHERE s.route_id = r.id),
                        (SELECT COUNT(*) FROM visits v WHERE v.route_id = r.id)
                 FROM routes r WHERE r.position_id = $1 AND r.route_date >= $2
                 ORDER BY r.route_date LIMIT $3",
                &[position_id.into_val(), from.into_val(), limit.into_val()],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, date, stops, visits)| PlannedRoute {
                id,
                date,
                stops,
                visits,
            })
            .collect())
    }

    /// Generates the routes of a live position of `distributor_id` from its week plan for the
    /// plan's dates: see the module's documentation. Checked whole before anything is
    /// written; one transaction that the distributor's other master-data writers wait for.
    pub async fn save_week_plan(
        &self,
        distributor_id: i64,
        position_id: i64,
        plan: &WeekPlan,
    ) -> Result<PlanOutcome> {
        let days = plan_days(plan)?;
        let mut tx = self.begin_write().await?;
        self.serialise_distributor(&mut tx, distributor_id).await?;
        let found: Option<(Option<i64>,)> = rows_on(
            &mut tx,
            "SELECT parent_id FROM org_units
             WHERE id = $1 AND distributor_id = $2 AND kind = 'position' AND ended_at_ms IS NULL",
            &[Val::I(position_id), Val::I(distributor_id)],
        )
        .await?
        .pop();
        let Some((territory,)) = found else {
            return Err(StoreError::Refused(Problem::WeekPlanPosition));
        };
        let outlets: Vec<(String, i64)> = rows_on(
            &mut tx,
            "SELECT code, id FROM outlets WHERE distributor_id = $1 AND territory_id = $2 AND deleted = 0",
            &[Val::I(distributor_id), Val::N(territory)],
        )
        .await?;
        let stops = plan_stops(plan, &outlets.into_iter().collect())?;
        let (first, last) = (
            dates::format_day_number(days.start),
            dates::format_day_number(days.end - 1),
        );
        let existing: Vec<(i64, String, i64)> = rows_on(
            &mut tx,
            "SELECT r.id, r.route_date,
                    CASE WHEN EXISTS (SELECT 1 FROM visits v WHERE v.route_id = r.id) THEN 1 ELSE 0 END
             FROM routes r WHERE r.position_id = $1 AND r.route_date >= $2 AND r.route_date <= $3",
            &[Val::I(position_id), Val::S(first), Val::S(last)],
        )
        .await?;
        let existing: HashMap<String, (i64, bool)> = existing
            .into_iter()
            .map(|(id, date, visited)| (date, (id, visited != 0)))
            .collect();
        let mut outcome = PlanOutcome::default();
        let mut changes = Vec::new();
        for day in days {
            let date = dates::format_day_number(day);
            let outlets = &stops[weekday(day)];
            match existing.get(&date) {
                Some((_, true)) => outcome.kept.push(date),
                Some((id, false)) if outlets.is_empty() => {
                    changes.push(remove_route(&mut tx, *id, position_id).await?);
                    outcome.removed.push(date);
                }
                None if outlets.is_empty() => {}
                _ => {
                    let (_, change) =
                        set_route_on(&mut tx, distributor_id, position_id, &date, outlets).await?;
                    changes.push(change);
                    outcome.written.push(date);
                }
            }
        }
        commit_changes(tx, distributor_id, &changes).await?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekdays_count_from_monday() {
        // 1970-01-01 was a Thursday, 2024-01-01 a Monday, 2024-01-07 a Sunday.
        assert_eq!(weekday(0), 3);
        assert_eq!(weekday(dates::parse_day_number("2024-01-01").unwrap()), 0);
        assert_eq!(weekday(dates::parse_day_number("2024-01-07").unwrap()), 6);
        assert_eq!(weekday(-1), 2);
    }

    #[test]
    fn a_plan_covers_whole_weeks_up_to_thirteen() {
        let plan = |from: &str, weeks| WeekPlan {
            from: from.into(),
            weeks,
            ..WeekPlan::default()
        };
        assert_eq!(plan_days(&plan("2024-01-03", 2)).unwrap().count(), 14);
        assert_eq!(plan_days(&plan("2024-01-03", 13)).unwrap().count(), 91);
        for bad in [
            plan("2024-01-03", 14),
            plan("2024-01-03", 0),
            plan("3.1.2024", 1),
        ] {
            assert!(matches!(
                plan_days(&bad),
                Err(StoreError::Refused(Problem::WeekPlanDates))
            ));
        }
    }

    #[test]
    fn stops_keep_their_order_and_an_unknown_or_repeated_outlet_is_refused() {
        let outlets: HashMap<String, i64> = [("A".into(), 1), ("B".into(), 2)].into();
        let mut plan = WeekPlan::default();
        plan.days[0] = vec!["B".into(), " A ".into(), "".into()];
        assert_eq!(plan_stops(&plan, &outlets).unwrap()[0], vec![2, 1]);
        plan.days[4] = vec!["A".into(), "Z".into()];
        match plan_stops(&plan, &outlets) {
            Err(StoreError::Refused(Problem::WeekPlanOutlet(code))) => assert_eq!(code, "Z"),
            other => panic!("{other:?}"),
        }
        plan.days[4] = vec!["A".into(), "A".into()];
        assert!(matches!(
            plan_stops(&plan, &outlets),
            Err(StoreError::Refused(Problem::WeekPlanStops))
        ));
    }
}
