//! Storage conformance: the same domain operations, unchanged, on SQLite and PostgreSQL.

use std::collections::HashMap;

use fieldsync_protocol::v1::{self, change::Entity};
use fieldsync_protocol::{ids, paths};
use fieldsync_server::Store;
use fieldsync_tests::*;

async fn migrations(db: &TestDb) {
    let store = Store::connect(&db.url).await.unwrap();
    let epoch = store.epoch();
    store.close().await;
    // Reopening applies nothing twice and keeps the epoch.
    let mut store = Store::connect(&db.url).await.unwrap();
    assert_eq!(store.epoch(), epoch);
    let rotated = store.rotate_epoch().await.unwrap();
    assert_ne!(rotated, epoch);
    store.close().await;
    let store = Store::connect(&db.url).await.unwrap();
    assert_eq!(store.epoch(), rotated);
    // A landed migration that was edited afterwards stops the server.
    sqlx::query("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
        .execute(store.test_pool())
        .await
        .unwrap();
    store.close().await;
    let err = Store::connect(&db.url).await.unwrap_err().to_string();
    assert!(err.contains("was edited after it was applied"), "{err}");
    if db.backend == Backend::Postgres {
        // Migration 0004 dropped every foreign key of visits and orders (their constraint
        // names are PostgreSQL's defaults; `DROP CONSTRAINT IF EXISTS` would pass silently
        // on a wrong name).
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&db.url)
            .await
            .unwrap();
        let (fks,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM pg_constraint
             WHERE contype = 'f' AND conrelid IN ('visits'::regclass, 'orders'::regclass)",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(fks, 0);
    }
}
on_both_backends!(
    migrations_apply_once_and_edited_ones_are_refused,
    migrations
);

/// Bulk inserts (multi-row VALUES on SQLite, array literals through unnest on PostgreSQL)
/// store every value as given: quotes, backslashes, braces, commas, the word NULL, empty
/// and non-ASCII text, real NULLs, floats, and every byte value.
async fn bulk_insert_values(db: &TestDb) {
    use fieldsync_server::store::world::{Val, insert_rows};
    let store = Store::connect(&db.url).await.unwrap();
    let texts = [
        "plain",
        "",
        "NULL",
        "null",
        "a \"quoted\" word",
        "back\\slash \\\" end\\",
        "{braces}, commas, (parens)",
        "  leading and trailing  ",
        "Київ — Одеса, «лапки» 'single'",
        "tab\tnew\nline",
    ];
    let numbers = [
        Some(0.1),
        None,
        Some(-1e-7),
        Some(123456789.125),
        Some(f64::MAX),
        Some(0.0),
    ];
    let rows: Vec<Vec<Val>> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            vec![
                Val::S(format!("set-{i}")),
                Val::S("visit".into()),
                Val::I(7),
                Val::I(i as i64),
                Val::S("text".into()),
                if i == 3 {
                    Val::O(None)
                } else {
                    Val::O(Some(t.to_string()))
                },
                Val::F(numbers[i % numbers.len()]),
            ]
        })
        .collect();
    let mut conn = store.test_pool().acquire().await.unwrap();
    insert_rows(
        &mut conn,
        "questionnaire_answers",
        &[
            "answers_id",
            "visit_id",
            "questionnaire_id",
            "question_id",
            "value_kind",
            "value_text",
            "value_number",
        ],
        &rows,
    )
    .await
    .unwrap();
    let back: Vec<(i64, Option<String>, Option<f64>)> = sqlx::query_as(
        "SELECT question_id, value_text, value_number FROM questionnaire_answers
         ORDER BY question_id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(back.len(), texts.len());
    for (i, (q, text, number)) in back.iter().enumerate() {
        assert_eq!(*q, i as i64);
        let want = if i == 3 {
            None
        } else {
            Some(texts[i].to_string())
        };
        assert_eq!(text, &want, "text of row {i}");
        assert_eq!(*number, numbers[i % numbers.len()], "number of row {i}");
    }
    // Every byte value, in a bytea/blob column.
    let bytes: Vec<u8> = (0..=255u8).chain([0, b'\\', b'"', b'{', b'}']).collect();
    let byte_rows: Vec<Vec<Val>> = (0..3)
        .map(|seq| {
            vec![
                Val::I(seq),
                Val::S(format!("m-{seq}")),
                Val::B(if seq == 1 { Vec::new() } else { bytes.clone() }),
            ]
        })
        .collect();
    sqlx::query("CREATE TABLE bulk_bytes (seq BIGINT PRIMARY KEY, label TEXT NOT NULL, payload BYTEA NOT NULL)")
        .execute(&mut *conn)
        .await
        .unwrap();
    insert_rows(
        &mut conn,
        "bulk_bytes",
        &["seq", "label", "payload"],
        &byte_rows,
    )
    .await
    .unwrap();
    let back: Vec<(i64, String, Vec<u8>)> =
        sqlx::query_as("SELECT seq, label, payload FROM bulk_bytes ORDER BY seq")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    assert_eq!(back.len(), 3);
    assert_eq!(back[0].2, bytes);
    assert!(back[1].2.is_empty());
    assert_eq!(back[2], (2, "m-2".to_string(), bytes.clone()));
    if db.backend == Backend::Postgres {
        // The server's connections run without JIT (`Store::connect`): it compiled the
        // lookups of every push for no gain.
        let (jit,): (String,) = sqlx::query_as("SHOW jit")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(jit, "off");
    }
}
on_both_backends!(bulk_inserts_store_every_value_as_given, bulk_insert_values);

async fn concurrent_changes(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    let (device, session, known) = synced_device(&server.url, &agents[0]).await;
    let dist = server.store.distributor_id("ACME").await.unwrap();

    // Writers change outlet locations concurrently while the device keeps pulling small
    // pages; after the writers finish and one last pull, the device must hold every final value.
    let outlets: Vec<i64> = known.outlets.iter().map(|o| o.id).take(10).collect();
    let writers = {
        let store = server.store.clone();
        let outlets = outlets.clone();
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            for round in 0..8 {
                for (i, id) in outlets.iter().enumerate() {
                    let store = store.clone();
                    let id = *id;
                    tasks.push(tokio::spawn(async move {
                        store
                            .set_outlet_location(
                                dist,
                                id,
                                500_000_000 + round * 1000 + i as i32,
                                300_000_000,
                            )
                            .await
                            .unwrap();
                    }));
                }
            }
            for t in tasks {
                t.await.unwrap();
            }
        })
    };
    let mut seen: HashMap<i64, i32> = HashMap::new();
    let mut apply = |changes: Vec<v1::Change>| {
        for c in changes {
            if let Some(Entity::Outlet(o)) = c.entity {
                seen.insert(o.id, o.lat_e7);
            }
        }
    };
    let mut cursor = Vec::new();
    while !writers.is_finished() {
        let p: v1::PullResponse = device.pull(session, cursor.clone(), 3).await.decode();
        cursor = p.next_cursor;
        apply(p.changes);
    }
    writers.await.unwrap();
    loop {
        let p: v1::PullResponse = device.pull(session, cursor.clone(), 3).await.decode();
        cursor = p.next_cursor;
        let more = p.has_more;
        apply(p.changes);
        if !more {
            break;
        }
    }
    for id in outlets {
        let (lat,): (i64,) = sqlx::query_as("SELECT lat_e7 FROM outlets WHERE id = $1")
            .bind(id)
            .fetch_one(server.store.test_pool())
            .await
            .unwrap();
        assert_eq!(seen.get(&id).copied(), Some(lat as i32), "outlet {id}");
    }
    server.stop().await;
}
on_both_backends!(
    a_pulling_device_never_misses_a_concurrent_change,
    concurrent_changes
);

async fn concurrent_activation(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    let a = &agents[0];
    let c1 = RawClient::new(&server.url);
    let c2 = RawClient::new(&server.url);
    let (r1, r2) = tokio::join!(c1.activate(&a.login, &a.pin), c2.activate(&a.login, &a.pin));
    let mut statuses = [r1.status, r2.status];
    statuses.sort();
    assert_eq!(statuses, [200, 401], "one PIN binds exactly one device");
    let active = count_where(
        &server.store,
        "SELECT COUNT(*) FROM devices WHERE revoked_at_ms IS NULL",
        &[],
    )
    .await;
    assert_eq!(active, 1);
    server.stop().await;
}
on_both_backends!(
    a_pin_used_twice_at_once_binds_one_device,
    concurrent_activation
);

async fn order_numbers(db: &TestDb) {
    let (server, agents) = acme_server(db, 4).await;
    let mut tasks = Vec::new();
    for a in agents {
        let url = server.url.clone();
        tasks.push(tokio::spawn(async move {
            let (device, session, known) = synced_device(&url, &a).await;
            let mut b = MutationBuilder::new();
            for batch in 0..3 {
                let mut muts = Vec::new();
                for v in 0..5 {
                    let outlet = known.outlets[(batch * 5 + v) % known.outlets.len()].clone();
                    let visit = ids::new_id();
                    muts.push(b.start_visit(visit, &outlet));
                    muts.push(b.order(&known, visit, &outlet, 3).1);
                    muts.push(b.end_visit(visit, &outlet));
                }
                let r: v1::PushResponse = device.push(session, muts).await.decode();
                assert!(
                    r.results
                        .iter()
                        .all(|x| x.outcome() == v1::MutationOutcome::Applied)
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (n, distinct, max): (i64, i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT number), MAX(number) FROM orders")
            .fetch_one(server.store.test_pool())
            .await
            .unwrap();
    assert_eq!((n, distinct), (60, 60));
    assert!(max >= 60);
    // Every visit was started and ended exactly once.
    let open = count_where(
        &server.store,
        "SELECT COUNT(*) FROM visits WHERE ended_received_ms IS NULL",
        &[],
    )
    .await;
    assert_eq!((count(&server.store, "visits").await, open), (60, 0));
    server.stop().await;
}
on_both_backends!(concurrent_pushes_get_unique_order_numbers, order_numbers);

async fn epoch_change(db: &TestDb) {
    let store = Store::connect(&db.url).await.unwrap();
    let agents = seed(&store, &small_world("ACME", 1)).await;
    let server = TestServer::start_with(store.clone()).await;
    let (device, _) = RawClient::activated(&server.url, &agents[0]).await;
    let session = ids::new_id();
    let mut cursor = Vec::new();
    loop {
        let p: v1::PullResponse = device.pull(session, cursor, 5000).await.decode();
        cursor = p.next_cursor;
        if !p.has_more {
            break;
        }
    }
    server.stop().await;
    // The database is "restored": a new epoch. The old cursor now starts a full pull again,
    // and every response names the new epoch.
    let mut store = store;
    let epoch = store.rotate_epoch().await.unwrap();
    let server = TestServer::start_with(store).await;
    let mut device = device;
    device.url = server.url.clone();
    let p: v1::PullResponse = device.pull(session, cursor, 5000).await.decode();
    assert_eq!(p.meta.unwrap().server_epoch, epoch.as_bytes().to_vec());
    assert!(
        p.mobile_user.is_some(),
        "a restarted pull carries the profile again"
    );
    assert!(p.has_more);
    let r = device
        .post(
            paths::STATS,
            &v1::DeviceStatsRequest {
                protocol_version: 1,
                ..Default::default()
            },
        )
        .await;
    assert_eq!(
        r.decode::<v1::DeviceStats>().meta.unwrap().server_epoch,
        epoch.as_bytes().to_vec()
    );
    server.stop().await;
}
on_both_backends!(a_new_epoch_restarts_pulls_from_scratch, epoch_change);

/// SQLite: the write-ahead log reaches the database file without any write paying for it
/// (automatic checkpoints are off; a background task checkpoints). Were that task missing,
/// the database file would never grow and the log would grow without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_log_is_checkpointed_in_the_background() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let path = db.url.trim_start_matches("sqlite://").to_string();
    let store = Store::connect(&db.url).await.unwrap();
    let (autocheckpoint,): (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint")
        .fetch_one(store.test_pool())
        .await
        .unwrap();
    assert_eq!(autocheckpoint, 0);
    // Let the first checkpoints settle, then write ~2 MB that first lands in the log.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let before = std::fs::metadata(&path).unwrap().len();
    sqlx::query("CREATE TABLE bulk (b BLOB)")
        .execute(store.test_pool())
        .await
        .unwrap();
    for _ in 0..500 {
        sqlx::query("INSERT INTO bulk (b) VALUES (zeroblob(4096))")
            .execute(store.test_pool())
            .await
            .unwrap();
    }
    let mut grown = 0;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        grown = std::fs::metadata(&path)
            .unwrap()
            .len()
            .saturating_sub(before);
        if grown > 1_500_000 {
            break;
        }
    }
    assert!(
        grown > 1_500_000,
        "database file grew by {grown} bytes only"
    );
    store.close().await;
    db.cleanup().await;
}

/// Migration 0021 on a database an older release left: claims registered before it keep their
/// number as their place in the feed (a distributor's cursor, which paged by number, stays
/// valid), drafts get none, and new places follow the largest number.
async fn claim_feed_upgrade(db: &TestDb) {
    use fieldsync_server::store::Backend as StoreBackend;
    use fieldsync_server::store::migrate;
    sqlx::any::install_default_drivers();
    let url = match db.backend {
        Backend::Sqlite => format!("{}?mode=rwc", db.url),
        Backend::Postgres => db.url.clone(),
    };
    let backend = match db.backend {
        Backend::Sqlite => StoreBackend::Sqlite,
        Backend::Postgres => StoreBackend::Postgres,
    };
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    migrate::run_until(&pool, backend, 20).await.unwrap();
    for (id, number, registered) in [
        ("c-1", 7, Some(1_i64)),
        ("c-2", 9, None),
        ("c-3", 12, Some(3)),
    ] {
        sqlx::query(
            "INSERT INTO claims (id, number, distributor_id, device_id, mobile_user_id, position_id, \
             outlet_id, stage, saved_device_ms, received_at_ms, registered_at_ms, stage_changed_ms) \
             VALUES ($1, $2, 1, 1, 1, 1, 1, $3, 0, 0, $4, 0)",
        )
        .bind(id)
        .bind(number)
        .bind(if registered.is_some() { "registered" } else { "draft" })
        .bind(registered)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    let store = Store::connect(&db.url).await.unwrap();
    let rows: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT id, feed_seq FROM claims ORDER BY id")
            .fetch_all(store.test_pool())
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            ("c-1".to_string(), Some(7)),
            ("c-2".to_string(), None),
            ("c-3".to_string(), Some(12))
        ]
    );
    let next: (i64,) = match db.backend {
        Backend::Sqlite => sqlx::query_as(
            "UPDATE counters SET value = value + 1 WHERE name = 'claim_feed' RETURNING value",
        )
        .fetch_one(store.test_pool())
        .await
        .unwrap(),
        Backend::Postgres => sqlx::query_as("SELECT nextval('claim_feed_seq')")
            .fetch_one(store.test_pool())
            .await
            .unwrap(),
    };
    assert_eq!(next.0, 13);
    store.close().await;
}
on_both_backends!(
    claims_registered_before_the_feed_order_keep_their_number_as_their_place,
    claim_feed_upgrade
);
