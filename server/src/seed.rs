//! Synthetic worlds: the demo world and `seed --agents N --outlets M --products K`.
//!
//! Sizes follow DOMAIN.md: each agent has a territory with its share of the outlets, a route
//! per day (a weekly cycle over its outlets), three price lists over the whole catalogue, two
//! warehouses bound to every position for orders, and two questionnaires covering every
//! question type with required and conditional questions.
use fieldsync_protocol::location::deg_to_e7;
use fieldsync_protocol::v1::EntityKind;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::store::sql::{id_on, insert, rows_on, table_row};
use crate::store::world::{
    ChangeRef, QuestionConditionInput, QuestionInput, RouteStopRow, Val, commit_changes,
};
use crate::store::{Result, Store};
use fieldsync_protocol::dates;

table_row! {
    /// A generated product.
    ProductRow => "products" {
        distributor_id: i64,
        code: String,
        name: String,
        unit: String,
        category: String,
        must_stock: bool,
        brand: String,
    }
}

table_row! {
    /// A product's price in a price list.
    PriceRow => "prices" {
        price_list_id: i64,
        product_id: i64,
        price_minor: i64,
    }
}

table_row! {
    /// A warehouse bound to a position for a document type.
    WarehousePositionRow => "warehouse_positions" {
        warehouse_id: i64,
        position_id: i64,
        document_type: String,
    }
}

table_row! {
    /// A generated outlet, with its place when it has one.
    OutletRow => "outlets" {
        distributor_id: i64,
        territory_id: i64,
        code: String,
        name: String,
        address: String,
        contact_name: String,
        phone: String,
        channel: String,
        lat_e7: Option<i64>,
        lon_e7: Option<i64>,
        price_list_id: i64,
    }
}

table_row! {
    /// A position's route for a day.
    RouteRow => "routes" {
        distributor_id: i64,
        position_id: i64,
        route_date: String,
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct WorldSpec {
    pub distributor_code: String,
    pub distributor_name: String,
    pub agents: usize,
    pub outlets: usize,
    pub products: usize,
    /// City centre the outlets are scattered around (degrees).
    pub center: (f64, f64),
    /// Radius of the scatter in metres.
    pub radius_m: f64,
    /// Routes are generated for dates from today - days_back to today + days_ahead.
    pub days_back: i64,
    pub days_ahead: i64,
    pub seed: u64,
    /// Agents whose positions share one territory (and so its outlets and their cards).
    pub agents_per_territory: usize,
    /// Open invoices per outlet (receivables), the first of each outlet overdue.
    pub invoices_per_outlet: usize,
    /// A purchase plan for this month for every outlet and every position.
    pub plans: bool,
}

impl WorldSpec {
    /// A small world around Kyiv for trying the product out.
    pub fn demo() -> Self {
        WorldSpec {
            distributor_code: "DEMO".into(),
            distributor_name: "Demo Distribution LLC".into(),
            agents: 3,
            outlets: 90,
            products: 300,
            center: (50.4501, 30.5234),
            radius_m: 8000.0,
            days_back: 1,
            days_ahead: 6,
            seed: 7,
            agents_per_territory: 1,
            invoices_per_outlet: 0,
            plans: false,
        }
    }
}

/// A generated mobile user and its PIN.
#[derive(Debug, Clone)]
pub struct SeededAgent {
    pub login: String,
    pub pin: String,
}

const BRANDS: &[&str] = &[
    "Svitanok", "Karpaty", "Dnipro", "Zoria", "Polissia", "Bukovel", "Tavria", "Volyn",
];
const GOODS: &[(&str, &str)] = &[
    ("Mineral water", "Drinks"),
    ("Orange juice", "Drinks"),
    ("Black tea", "Grocery"),
    ("Ground coffee", "Grocery"),
    ("Milk chocolate", "Confectionery"),
    ("Wafers", "Confectionery"),
    ("Sunflower oil", "Grocery"),
    ("Buckwheat", "Grocery"),
    ("Potato chips", "Snacks"),
    ("Salted crackers", "Snacks"),
    ("Laundry powder", "Household"),
    ("Dish soap", "Household"),
];
const SIZES: &[&str] = &[
    "0.5 l", "1 l", "1.5 l", "100 g", "250 g", "500 g", "1 kg", "12 pcs",
];
const SHOPS: &[&str] = &[
    "Mini-market",
    "Grocery",
    "Kiosk",
    "Supermarket",
    "Pharmacy",
    "Cafe",
];
const SHOP_NAMES: &[&str] = &[
    "Romashka",
    "Kolosok",
    "Vesna",
    "Lastivka",
    "Dobryi Den",
    "Sonechko",
    "Kalyna",
    "Yatran",
];
const STREETS: &[&str] = &[
    "Khreshchatyk",
    "Saksahanskoho",
    "Velyka Vasylkivska",
    "Antonovycha",
    "Lva Tolstoho",
    "Shevchenka",
];
const FIRST: &[&str] = &[
    "Olena", "Andrii", "Iryna", "Taras", "Mariia", "Dmytro", "Oksana", "Serhii",
];
const LAST: &[&str] = &[
    "Kovalenko",
    "Shevchenko",
    "Bondarenko",
    "Tkachenko",
    "Kravchenko",
    "Melnyk",
    "Boiko",
];
const CHANNELS: &[&str] = &["traditional", "modern", "horeca"];

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// Open invoices for every outlet (the first one overdue) and this month's plans for every
/// outlet and position, written as their imports write them.
async fn seed_receivables_and_plans(
    store: &Store,
    spec: &WorldSpec,
    dist: i64,
    outlets: &[(i64, i64)],
    positions: &[(i64, i64)],
    rng: &mut StdRng,
) -> Result<()> {
    let now = crate::store::now_ms();
    let today = dates::day_of_ms(now);
    let mut invoices = Vec::new();
    for (id, _) in outlets {
        for n in 0..spec.invoices_per_outlet {
            let due = today - 3 + (n as i64) * 4;
            let amount = rng.random_range(5_000..500_000);
            invoices.push(crate::store::receivables::InvoiceRow {
                invoice_number: format!("{}-INV-{id}-{n}", spec.distributor_code),
                outlet_id: *id,
                invoice_date: dates::format_day_number(due - 14),
                due_date: dates::format_day_number(due),
                amount_minor: amount,
                paid_minor: if n % 3 == 1 { amount / 2 } else { 0 },
                currency: String::new(),
                label: String::new(),
            });
        }
    }
    for chunk in invoices.chunks(2_000) {
        let mut tx = store.begin_write().await?;
        let mut report = crate::store::world::PatchReport::default();
        let changes =
            crate::store::receivables::write_receivables(&mut tx, dist, chunk, 0, now, &mut report)
                .await?;
        commit_changes(tx, dist, &changes).await?;
    }
    if spec.plans {
        let period = crate::store::plans::period_of(now, "Europe/Kyiv");
        let mut forms: Vec<crate::store::plans::PlanForm> = outlets
            .iter()
            .map(|(id, _)| crate::store::plans::PlanForm {
                period: period.clone(),
                scope: "outlet".into(),
                scope_id: *id,
                measure: "money".into(),
                target: rng.random_range(100_000..2_000_000),
                ..Default::default()
            })
            .collect();
        for (_, p) in positions {
            forms.push(crate::store::plans::PlanForm {
                period: period.clone(),
                scope: "position".into(),
                scope_id: *p,
                measure: "money".into(),
                target: 50_000_000,
                ..Default::default()
            });
            forms.push(crate::store::plans::PlanForm {
                period: period.clone(),
                scope: "position".into(),
                scope_id: *p,
                category: "Drinks".into(),
                measure: "quantity".into(),
                target: 2_000_000,
                ..Default::default()
            });
        }
        for chunk in forms.chunks(2_000) {
            let mut tx = store.begin_write().await?;
            let mut report = crate::store::world::PatchReport::default();
            let changes = crate::store::plans::write_plans(&mut tx, dist, chunk, now, &mut report)
                .await?
                .map_err(|(_, e)| crate::store::StoreError::Invalid(e))?;
            commit_changes(tx, dist, &changes).await?;
        }
    }
    Ok(())
}

/// Generates a world; returns the mobile users with fresh PINs.
pub async fn seed_world(store: &Store, spec: &WorldSpec) -> Result<Vec<SeededAgent>> {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let code = spec.distributor_code.clone();
    let prefix = code.to_lowercase();
    let dist = store
        .create_distributor(&code, &spec.distributor_name, "UAH")
        .await?;
    let region = store
        .create_org_unit(dist, None, "region", &format!("{code}-R1"), "Kyiv region")
        .await?;
    let team = store
        .create_org_unit(
            dist,
            Some(region),
            "team",
            &format!("{code}-T1"),
            "Kyiv team 1",
        )
        .await?;

    // Territories, positions, staff and mobile users.
    let mut positions = Vec::with_capacity(spec.agents);
    let mut logins = Vec::with_capacity(spec.agents);
    let per_territory = spec.agents_per_territory.max(1);
    let mut territory = 0;
    for i in 1..=spec.agents {
        if (i - 1) % per_territory == 0 {
            let n = (i - 1) / per_territory + 1;
            territory = store
                .create_org_unit(
                    dist,
                    Some(team),
                    "territory",
                    &format!("{code}-TR{n:04}"),
                    &format!("Territory {n}"),
                )
                .await?;
        }
        let position = store
            .create_org_unit(
                dist,
                Some(territory),
                "position",
                &format!("{code}-P{i:04}"),
                &format!("Sales agent {i}"),
            )
            .await?;
        store
            .create_staff_for_position(
                dist,
                position,
                pick(&mut rng, FIRST),
                pick(&mut rng, LAST),
                true,
                &dates::format_day_number(dates::day_of_ms(crate::store::now_ms())),
            )
            .await?;
        let login = format!("{prefix}.agent{i:04}");
        store.create_mobile_user(dist, position, &login).await?;
        positions.push((territory, position));
        logins.push(login);
    }

    // Price lists and products.
    let mut price_lists = Vec::new();
    for (name, form) in [
        ("Base", "cash"),
        ("Credit 14 days", "credit"),
        ("Key accounts", "credit"),
    ] {
        price_lists.push(store.create_price_list(dist, name, form).await?);
    }
    let mut tx = store.begin_write().await?;
    let product_rows: Vec<ProductRow> = (1..=spec.products)
        .map(|i| {
            let (good, category) = GOODS[rng.random_range(0..GOODS.len())];
            let brand = pick(&mut rng, BRANDS);
            ProductRow {
                distributor_id: dist,
                code: format!("P{i:05}"),
                name: format!("{} {} {}", brand, good, pick(&mut rng, SIZES)),
                unit: "pcs".into(),
                category: category.into(),
                must_stock: i <= 20,
                brand: brand.to_string(),
            }
        })
        .collect();
    insert(&mut tx, product_rows).await?;
    let of_distributor = [Val::I(dist)];
    let product_ids: Vec<(i64,)> = rows_on(
        &mut tx,
        "SELECT id FROM products WHERE distributor_id = $1 ORDER BY id",
        &of_distributor,
    )
    .await?;
    let product_ids: Vec<i64> = product_ids.into_iter().map(|r| r.0).collect();
    let mut changes: Vec<ChangeRef> = product_ids
        .iter()
        .map(|id| ChangeRef::upsert(EntityKind::Product, *id, 0))
        .collect();
    let mut price_rows = Vec::new();
    let base_prices: Vec<i64> = product_ids
        .iter()
        .map(|_| rng.random_range(1_500..50_000))
        .collect();
    for (n, pl) in price_lists.iter().enumerate() {
        for (p, base) in product_ids.iter().zip(&base_prices) {
            price_rows.push(PriceRow {
                price_list_id: *pl,
                product_id: *p,
                price_minor: base + base * n as i64 / 20,
            });
        }
    }
    insert(&mut tx, price_rows).await?;
    let price_ids: Vec<(i64,)> = rows_on(
        &mut tx,
        "SELECT p.id FROM prices p JOIN price_lists l ON l.id = p.price_list_id WHERE l.distributor_id = $1",
        &of_distributor,
    )
    .await?;
    changes.extend(
        price_ids
            .iter()
            .map(|r| ChangeRef::upsert(EntityKind::Price, r.0, 0)),
    );

    // Warehouses bound to every position for orders.
    let mut warehouses = Vec::new();
    for (wcode, name) in [("W1", "Main warehouse"), ("W2", "Left bank warehouse")] {
        let warehouse = [
            Val::I(dist),
            Val::S(format!("{code}-{wcode}")),
            Val::S(name.into()),
        ];
        warehouses.push(
            id_on(
                &mut tx,
                "INSERT INTO warehouses (distributor_id, code, name) VALUES ($1, $2, $3) RETURNING id",
                &warehouse,
            )
            .await?,
        );
    }
    let binding_rows: Vec<WarehousePositionRow> = warehouses
        .iter()
        .flat_map(|w| {
            positions.iter().map(move |(_, p)| WarehousePositionRow {
                warehouse_id: *w,
                position_id: *p,
                document_type: "order".into(),
            })
        })
        .collect();
    insert(&mut tx, binding_rows).await?;
    for w in &warehouses {
        changes.extend(
            positions
                .iter()
                .map(|(_, p)| ChangeRef::upsert(EntityKind::Warehouse, *w, *p)),
        );
    }

    // Outlets scattered around the centre, shared out among the territories.
    let outlet_rows: Vec<OutletRow> = (1..=spec.outlets)
        .map(|i| {
            let territory = positions[(i - 1) % positions.len().max(1)].0;
            let r = spec.radius_m * rng.random::<f64>().sqrt();
            let a = rng.random::<f64>() * std::f64::consts::TAU;
            let lat = spec.center.0 + r * a.cos() / 111_195.0;
            let lon = spec.center.1 + r * a.sin() / (111_195.0 * spec.center.0.to_radians().cos());
            let has_location = rng.random_bool(0.97);
            OutletRow {
                distributor_id: dist,
                territory_id: territory,
                code: format!("O{i:06}"),
                name: format!(
                    "{} {} #{i}",
                    pick(&mut rng, SHOPS),
                    pick(&mut rng, SHOP_NAMES)
                ),
                address: format!(
                    "{} St, {}, Kyiv",
                    pick(&mut rng, STREETS),
                    rng.random_range(1..200)
                ),
                contact_name: format!("{} {}", pick(&mut rng, FIRST), pick(&mut rng, LAST)),
                phone: format!(
                    "+380 44 {:03} {:04}",
                    rng.random_range(100..999),
                    rng.random_range(0..9999)
                ),
                channel: pick(&mut rng, CHANNELS).into(),
                lat_e7: has_location.then(|| deg_to_e7(lat) as i64),
                lon_e7: has_location.then(|| deg_to_e7(lon) as i64),
                price_list_id: price_lists[rng.random_range(0..price_lists.len())],
            }
        })
        .collect();
    insert(&mut tx, outlet_rows).await?;
    let outlets: Vec<(i64, i64)> = rows_on(
        &mut tx,
        "SELECT id, territory_id FROM outlets WHERE distributor_id = $1 ORDER BY id",
        &of_distributor,
    )
    .await?;
    changes.extend(
        outlets
            .iter()
            .map(|(id, t)| ChangeRef::upsert(EntityKind::Outlet, *id, *t)),
    );

    // Routes: a weekly cycle; each working day visits a fifth of the territory.
    let today = dates::day_of_ms(crate::store::now_ms());
    let days: Vec<i64> = (today - spec.days_back..=today + spec.days_ahead).collect();
    let route_rows: Vec<RouteRow> = positions
        .iter()
        .flat_map(|(_, p)| {
            days.iter().map(move |d| RouteRow {
                distributor_id: dist,
                position_id: *p,
                route_date: dates::format_day_number(*d),
            })
        })
        .collect();
    insert(&mut tx, route_rows).await?;
    let routes: Vec<(i64, i64, String)> = rows_on(
        &mut tx,
        "SELECT id, position_id, route_date FROM routes WHERE distributor_id = $1",
        &of_distributor,
    )
    .await?;
    let mut stop_rows = Vec::new();
    for (route_id, position, date) in &routes {
        let territory = positions
            .iter()
            .find(|(_, p)| p == position)
            .map(|(t, _)| *t)
            .unwrap_or(0);
        let mine: Vec<i64> = outlets
            .iter()
            .filter(|(_, t)| *t == territory)
            .map(|(id, _)| *id)
            .collect();
        let day = dates::parse_day_number(date).unwrap_or(0);
        let group = day.rem_euclid(5) as usize;
        let stops_of_day = mine
            .iter()
            .enumerate()
            .filter(|(n, _)| n % 5 == group)
            .map(|(_, o)| *o);
        stop_rows.extend(RouteStopRow::route(*route_id, stops_of_day));
        changes.push(ChangeRef::upsert(EntityKind::Route, *route_id, *position));
    }
    insert(&mut tx, stop_rows).await?;
    commit_changes(tx, dist, &changes).await?;

    for (name, questions) in questionnaires() {
        store.create_questionnaire(dist, name, &questions).await?;
    }
    // Claim types and their subtypes.
    let now = crate::store::now_ms();
    for (kind, subtypes) in [
        ("Quality", ["Damaged packaging", "Expired"]),
        ("Quantity", ["Short delivery", "Wrong product"]),
    ] {
        let parent = store
            .add_claim_reason(dist, None, kind, now)
            .await?
            .map_err(crate::store::StoreError::Invalid)?;
        for sub in subtypes {
            store
                .add_claim_reason(dist, Some(parent), sub, now)
                .await?
                .map_err(crate::store::StoreError::Invalid)?;
        }
    }
    if spec.invoices_per_outlet > 0 || spec.plans {
        seed_receivables_and_plans(store, spec, dist, &outlets, &positions, &mut rng).await?;
    }
    // Fresh statistics for the tables just loaded, as autovacuum would gather them later:
    // without them PostgreSQL planned the route query of a first pull as a 2-second nested
    // loop (measured). On PostgreSQL only these: analysing the still empty tables of visits
    // and orders would record them as empty, and PostgreSQL then scanned them sequentially
    // for key lookups until autovacuum looked again (measured at ingest). SQLite keeps the
    // database-wide ANALYZE it always had (its ANALYZE takes at most one name).
    let analyze = match store.backend() {
        crate::store::Backend::Sqlite => "ANALYZE".to_string(),
        crate::store::Backend::Postgres => format!(
            "ANALYZE {}",
            [
                "distributors",
                "org_units",
                "mobile_users",
                "staff",
                "position_staff",
                "price_lists",
                "products",
                "prices",
                "warehouses",
                "warehouse_positions",
                "outlets",
                "routes",
                "route_stops",
                "questionnaires",
                "questions",
                "question_choices",
                "change_log",
            ]
            .join(", ")
        ),
    };
    // Constant table names only.
    sqlx::query(sqlx::AssertSqlSafe(analyze))
        .execute(store.pool())
        .await?;

    // PINs: argon2 is deliberately slow (and takes 19 MiB a hash), so hash on every core,
    // a couple per core in flight.
    let pins: Vec<String> = logins
        .iter()
        .map(|_| crate::store::devices::new_pin())
        .collect();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hashes: Vec<String> = {
        use futures::StreamExt;
        futures::stream::iter(pins.clone())
            .map(|p| async move {
                tokio::task::spawn_blocking(move || crate::store::secrets::hash_now(&p))
                    .await
                    .expect("hashing task")
            })
            .buffered(cores * 2)
            .collect()
            .await
    };
    let mut agents = Vec::with_capacity(logins.len());
    for ((login, pin), hash) in logins.into_iter().zip(pins).zip(hashes) {
        store.store_pin_hash(&login, &hash).await?;
        agents.push(SeededAgent { login, pin });
    }
    Ok(agents)
}

fn q(text: &str, kind: &str, required: bool, choices: &[&str]) -> QuestionInput {
    QuestionInput {
        text: text.into(),
        question_type: kind.into(),
        required,
        choices: choices.iter().map(|c| c.to_string()).collect(),
        condition: None,
    }
}

/// The two questionnaires every generated world has.
pub fn questionnaires() -> Vec<(&'static str, Vec<QuestionInput>)> {
    let mut shelf = vec![
        q("Is there a branded display?", "yes_no", true, &[]),
        q(
            "Display condition",
            "single_choice",
            true,
            &["Good", "Damaged", "Empty"],
        ),
        q("Shelf share of our products, %", "number", true, &[]),
        q(
            "Which competitors are on the shelf?",
            "multiple_choice",
            false,
            &["Nestle", "Mondelez", "Roshen", "Local"],
        ),
        q("What is wrong with the display?", "text", true, &[]),
        q("Next promotion date agreed", "date", false, &[]),
    ];
    shelf[1].condition = Some((0, QuestionConditionInput::Yes(true)));
    shelf[4].condition = Some((1, QuestionConditionInput::Choice(1)));
    let contact = vec![
        q("Did you meet the owner?", "yes_no", true, &[]),
        q("Comment", "text", false, &[]),
    ];
    vec![("Shelf audit", shelf), ("Owner contact", contact)]
}

/// Writes `login,pin` lines (CSV with a header).
pub fn write_pins(path: &std::path::Path, agents: &[SeededAgent]) -> std::io::Result<()> {
    let mut out = String::from("login,pin\n");
    for a in agents {
        out.push_str(&format!("{},{}\n", a.login, a.pin));
    }
    std::fs::write(path, out)
}
