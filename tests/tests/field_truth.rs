//! Field truth end to end: the real agent engine records visits the way honest and lying
//! phones do, syncs them to a real server, and the server stores the signals each visit
//! raised, with their evidence. One visit per class of the truth model.
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use fieldsync_agent::{Clock, Engine, HttpTransport};
use fieldsync_protocol::{dates, v1};
use fieldsync_tests::browser::{Browser, ensure_leaflet};
use fieldsync_tests::*;

const MIN: i64 = 60_000;

struct TestClock(AtomicI64);
impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A fix `north_m` metres north of `at`, taken now by the phone's clock.
fn fix(at: (i32, i32), north_m: f64, accuracy_m: f64, now: i64) -> v1::GpsFix {
    v1::GpsFix {
        lat_e7: at.0 + (north_m / 111_195.0 * 1e7) as i32,
        lon_e7: at.1,
        accuracy_dm: (accuracy_m * 10.0) as u32,
        provider: v1::LocationProvider::Gps as i32,
        mock: false,
        device_time_ms: now,
    }
}

struct Day {
    engine: Engine,
    transport: HttpTransport,
    clock: Arc<TestClock>,
    outlets: Vec<(i64, (i32, i32))>,
    _dir: tempfile::TempDir,
}

impl Day {
    fn now(&self) -> i64 {
        self.clock.now_ms()
    }
    fn advance(&self, ms: i64) {
        self.clock.0.fetch_add(ms, Ordering::Relaxed);
    }
    /// A visit to outlet `n` with these start and end fixes (made by `f(reference, now)`),
    /// lasting `stay_ms`, then 10 minutes on the road.
    fn visit(
        &self,
        n: usize,
        start: impl Fn((i32, i32), i64) -> Vec<v1::GpsFix>,
        end: impl Fn((i32, i32), i64) -> Vec<v1::GpsFix>,
        stay_ms: i64,
    ) -> uuid::Uuid {
        let (outlet, at) = self.outlets[n];
        let v = self
            .engine
            .start_visit(outlet, None, start(at, self.now()))
            .unwrap();
        self.advance(stay_ms);
        self.engine.end_visit(v, end(at, self.now())).unwrap();
        self.advance(10 * MIN);
        v
    }
}

async fn day(server: &TestServer, agent: &fieldsync_server::seed::SeededAgent) -> Day {
    let dir = tempfile::tempdir().unwrap();
    // The day starts six hours ago, so that nothing is dated after the server's clock.
    let clock = Arc::new(TestClock(AtomicI64::new(
        fieldsync_server::store::now_ms() - 6 * 60 * MIN,
    )));
    let engine =
        Engine::open_with_clock(dir.path().join("agent.db"), clock.clone() as Arc<dyn Clock>)
            .unwrap();
    let transport = HttpTransport::new(&server.url);
    engine
        .activate(
            &transport,
            &server.url,
            &agent.login,
            &agent.pin,
            "truth phone",
            "1.0",
        )
        .await
        .unwrap();
    engine.sync(&transport).await.unwrap();
    let outlets = engine
        .search_outlets("", 100)
        .unwrap()
        .into_iter()
        .filter_map(|o| Some((o.id, o.location?)))
        .collect::<Vec<_>>();
    assert!(
        outlets.len() >= 9,
        "the seeded territory has outlets with locations"
    );
    Day {
        engine,
        transport,
        clock,
        outlets,
        _dir: dir,
    }
}

/// The signals the server stored for a visit, by name, with their variant and args.
async fn stored(server: &TestServer, visit: uuid::Uuid) -> Vec<(String, String, String)> {
    let listed: (String,) = sqlx::query_as("SELECT signals FROM visits WHERE id = $1")
        .bind(visit.to_string())
        .fetch_one(server.store.test_pool())
        .await
        .unwrap();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT signal, variant, args FROM visit_signals WHERE visit_id = $1 ORDER BY signal",
    )
    .bind(visit.to_string())
    .fetch_all(server.store.test_pool())
    .await
    .unwrap();
    // The list the visits page filters on names exactly the stored evidence.
    let mut names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let mut listed_names: Vec<&str> = listed.0.split(',').filter(|s| !s.is_empty()).collect();
    names.sort();
    listed_names.sort();
    assert_eq!(names, listed_names, "visits.signals matches visit_signals");
    rows
}

fn names(rows: &[(String, String, String)]) -> Vec<&str> {
    rows.iter().map(|r| r.0.as_str()).collect()
}

/// The visits of [`record_every_class`], one per class of the truth model.
struct Recorded {
    d: Day,
    honest: uuid::Uuid,
    indoor: uuid::Uuid,
    offsite: uuid::Uuid,
    mocked: uuid::Uuid,
    spoof: uuid::Uuid,
    teleport_from: uuid::Uuid,
    after_jump: uuid::Uuid,
    backdated: uuid::Uuid,
    short: uuid::Uuid,
    blind: uuid::Uuid,
}

/// One day of one phone through the real agent engine: a visit per class, then a sync.
async fn record_every_class(
    server: &TestServer,
    agent: &fieldsync_server::seed::SeededAgent,
) -> Recorded {
    let d = day(server, agent).await;
    let honest_fixes = |at, now| vec![fix(at, 12.0, 8.0, now), fix(at, 15.5, 11.0, now + 3_000)];

    // Honest: two slightly different fixes a few metres off, 20 minutes in the shop.
    let honest = d.visit(
        0,
        honest_fixes,
        |at, now| vec![fix(at, 9.0, 14.0, now)],
        20 * MIN,
    );
    // Honest but indoors: 230 m off with an honest 240 m accuracy, and a cold start with no
    // start fix at all.
    let indoor = d.visit(
        1,
        |_, _| vec![],
        |at, now| vec![fix(at, 230.0, 240.0, now)],
        15 * MIN,
    );
    // Off-site: from a car park 3 km away, with one fake end fix "in the shop" that must
    // not clear the start.
    let offsite = d.visit(
        2,
        |at, now| vec![fix(at, 3_000.0, 6.0, now)],
        |at, now| vec![fix(at, 4.0, 5.0, now)],
        12 * MIN,
    );
    // Mock: the platform flagged one fix.
    let mocked = d.visit(
        3,
        |at, now| {
            let mut f = fix(at, 10.0, 5.0, now);
            f.mock = true;
            vec![f]
        },
        |at, now| vec![fix(at, 11.0, 6.0, now)],
        14 * MIN,
    );
    // Hidden spoofing: the reference point itself, 1 m accurate, frozen to the last digit.
    let spoof = d.visit(
        4,
        |at, now| vec![fix(at, 0.0, 1.0, now), fix(at, 0.0, 1.0, now + 1_000)],
        |at, now| vec![fix(at, 0.0, 1.0, now)],
        16 * MIN,
    );
    // A teleport: this visit's fixes 27 km north of outlet 5 (so it is off-site too), then
    // outlet 6 ten minutes later: 27 km in 10 min.
    let teleport_from = d.visit(
        5,
        |at, now| vec![fix(at, 27_000.0, 7.0, now)],
        |at, now| vec![fix(at, 27_000.0, 8.0, now)],
        10 * MIN,
    );
    let after_jump = d.visit(
        6,
        honest_fixes,
        |at, now| vec![fix(at, 7.0, 9.0, now)],
        18 * MIN,
    );
    // Clock tampering: the clock moved back two hours to back-date a visit, then restored.
    d.advance(-2 * 60 * MIN);
    let backdated = d.visit(
        7,
        honest_fixes,
        |at, now| vec![fix(at, 8.0, 9.0, now)],
        15 * MIN,
    );
    d.advance(2 * 60 * MIN);
    // Too short, and no fix at all.
    let short = d.visit(
        8,
        honest_fixes,
        |at, now| vec![fix(at, 6.0, 9.0, now)],
        20_000,
    );
    let blind = d.visit(0, |_, _| vec![], |_, _| vec![], 15 * MIN);

    d.engine.sync(&d.transport).await.unwrap();
    assert_eq!(d.engine.outbox_status().unwrap().pending, 0);
    Recorded {
        d,
        honest,
        indoor,
        offsite,
        mocked,
        spoof,
        teleport_from,
        after_jump,
        backdated,
        short,
        blind,
    }
}

async fn every_class(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    let Recorded {
        d,
        honest,
        indoor,
        offsite,
        mocked,
        spoof,
        after_jump,
        backdated,
        short,
        blind,
        ..
    } = record_every_class(&server, &agents[0]).await;

    assert_eq!(names(&stored(&server, honest).await), Vec::<&str>::new());
    assert_eq!(names(&stored(&server, indoor).await), Vec::<&str>::new());
    let off = stored(&server, offsite).await;
    assert_eq!(names(&off), vec!["off_site"]);
    assert_eq!(
        off[0].1, "far_beyond",
        "the start decides, not the fake end fix"
    );
    assert!(off[0].2.starts_with("distance=300"), "{off:?}");
    let m = stored(&server, mocked).await;
    assert_eq!(
        (names(&m), m[0].2.as_str()),
        (vec!["mocked"], "n=1;total=2")
    );
    assert_eq!(
        names(&stored(&server, spoof).await),
        vec!["on_reference", "repeated_fix", "too_accurate"]
    );
    let jump = stored(&server, after_jump).await;
    assert_eq!(names(&jump), vec!["implausible_travel"]);
    assert_eq!(jump[0].1, "speed");
    let kmh: f64 = jump[0]
        .2
        .split(';')
        .find_map(|a| a.strip_prefix("kmh="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(kmh > 120.0, "about 27 km in 10 min: {jump:?}");
    let b = stored(&server, backdated).await;
    assert_eq!(names(&b), vec!["clock_jump"]);
    assert_eq!((b[0].1.as_str(), b[0].2.as_str()), ("behind", "min=110"));
    let sh = stored(&server, short).await;
    assert_eq!((names(&sh), sh[0].2.as_str()), (vec!["short_stay"], "s=20"));
    assert_eq!(names(&stored(&server, blind).await), vec!["no_fix"]);

    // The stored accuracy is that of the fix that decided the band.
    let (band, accuracy): (String, Option<f64>) =
        sqlx::query_as("SELECT location_band, accuracy_m FROM visits WHERE id = $1")
            .bind(offsite.to_string())
            .fetch_one(server.store.test_pool())
            .await
            .unwrap();
    assert_eq!((band.as_str(), accuracy), ("far_beyond", Some(6.0)));

    // A replay of the whole outbox changes nothing: the same signals, no duplicates.
    let before: i64 = count(&server.store, "visit_signals").await;
    d.engine.sync(&d.transport).await.unwrap();
    assert_eq!(count(&server.store, "visit_signals").await, before);
    server.stop().await;
}
on_both_backends!(
    every_class_of_visit_raises_its_signals_at_ingest,
    every_class
);

/// The ids of the visits the list shows, from its links.
async fn listed(b: &Browser) -> Vec<String> {
    let v = b
        .run(
            "return Array.from(document.querySelectorAll('#list tbody a[href^=\"/visits/\"]'))\
             .map(a => a.getAttribute('href').slice(8))",
        )
        .await;
    let mut ids: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

async fn in_the_back_office(db: &TestDb) {
    ensure_leaflet();
    let (server, agents) = acme_server(db, 1).await;
    let r = record_every_class(&server, &agents[0]).await;
    server
        .store
        .create_key_user(
            "acme-kp",
            "secret123",
            fieldsync_server::store::keyusers::Role::KeyUser,
            &["ACME".into()],
            fieldsync_server::store::now_ms(),
        )
        .await
        .unwrap();
    let url = &server.url;
    let b = Browser::start().await;
    b.log_in(url, "acme-kp", "secret123").await;

    // The visits list filters by one signal, by any signal, and shows the names.
    b.goto(&format!("{url}/visits")).await;
    b.run("document.querySelector('select[name=\"f.signals\"]').value = 'clock_jump'")
        .await;
    b.click("#apply-filters").await;
    assert_eq!(listed(&b).await, vec![r.backdated.to_string()]);
    assert!(b.text("#list tbody").await.contains("Clock moved"));
    shot(&b, db, "visits-by-signal").await;
    b.goto(&format!("{url}/visits?f.signals=*")).await;
    let flagged = listed(&b).await;
    for v in [
        r.offsite,
        r.mocked,
        r.spoof,
        r.after_jump,
        r.backdated,
        r.short,
        r.blind,
    ] {
        assert!(
            flagged.contains(&v.to_string()),
            "{v} is flagged: {flagged:?}"
        );
    }
    for v in [r.honest, r.indoor] {
        assert!(!flagged.contains(&v.to_string()), "{v} is honest");
    }

    // The card lists each signal with its name, its evidence and what it means.
    b.goto(&format!("{url}/visits/{}", r.spoof)).await;
    assert_eq!(b.count("#visit-signals li").await, 3);
    let signals = b.text("#visit-signals").await;
    for expected in [
        "Repeated fix",
        "Too accurate",
        "a GPS fix claims 1.0 m",
        "On the reference point",
        "typed in, not measured",
    ] {
        assert!(signals.contains(expected), "{expected:?} in {signals}");
    }
    shot(&b, db, "visit-signals").await;
    b.goto(&format!("{url}/visits/{}", r.honest)).await;
    assert!(b.find_opt("#visit-signals").await.is_none());
    assert!(b.text("#visit-no-signals").await.contains("No signals"));

    // The teleport: the card links the previous visit, the map shows where it was and the
    // implied speed.
    b.goto(&format!("{url}/visits/{}", r.after_jump)).await;
    let travel = b
        .text("#visit-signals li[data-signal=implausible_travel]")
        .await;
    assert!(
        travel.contains("km/h") && travel.contains("previous visit"),
        "{travel}"
    );
    b.click("a.signal-previous").await;
    assert!(
        b.current_url()
            .await
            .ends_with(&r.teleport_from.to_string())
    );
    b.goto(&format!("{url}/visits/{}?tab=map", r.after_jump))
        .await;
    b.find("#map[data-state=drawn]").await;
    assert_eq!(b.count("path.fs-previous").await, 1, "the previous visit");
    assert_eq!(b.count("path.fs-travel").await, 1, "the trip from it");
    assert!(b.text("#map-travel").await.contains("km/h"));
    assert!(
        b.text(".leaflet-tooltip-pane").await.contains("km/h"),
        "the trip is labelled with its speed"
    );
    shot(&b, db, "visit-map-travel").await;
    // A visit without travel evidence has no previous-visit layer.
    b.goto(&format!("{url}/visits/{}?tab=map", r.honest)).await;
    b.find("#map[data-state=drawn]").await;
    assert_eq!(b.count("path.fs-previous").await, 0);

    // The day map rings the flagged visits and names their signals (the day of the
    // teleport, in the key user's time zone).
    let tz = "Europe/Kyiv";
    let started: (i64,) = sqlx::query_as("SELECT started_device_ms FROM visits WHERE id = $1")
        .bind(r.after_jump.to_string())
        .fetch_one(server.store.test_pool())
        .await
        .unwrap();
    let date = dates::date_at(started.0, tz);
    let from = dates::day_start_ms(date, tz).unwrap();
    let to = dates::day_start_ms(date.tomorrow().unwrap(), tz).unwrap();
    b.goto(&format!(
        "{url}/visits/day-map?agent={}&date={}",
        agents[0].login,
        dates::format(date)
    ))
    .await;
    b.find("#map[data-state=drawn]").await;
    let flagged_that_day: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM visits v WHERE v.signals <> '' \
         AND v.started_device_ms >= $1 AND v.started_device_ms < $2 \
         AND EXISTS (SELECT 1 FROM gps_fixes f WHERE f.visit_id = v.id)",
    )
    .bind(from)
    .bind(to)
    .fetch_one(server.store.test_pool())
    .await
    .unwrap();
    assert!(flagged_that_day.0 >= 1);
    assert_eq!(b.count("path.fs-flagged").await as i64, flagged_that_day.0);
    assert!(b.count("path.fs-visit").await as i64 > flagged_that_day.0 - 1);
    let day = b.text("#day-visits").await;
    assert!(day.contains("Implausible travel"), "{day}");
    assert!(b.count("#day-visits tr.flagged").await >= flagged_that_day.0 as usize);
    shot(&b, db, "day-map-flagged").await;

    // The weekly summary: this week's visits of the agent, how many flagged, by signal.
    b.goto(&format!("{url}/visits/signals")).await;
    let total: (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), SUM(CASE WHEN signals <> '' THEN 1 ELSE 0 END) FROM visits",
    )
    .fetch_one(server.store.test_pool())
    .await
    .unwrap();
    let row = format!("table.truth tr[data-agent=\"{}\"]", agents[0].login);
    // The day began six hours ago: on a Monday morning part of it is last week's.
    let weeks = b.count(&row).await;
    assert!((1..=2).contains(&weeks), "{weeks} weeks");
    let sum = |css: String| {
        let b = &b;
        async move {
            let v = b
                .run(&format!(
                    "return Array.from(document.querySelectorAll('{css}'))\
                     .reduce((s, e) => s + (parseInt(e.textContent) || 0), 0)"
                ))
                .await;
            v.as_i64().unwrap()
        }
    };
    assert_eq!(sum(format!("{row} td:nth-child(2)")).await, total.0);
    assert_eq!(sum(format!("{row} td.flagged")).await, total.1);
    assert_eq!(sum(format!("{row} td[data-signal=clock_jump]")).await, 1);
    assert_eq!(sum(format!("{row} td[data-signal=mocked]")).await, 1);
    shot(&b, db, "signals-by-agent").await;
    b.click(&format!("{row} td[data-signal=clock_jump] a"))
        .await;
    assert_eq!(listed(&b).await, vec![r.backdated.to_string()]);

    // Another distributor's key user sees none of it.
    let other = seed(&server.store, &small_world("OTHER", 1)).await;
    assert!(!other.is_empty());
    server
        .store
        .create_key_user(
            "other-kp",
            "secret123",
            fieldsync_server::store::keyusers::Role::KeyUser,
            &["OTHER".into()],
            fieldsync_server::store::now_ms(),
        )
        .await
        .unwrap();
    let b2 = Browser::start().await;
    b2.log_in(url, "other-kp", "secret123").await;
    b2.goto(&format!("{url}/visits/signals")).await;
    assert_eq!(b2.count(&row).await, 0);
    b2.close().await;
    b.close().await;
    drop(r.d);
    server.stop().await;
}
on_both_backends!(
    key_users_filter_read_and_map_the_signals_in_chromium,
    in_the_back_office
);

/// `stats` with `visit_signals`: what the device's visits raised, only from a server whose
/// operator allows it.
async fn stats_signals(server: &TestServer, token: &str, visit_signals: bool) -> (u16, Vec<u8>) {
    use fieldsync_agent::Transport;
    use prost::Message;
    let t = HttpTransport::new(&server.url);
    let (status, body) = t
        .post(
            fieldsync_protocol::paths::STATS,
            v1::DeviceStatsRequest {
                protocol_version: fieldsync_protocol::PROTOCOL_VERSION,
                visit_signals,
            }
            .encode_to_vec(),
            Some(token),
        )
        .await
        .unwrap();
    (status, body.to_vec())
}

async fn device_reads_signals(db: &TestDb) {
    use prost::Message;
    let (server, agents) = acme_server(db, 1).await;
    let r = record_every_class(&server, &agents[0]).await;
    let token = r.d.engine.device_token().unwrap().unwrap();
    // Off by default: refused with 403 NOT_VISIBLE, the plain stats still answered.
    let (status, body) = stats_signals(&server, &token, true).await;
    assert_eq!(status, 403);
    let err = v1::Error::decode(body.as_slice()).unwrap();
    assert_eq!(err.code, v1::ErrorCode::NotVisible as i32);
    let (status, body) = stats_signals(&server, &token, false).await;
    assert_eq!(status, 200);
    let stats = v1::DeviceStats::decode(body.as_slice()).unwrap();
    assert_eq!(stats.visits, 10);
    assert!(stats.visit_signals.is_empty());
    // A server that allows it lists every visit of the device with its stored signals.
    let store = server.store.clone();
    server.stop().await;
    let server = TestServer::start_configured(store, |s| s.device_signals = true).await;
    let (status, body) = stats_signals(&server, &token, true).await;
    assert_eq!(status, 200);
    let stats = v1::DeviceStats::decode(body.as_slice()).unwrap();
    assert_eq!(stats.visit_signals.len(), 10);
    let of = |v: uuid::Uuid| {
        let mut s = stats
            .visit_signals
            .iter()
            .find(|x| fieldsync_protocol::ids::from_wire(&x.visit_id) == Some(v))
            .unwrap()
            .signals
            .clone();
        s.sort();
        s
    };
    assert!(of(r.honest).is_empty());
    assert_eq!(of(r.mocked), vec!["mocked"]);
    assert_eq!(
        of(r.spoof),
        vec!["on_reference", "repeated_fix", "too_accurate"]
    );
    assert_eq!(of(r.backdated), vec!["clock_jump"]);
    drop(r.d);
    server.stop().await;
}
on_both_backends!(
    a_device_reads_its_visits_signals_only_where_the_server_allows_it,
    device_reads_signals
);

/// The previous visit and a visit's start fixes come from earlier pushes too: a teleport
/// whose first leg was synced before, and a visit started far away in one sync and ended
/// "in the shop" in the next.
async fn across_syncs(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    let d = day(&server, &agents[0]).await;
    let near = |at, now| vec![fix(at, 8.0, 9.0, now)];
    let near_end = |at, now| vec![fix(at, 11.5, 12.0, now)];
    let first = d.visit(0, near, near_end, 15 * MIN);
    // 27 km away from outlet 1, then synced.
    let far = d.visit(
        1,
        |at, now| vec![fix(at, 27_000.0, 7.0, now)],
        |at, now| vec![fix(at, 27_000.0, 8.0, now)],
        12 * MIN,
    );
    d.engine.sync(&d.transport).await.unwrap();
    // Ten minutes later at outlet 2, in the next push.
    let after = d.visit(2, near, near_end, 15 * MIN);
    d.engine.sync(&d.transport).await.unwrap();
    let jump = stored(&server, after).await;
    assert_eq!(names(&jump), vec!["implausible_travel"], "{jump:?}");
    let previous: (Option<String>,) =
        sqlx::query_as("SELECT previous_visit_id FROM visits WHERE id = $1")
            .bind(after.to_string())
            .fetch_one(server.store.test_pool())
            .await
            .unwrap();
    assert_eq!(previous.0, Some(far.to_string()));
    assert_eq!(names(&stored(&server, first).await), Vec::<&str>::new());

    // Started 3 km away and synced while open: off site at once...
    let (outlet, at) = d.outlets[3];
    let open = d
        .engine
        .start_visit(outlet, None, vec![fix(at, 3_000.0, 6.0, d.now())])
        .unwrap();
    d.engine.sync(&d.transport).await.unwrap();
    assert_eq!(names(&stored(&server, open).await), vec!["off_site"]);
    // ...and a good fix at the end, in a later push, does not clear it.
    d.advance(14 * MIN);
    d.engine
        .end_visit(open, vec![fix(at, 3.0, 5.0, d.now())])
        .unwrap();
    d.engine.sync(&d.transport).await.unwrap();
    let off = stored(&server, open).await;
    assert_eq!(
        (names(&off), off[0].1.as_str()),
        (vec!["off_site"], "far_beyond")
    );
    server.stop().await;
}
on_both_backends!(
    signals_use_the_previous_visit_and_fixes_of_earlier_pushes,
    across_syncs
);
