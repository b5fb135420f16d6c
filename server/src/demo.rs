//! A past week of field work for `serve --demo`, written through the real ingest: every
//! demo agent syncs one batch per day with visits in every distance band (with their fixes),
//! orders, filled questionnaires, distribution checks and one refused order; the distributor
//! then moves the orders through every state. A newcomer sees every page with data at once.
use fieldsync_protocol::v1::{self, mutation::Kind};
use fieldsync_protocol::{dates, ids, money};

use crate::seed::SeededAgent;
use crate::store::devices::{DeviceAuth, DeviceInfo};
use crate::store::exchange::StatusUpdate;
use crate::store::sessions::SessionCtx;
use crate::store::{Result, Store, StoreError, now_ms};

/// How far from its outlet the visit of a stop was made (metres north), by the stop's turn:
/// mostly in the shop, now and then near, beyond, far away or without a fix.
fn offset_m(turn: usize) -> Option<i32> {
    match turn % 10 {
        0..=5 => Some(12),
        6 => Some(90),
        7 => Some(450),
        8 => Some(3_000),
        _ => None,
    }
}

fn fix(lat_e7: i64, lon_e7: i64, north_m: i32, accuracy_dm: u32, at_ms: i64) -> v1::GpsFix {
    v1::GpsFix {
        // One metre of latitude is about 90 units of 1e-7 degree.
        lat_e7: (lat_e7 + north_m as i64 * 90) as i32,
        lon_e7: lon_e7 as i32,
        accuracy_dm,
        provider: v1::LocationProvider::Gps as i32,
        mock: false,
        device_time_ms: at_ms,
    }
}

struct Phone {
    auth: DeviceAuth,
    next_seq: u64,
}

impl Phone {
    fn wrap(&mut self, at_ms: i64, kind: Kind) -> v1::Mutation {
        let seq = self.next_seq;
        self.next_seq += 1;
        v1::Mutation {
            seq,
            id: ids::to_wire(ids::new_id()),
            device_time_ms: at_ms,
            kind: Some(kind),
        }
    }
}

/// Loads `days` past days of work for the demo agents; returns fresh PINs for them (the
/// seeded ones were used by the phones that did the work).
pub async fn load_past_week(
    store: &Store,
    agents: &[SeededAgent],
    days: i64,
) -> Result<Vec<SeededAgent>> {
    let today = dates::day_of_ms(now_ms());
    let mut fresh = Vec::new();
    let mut placed: Vec<(String, i64)> = Vec::new();
    // A price list's first products, read once.
    let mut prices_of: std::collections::HashMap<i64, Vec<(i64, i64)>> = Default::default();
    for agent in agents {
        let device = DeviceInfo {
            device_uid: format!("demo-{}", agent.login),
            model: "Demo phone".into(),
            app_version: "demo".into(),
        };
        let auth = store
            .activate(&agent.login, &agent.pin, &device)
            .await?
            .map_err(|e| StoreError::Invalid(format!("demo activation: {e}")))?
            .auth;
        let mut phone = Phone { auth, next_seq: 1 };
        let warehouse: (i64,) = store
            .one_by(
                "SELECT warehouse_id FROM warehouse_positions WHERE position_id = $1 ORDER BY warehouse_id",
                phone.auth.position_id,
            )
            .await?;
        let questionnaire: (i64, i64) = store
            .one_by(
                "SELECT q.id, qu.id FROM questionnaires q JOIN questions qu ON qu.questionnaire_id = q.id \
                 WHERE q.distributor_id = $1 AND q.name = 'Owner contact' ORDER BY qu.position",
                phone.auth.distributor_id,
            )
            .await?;
        let must_stock: Vec<(i64,)> = store
            .all_by(
                "SELECT id FROM products WHERE distributor_id = $1 AND must_stock = 1 ORDER BY id LIMIT 8",
                phone.auth.distributor_id,
            )
            .await?;
        for day in (today - days)..today {
            let date = dates::format_day_number(day);
            let stops: Vec<(i64, i64, i64, i64, i64)> = store
                .rows(
                    "SELECT s.route_id, o.id, o.lat_e7, o.lon_e7, o.price_list_id FROM routes r \
                     JOIN route_stops s ON s.route_id = r.id JOIN outlets o ON o.id = s.outlet_id \
                     WHERE r.position_id = $1 AND r.route_date = $2 AND o.lat_e7 IS NOT NULL \
                     AND o.price_list_id IS NOT NULL ORDER BY s.stop_order",
                    &[
                        crate::store::sql::Val::I(phone.auth.position_id),
                        crate::store::sql::Val::S(date),
                    ],
                )
                .await?;
            let mut batch = Vec::new();
            let morning = day * 86_400_000 + 7 * 3_600_000;
            for (turn, (route_id, outlet, lat, lon, price_list)) in stops.into_iter().enumerate() {
                let at = morning + turn as i64 * 35 * 60_000;
                let visit = ids::new_id();
                let fixes = match offset_m(turn + day as usize) {
                    Some(m) => vec![fix(lat, lon, m, 60 + (turn as u32 % 5) * 40, at)],
                    None => vec![],
                };
                batch.push(phone.wrap(
                    at,
                    Kind::VisitStarted(v1::VisitStarted {
                        visit_id: ids::to_wire(visit),
                        outlet_id: outlet,
                        route_id,
                        fixes: fixes.clone(),
                    }),
                ));
                if let std::collections::hash_map::Entry::Vacant(slot) = prices_of.entry(price_list)
                {
                    slot.insert(
                        store
                            .all_by(
                                "SELECT product_id, price_minor FROM prices WHERE price_list_id = $1 \
                                 ORDER BY product_id LIMIT 40",
                                price_list,
                            )
                            .await?,
                    );
                }
                let prices = &prices_of[&price_list];
                let lines: Vec<v1::OrderLine> = prices
                    .iter()
                    .skip(turn * 3 % prices.len().max(1))
                    .take(2 + turn % 4)
                    .enumerate()
                    .map(|(i, (product, price))| {
                        let quantity = (1 + (i + turn) as i64 % 6) * 1000;
                        v1::OrderLine {
                            product_id: *product,
                            quantity_milli: quantity,
                            price_minor: *price,
                            sum_minor: money::line_sum(quantity, *price).unwrap_or(0),
                            comment: String::new(),
                        }
                    })
                    .collect();
                if turn % 3 != 2 && !lines.is_empty() {
                    let order = ids::new_id();
                    let total = money::order_total(lines.iter().map(|l| l.sum_minor)).unwrap_or(0);
                    // The first order of the week is sent with a total that does not add up:
                    // the server refuses it and the sync results show why.
                    let wrong = day == today - days && turn == 0;
                    batch.push(phone.wrap(
                        at + 10 * 60_000,
                        Kind::OrderPlaced(v1::OrderPlaced {
                            order_id: ids::to_wire(order),
                            visit_id: ids::to_wire(visit),
                            outlet_id: outlet,
                            price_list_id: price_list,
                            warehouse_id: warehouse.0,
                            lines,
                            total_minor: total + wrong as i64,
                            comment: String::new(),
                            delivery_date: dates::format_day_number(day + 1),
                            overdue_reason: String::new(),
                        }),
                    ));
                    if !wrong {
                        placed.push((order.to_string(), phone.auth.distributor_id));
                    }
                }
                batch.push(phone.wrap(
                    at + 15 * 60_000,
                    Kind::QuestionnaireAnswered(v1::QuestionnaireAnswered {
                        answers_id: ids::to_wire(ids::new_id()),
                        visit_id: ids::to_wire(visit),
                        questionnaire_id: questionnaire.0,
                        answers: vec![v1::Answer {
                            question_id: questionnaire.1,
                            value: Some(v1::answer::Value::YesNo(turn % 4 != 3)),
                        }],
                    }),
                ));
                if !must_stock.is_empty() {
                    batch.push(
                        phone.wrap(
                            at + 18 * 60_000,
                            Kind::DistributionChecked(v1::DistributionChecked {
                                check_id: ids::to_wire(ids::new_id()),
                                visit_id: ids::to_wire(visit),
                                items: must_stock
                                    .iter()
                                    .enumerate()
                                    .map(|(i, (p,))| v1::DistributionItem {
                                        product_id: *p,
                                        present: (i + turn) % 4 != 0,
                                    })
                                    .collect(),
                            }),
                        ),
                    );
                }
                batch.push(phone.wrap(
                    at + 25 * 60_000,
                    Kind::VisitEnded(v1::VisitEnded {
                        visit_id: ids::to_wire(visit),
                        fixes,
                    }),
                ));
            }
            if batch.is_empty() {
                continue;
            }
            let session = SessionCtx {
                id: ids::new_id(),
                mode: v1::SyncMode::Incremental,
                app_version: "demo".into(),
                device_time_ms: now_ms(),
                utc_offset_min: 0,
            };
            store
                .push(&phone.auth, &session, batch, 0, |_| 0)
                .await?
                .map_err(|e| StoreError::Invalid(format!("demo push: {e:?}")))?;
        }
        fresh.push(SeededAgent {
            login: agent.login.clone(),
            pin: store.generate_pin(&agent.login).await?,
        });
    }
    // The distributor's system moves the orders on: most are confirmed and shipped, some are
    // delivered, one in twelve rejected, one in twelve cancelled; the newest stay placed.
    let now = now_ms();
    let keep_placed = placed.len().saturating_sub(4);
    for (i, (order, distributor)) in placed.iter().enumerate().take(keep_placed) {
        let steps: &[(&str, &str)] = match i % 12 {
            0 => &[("rejected", "out of stock")],
            1 => &[("cancelled", "the shop closed for repairs")],
            2 | 3 => &[("accepted", "")],
            4..=6 => &[("confirmed", "")],
            7 | 8 => &[("confirmed", ""), ("shipped", "")],
            _ => &[("confirmed", ""), ("shipped", ""), ("delivered", "")],
        };
        for (state, reason) in steps {
            let update = StatusUpdate {
                state: state.to_string(),
                reason: reason.to_string(),
                lines: Vec::new(),
                delivery_date: String::new(),
                document_number: if *state == "shipped" {
                    format!("INV-{:05}", i + 1)
                } else {
                    String::new()
                },
                document_date: String::new(),
                total_minor: None,
            };
            let _ = store
                .set_order_status(*distributor, order, &update, "demo", now)
                .await?;
        }
    }
    let mut distributors: Vec<i64> = placed.iter().map(|(_, d)| *d).collect();
    distributors.sort_unstable();
    distributors.dedup();
    for d in distributors {
        load_stock(store, d).await?;
    }
    Ok(fresh)
}

/// The distributor's stock report, through the real `stock` import: every live product in
/// every active warehouse, a few of them out of stock or low, so the order editor shows what
/// is on hand and warns beyond it.
async fn load_stock(store: &Store, distributor_id: i64) -> Result<()> {
    let warehouses: Vec<(String,)> = store
        .all_by(
            "SELECT code FROM warehouses WHERE distributor_id = $1 AND active = 1 ORDER BY code",
            distributor_id,
        )
        .await?;
    let products: Vec<(String,)> = store
        .all_by(
            "SELECT code FROM products WHERE distributor_id = $1 AND deleted = 0 ORDER BY code",
            distributor_id,
        )
        .await?;
    let mut csv = String::from("warehouse_code,product_code,quantity\n");
    for (w, (warehouse,)) in warehouses.iter().enumerate() {
        for (i, (product,)) in products.iter().enumerate() {
            let quantity = match (i + w) % 9 {
                0 => 0,
                1 => 2,
                _ => 12 + (i * 37 + w * 11) % 240,
            };
            csv.push_str(&format!("{warehouse},{product},{quantity}\n"));
        }
    }
    let job = store
        .start_import(
            distributor_id,
            "stock",
            "demo",
            "demo-stock.csv",
            "csv",
            csv.into(),
            now_ms(),
            false,
        )
        .await?
        .finished()
        .await?;
    if job.rows_refused > 0 {
        return Err(StoreError::Invalid(format!("demo stock: {}", job.message)));
    }
    Ok(())
}
