//! Every screen rendered with dioxus_ssr over a real engine holding a small territory, and
//! what the agent sees asserted on the HTML.
use std::sync::Arc;

use dioxus::prelude::*;
use fieldsync_agent::{Clock, Engine, OrderDraft};
use fieldsync_app::location::{LocationProvider, Position, SimulatedLocation};
use fieldsync_app::ui::ShellProps;
use fieldsync_app::{AppCtx, Screen, Shell, VisitTab};
use fieldsync_protocol::v1::{self, change::Entity};

/// 2026-11-23 09:00 UTC.
const NOW: i64 = 1_795_424_400_000;
const SHOP_LAT: i32 = 504_501_000;
const SHOP_LON: i32 = 305_234_000;

struct Fixed;
impl Clock for Fixed {
    fn now_ms(&self) -> i64 {
        NOW
    }
}

fn change(e: Entity) -> v1::Change {
    v1::Change { entity: Some(e) }
}

fn outlet(id: i64, name: &str, loc: bool) -> Entity {
    Entity::Outlet(v1::Outlet {
        id,
        code: format!("O-{id}"),
        name: name.into(),
        address: format!("{id} Khreshchatyk St"),
        contact_name: "Olena".into(),
        phone: "+380 44 000 00 00".into(),
        has_location: loc,
        lat_e7: SHOP_LAT + id as i32 * 1000,
        lon_e7: SHOP_LON,
        price_list_id: 1,
        channel: "grocery".into(),
    })
}

fn questionnaire() -> v1::Questionnaire {
    use v1::QuestionType::{Date, MultipleChoice, Number, SingleChoice, Text, YesNo};
    let q = |id, text: &str, t: v1::QuestionType, required, condition| v1::Question {
        id,
        text: text.into(),
        r#type: t as i32,
        required,
        choices: vec![
            v1::Choice {
                id: 1,
                label: "Front".into(),
            },
            v1::Choice {
                id: 2,
                label: "Back".into(),
            },
        ],
        condition,
        position: id as u32,
    };
    v1::Questionnaire {
        id: 5,
        name: "Shelf audit".into(),
        questions: vec![
            q(1, "Is the fridge branded?", YesNo, true, None),
            q(
                2,
                "How many facings?",
                Number,
                true,
                Some(v1::Condition {
                    question_id: 1,
                    equals_yes: true,
                    equals_choice_id: 0,
                }),
            ),
            q(3, "Comment", Text, false, None),
            q(4, "Where is the shelf?", SingleChoice, false, None),
            q(5, "Which promos?", MultipleChoice, false, None),
            q(6, "Next delivery", Date, false, None),
        ],
        ..Default::default()
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    engine: Engine,
}

/// A territory: 3 outlets (one without a location), 4 products with prices, a warehouse,
/// a questionnaire, and today's route over the first two outlets when `route`.
fn fixture(route: bool) -> Fixture {
    fixture_at(route, Arc::new(Fixed))
}

/// [`fixture`] on a phone with this clock.
fn fixture_at(route: bool, clock: Arc<dyn Clock>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with_clock(dir.path().join("agent.db"), clock).unwrap();
    let mut changes = vec![
        change(outlet(1, "Kvitka grocery", true)),
        change(outlet(2, "Dobryi kut", true)),
        change(outlet(3, "<script>alert(1)</script>", false)),
        change(Entity::PriceList(v1::PriceList {
            id: 1,
            name: "Retail".into(),
            payment_form: "cash".into(),
        })),
        change(Entity::Warehouse(v1::Warehouse {
            id: 9,
            code: "W1".into(),
            name: "Kyiv main".into(),
            // Sparkling water: 4 on hand; the others' stock is not known.
            stock: vec![v1::StockLevel {
                product_id: 11,
                quantity_milli: 4_000,
            }],
            stock_updated_at_ms: 1_700_000_000_000,
        })),
        change(Entity::Questionnaire(questionnaire())),
    ];
    for (id, name, must, price) in [
        (11, "Sparkling water 0.5 l", true, 1850),
        (12, "Orange juice 1 l", true, 5420),
        (13, "Cola 2 l", false, 6199),
        (14, "Crisps 90 g", false, 3100),
    ] {
        changes.push(change(Entity::Product(v1::Product {
            id,
            code: format!("P{id}"),
            name: name.into(),
            unit: "pc".into(),
            category: "drinks".into(),
            must_stock: must,
            quantity_step_milli: 1000,
            must_stock_channels: Vec::new(),
            brand: "Zoria".into(),
        })));
        changes.push(change(Entity::Price(v1::Price {
            id,
            price_list_id: 1,
            product_id: id,
            price_minor: price,
            ..Default::default()
        })));
    }
    if route {
        changes.push(change(Entity::Route(v1::Route {
            id: 100,
            date: "2026-11-23".into(),
            stops: vec![
                v1::RouteStop {
                    outlet_id: 1,
                    position: 1,
                },
                v1::RouteStop {
                    outlet_id: 2,
                    position: 2,
                },
            ],
        })));
    }
    engine
        .store_page(&v1::PullResponse {
            changes,
            next_cursor: vec![1],
            distributor: Some(v1::Distributor {
                id: 1,
                code: "D1".into(),
                name: "Kyiv Drinks".into(),
                currency: "UAH".into(),
                band_near_m: 50,
                band_mid_m: 150,
                band_far_m: 1000,
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
    Fixture { _dir: dir, engine }
}

fn fix(lat_e7: i32, lon_e7: i32, accuracy_m: u32) -> v1::GpsFix {
    v1::GpsFix {
        lat_e7,
        lon_e7,
        accuracy_dm: accuracy_m * 10,
        provider: v1::LocationProvider::Gps as i32,
        mock: false,
        device_time_ms: NOW,
    }
}

/// Starts a visit at the route's first stop (outlet 1) with `fixes`.
fn visit_at_first_stop(f: &Fixture, fixes: Vec<v1::GpsFix>) -> uuid::Uuid {
    f.engine.start_visit(1, Some(100), fixes).unwrap()
}

fn render(engine: &Engine, screen: Screen) -> String {
    let here = Position {
        lat: 50.4501,
        lon: 30.5234,
        accuracy_m: 10.0,
        mock: false,
    };
    let ctx: AppCtx = fieldsync_app::start(
        engine.clone(),
        Arc::new(SimulatedLocation::fixed(here)),
        "http://127.0.0.1:9",
        None,
    );
    let mut dom =
        VirtualDom::new_with_props(Shell, ShellProps { initial: screen }).with_root_context(ctx);
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

/// A visit's screen on `tab`.
fn render_visit(engine: &Engine, visit: uuid::Uuid, tab: VisitTab) -> String {
    render(engine, Screen::Visit { visit, tab })
}

/// The text of the element with `id` (naive: up to its first closing tag).
fn text_of(html: &str, id: &str) -> String {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let rest = &html[start..];
    let body = &rest[rest.find('>').unwrap() + 1..];
    body[..body.find("</").unwrap()].to_string()
}

#[test]
fn today_with_no_route_says_so_and_offers_search() {
    let f = fixture(false);
    let html = render(&f.engine, Screen::Today);
    assert!(html.contains("No route for today."), "{html}");
    assert!(html.contains("id=\"outlet-search\""));
    assert!(html.contains("0 waiting"));
    assert!(html.contains("Last sync: never"));
    assert!(!html.contains("id=\"route\""));
}

#[test]
fn today_lists_the_route_in_order_with_states_and_distances() {
    let f = fixture(true);
    let html = render(&f.engine, Screen::Today);
    let first = html.find("Kvitka grocery").expect("first stop");
    let second = html.find("Dobryi kut").expect("second stop");
    assert!(first < second, "route order");
    assert!(html.contains("0 of 2 visited"));
    assert_eq!(html.matches("Not visited").count(), 2);
    // 1000 e7 of latitude is about 11 m from where the agent stands.
    assert!(html.contains(">11 m<"), "{html}");
    assert!(
        !html.contains("<script>alert(1)"),
        "outlet names are escaped"
    );
}

#[test]
fn visit_in_progress_shows_on_today_and_blocks_ending_until_required_answers() {
    let f = fixture(true);
    let visit = visit_at_first_stop(&f, vec![fix(SHOP_LAT + 1000, SHOP_LON, 8)]);
    let today = render(&f.engine, Screen::Today);
    assert!(
        today.contains("Visit in progress at Kvitka grocery."),
        "{today}"
    );
    assert!(today.contains("In progress"));
    assert!(today.contains("1 waiting"));

    let html = render_visit(&f.engine, visit, VisitTab::Summary);
    assert!(html.contains("At the outlet"), "{html}");
    assert!(!html.contains("id=\"warn-far\""));
    let blockers = html.find("id=\"end-blockers\"").expect("end blockers");
    assert!(html[blockers..].contains("Shelf audit"));
    let end = &html[html.find("id=\"end-visit\"").unwrap() - 200..];
    assert!(end.contains("disabled"), "End visit is disabled: {end}");

    // Answer the questionnaire: ending is allowed.
    f.engine
        .answer_questionnaire(
            visit,
            5,
            vec![v1::Answer {
                question_id: 1,
                value: Some(v1::answer::Value::YesNo(false)),
            }],
        )
        .unwrap();
    let html = render_visit(&f.engine, visit, VisitTab::Summary);
    assert!(!html.contains("id=\"end-blockers\""), "{html}");
    let end = &html[html.find("id=\"end-visit\"").unwrap()..];
    assert!(!end[..end.find('>').unwrap()].contains("disabled"));
}

#[test]
fn a_fix_the_platform_marks_as_mocked_warns_the_agent_and_the_visit_goes_on() {
    let f = fixture(true);
    // In the shop, but from a mock-location app.
    let mut mocked = fix(SHOP_LAT + 100, SHOP_LON, 5);
    mocked.mock = true;
    let visit = visit_at_first_stop(&f, vec![mocked]);
    let html = render_visit(&f.engine, visit, VisitTab::Summary);
    assert!(
        text_of(&html, "warn-mock").contains("mock-location app"),
        "{html}"
    );
    assert!(html.contains("id=\"tab-order\""), "the visit goes on");

    // An honest fix raises no such warning.
    f.engine.end_visit(visit, vec![]).unwrap();
    let visit = f
        .engine
        .start_visit(2, Some(100), vec![fix(SHOP_LAT, SHOP_LON, 5)])
        .unwrap();
    let html = render_visit(&f.engine, visit, VisitTab::Summary);
    assert!(!html.contains("id=\"warn-mock\""));
}

#[test]
fn the_simulated_provider_marks_mock_positions_like_the_platform_does() {
    let p: Position = "50.45,30.52,8,mock".parse().unwrap();
    assert!(p.mock);
    let fix = SimulatedLocation::fixed(p).current_fix().unwrap();
    assert!(fix.mock);
    let p: Position = "50.45,30.52,8".parse().unwrap();
    assert!(!p.mock);
    assert!(!SimulatedLocation::fixed(p).current_fix().unwrap().mock);
    assert!("50.45,30.52,8,fake".parse::<Position>().is_err());
}

#[test]
fn far_and_inaccurate_fixes_warn_without_blocking() {
    let f = fixture(true);
    // About 3.3 km north, with a 250 m accuracy circle.
    let visit = visit_at_first_stop(&f, vec![fix(SHOP_LAT + 1000 + 300_000, SHOP_LON, 250)]);
    let html = render_visit(&f.engine, visit, VisitTab::Summary);
    let far = text_of(&html, "warn-far");
    assert!(far.contains("You are 3.3 km from the outlet"), "{far}");
    assert!(text_of(&html, "warn-inaccurate").contains("250 m"));
    assert_eq!(text_of(&html, "fix-band"), "Far from the outlet");
    // The visit is running: its tabs are there.
    assert!(html.contains("id=\"tab-order\""));

    // No fix at all: still started, and said so.
    f.engine.end_visit(visit, vec![]).unwrap();
    let visit = f.engine.start_visit(2, Some(100), vec![]).unwrap();
    let html = render_visit(&f.engine, visit, VisitTab::Summary);
    assert!(html.contains("id=\"warn-no-fix\""), "{html}");
}

#[test]
fn questionnaire_shows_every_type_and_validation_messages() {
    let f = fixture(true);
    let visit = visit_at_first_stop(&f, vec![]);
    let questionnaire = VisitTab::Questionnaire {
        id: Some(5),
        validate: true,
    };
    let html = render_visit(&f.engine, visit, questionnaire);
    assert!(html.contains("id=\"answer-1-yes\""), "yes/no: {html}");
    assert!(html.contains("id=\"answer-3\""), "text");
    assert!(html.contains("id=\"answer-4-2\""), "single choice");
    assert!(
        html.contains("type=\"checkbox\"") && html.contains("id=\"answer-5-1\""),
        "multiple choice"
    );
    assert!(html.contains("type=\"date\""), "date");
    // The conditional question waits for "yes".
    assert!(!html.contains("How many facings?"));
    let q1 = &html[html.find("id=\"question-1\"").unwrap()..];
    assert!(q1[..q1.find("id=\"question-3\"").unwrap()].contains("This answer is required."));
    assert_eq!(
        html.matches("This answer is required.").count(),
        1,
        "only the required one"
    );

    let list_tab = VisitTab::Questionnaire {
        id: None,
        validate: false,
    };
    let list = render_visit(&f.engine, visit, list_tab);
    assert!(list.contains("Shelf audit") && list.contains("Required"));
}

#[test]
fn order_editor_prices_a_draft_from_the_price_list() {
    let f = fixture(true);
    let visit = visit_at_first_stop(&f, vec![]);
    let draft = f
        .engine
        .save_order_draft(&OrderDraft {
            visit_id: Some(visit),
            outlet_id: 1,
            warehouse_id: 9,
            lines: vec![(11, 2000), (13, 1500)],
            ..Default::default()
        })
        .unwrap();
    let html = render_visit(&f.engine, visit, VisitTab::Order { draft: Some(draft) });
    // 2 x 18.50 + 1.5 x 61.99 = 37.00 + 92.985 -> 92.98 (half-even) = 129.98
    assert!(
        text_of(&html, "order-total").contains("129.98 UAH"),
        "{html}"
    );
    assert!(html.contains("Kyiv main"));
    assert!(html.contains("id=\"qty-P11\""));
    // Stock on hand in the chosen warehouse, where the distributor reported it.
    assert!(text_of(&html, "stock-P11").contains("On hand: 4"), "{html}");
    assert!(!html.contains("id=\"stock-P13\""), "no stock known for P13");
    assert!(!html.contains("id=\"beyond-11\""), "2 of 4 is within stock");
    let outlet = render(&f.engine, Screen::Outlet(1));
    assert!(outlet.contains("Draft, 2 lines"), "{outlet}");
    let more = f
        .engine
        .save_order_draft(&OrderDraft {
            visit_id: Some(visit),
            outlet_id: 1,
            warehouse_id: 9,
            lines: vec![(11, 6000)],
            draft_id: Some(draft),
            ..Default::default()
        })
        .unwrap();
    let html = render_visit(&f.engine, visit, VisitTab::Order { draft: Some(more) });
    assert!(
        text_of(&html, "beyond-11").contains("More than the 4 on hand"),
        "{html}"
    );
    assert!(
        !html.contains("id=\"place-order\" disabled"),
        "ordering beyond stock warns and does not block"
    );
}

#[test]
fn outlet_card_shows_orders_with_the_distributors_status() {
    let f = fixture(true);
    let visit = visit_at_first_stop(&f, vec![fix(SHOP_LAT + 1000, SHOP_LON, 8)]);
    let order = f
        .engine
        .place_order(OrderDraft {
            visit_id: Some(visit),
            outlet_id: 1,
            warehouse_id: 9,
            lines: vec![(12, 1000)],
            ..Default::default()
        })
        .unwrap();
    f.engine.end_visit(visit, vec![]).unwrap();
    f.engine
        .store_page(&v1::PullResponse {
            changes: vec![change(Entity::OrderStatus(v1::OrderStatus {
                order_id: order.as_bytes().to_vec(),
                state: v1::OrderState::Rejected as i32,
                reason: "Outlet has a debt".into(),
                document_number: String::new(),
                ..Default::default()
            }))],
            next_cursor: vec![2],
            ..Default::default()
        })
        .unwrap();
    let html = render(&f.engine, Screen::Outlet(1));
    assert!(html.contains("54.20 UAH"), "{html}");
    assert!(html.contains("Rejected"));
    assert!(html.contains("Outlet has a debt"));
    assert!(html.contains("id=\"start-visit\""));
    assert!(text_of(&html, "outlet-location").contains("50.450200, 30.523400"));
    // A visit happened and it was 0 m away... well, within metres.
    assert!(html.contains("id=\"outlet-visits\""));
}

#[test]
fn xss_in_master_data_is_shown_as_text() {
    let f = fixture(true);
    let html = render(&f.engine, Screen::Outlet(3));
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains("No reference location yet"));
}

#[test]
fn settings_and_language() {
    let f = fixture(true);
    f.engine.set_preference("language", "uk").unwrap();
    let html = render(&f.engine, Screen::Settings);
    assert!(html.contains("Мова"), "{html}");
    assert!(html.contains(&f.engine.device_uid().unwrap().to_string()));
    assert!(text_of(&html, "app-version").contains(fieldsync_app::VERSION));
    let today = render(&f.engine, Screen::Today);
    assert!(today.contains("Відвідано 0 з 2"), "{today}");
    f.engine.set_preference("language", "ru").unwrap();
    assert!(render(&f.engine, Screen::Today).contains("Посещено 0 из 2"));
}

#[test]
fn sync_screen_lists_items_and_activation_has_its_fields() {
    let f = fixture(true);
    let visit = visit_at_first_stop(&f, vec![]);
    f.engine.end_visit(visit, vec![]).unwrap();
    let html = render(&f.engine, Screen::Sync);
    assert!(
        html.contains("Visit started") && html.contains("Visit ended"),
        "{html}"
    );
    assert_eq!(html.matches(">Waiting<").count(), 2);
    assert!(html.contains("id=\"sync-now\""));

    let html = render(&f.engine, Screen::Activation);
    for id in ["server", "login", "pin", "activate"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(html.contains("http://127.0.0.1:9"));
    assert!(
        !html.contains("id=\"sync-banner\""),
        "no sync banner before activation"
    );
}

/// Two agents' concurrent changes to outlet 1's card, as a pull brings them: both set
/// Monday's opening hours, one adds a contact person and proposes a new address.
fn pulled_conflicting_card(engine: &Engine) {
    use fieldsync_protocol::automerge::ActorId;
    use fieldsync_protocol::cards::{self, CardEdit, Hours, Role};
    let monday = |value: &str| CardEdit::Hours {
        hours: Hours::Opening,
        day: "mon".into(),
        value: value.into(),
    };
    let (mut a, mut b) = (cards::genesis(), cards::genesis());
    let ca = cards::edit(
        &mut a,
        &ActorId::from([1u8; 16]),
        Role::Agent,
        "Ivan Koval",
        NOW,
        &[
            monday("08:00-18:00"),
            CardEdit::Contact {
                id: "c1".into(),
                name: Some("Olena Shevchuk".into()),
                role: Some("buyer".into()),
                phone: Some("+380 67 111 22 33".into()),
            },
            CardEdit::Propose {
                field: "address".into(),
                value: "22 Khreshchatyk St".into(),
            },
        ],
    )
    .unwrap()
    .unwrap();
    let cb = cards::edit(
        &mut b,
        &ActorId::from([2u8; 16]),
        Role::Agent,
        "Petro Bondar",
        NOW,
        &[monday("09:00-17:00")],
    )
    .unwrap()
    .unwrap();
    let card = |bytes: &[u8]| {
        change(Entity::OutletCard(v1::OutletCard {
            outlet_id: 1,
            payload: v1::CardPayload::CardChanges as i32,
            automerge: bytes.to_vec(),
        }))
    };
    engine
        .store_page(&v1::PullResponse {
            changes: vec![card(ca.raw_bytes()), card(cb.raw_bytes())],
            next_cursor: vec![2],
            card_actor: vec![7u8; 16],
            ..Default::default()
        })
        .unwrap();
}

#[test]
fn the_outlet_card_marks_a_field_two_agents_set_at_once_with_both_names() {
    let f = fixture(true);
    pulled_conflicting_card(&f.engine);
    let html = render(&f.engine, Screen::Outlet(1));
    assert!(html.contains("id=\"card-conflicts\""), "{html}");
    let monday = html
        .split("id=\"card-hours-mon\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(monday.contains("Also entered"), "{monday}");
    assert!(
        monday.contains("Ivan Koval") ^ monday.contains("Petro Bondar"),
        "the value not shown is named with its author: {monday}"
    );
    assert!(monday.contains("08:00-18:00") && monday.contains("09:00-17:00"));
    assert!(text_of(&html, "card-contacts").contains("Olena Shevchuk"));
    assert!(html.contains("Waiting for the key user"));
    assert!(html.contains("22 Khreshchatyk St"));
}

#[test]
fn an_offline_card_edit_shows_at_once_and_waits_for_the_sync() {
    let f = fixture(true);
    pulled_conflicting_card(&f.engine);
    use fieldsync_protocol::cards::{CardEdit, Hours};
    // Saving Monday again settles the conflict on this phone at once.
    assert!(
        f.engine
            .edit_card(
                1,
                &[
                    CardEdit::Hours {
                        hours: Hours::Opening,
                        day: "mon".into(),
                        value: "08:30-18:00".into(),
                    },
                    CardEdit::Notes("Ask for Olena, not the cashier.".into()),
                ],
            )
            .unwrap()
    );
    let html = render(&f.engine, Screen::Outlet(1));
    assert!(!html.contains("id=\"card-conflicts\""), "{html}");
    assert!(text_of(&html, "card-pending").contains("1 change"));
    assert_eq!(
        text_of(&html, "card-notes"),
        "Ask for Olena, not the cashier."
    );
    assert_eq!(f.engine.outbox_status().unwrap().pending, 1);
}

#[test]
fn the_card_asks_for_a_first_sync_before_it_can_be_edited() {
    let f = fixture(true);
    let e = f
        .engine
        .edit_card(1, &[fieldsync_protocol::cards::CardEdit::Notes("x".into())])
        .unwrap_err();
    assert!(
        matches!(e, fieldsync_agent::WorkflowError::NotSynced),
        "{e}"
    );
}

/// Stores pulled changes as a page of a pull.
fn pulled(engine: &Engine, changes: Vec<Entity>, distributor: Option<v1::Distributor>) {
    engine
        .store_page(&v1::PullResponse {
            changes: changes.into_iter().map(change).collect(),
            next_cursor: vec![9],
            distributor,
            ..Default::default()
        })
        .unwrap();
}

fn invoice(number: &str, due: &str, amount: i64, paid: i64) -> v1::Invoice {
    v1::Invoice {
        number: number.into(),
        invoice_date: "2026-10-01".into(),
        due_date: due.into(),
        amount_minor: amount,
        paid_minor: paid,
        currency: String::new(),
    }
}

#[test]
fn overdue_debt_shows_on_the_outlet_and_the_order_asks_for_a_reason() {
    let f = fixture(true);
    // Monday 2026-11-23: one invoice 13 days overdue, one due on Friday, one next month.
    pulled(
        &f.engine,
        vec![Entity::Receivables(v1::OutletReceivables {
            outlet_id: 1,
            invoices: vec![
                invoice("INV-1", "2026-11-10", 100_000, 40_000),
                invoice("INV-2", "2026-11-27", 20_000, 0),
                invoice("INV-3", "2026-12-15", 5_000, 0),
            ],
        })],
        Some(v1::Distributor {
            id: 1,
            code: "D1".into(),
            currency: "UAH".into(),
            overdue_policy: v1::OverduePolicy::RequireReason as i32,
            ..Default::default()
        }),
    );
    let html = render(&f.engine, Screen::Outlet(1));
    assert_eq!(text_of(&html, "debt-owed"), "850.00 UAH");
    assert_eq!(text_of(&html, "debt-overdue"), "600.00 UAH");
    assert_eq!(text_of(&html, "debt-week"), "200.00 UAH");
    assert!(html.contains("Due 2026-11-10, 13 days overdue"), "{html}");
    // Outlet 2 owes nothing.
    let other = render(&f.engine, Screen::Outlet(2));
    assert!(other.contains("id=\"debt-none\""), "{other}");

    let visit = visit_at_first_stop(&f, vec![fix(SHOP_LAT + 1000, SHOP_LON, 8)]);
    let html = render_visit(&f.engine, visit, VisitTab::Order { draft: None });
    assert!(
        text_of(&html, "order-overdue").contains("overdue debt: 600.00 UAH"),
        "{html}"
    );
    assert!(html.contains("(required)"), "{html}");
    let draft = OrderDraft {
        visit_id: Some(visit),
        outlet_id: 1,
        warehouse_id: 9,
        lines: vec![(12, 1000)],
        ..Default::default()
    };
    let refused = f.engine.place_order(draft.clone()).unwrap_err();
    assert!(
        matches!(
            refused,
            fieldsync_agent::WorkflowError::OverdueReasonRequired
        ),
        "{refused}"
    );
    assert_eq!(
        f.engine.outbox_status().unwrap().pending,
        1,
        "only the visit"
    );
    f.engine
        .place_order(OrderDraft {
            overdue_reason: "Pays on Friday".into(),
            ..draft
        })
        .unwrap();
    assert_eq!(f.engine.outbox_status().unwrap().pending, 2);
    // No overdue debt at outlet 2: no warning on its order form.
    f.engine.end_visit(visit, vec![]).unwrap();
    let second = f.engine.start_visit(2, Some(100), vec![]).unwrap();
    let html = render_visit(&f.engine, second, VisitTab::Order { draft: None });
    assert!(!html.contains("id=\"order-overdue\""), "{html}");
}

#[test]
fn plan_progress_shows_on_the_outlet_and_the_agents_month_on_today() {
    let f = fixture(true);
    let plan = |id, outlet_id, category: &str, measure: v1::PlanMeasure, target, achieved| {
        Entity::Plan(v1::Plan {
            id,
            period: "2026-11".into(),
            outlet_id,
            category: category.into(),
            measure: measure as i32,
            target,
            achieved,
            achieved_from: "orders".into(),
            ..Default::default()
        })
    };
    pulled(
        &f.engine,
        vec![
            plan(1, 1, "", v1::PlanMeasure::PlanMoney, 1_000_000, 250_000),
            plan(
                2,
                0,
                "drinks",
                v1::PlanMeasure::PlanQuantity,
                200_000,
                150_000,
            ),
            // Last month's plan is not this month's.
            Entity::Plan(v1::Plan {
                id: 3,
                period: "2026-10".into(),
                outlet_id: 1,
                measure: v1::PlanMeasure::PlanMoney as i32,
                target: 1,
                ..Default::default()
            }),
        ],
        None,
    );
    let html = render(&f.engine, Screen::Outlet(1));
    let panel = &html[html.find("id=\"outlet-plan\"").expect("plan panel")..];
    assert!(panel.contains("data-percent=\"25\""), "{panel}");
    assert!(panel.contains("2500.00 UAH of 10000.00 UAH"), "{panel}");
    assert!(
        !panel.contains("data-percent=\"0\""),
        "October's plan is not shown"
    );
    let today = render(&f.engine, Screen::Today);
    let month = &today[today.find("id=\"my-month\"").expect("my month")..];
    assert!(month.contains("drinks"), "{month}");
    assert!(month.contains("150 of 200"), "{month}");
    assert!(month.contains(">75%<"), "{month}");
    // No plan for outlet 2.
    assert!(render(&f.engine, Screen::Outlet(2)).contains("id=\"outlet-plan-none\""));
}

/// Places an order of two lines at outlet 1 in a visit and ends it; returns the order.
fn order_of_two_lines(f: &Fixture) -> uuid::Uuid {
    let visit = visit_at_first_stop(f, vec![fix(SHOP_LAT + 1000, SHOP_LON, 8)]);
    let order = f
        .engine
        .place_order(OrderDraft {
            visit_id: Some(visit),
            outlet_id: 1,
            warehouse_id: 9,
            lines: vec![(11, 3000), (12, 2000)],
            ..Default::default()
        })
        .unwrap();
    f.engine.end_visit(visit, vec![]).unwrap();
    order
}

#[test]
fn confirmed_and_shipped_quantities_show_against_the_ordered_ones() {
    let f = fixture(true);
    let order = order_of_two_lines(&f);
    let html = render(&f.engine, Screen::Outlet(1));
    assert!(!html.contains("class=\"fate\""), "nothing reported yet");
    pulled(
        &f.engine,
        vec![Entity::OrderStatus(v1::OrderStatus {
            order_id: order.as_bytes().to_vec(),
            state: v1::OrderState::Shipped as i32,
            number: 4711,
            lines: vec![
                v1::OrderLineFate {
                    line_no: 1,
                    confirmed_quantity_milli: Some(3000),
                    shipped_quantity_milli: Some(2000),
                },
                v1::OrderLineFate {
                    line_no: 2,
                    confirmed_quantity_milli: Some(2000),
                    shipped_quantity_milli: Some(2000),
                },
            ],
            ..Default::default()
        })],
        None,
    );
    let html = render(&f.engine, Screen::Outlet(1));
    assert!(html.contains("No. 4711"), "{html}");
    let table = &html[html.find("class=\"fate\"").expect("fate table")..];
    let rows: Vec<&str> = table.split("<tr").skip(2).collect();
    assert!(
        rows[0].contains("differs"),
        "3 ordered, 2 shipped: {}",
        rows[0]
    );
    assert!(!rows[1].contains("differs"), "{}", rows[1]);
    assert!(
        rows[0].contains(">3<") && rows[0].contains(">2<"),
        "{}",
        rows[0]
    );
}

#[test]
fn a_claim_draft_is_edited_then_registered_and_then_locked() {
    let f = fixture(true);
    let order = order_of_two_lines(&f);
    pulled(
        &f.engine,
        vec![
            Entity::ClaimReason(v1::ClaimReason {
                id: 1,
                parent_id: 0,
                name: "Quality".into(),
            }),
            Entity::ClaimReason(v1::ClaimReason {
                id: 2,
                parent_id: 1,
                name: "Damaged packaging".into(),
            }),
        ],
        None,
    );
    let visit = f.engine.start_visit(1, Some(100), vec![]).unwrap();
    let html = render_visit(&f.engine, visit, VisitTab::Claim { claim: None });
    assert!(html.contains("id=\"claim-qty-0\""), "{html}");
    assert!(html.contains("Damaged packaging"), "{html}");
    let line = |qty| fieldsync_agent::ClaimLineDraft {
        order_id: order,
        line_no: 1,
        quantity_milli: qty,
        type_id: 1,
        subtype_id: 2,
    };
    let mut draft = fieldsync_agent::ClaimDraft {
        visit_id: Some(visit),
        outlet_id: 1,
        lines: vec![line(1000)],
        comment: "Torn boxes".into(),
        ..Default::default()
    };
    // More than was delivered is refused on the phone, before anything is queued.
    let too_much = f
        .engine
        .save_claim(fieldsync_agent::ClaimDraft {
            lines: vec![line(4000)],
            ..draft.clone()
        })
        .unwrap_err();
    assert!(
        matches!(too_much, fieldsync_agent::WorkflowError::InvalidClaim(_)),
        "{too_much}"
    );
    let id = f.engine.save_claim(draft.clone()).unwrap();
    let html = render(&f.engine, Screen::Outlet(1));
    assert!(html.contains("data-stage=\"draft\""), "{html}");
    let html = render_visit(&f.engine, visit, VisitTab::Claim { claim: Some(id) });
    assert!(html.contains("id=\"delete-claim\""), "{html}");
    assert!(html.contains("Torn boxes"), "{html}");
    // Edited, then registered.
    draft.claim_id = Some(id);
    draft.lines = vec![line(2000)];
    f.engine.save_claim(draft.clone()).unwrap();
    assert_eq!(
        f.engine.claim(id).unwrap().unwrap().lines[0]
            .line
            .quantity_milli,
        2000
    );
    draft.register = true;
    f.engine.save_claim(draft.clone()).unwrap();
    let html = render_visit(&f.engine, visit, VisitTab::Claim { claim: Some(id) });
    assert!(html.contains("id=\"claim-locked\""), "{html}");
    assert!(!html.contains("id=\"delete-claim\""), "{html}");
    assert!(matches!(
        f.engine.delete_claim(id).unwrap_err(),
        fieldsync_agent::WorkflowError::ClaimLocked(_)
    ));
    draft.register = false;
    assert!(matches!(
        f.engine.save_claim(draft).unwrap_err(),
        fieldsync_agent::WorkflowError::ClaimLocked(_)
    ));
    // The distributor considers it; the phone shows the stage and the number.
    pulled(
        &f.engine,
        vec![Entity::ClaimStatus(v1::ClaimStatus {
            claim_id: id.as_bytes().to_vec(),
            number: 31,
            stage: v1::ClaimStage::ClaimBeingConsidered as i32,
            ..Default::default()
        })],
        None,
    );
    let html = render(&f.engine, Screen::Outlet(1));
    assert!(html.contains("data-stage=\"being_considered\""), "{html}");
    assert!(
        html.contains("Being considered") && html.contains("No. 31"),
        "{html}"
    );
    // Queued: the visit's start and end, the order, the visit now open, and three saves.
    assert_eq!(f.engine.outbox_status().unwrap().pending, 7);
}

/// 2026-11-23 22:30 UTC, 00:30 on 2026-11-24 at UTC+2 (Kyiv in winter).
struct KyivAfterMidnight;
impl Clock for KyivAfterMidnight {
    fn now_ms(&self) -> i64 {
        NOW + 13 * 3_600_000 + 30 * 60_000
    }
    fn utc_offset_min(&self, _at_ms: i64) -> i32 {
        120
    }
}

#[test]
fn at_half_past_midnight_in_utc_plus_2_the_phone_shows_that_days_route() {
    let f = fixture_at(true, Arc::new(KyivAfterMidnight));
    // Tomorrow's route (by UTC, today's in Kyiv) visits outlet 2 only.
    pulled(
        &f.engine,
        vec![Entity::Route(v1::Route {
            id: 101,
            date: "2026-11-24".into(),
            stops: vec![v1::RouteStop {
                outlet_id: 2,
                position: 1,
            }],
        })],
        None,
    );
    assert_eq!(f.engine.today(), "2026-11-24");
    let html = render(&f.engine, Screen::Today);
    assert!(html.contains(">2026-11-24<"), "{html}");
    assert!(html.contains("Dobryi kut"), "{html}");
    assert!(
        !html.contains("Kvitka grocery"),
        "yesterday's route: {html}"
    );
    assert!(html.contains("0 of 1 visited"), "{html}");
    // A visit started now shows the local wall-clock time.
    let visit = f.engine.start_visit(2, Some(101), vec![]).unwrap();
    let html = render_visit(&f.engine, visit, VisitTab::Summary);
    assert!(html.contains("2026-11-24 00:30"), "{html}");
}
