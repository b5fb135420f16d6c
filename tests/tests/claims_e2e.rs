//! Claims from the field through the real engine and a real server, on SQLite and PostgreSQL:
//! drafts edited, deleted and registered offline reach the server exactly once through a
//! network that drops requests before and after the server commits and sends some twice; the
//! distributor reads them from the API feed once, moves them, and the stages come back to the
//! phone. Refusals (a registered claim edited, another agent's order, more than delivered)
//! lose nothing else.

use std::sync::Arc;

use fieldsync_agent::{ClaimDraft, ClaimLineDraft, OrderDraft, WorkflowError};
use fieldsync_protocol::v1;
use fieldsync_sim::faults::{FaultSpec, FaultTransport, NetStats};
use fieldsync_tests::*;
use serde_json::{Value, json};

async fn api_call(api: &ApiClient, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", api.url);
    let mut req = match method {
        "GET" => api.http.get(url),
        _ => api.http.post(url),
    }
    .bearer_auth(&api.key);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Syncs through `t` until a sync succeeds with nothing left to send (at most 60 tries).
async fn sync_until_done(phone: &Phone, t: &FaultTransport<fieldsync_agent::HttpTransport>) {
    for _ in 0..60 {
        if phone.engine.sync(t).await.is_ok() && phone.engine.outbox_status().unwrap().pending == 0
        {
            return;
        }
    }
    panic!("the outbox never emptied");
}

async fn claims_through_faults(db: &TestDb) {
    let (server, agents) = acme_server(db, 2).await;
    let api = ApiClient::new(&server, "ACME", "erp").await;
    let phone = Phone::activated(&server.url, &agents[0]).await;
    let e = &phone.engine;
    let outlet = e.outlet(phone.outlet_ids()[0]).unwrap().unwrap();
    let types: Vec<(i64, i64, String)> = e.claim_reasons().unwrap();
    let quality = types.iter().find(|r| r.2 == "Quality").unwrap().0;
    let damaged = types.iter().find(|r| r.2 == "Damaged packaging").unwrap().0;
    let expired = types.iter().find(|r| r.2 == "Expired").unwrap().0;

    // Two earlier orders at the outlet, synced.
    let visit = e.start_visit(outlet.id, None, vec![]).unwrap();
    let products = e.search_products("", outlet.price_list_id, 10).unwrap();
    let mut orders = Vec::new();
    for n in 0..2 {
        orders.push(
            e.place_order(OrderDraft {
                visit_id: Some(visit),
                outlet_id: outlet.id,
                warehouse_id: e.warehouses().unwrap()[0].id,
                lines: products
                    .iter()
                    .skip(n * 3)
                    .take(3)
                    .map(|p| (p.id, 5000))
                    .collect(),
                ..Default::default()
            })
            .unwrap(),
        );
    }
    e.end_visit(visit, vec![]).unwrap();
    phone.sync().await;

    // Offline: six claims. 0..2 registered after an edit, 2..4 left as edited drafts,
    // 4..6 deleted.
    let visit = e.start_visit(outlet.id, None, vec![]).unwrap();
    let line = |order: usize, no: i64, qty: i64, subtype: i64| ClaimLineDraft {
        order_id: orders[order],
        line_no: no,
        quantity_milli: qty,
        type_id: quality,
        subtype_id: subtype,
    };
    let mut ids = Vec::new();
    for n in 0..6usize {
        let mut draft = ClaimDraft {
            visit_id: Some(visit),
            outlet_id: outlet.id,
            lines: vec![line(n % 2, 1, 1000, damaged)],
            comment: format!("claim {n}"),
            ..Default::default()
        };
        let id = e.save_claim(draft.clone()).unwrap();
        draft.claim_id = Some(id);
        // Three claims share each order's lines: together within what was delivered (5).
        draft.lines = vec![
            line(n % 2, 1, 1500, damaged),
            line(n % 2, 2, 300 * (n as i64 + 1), expired),
        ];
        e.save_claim(draft.clone()).unwrap();
        match n {
            0 | 1 => {
                draft.register = true;
                e.save_claim(draft).unwrap();
            }
            4 | 5 => e.delete_claim(id).unwrap(),
            _ => {}
        }
        ids.push(id);
    }
    e.end_visit(visit, vec![]).unwrap();
    // A registered claim can no longer change, on the phone already.
    assert!(matches!(
        e.delete_claim(ids[0]).unwrap_err(),
        WorkflowError::ClaimLocked(_)
    ));

    let faulty = FaultTransport::new(
        fieldsync_agent::HttpTransport::new(&server.url),
        FaultSpec {
            drop: 0.3,
            dup: 0.3,
            ..Default::default()
        },
        db.label().len() as u64 + 7,
        Arc::new(NetStats::default()),
    );
    sync_until_done(&phone, &faulty).await;
    assert!(
        faulty
            .stats
            .injected
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0,
        "the network did drop or repeat requests"
    );

    // Exactly what the phone holds, once each: 4 claims (2 registered, 2 drafts), 2 deleted.
    let store = &server.store;
    assert_eq!(count(store, "claims").await, 6);
    assert_eq!(
        count_where(
            store,
            "SELECT COUNT(*) FROM claims WHERE deleted_at_ms IS NOT NULL",
            &[]
        )
        .await,
        2
    );
    for (n, id) in ids.iter().enumerate() {
        let stage = if n < 2 { "registered" } else { "draft" };
        assert_eq!(
            count_where(
                store,
                "SELECT COUNT(*) FROM claims WHERE id = $1 AND stage = $2",
                &[&id.to_string(), stage]
            )
            .await,
            1,
            "claim {n}"
        );
        if n < 4 {
            // The last edit's lines, no more.
            assert_eq!(
                count_where(
                    store,
                    "SELECT COUNT(*) FROM claim_lines WHERE claim_id = $1",
                    &[&id.to_string()]
                )
                .await,
                2,
                "claim {n}"
            );
        }
    }
    assert_eq!(count(store, "refused_mutations").await, 0);
    let registered_history = count_where(
        store,
        "SELECT COUNT(*) FROM claim_stage_history WHERE stage = 'registered'",
        &[],
    )
    .await;
    assert_eq!(registered_history, 2, "registered once each");

    // The phone learned the numbers the server gave.
    let phone_claims = e.outlet_claims(outlet.id).unwrap();
    assert_eq!(phone_claims.len(), 4);
    assert!(
        phone_claims
            .iter()
            .filter(|c| !c.is_draft())
            .all(|c| c.number > 0)
    );

    // The distributor reads the two registered claims once, never the drafts.
    let (s, page) = api_call(&api, "GET", "/api/v1/claims/feed?after=0", None).await;
    assert_eq!(s, 200, "{page}");
    let fed: Vec<String> = page["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let mut expected = vec![ids[0].to_string(), ids[1].to_string()];
    expected.sort();
    let mut got = fed.clone();
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(page["claims"][0]["lines"].as_array().unwrap().len(), 2);
    assert_eq!(page["claims"][0]["lines"][1]["claim_type"], "Quality");
    assert_eq!(page["claims"][0]["lines"][1]["claim_subtype"], "Expired");
    let (s, ack) = api_call(
        &api,
        "POST",
        "/api/v1/claims/ack",
        Some(json!({"claim_ids": [fed[0], fed[1], ids[2].to_string()]})),
    )
    .await;
    assert_eq!(s, 200);
    let results: Vec<&str> = ack["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        vec!["acknowledged", "acknowledged", "unknown"],
        "a draft is not the distributor's"
    );
    let (_, page) = api_call(&api, "GET", "/api/v1/claims/feed?after=0", None).await;
    assert!(page["claims"].as_array().unwrap().is_empty());
    // A draft older than both, registered now, still comes after the cursor they moved.
    let cursor = {
        let (_, v) = api_call(&api, "GET", &format!("/api/v1/claims/{}", ids[1]), None).await;
        v["feed_seq"].as_i64().unwrap().max(
            api_call(&api, "GET", &format!("/api/v1/claims/{}", ids[0]), None)
                .await
                .1["feed_seq"]
                .as_i64()
                .unwrap(),
        )
    };
    let late = e.claim(ids[2]).unwrap().unwrap();
    e.save_claim(ClaimDraft {
        claim_id: Some(ids[2]),
        visit_id: None,
        outlet_id: outlet.id,
        lines: late.lines.iter().map(|l| l.line.clone()).collect(),
        comment: late.comment.clone(),
        register: true,
    })
    .unwrap();
    phone.sync().await;
    let (_, page) = api_call(
        &api,
        "GET",
        &format!("/api/v1/claims/feed?after={cursor}"),
        None,
    )
    .await;
    let late_ids: Vec<&str> = page["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(late_ids, vec![ids[2].to_string().as_str()]);

    // Stages: considered, then accepted; declined needs an answer; a decision is final.
    let stage = |id: &uuid::Uuid, body: Value| {
        let path = format!("/api/v1/claims/{id}/stage");
        let api = &api;
        async move { api_call(api, "POST", &path, Some(body)).await }
    };
    assert_eq!(
        stage(&ids[0], json!({"stage": "being_considered"})).await.0,
        200
    );
    assert_eq!(
        stage(
            &ids[0],
            json!({"stage": "accepted", "answer": "Credit note 77"})
        )
        .await
        .0,
        200
    );
    let (s, v) = stage(&ids[1], json!({"stage": "declined"})).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid")), "{v}");
    let (s, v) = stage(&ids[0], json!({"stage": "declined", "answer": "no"})).await;
    assert_eq!(
        (s, v["current_state"].as_str()),
        (409, Some("accepted")),
        "{v}"
    );
    let (s, _) = stage(&ids[3], json!({"stage": "accepted"})).await;
    assert_eq!(s, 404, "a draft is not the distributor's to move");
    assert_eq!(
        stage(
            &ids[1],
            json!({"stage": "declined", "answer": "Past the deadline"})
        )
        .await
        .0,
        200
    );
    phone.sync().await;
    let a = e.claim(ids[0]).unwrap().unwrap();
    assert_eq!(
        (a.stage.as_str(), a.answer.as_str()),
        ("accepted", "Credit note 77")
    );
    let b = e.claim(ids[1]).unwrap().unwrap();
    assert_eq!(
        (b.stage.as_str(), b.answer.as_str()),
        ("declined", "Past the deadline")
    );
    assert_eq!(e.claim(ids[2]).unwrap().unwrap().stage, "registered");
    server.stop().await;
}
on_both_backends!(
    claims_reach_the_server_exactly_once_through_faults_and_their_stages_come_back,
    claims_through_faults
);

/// What the server refuses, and that a refusal costs nothing else in the batch.
async fn claim_refusals(db: &TestDb) {
    let (server, agents) = acme_server(db, 2).await;
    let (client, session, known) = synced_device(&server.url, &agents[0]).await;
    let (other, other_session, other_known) = synced_device(&server.url, &agents[1]).await;
    let mut b = MutationBuilder::new();
    let outlet = known.outlets[0].clone();
    let visit = uuid::Uuid::now_v7();
    let start = b.start_visit(visit, &outlet);
    let (order, placed) = b.order(&known, visit, &outlet, 2);
    let batch = vec![start, placed, b.end_visit(visit, &outlet)];
    let r = client.push(session, batch).await;
    assert_eq!(r.status, 200, "{:?}", r.error());
    let (types,): (i64,) =
        sqlx::query_as("SELECT MIN(id) FROM claim_reasons WHERE parent_id IS NULL")
            .fetch_one(server.store.test_pool())
            .await
            .unwrap();
    let claim = |id: uuid::Uuid, qty: i64, register: bool| {
        v1::mutation::Kind::ClaimSaved(v1::ClaimSaved {
            claim_id: fieldsync_protocol::ids::to_wire(id),
            outlet_id: outlet.id,
            lines: vec![v1::ClaimLine {
                order_id: fieldsync_protocol::ids::to_wire(order),
                line_no: 1,
                quantity_milli: qty,
                type_id: types,
                subtype_id: 0,
            }],
            register,
            ..Default::default()
        })
    };
    let good = uuid::Uuid::now_v7();
    let batch = vec![
        // More than the order's 1 unit on line 1 (the builder orders 1 of each).
        b.wrap(claim(uuid::Uuid::now_v7(), 999_000, false)),
        b.wrap(claim(good, 1000, true)),
        // Edited after its registration.
        b.wrap(claim(good, 500, false)),
        // Deleted after its registration.
        b.wrap(v1::mutation::Kind::ClaimDeleted(v1::ClaimDeleted {
            claim_id: fieldsync_protocol::ids::to_wire(good),
        })),
        // A second claim on the same goods beyond what came (the first claims all of it).
        b.wrap(claim(uuid::Uuid::now_v7(), 1, false)),
        // A type that is not in the list.
        b.wrap(v1::mutation::Kind::ClaimSaved(v1::ClaimSaved {
            claim_id: fieldsync_protocol::ids::to_wire(uuid::Uuid::now_v7()),
            outlet_id: outlet.id,
            lines: vec![v1::ClaimLine {
                order_id: fieldsync_protocol::ids::to_wire(order),
                line_no: 1,
                quantity_milli: 1,
                type_id: 999_999,
                subtype_id: 0,
            }],
            ..Default::default()
        })),
    ];
    let r = client.push(session, batch).await;
    assert_eq!(r.status, 200);
    let resp: v1::PushResponse = r.decode();
    let outcomes: Vec<(v1::MutationOutcome, v1::ErrorCode)> = resp
        .results
        .iter()
        .map(|r| (r.outcome(), r.code()))
        .collect();
    use v1::{ErrorCode as C, MutationOutcome as O};
    assert_eq!(
        outcomes,
        vec![
            (O::Refused, C::InvalidMutation),
            (O::Applied, C::Unspecified),
            (O::Refused, C::InvalidState),
            (O::Refused, C::InvalidState),
            (O::Refused, C::InvalidMutation),
            (O::Refused, C::InvalidMutation),
        ]
    );
    assert_eq!(
        count_where(
            &server.store,
            "SELECT COUNT(*) FROM claim_lines WHERE claim_id = $1 AND quantity_milli = 1000",
            &[&good.to_string()]
        )
        .await,
        1,
        "the registered claim kept its content"
    );
    // Another agent (another territory) may not claim on this outlet's order, nor touch the
    // first agent's claim.
    let mut ob = MutationBuilder::new();
    let _ = other_known;
    let r = other
        .push(
            other_session,
            vec![
                ob.wrap(claim(uuid::Uuid::now_v7(), 1000, false)),
                ob.wrap(v1::mutation::Kind::ClaimDeleted(v1::ClaimDeleted {
                    claim_id: fieldsync_protocol::ids::to_wire(good),
                })),
            ],
        )
        .await;
    let resp: v1::PushResponse = r.decode();
    let codes: Vec<v1::ErrorCode> = resp.results.iter().map(|r| r.code()).collect();
    assert_eq!(codes, vec![C::NotVisible, C::UnknownReference]);
    assert_eq!(count(&server.store, "claims").await, 1);
    server.stop().await;
}
on_both_backends!(
    claims_the_server_refuses_lose_nothing_else_of_their_batch,
    claim_refusals
);
