//! The sync protocol over real sockets: activation, exactly-once push, refusals, pull.
//! Every scenario runs on SQLite and on PostgreSQL.

use fieldsync_protocol::v1::{self, ErrorCode, MutationOutcome, mutation::Kind};
use fieldsync_protocol::{PROTOCOL_VERSION, ids, paths};
use fieldsync_tests::*;
use prost::Message;

async fn pins_and_devices(db: &TestDb) {
    let (server, agents) = acme_server(db, 2).await;
    let a = &agents[0];
    let c = RawClient::new(&server.url);

    let r = c.activate(&a.login, "00000000").await;
    assert_eq!((r.status, r.error().code()), (401, ErrorCode::PinWrong));
    let r = c.activate("nobody", &a.pin).await;
    assert_eq!(r.error().code(), ErrorCode::PinWrong);

    let (device, resp) = RawClient::activated(&server.url, a).await;
    assert_eq!(resp.next_seq, 1);
    assert_eq!(resp.mobile_user.unwrap().login, a.login);
    assert_eq!(resp.distributor.unwrap().code, "ACME");
    assert_eq!(
        resp.meta.unwrap().server_epoch,
        server.store.epoch().as_bytes().to_vec()
    );

    // A PIN activates one device once.
    let r = c.activate(&a.login, &a.pin).await;
    assert_eq!(r.error().code(), ErrorCode::PinUsed);

    // The device works until a key user generates a new PIN (staff rotation)...
    let session = ids::new_id();
    assert_eq!(device.push(session, vec![]).await.status, 200);
    let new_pin = server.store.generate_pin(&a.login).await.unwrap();
    let r = device.push(session, vec![]).await;
    assert_eq!(
        (r.status, r.error().code()),
        (401, ErrorCode::DeviceRevoked)
    );
    // ...the old PIN is revoked, and the new one binds a new phone.
    assert_eq!(
        c.activate(&a.login, &a.pin).await.error().code(),
        ErrorCode::PinUsed
    );
    let second = fieldsync_server::seed::SeededAgent {
        login: a.login.clone(),
        pin: new_pin,
    };
    let (new_device, _) = RawClient::activated(&server.url, &second).await;
    assert_eq!(new_device.push(ids::new_id(), vec![]).await.status, 200);

    // Unknown credentials are told apart from revoked ones.
    let mut stranger = RawClient::new(&server.url);
    stranger.token = Some("not-a-token".into());
    let r = stranger.push(session, vec![]).await;
    assert_eq!(
        (r.status, r.error().code()),
        (401, ErrorCode::DeviceUnknown)
    );
    server.stop().await;
}
on_both_backends!(pins_and_devices_bind_once_and_revoke, pins_and_devices);

async fn lockout(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    let a = &agents[0];
    // A PIN that is unused but revoked is told apart from a wrong one.
    let c = RawClient::new(&server.url);
    let new_pin = server.store.generate_pin(&a.login).await.unwrap();
    assert_eq!(
        c.activate(&a.login, &a.pin).await.error().code(),
        ErrorCode::PinRevoked
    );
    for attempt in 1..=fieldsync_server::store::devices::PIN_MAX_FAILURES {
        let r = c.activate(&a.login, "99999999").await;
        let expected = if attempt < fieldsync_server::store::devices::PIN_MAX_FAILURES {
            ErrorCode::PinWrong
        } else {
            ErrorCode::PinLocked
        };
        assert_eq!(r.error().code(), expected, "attempt {attempt}");
    }
    // Locked: even the right PIN is refused, with the time to wait.
    let r = c.activate(&a.login, &new_pin).await;
    assert_eq!(r.status, 429);
    let e = r.error();
    assert_eq!(e.code(), ErrorCode::PinLocked);
    assert!(
        e.retry_after_ms > 14 * 60 * 1000,
        "retry after {}",
        e.retry_after_ms
    );
    // Once the lock period has passed, the right PIN works.
    sqlx::query("UPDATE auth_attempts SET last_attempt_ms = last_attempt_ms - $1")
        .bind(fieldsync_server::store::devices::PIN_LOCK_MS + 1000)
        .execute(server.store.test_pool())
        .await
        .unwrap();
    assert_eq!(c.activate(&a.login, &new_pin).await.status, 200);
    server.stop().await;
}
on_both_backends!(wrong_pins_lock_the_login_for_fifteen_minutes, lockout);

async fn exactly_once(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    let mut phone = SyncedDevice::new(&server.url, &agents[0]).await;
    let (visit, orders, batch) = phone.visit_with_orders(&[4]);
    let order = orders[0];
    let (device, session) = (&phone.client, phone.session);

    let r = device.push(session, batch.clone()).await;
    assert_eq!(r.status, 200);
    let resp: v1::PushResponse = r.decode();
    assert_eq!(resp.acked_seq, 3);
    assert!(
        resp.results
            .iter()
            .all(|x| x.outcome() == MutationOutcome::Applied)
    );

    // The same batch again (a lost response, a retried request): nothing changes.
    let r = device.push(session, batch.clone()).await;
    let resp: v1::PushResponse = r.decode();
    assert_eq!(resp.acked_seq, 3);
    assert!(
        resp.results
            .iter()
            .all(|x| x.outcome() == MutationOutcome::Duplicate)
    );
    // Sent twice at the same moment: still once.
    let (x, y) = tokio::join!(
        device.push(session, batch.clone()),
        device.push(session, batch.clone())
    );
    assert_eq!((x.status, y.status), (200, 200));
    assert_eq!(count(&server.store, "visits").await, 1);
    assert_eq!(count(&server.store, "orders").await, 1);
    assert_eq!(count(&server.store, "order_lines").await, 4);
    assert_eq!(count(&server.store, "gps_fixes").await, 2);

    // The stored order is what the phone computed, and the visit was classified.
    let (total, state): (i64, String) =
        sqlx::query_as("SELECT total_minor, state FROM orders WHERE id = $1")
            .bind(order.to_string())
            .fetch_one(server.store.test_pool())
            .await
            .unwrap();
    let expected: i64 = match &batch[1].kind {
        Some(Kind::OrderPlaced(o)) => o.total_minor,
        _ => unreachable!(),
    };
    assert_eq!((total, state.as_str()), (expected, "placed"));
    let (band, ended): (String, Option<i64>) =
        sqlx::query_as("SELECT location_band, ended_received_ms FROM visits WHERE id = $1")
            .bind(visit.to_string())
            .fetch_one(server.store.test_pool())
            .await
            .unwrap();
    assert_eq!(band, "within");
    assert!(ended.is_some());

    // The session summary tells what this sync brought.
    let r = device
        .post(
            paths::FINISH,
            &v1::FinishRequest {
                protocol_version: PROTOCOL_VERSION,
                session_id: ids::to_wire(session),
                device_time_ms: 0,
                client_error: String::new(),
            },
        )
        .await;
    let s: v1::SyncSessionSummary = r.decode();
    assert_eq!(s.mutations_applied, 3);
    assert_eq!(s.mutations_duplicate, 9);
    assert_eq!((s.visits, s.orders, s.orders_total_minor), (1, 1, expected));
    assert!(s.changes_pulled > 0 && s.bytes_up > 0 && s.bytes_down > 0);
    let items = count_where(
        &server.store,
        "SELECT COUNT(*) FROM sync_session_items WHERE session_id = $1",
        &[&session.to_string()],
    )
    .await;
    assert_eq!(items, 2);
    server.stop().await;
}
on_both_backends!(replayed_and_doubled_batches_are_applied_once, exactly_once);

async fn gaps_and_malformed(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    let (device, session, known) = synced_device(&server.url, &agents[0]).await;
    let outlet = known.outlets[0].clone();
    let mut b = MutationBuilder { next_seq: 5 };
    let r = device
        .push(session, vec![b.start_visit(ids::new_id(), &outlet)])
        .await;
    assert_eq!(r.status, 409);
    let e = r.error();
    assert_eq!((e.code(), e.expected_seq), (ErrorCode::SequenceGap, 1));

    // Not consecutive inside a batch.
    let mut b = MutationBuilder::new();
    let first = b.start_visit(ids::new_id(), &outlet);
    b.next_seq += 1;
    let third = b.end_visit(ids::new_id(), &outlet);
    let r = device.push(session, vec![first.clone(), third]).await;
    assert_eq!(
        (r.status, r.error().code()),
        (400, ErrorCode::MalformedRequest)
    );

    // Malformed and truncated protobuf.
    let r = device
        .post_bytes(paths::PUSH, vec![0xff, 0xff, 0xff, 0x01])
        .await;
    assert_eq!(
        (r.status, r.error().code()),
        (400, ErrorCode::MalformedRequest)
    );
    let whole = v1::PushRequest {
        protocol_version: PROTOCOL_VERSION,
        session_id: ids::to_wire(session),
        mutations: vec![first.clone()],
        ..Default::default()
    }
    .encode_to_vec();
    let r = device
        .post_bytes(paths::PUSH, whole[..whole.len() - 7].to_vec())
        .await;
    assert_eq!(
        (r.status, r.error().code()),
        (400, ErrorCode::MalformedRequest)
    );

    // Unknown protocol version.
    let r = device
        .post(
            paths::PUSH,
            &v1::PushRequest {
                protocol_version: 99,
                session_id: ids::to_wire(session),
                mutations: vec![first.clone()],
                ..Default::default()
            },
        )
        .await;
    assert_eq!(
        (r.status, r.error().code()),
        (400, ErrorCode::UnsupportedProtocolVersion)
    );

    // Oversized bodies, announced or streamed: refused without reading them whole.
    for chunked in [false, true] {
        let r = oversized_push(&server.url, device.token.as_deref().unwrap(), chunked).await;
        assert_eq!(
            (r.status, r.error().code()),
            (413, ErrorCode::PayloadTooLarge),
            "chunked: {chunked}"
        );
    }

    // None of that stored anything, and the device can continue at seq 1.
    assert_eq!(count(&server.store, "visits").await, 0);
    assert_eq!(count(&server.store, "refused_mutations").await, 0);
    let r = device.push(session, vec![first]).await;
    assert_eq!(r.decode::<v1::PushResponse>().acked_seq, 1);
    assert_eq!(count(&server.store, "visits").await, 1);
    server.stop().await;
}
on_both_backends!(
    gaps_and_malformed_bodies_are_refused_whole_and_store_nothing,
    gaps_and_malformed
);

async fn refusals_do_not_block(db: &TestDb) {
    let (server, acme) = acme_server(db, 2).await;
    let other = seed(&server.store, &small_world("OTHER", 1)).await;
    let (device, _) = RawClient::activated(&server.url, &acme[0]).await;
    let (other_device, _) = RawClient::activated(&server.url, &other[0]).await;
    let (colleague, _) = RawClient::activated(&server.url, &acme[1]).await;
    let session = ids::new_id();
    let known = Known::from_changes(&device.pull_all(session).await);
    let foreign = Known::from_changes(&other_device.pull_all(ids::new_id()).await);
    let colleague_known = Known::from_changes(&colleague.pull_all(ids::new_id()).await);
    let outlet = known.outlets[0].clone();

    let mut b = MutationBuilder::new();
    let visit = ids::new_id();
    let mut batch = vec![
        // 1: another distributor's outlet.
        b.start_visit(ids::new_id(), &foreign.outlets[0]),
        // 2: a colleague's territory.
        b.start_visit(ids::new_id(), &colleague_known.outlets[0]),
        // 3: fine.
        b.start_visit(visit, &outlet),
        // 4: a second visit while 3 is open.
        b.start_visit(ids::new_id(), &known.outlets[1]),
    ];
    // 5: an order whose total does not follow from its lines.
    let (_, mut bad) = b.order(&known, visit, &outlet, 3);
    if let Some(Kind::OrderPlaced(o)) = &mut bad.kind {
        o.total_minor += 1;
    }
    batch.push(bad);
    // 6: a line sum that does not follow from quantity x price.
    let (_, mut bad_line) = b.order(&known, visit, &outlet, 2);
    if let Some(Kind::OrderPlaced(o)) = &mut bad_line.kind {
        o.lines[0].sum_minor += 5;
        o.total_minor += 5;
    }
    batch.push(bad_line);
    // 7: a product of another distributor.
    let (_, mut foreign_product) = b.order(&known, visit, &outlet, 1);
    if let Some(Kind::OrderPlaced(o)) = &mut foreign_product.kind {
        o.lines[0].product_id = foreign.products[0].id;
    }
    batch.push(foreign_product);
    // 8 and 9: fine, behind all the refusals.
    let (good_order, m) = b.order(&known, visit, &outlet, 2);
    batch.push(m);
    batch.push(b.end_visit(visit, &outlet));

    let replay_batch = batch.clone();
    let resp: v1::PushResponse = device.push(session, batch).await.decode();
    assert_eq!(resp.acked_seq, 9);
    let outcome: Vec<(MutationOutcome, ErrorCode)> = resp
        .results
        .iter()
        .map(|r| (r.outcome(), r.code()))
        .collect();
    use ErrorCode as E;
    use MutationOutcome::*;
    assert_eq!(
        outcome,
        vec![
            (Refused, E::NotVisible),
            (Refused, E::NotVisible),
            (Applied, E::Unspecified),
            (Refused, E::VisitAlreadyOpen),
            (Refused, E::OrderSumsMismatch),
            (Refused, E::OrderSumsMismatch),
            (Refused, E::NotVisible),
            (Applied, E::Unspecified),
            (Applied, E::Unspecified),
        ]
    );
    assert!(
        resp.results[4].reason.contains("total"),
        "{}",
        resp.results[4].reason
    );
    // Refusals are kept with their reason and the original bytes, for the key user.
    let refused: Vec<(i64, String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT seq, error_code, reason, payload FROM refused_mutations ORDER BY seq",
    )
    .fetch_all(server.store.test_pool())
    .await
    .unwrap();
    assert_eq!(
        refused.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 2, 4, 5, 6, 7]
    );
    assert_eq!(refused[2].1, "VISIT_ALREADY_OPEN");
    assert_eq!(
        v1::Mutation::decode(refused[0].3.as_slice()).unwrap().seq,
        1
    );
    // The same batch again (its answer was lost): refusals are reported again, with reasons.
    let replay: v1::PushResponse = device.push(session, replay_batch.clone()).await.decode();
    assert_eq!(
        replay
            .results
            .iter()
            .map(|r| r.outcome())
            .collect::<Vec<_>>(),
        vec![
            Refused, Refused, Duplicate, Refused, Refused, Refused, Refused, Duplicate, Duplicate
        ]
    );
    assert_eq!(replay.results[3].code(), E::VisitAlreadyOpen);
    assert_eq!(replay.results[3].reason, resp.results[3].reason);
    // A session id is one device's: another device cannot write into it.
    let r = colleague.push(session, vec![]).await;
    assert_eq!(
        (r.status, r.error().code()),
        (400, ErrorCode::MalformedRequest)
    );
    let orders = count_where(
        &server.store,
        "SELECT COUNT(*) FROM orders WHERE id = $1",
        &[&good_order.to_string()],
    )
    .await;
    assert_eq!((orders, count(&server.store, "orders").await), (1, 1));
    // Stats tell the device what the server holds.
    let stats: v1::DeviceStats = device
        .post(
            paths::STATS,
            &v1::DeviceStatsRequest {
                protocol_version: PROTOCOL_VERSION,
                ..Default::default()
            },
        )
        .await
        .decode();
    assert_eq!(
        (
            stats.visits,
            stats.orders,
            stats.order_lines,
            stats.refused,
            stats.last_seq
        ),
        (1, 1, 2, 6, 9)
    );
    server.stop().await;
}
on_both_backends!(
    refused_mutations_are_kept_and_never_block_the_queue,
    refusals_do_not_block
);

async fn pull_scope_and_order(db: &TestDb) {
    let (server, acme) = acme_server(db, 2).await;
    let _other = seed(&server.store, &small_world("OTHER", 1)).await;
    let (device, _) = RawClient::activated(&server.url, &acme[0]).await;
    let session = ids::new_id();

    // First page: today's route and its outlets, before anything else.
    let first: v1::PullResponse = device.pull(session, vec![], 1000).await.decode();
    assert!(first.has_more);
    assert_eq!(first.mobile_user.as_ref().unwrap().login, acme[0].login);
    let route = first
        .changes
        .iter()
        .find_map(|c| match &c.entity {
            Some(v1::change::Entity::Route(r)) => Some(r.clone()),
            _ => None,
        })
        .expect("today's route on the first page");
    assert_eq!(route.date, fieldsync_tests::today());
    assert!(!route.stops.is_empty());
    let first_outlets: Vec<i64> = first
        .changes
        .iter()
        .filter_map(|c| match &c.entity {
            Some(v1::change::Entity::Outlet(o)) => Some(o.id),
            _ => None,
        })
        .collect();
    assert_eq!(
        first_outlets,
        route.stops.iter().map(|s| s.outlet_id).collect::<Vec<_>>()
    );

    // Then small pages, resumable from any cursor, only what this device may see.
    let mut cursor = first.next_cursor.clone();
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        let page: v1::PullResponse = device.pull(session, cursor.clone(), 50).await.decode();
        assert!(page.changes.len() <= 50);
        // Asking again with the same cursor gives the same page (a lost response is harmless).
        let again: v1::PullResponse = device.pull(session, cursor, 50).await.decode();
        assert_eq!(again.changes, page.changes);
        all.extend(page.changes);
        cursor = page.next_cursor;
        pages += 1;
        if !page.has_more {
            break;
        }
    }
    assert!(pages > 3);
    let known = Known::from_changes(&all);
    let (own,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM outlets o JOIN org_units p ON p.parent_id = o.territory_id
         JOIN mobile_users m ON m.position_id = p.id WHERE m.login = $1",
    )
    .bind(&acme[0].login)
    .fetch_one(server.store.test_pool())
    .await
    .unwrap();
    assert_eq!(known.outlets.len() as i64, own);
    assert_eq!(known.products.len(), 60);
    assert_eq!(known.prices.len(), 180);
    assert_eq!(known.warehouses.len(), 2);
    assert_eq!(known.questionnaires.len(), 2);
    assert!(
        known
            .questionnaires
            .iter()
            .any(|q| q.questions.iter().any(|x| x.condition.is_some()))
    );
    assert!(known.routes.iter().all(|r| !r.stops.is_empty()));

    // Nothing new: an empty page at the same cursor.
    let page: v1::PullResponse = device.pull(session, cursor.clone(), 50).await.decode();
    assert!(page.changes.is_empty() && !page.has_more);

    // Changes and deletions arrive next, as upserts and tombstones.
    let (dist,): (i64,) = sqlx::query_as("SELECT id FROM distributors WHERE code = 'ACME'")
        .fetch_one(server.store.test_pool())
        .await
        .unwrap();
    server
        .store
        .delete_product(dist, known.products[0].id)
        .await
        .unwrap();
    server
        .store
        .set_outlet_location(dist, known.outlets[0].id, 504_000_000, 305_000_000)
        .await
        .unwrap();
    let page: v1::PullResponse = device.pull(session, cursor.clone(), 50).await.decode();
    assert_eq!(page.changes.len(), 2);
    assert_eq!(
        page.changes[0].entity,
        Some(v1::change::Entity::Deleted(v1::Tombstone {
            kind: v1::EntityKind::Product as i32,
            id: known.products[0].id
        }))
    );
    match &page.changes[1].entity {
        Some(v1::change::Entity::Outlet(o)) => {
            assert_eq!((o.lat_e7, o.lon_e7), (504_000_000, 305_000_000))
        }
        other => panic!("expected the outlet, got {other:?}"),
    }

    // A cursor that is not the server's is refused clearly.
    let r = device.pull(session, b"not a cursor".to_vec(), 50).await;
    assert_eq!(
        (r.status, r.error().code()),
        (400, ErrorCode::MalformedRequest)
    );
    server.stop().await;
}
on_both_backends!(
    pull_sends_todays_route_first_then_only_the_devices_scope,
    pull_scope_and_order
);

/// Sends a push larger than the limit over a raw socket (an HTTP client would give up
/// writing when the server answers early) and reads the answer.
async fn oversized_push(url: &str, token: &str, chunked: bool) -> RawResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let size = fieldsync_protocol::MAX_BODY_BYTES + 1024;
    let framing = if chunked {
        "transfer-encoding: chunked".to_string()
    } else {
        format!("content-length: {size}")
    };
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\ncontent-type: application/x-protobuf\r\n{framing}\r\nconnection: close\r\n\r\n",
        paths::PUSH
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut sent = 0;
    while sent < size {
        let ok = if chunked {
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            s.write_all(&framed).await
        } else {
            s.write_all(&chunk).await
        };
        if ok.is_err() {
            break; // the server already answered and closed
        }
        sent += chunk.len();
    }
    if chunked {
        let _ = s.write_all(b"0\r\n\r\n").await;
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .expect("status line");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end")
        + 4;
    let head = text[..split].to_ascii_lowercase();
    let mut body = raw[split..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        // One chunk is enough for an error body.
        let line_end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let len =
            usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap(), 16).unwrap();
        body = body[line_end + 2..line_end + 2 + len].to_vec();
    }
    RawResponse { status, body }
}

async fn null_and_real_distances(db: &TestDb) {
    // Regression: a visit without a distance (outlet without reference location) followed by
    // one with a distance once poisoned a cached statement on PostgreSQL (sqlx Any NULL f64).
    let (server, agents) = acme_server(db, 1).await;
    let (device, session, known) = synced_device(&server.url, &agents[0]).await;
    let mut b = MutationBuilder::new();
    let no_location = known.outlets[0].clone();
    sqlx::query("UPDATE outlets SET lat_e7 = NULL, lon_e7 = NULL WHERE id = $1")
        .bind(no_location.id)
        .execute(server.store.test_pool())
        .await
        .unwrap();
    for outlet in [
        &no_location,
        &known.outlets[1],
        &no_location,
        &known.outlets[2],
    ] {
        let visit = ids::new_id();
        let batch = vec![b.start_visit(visit, outlet), b.end_visit(visit, outlet)];
        let r = device.push(session, batch).await;
        assert_eq!(r.status, 200, "{:?}", r.error());
    }
    let bands: Vec<(String, Option<f64>)> = sqlx::query_as(
        "SELECT location_band, distance_m FROM visits ORDER BY started_received_ms, id",
    )
    .fetch_all(server.store.test_pool())
    .await
    .unwrap();
    assert_eq!(bands.len(), 4);
    assert_eq!(
        bands
            .iter()
            .filter(|b| b.0 == "no_reference" && b.1.is_none())
            .count(),
        2
    );
    assert_eq!(
        bands
            .iter()
            .filter(|b| b.0 == "within" && b.1.is_some())
            .count(),
        2
    );
    server.stop().await;
}
on_both_backends!(
    visits_with_and_without_a_distance_are_both_stored,
    null_and_real_distances
);

/// Many phones pushing at the same moment (on SQLite their pushes share transactions): every
/// push gets its own answer, nothing is lost or doubled, and a push that clashes with another
/// phone's (the same order id, as a buggy or hostile client might send) has only that one
/// mutation refused while everything else of both pushes is stored.
async fn many_devices_at_once(db: &TestDb) {
    const PHONES: usize = 8;
    const ROUNDS: usize = 4;
    const VISITS: usize = 3;
    let (server, agents) = acme_server(db, PHONES).await;
    let pushes_before = server
        .store
        .ingest_stats()
        .pushes
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut phones = Vec::new();
    for a in &agents {
        let (device, _) = RawClient::activated(&server.url, a).await;
        let known = Known::from_changes(&device.pull_all(ids::new_id()).await);
        phones.push((device, known, MutationBuilder::new()));
    }
    for round in 0..ROUNDS {
        // Each phone: VISITS visits, each with an order of 2 lines. The second phone's last
        // order carries the first phone's first order id.
        let mut batches = Vec::new();
        let mut first_order = None;
        for (i, (_, known, b)) in phones.iter_mut().enumerate() {
            let mut batch = Vec::new();
            for v in 0..VISITS {
                let outlet = known.outlets[(round * VISITS + v) % known.outlets.len()].clone();
                let visit = ids::new_id();
                batch.push(b.start_visit(visit, &outlet));
                let (order_id, mut order) = b.order(known, visit, &outlet, 2);
                if i == 0 && v == 0 {
                    first_order = Some(order_id);
                }
                if i == 1
                    && v == VISITS - 1
                    && let Some(Kind::OrderPlaced(o)) = &mut order.kind
                {
                    o.order_id = ids::to_wire(first_order.unwrap());
                }
                batch.push(order);
                batch.push(b.end_visit(visit, &outlet));
            }
            batches.push(batch);
        }
        let results = futures::future::join_all(
            phones
                .iter()
                .zip(batches)
                .map(|((device, _, _), batch)| device.push(ids::new_id(), batch)),
        )
        .await;
        let mut clash_refused = 0;
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.status, 200, "phone {i} round {round}");
            let resp: v1::PushResponse = r.decode();
            assert_eq!(resp.results.len(), VISITS * 3);
            assert_eq!(resp.acked_seq, resp.results.last().unwrap().seq);
            let refused: Vec<_> = resp
                .results
                .iter()
                .filter(|x| x.outcome() == MutationOutcome::Refused)
                .collect();
            match (i, refused.as_slice()) {
                (_, []) => {}
                (0 | 1, [one]) => {
                    assert!(one.reason.contains("already taken"), "{}", one.reason);
                    clash_refused += 1;
                }
                _ => panic!("phone {i} round {round}: unexpected refusals {refused:?}"),
            }
        }
        assert_eq!(
            clash_refused, 1,
            "round {round}: exactly one side of the clash"
        );
    }
    let visits = (ROUNDS * PHONES * VISITS) as i64;
    let orders = visits - ROUNDS as i64;
    assert_eq!(count(&server.store, "visits").await, visits);
    assert_eq!(count(&server.store, "orders").await, orders);
    assert_eq!(count(&server.store, "order_lines").await, 2 * orders);
    assert_eq!(count(&server.store, "gps_fixes").await, 2 * visits);
    assert_eq!(
        count(&server.store, "refused_mutations").await,
        ROUNDS as i64
    );
    // Order numbers stay unique, and every phone's sequence moved exactly as far as it sent.
    let distinct = count_where(
        &server.store,
        "SELECT COUNT(DISTINCT number) FROM orders",
        &[],
    )
    .await;
    assert_eq!(distinct, orders);
    let seqs: Vec<(i64,)> = sqlx::query_as("SELECT last_seq FROM devices")
        .fetch_all(server.store.test_pool())
        .await
        .unwrap();
    assert_eq!(seqs.len(), PHONES);
    assert!(
        seqs.iter().all(|s| s.0 == (ROUNDS * VISITS * 3) as i64),
        "{seqs:?}"
    );
    // A distribution check whose id another phone already used is refused, not taken for a
    // duplicate (which would silently drop this phone's shelf data).
    let check = ids::new_id();
    let mut checks = Vec::new();
    for (device, known, b) in phones.iter_mut().take(2) {
        let outlet = known.outlets[0].clone();
        let visit = ids::new_id();
        let batch = vec![
            b.start_visit(visit, &outlet),
            b.wrap(Kind::DistributionChecked(v1::DistributionChecked {
                check_id: ids::to_wire(check),
                visit_id: ids::to_wire(visit),
                items: vec![v1::DistributionItem {
                    product_id: known.products[0].id,
                    present: true,
                }],
            })),
            b.end_visit(visit, &outlet),
        ];
        let resp: v1::PushResponse = device.push(ids::new_id(), batch).await.decode();
        checks.push(resp.results[1].clone());
    }
    assert_eq!(checks[0].outcome(), MutationOutcome::Applied);
    assert_eq!(checks[1].outcome(), MutationOutcome::Refused);
    assert!(
        checks[1].reason.contains("already taken"),
        "{}",
        checks[1].reason
    );
    let rows = count_where(
        &server.store,
        "SELECT COUNT(*) FROM distribution_checks WHERE check_id = $1",
        &[&check.to_string()],
    )
    .await;
    assert_eq!(rows, 1);

    // Every push was committed once (a clash may fail a transaction; its pushes are then
    // tried again alone and counted once, when they commit).
    let stats = server.store.ingest_stats();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        load(&stats.pushes) - pushes_before,
        (ROUNDS * PHONES + 2) as u64
    );
    assert!(load(&stats.transactions) <= load(&stats.pushes));
    // The same counters on /metrics.
    let metrics = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (name, value) in [
        ("fieldsync_push_committed_total", load(&stats.pushes)),
        (
            "fieldsync_push_transactions_total",
            load(&stats.transactions),
        ),
        ("fieldsync_push_retried_total", load(&stats.retried)),
    ] {
        assert!(
            metrics.contains(&format!("\n{name} {value}\n")),
            "{name} {value} not in {metrics}"
        );
    }
    {
        eprintln!(
            "{:?}: {} pushes in {} transactions, {} retried",
            db.backend,
            load(&stats.pushes),
            load(&stats.transactions),
            load(&stats.retried)
        );
    }
    server.stop().await;
}
on_both_backends!(many_devices_pushing_at_once, many_devices_at_once);
