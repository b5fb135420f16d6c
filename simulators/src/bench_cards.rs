//! `fieldsync-sim bench cards`: what shared outlet cards cost (BENCHMARKS.md "Shared outlet
//! cards"): bytes on the wire per typical edit, the server's merge throughput through the real
//! push, and the first pull of a territory whose every card was edited many times, into a
//! real agent engine.
use std::time::Instant;

use fieldsync_protocol::automerge::{ActorId, Automerge};
use fieldsync_protocol::cards::{self, CardEdit, Hours, Role, WEEKDAYS};
use fieldsync_protocol::ids;
use fieldsync_protocol::v1::{self, mutation::Kind};
use fieldsync_testkit::{MutationBuilder, RawClient};
use prost::Message;

use crate::bench::bench_world;

/// The `i`-th edit of a card's life: hours, note lines, contact people and tags in turn.
fn nth_edit(i: usize) -> CardEdit {
    match i % 5 {
        0 => CardEdit::Hours {
            hours: if i.is_multiple_of(2) {
                Hours::Opening
            } else {
                Hours::Delivery
            },
            day: WEEKDAYS[i % 7].to_string(),
            value: if i.is_multiple_of(3) {
                "08:00-13:00,14:00-18:00"
            } else {
                "09:00-17:00"
            }
            .to_string(),
        },
        1 | 3 => CardEdit::Notes(
            (0..=(i % 6))
                .map(|k| format!("Visit note {k}: back door until 11, ask for Olena."))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        2 => CardEdit::Contact {
            id: format!("contact-{}", i % 4),
            name: Some(format!("Olena Shevchuk {i}")),
            role: Some("buyer".into()),
            phone: Some(format!("+38067{:07}", i * 7919 % 10_000_000)),
        },
        _ => CardEdit::Tag {
            tag: format!("tag-{}", i % 6),
            on: !i.is_multiple_of(4),
        },
    }
}

/// `edits` changes of one card by `actor`, as its phone would make them one by one.
fn card_history(actor: &ActorId, edits: usize) -> (Automerge, Vec<Vec<u8>>) {
    let mut doc = cards::genesis();
    let mut out = Vec::with_capacity(edits);
    for i in 0..edits {
        if let Some(c) = cards::edit(
            &mut doc,
            actor,
            Role::Agent,
            "Bench Agent",
            1_000 + i as i64,
            &[nth_edit(i)],
        )
        .expect("bench edits are valid")
        {
            out.push(c.raw_bytes().to_vec());
        }
    }
    (doc, out)
}

fn card_mutation(b: &mut MutationBuilder, outlet_id: i64, changes: Vec<Vec<u8>>) -> v1::Mutation {
    b.wrap(Kind::CardChanged(v1::CardChanged { outlet_id, changes }))
}

pub async fn cards(
    postgres: Option<&str>,
    outlets: usize,
    products: usize,
    edits: usize,
) -> anyhow::Result<()> {
    let (db, server, agents) = bench_world(postgres, "CARDS", 1, outlets, products).await?;
    let (client, _) = RawClient::activated(&server.url, &agents[0]).await;
    let session = ids::new_id();
    let page: v1::PullResponse = client.pull(session, Vec::new(), 1).await.decode();
    let actor = ActorId::from(page.card_actor.as_slice());
    let mut outlet_ids: Vec<i64> =
        sqlx::query_as::<_, (i64,)>("SELECT id FROM outlets WHERE deleted = 0 ORDER BY id")
            .fetch_all(server.store.test_pool())
            .await?
            .into_iter()
            .map(|r| r.0)
            .collect();
    outlet_ids.truncate(outlets);
    let mut builder = MutationBuilder::new();

    // 1. Bytes on the wire per typical edit.
    println!("### Bytes on the wire ({})\n", db.label());
    println!(
        "| edit | change bytes | CardChanged mutation | alone in a push request | as a pulled OutletCard change |"
    );
    println!("|---|---:|---:|---:|---:|");
    let mut doc = cards::genesis();
    // A card with some history, as a real one has.
    for i in 0..20 {
        cards::edit(
            &mut doc,
            &actor,
            Role::Agent,
            "Bench Agent",
            i,
            &[nth_edit(i as usize)],
        )?;
    }
    let typical: [(&str, CardEdit); 4] = [
        (
            "opening hours of one day",
            CardEdit::Hours {
                hours: Hours::Opening,
                day: "mon".into(),
                value: "07:30-19:00".into(),
            },
        ),
        (
            "a line added to the notes",
            CardEdit::Notes(format!(
                "{}\nDeliveries through the yard from January.",
                cards::CardView::read(&doc).notes
            )),
        ),
        (
            "a new contact person (name, role, phone)",
            CardEdit::Contact {
                id: ids::new_id().to_string(),
                name: Some("Olena Shevchuk".into()),
                role: Some("buyer".into()),
                phone: Some("+380671234567".into()),
            },
        ),
        (
            "a proposed new address",
            CardEdit::Propose {
                field: "address".into(),
                value: "22 Khreshchatyk St, Kyiv".into(),
            },
        ),
    ];
    for (label, e) in typical {
        let mut d = doc.clone();
        let c =
            cards::edit(&mut d, &actor, Role::Agent, "Bench Agent", 99, &[e])?.expect("changes");
        let raw = c.raw_bytes().to_vec();
        let m = card_mutation(&mut MutationBuilder::new(), 1, vec![raw.clone()]);
        let req = v1::PushRequest {
            protocol_version: fieldsync_protocol::PROTOCOL_VERSION,
            session_id: ids::to_wire(ids::new_id()),
            mode: v1::SyncMode::Incremental as i32,
            device_time_ms: 1_765_000_000_000,
            utc_offset_minutes: 0,
            app_version: "1.0.0".into(),
            mutations: vec![m.clone()],
        };
        let pulled = v1::Change {
            entity: Some(v1::change::Entity::OutletCard(v1::OutletCard {
                outlet_id: 1,
                payload: v1::CardPayload::CardChanges as i32,
                automerge: raw.clone(),
            })),
        };
        println!(
            "| {label} | {} | {} | {} | {} |",
            raw.len(),
            m.encoded_len(),
            req.encoded_len(),
            pulled.encoded_len()
        );
    }

    // 2. Merge throughput through the real push: every card gets `edits` changes.
    let histories: Vec<(i64, Vec<Vec<u8>>)> = outlet_ids
        .iter()
        .map(|o| (*o, card_history(&actor, edits).1))
        .collect();
    let total_changes: usize = histories.iter().map(|h| h.1.len()).sum();
    // Phones send one change per saved form; a phone back from days offline sends many
    // mutations in one request. 25 changes of one card per mutation keeps requests at a
    // realistic size while the whole territory is loaded (500,000 changes).
    let started = Instant::now();
    let mut batch = Vec::new();
    let mut requests = 0;
    for (outlet, changes) in &histories {
        for chunk in changes.chunks(25) {
            batch.push(card_mutation(&mut builder, *outlet, chunk.to_vec()));
            if batch.len() == 20 {
                let r = client.push(session, std::mem::take(&mut batch)).await;
                anyhow::ensure!(r.status == 200, "push answered {}", r.status);
                requests += 1;
            }
        }
    }
    if !batch.is_empty() {
        let r = client.push(session, std::mem::take(&mut batch)).await;
        anyhow::ensure!(r.status == 200, "push answered {}", r.status);
        requests += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let (stored,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM card_log")
        .fetch_one(server.store.test_pool())
        .await?;
    anyhow::ensure!(
        stored as usize == total_changes,
        "stored {stored} of {total_changes} changes"
    );
    // Single-change mutations, as phones send them, on top of the loaded cards.
    let single = 2_000.min(outlet_ids.len() * 4);
    let mut docs: Vec<(i64, Automerge)> = histories
        .iter()
        .take(single / 4)
        .map(|(o, ch)| {
            let mut d = cards::genesis();
            for c in ch {
                d.load_incremental(c).expect("own changes load");
            }
            (*o, d)
        })
        .collect();
    let started_single = Instant::now();
    let mut batch = Vec::new();
    for round in 0..4 {
        for (outlet, d) in docs.iter_mut() {
            let c = cards::edit(
                d,
                &actor,
                Role::Agent,
                "Bench Agent",
                5_000 + round,
                &[nth_edit(round as usize + 1)],
            )?
            .expect("changes");
            batch.push(card_mutation(
                &mut builder,
                *outlet,
                vec![c.raw_bytes().to_vec()],
            ));
            if batch.len() == 25 {
                let r = client.push(session, std::mem::take(&mut batch)).await;
                anyhow::ensure!(r.status == 200, "push answered {}", r.status);
            }
        }
    }
    if !batch.is_empty() {
        let r = client.push(session, std::mem::take(&mut batch)).await;
        anyhow::ensure!(r.status == 200, "push answered {}", r.status);
    }
    let secs_single = started_single.elapsed().as_secs_f64();
    let (doc_bytes, docs_n): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(doc_bytes), 0) AS BIGINT), COUNT(*) FROM card_docs",
    )
    .fetch_one(server.store.test_pool())
    .await?;
    println!("\n### Merge throughput ({})\n", db.label());
    println!("| pushed as | changes | requests | seconds | changes/s |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| 25 changes of one card per mutation, 20 mutations per request | {total_changes} | {requests} | {secs:.2} | {:.0} |",
        total_changes as f64 / secs
    );
    println!(
        "| one change per mutation, 25 mutations per request | {single} | {} | {secs_single:.2} | {:.0} |",
        single.div_ceil(25),
        single as f64 / secs_single
    );
    println!(
        "\nStored: {docs_n} cards, {:.0} bytes per saved card of {} edits on average.",
        doc_bytes as f64 / docs_n.max(1) as f64,
        edits
    );

    // 3. The first pull of the territory into a real engine, three new phones.
    println!("\n### First pull with every card edited ({})\n", db.label());
    println!(
        "| backend | outlets | cards | rows pulled | requests | seconds | bytes down | first card opened (ms) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for _ in 0..3 {
        let dir = tempfile::tempdir()?;
        let engine = fieldsync_agent::Engine::open(dir.path().join("agent.db"))?;
        let transport = fieldsync_agent::HttpTransport::new(&server.url);
        let pin = server.store.generate_pin(&agents[0].login).await?;
        engine
            .activate(
                &transport,
                &server.url,
                &agents[0].login,
                &pin,
                "bench",
                "bench",
            )
            .await?;
        let started = Instant::now();
        let report = engine.sync(&transport).await?;
        let secs = started.elapsed().as_secs_f64();
        let opened = Instant::now();
        let view = engine.card(outlet_ids[0])?;
        let open_ms = opened.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(!view.view.notes.is_empty(), "the card arrived");
        println!(
            "| {} | {} | {docs_n} | {} | {} | {secs:.3} | {} | {open_ms:.1} |",
            db.label(),
            outlet_ids.len(),
            report.pulled,
            report.requests,
            report.bytes_down
        );
    }
    server.stop().await;
    db.cleanup().await;
    Ok(())
}
