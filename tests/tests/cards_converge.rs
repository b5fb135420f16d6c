//! Property: three phones (real agent engines) and the back office edit random fields of the
//! same shared cards offline, in random orders, through the field simulator's push faults
//! (drops, duplicates, offline stretches, restarts). After everyone syncs, every replica has the
//! server's heads and values, and exactly the writes to one field that no other write to it saw
//! are shown as that field's conflict, with their values.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use fieldsync_protocol::automerge::{Automerge, ChangeHash};
use fieldsync_protocol::cards::{CardEdit, CardView};
use fieldsync_server::store::Store;
use fieldsync_sim::cards::{CardsOptions, EditRecord, KeyUser, run_cards};
use fieldsync_sim::faults::FaultSpec;
use fieldsync_tests::*;
use proptest::prelude::*;

/// The back office, through the store call its card form makes.
struct BackOffice {
    store: Store,
    distributor: i64,
    outlets: Vec<i64>,
}

impl KeyUser for BackOffice {
    fn edit<'a>(
        &'a self,
        outlet_index: usize,
        edits: Vec<CardEdit>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = anyhow::Result<Option<(i64, String)>>> + Send + 'a>,
    > {
        Box::pin(async move {
            let outlet = self.outlets[outlet_index % self.outlets.len()];
            let r = self
                .store
                .edit_card_as_key_user(self.distributor, outlet, 1, "Key User", &edits)
                .await?;
            Ok(r.ok().flatten().map(|hash| (outlet, hash)))
        })
    }
}

/// Every ancestor of `hash` in the change graph `deps` (itself included).
fn ancestors(
    deps: &HashMap<ChangeHash, Vec<ChangeHash>>,
    hash: ChangeHash,
    memo: &mut HashMap<ChangeHash, HashSet<ChangeHash>>,
) -> HashSet<ChangeHash> {
    if let Some(a) = memo.get(&hash) {
        return a.clone();
    }
    let mut out = HashSet::from([hash]);
    let mut stack = vec![hash];
    while let Some(h) = stack.pop() {
        for d in deps.get(&h).into_iter().flatten() {
            if out.insert(*d) {
                stack.push(*d);
            }
        }
    }
    memo.insert(hash, out.clone());
    out
}

/// The field of a card view at `path` ("opening/mon", "proposals/address",
/// "contacts/<id>/phone"), for the scalar fields the simulator writes.
fn field_at<'a>(v: &'a CardView, path: &str) -> Option<&'a fieldsync_protocol::cards::Field> {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["opening", day] => v.opening.get(*day),
        ["delivery", day] => v.delivery.get(*day),
        ["proposals", f] => v.proposals.get(*f),
        ["contacts", id, "phone"] => v.contacts.iter().find(|c| c.id == *id).map(|c| &c.phone),
        _ => None,
    }
}

/// Checks, for every scalar field written, that the values shown (winner and conflicts) are
/// exactly those of the writes no other write to the field had seen.
fn conflicts_are_exactly_the_concurrent_writes(
    docs: &std::collections::BTreeMap<i64, Automerge>,
    edits: &[EditRecord],
) -> Result<usize, TestCaseError> {
    let mut by_field: HashMap<(i64, String), Vec<&EditRecord>> = HashMap::new();
    for e in edits {
        let scalar = e.field.starts_with("opening/")
            || e.field.starts_with("delivery/")
            || e.field == "proposals/address"
            || (e.field.starts_with("contacts/") && e.field.ends_with("/phone"));
        if scalar {
            by_field
                .entry((e.outlet_id, e.field.clone()))
                .or_default()
                .push(e);
        }
    }
    let mut conflicts = 0;
    let mut memo: HashMap<i64, HashMap<ChangeHash, HashSet<ChangeHash>>> = HashMap::new();
    for ((outlet, field), writes) in by_field {
        let Some(doc) = docs.get(&outlet) else {
            continue;
        };
        let memo = memo.entry(outlet).or_default();
        let graph: HashMap<ChangeHash, Vec<ChangeHash>> = doc
            .get_changes(&[])
            .into_iter()
            .map(|c| (c.hash(), c.deps().to_vec()))
            .collect();
        // Writes the server kept (a refused edit is not in the card).
        let kept: Vec<(&EditRecord, ChangeHash)> = writes
            .into_iter()
            .filter_map(|w| {
                let h: ChangeHash = w.hash.parse().ok()?;
                graph.contains_key(&h).then_some((w, h))
            })
            .collect();
        if kept.is_empty() {
            continue;
        }
        let live: Vec<&(&EditRecord, ChangeHash)> = kept
            .iter()
            .filter(|(_, h)| {
                !kept
                    .iter()
                    .any(|(_, other)| other != h && ancestors(&graph, *other, memo).contains(h))
            })
            .collect();
        let mut expected: Vec<String> = live.iter().map(|(w, _)| w.value.clone()).collect();
        expected.sort();
        let view = CardView::read(doc);
        let f = field_at(&view, &field);
        prop_assert!(f.is_some(), "{field} of outlet {outlet} is missing");
        let f = f.unwrap();
        let mut shown: Vec<String> = std::iter::once(f.value.clone())
            .chain(f.conflicts.iter().map(|c| c.0.clone()))
            .collect();
        shown.sort();
        prop_assert_eq!(&shown, &expected, "{} of outlet {}", field, outlet);
        prop_assert_eq!(f.is_conflict(), live.len() > 1);
        conflicts += usize::from(f.is_conflict());
    }
    Ok(conflicts)
}

async fn case(backend: Backend, spec: FaultSpec, rng_seed: u64) -> Result<(), TestCaseError> {
    let Some(db) = TestDb::new(backend).await else {
        return Ok(());
    };
    let server = TestServer::start(&db).await;
    let spec_world = fieldsync_server::seed::WorldSpec {
        agents_per_territory: 3,
        ..small_world("CRD", 3)
    };
    let agents = seed(&server.store, &spec_world).await;
    let distributor = server.store.distributor_id("CRD").await.unwrap();
    let outlets: Vec<(i64,)> = sqlx::query_as(
        "SELECT id FROM outlets WHERE distributor_id = $1 AND deleted = 0 ORDER BY id LIMIT 3",
    )
    .bind(distributor)
    .fetch_all(server.store.test_pool())
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let result = run_cards(CardsOptions {
        server: server.url.clone(),
        agents: agents
            .iter()
            .map(|a| (a.login.clone(), a.pin.clone()))
            .collect(),
        outlets: 3,
        edits: 30,
        faults: spec,
        seed: rng_seed,
        workdir: dir.path().to_path_buf(),
        deadline: Duration::from_secs(240),
        key_user: Some(Arc::new(BackOffice {
            store: server.store.clone(),
            distributor,
            outlets: outlets.into_iter().map(|r| r.0).collect(),
        })),
    })
    .await
    .unwrap();
    let j = &result.json;
    prop_assert!(
        j["errors"].as_array().unwrap().is_empty(),
        "{}",
        j["errors"]
    );
    prop_assert_eq!(result.divergent, 0, "{}", j);
    prop_assert_eq!(&j["converged"], &serde_json::json!(true));
    prop_assert_eq!(result.server_docs.len(), 3);
    // The server's own documents are the ones served.
    for (outlet, doc) in &result.server_docs {
        let stored = server
            .store
            .outlet_card_doc(*outlet)
            .await
            .unwrap()
            .unwrap();
        prop_assert_eq!(stored.get_heads(), doc.get_heads());
    }
    // Every replica: the same heads and view as the server.
    for replica in &result.replica_docs {
        for (outlet, doc) in replica {
            let server_doc = &result.server_docs[outlet];
            prop_assert_eq!(doc.get_heads(), server_doc.get_heads());
            prop_assert_eq!(CardView::read(doc), CardView::read(server_doc));
        }
    }
    let conflicts =
        conflicts_are_exactly_the_concurrent_writes(&result.server_docs, &result.edits)?;
    prop_assert_eq!(j["conflicts"].as_u64().unwrap() as usize >= conflicts, true);
    server.stop().await;
    db.cleanup().await;
    Ok(())
}

fn specs() -> impl Strategy<Value = (FaultSpec, u64)> {
    (
        0.0..0.35f64,
        0.0..0.35f64,
        0.0..0.4f64,
        0.0..0.1f64,
        any::<u64>(),
    )
        .prop_map(|(drop, dup, offline, restart, seed)| {
            (
                FaultSpec {
                    drop,
                    dup,
                    skew_ms: 0,
                    offline,
                    restart,
                },
                seed,
            )
        })
}

fn property(backend: Backend) {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: std::env::var("CARDS_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3),
        failure_persistence: None,
        max_shrink_iters: 0,
        ..ProptestConfig::default()
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runner
        .run(&specs(), |(spec, seed)| {
            rt.block_on(case(backend, spec, seed))
        })
        .unwrap();
}

#[test]
fn phones_and_the_back_office_editing_cards_through_faults_converge_with_conflicts_shown_sqlite() {
    property(Backend::Sqlite);
}

#[test]
fn phones_and_the_back_office_editing_cards_through_faults_converge_with_conflicts_shown_postgres()
{
    if postgres_url().is_none() {
        eprintln!("FIELDSYNC_TEST_POSTGRES_URL not set: PostgreSQL case skipped");
        return;
    }
    property(Backend::Postgres);
}
