//! Shared outlet cards over real sockets, on SQLite and PostgreSQL: exactly-once card changes,
//! every refusal with stored data intact, pulls that bring each device what it lacks, compaction,
//! and real agent engines plus a key user converging with conflicts shown.

use fieldsync_agent::Engine;
use fieldsync_protocol::automerge::{
    ActorId, Automerge, ROOT, ReadDoc,
    transaction::{CommitOptions, Transactable},
};
use fieldsync_protocol::cards::{self, CardEdit, CardView, Hours, Role};
use fieldsync_protocol::v1::{self, ErrorCode, MutationOutcome, mutation::Kind};
use fieldsync_server::seed::SeededAgent;
use fieldsync_tests::*;

/// The position and territory of an agent.
async fn position_of(server: &TestServer, agent: &SeededAgent) -> (i64, i64) {
    let (position,): (i64,) =
        sqlx::query_as("SELECT position_id FROM mobile_users WHERE login = $1")
            .bind(&agent.login)
            .fetch_one(server.store.test_pool())
            .await
            .unwrap();
    let (territory,): (Option<i64>,) =
        sqlx::query_as("SELECT parent_id FROM org_units WHERE id = $1")
            .bind(position)
            .fetch_one(server.store.test_pool())
            .await
            .unwrap();
    (position, territory.unwrap())
}

/// A server with three agents, the second moved (by the org editor) into the first one's
/// territory so that they share its outlets; the third keeps its own.
async fn shared_world(db: &TestDb) -> (TestServer, Vec<SeededAgent>, i64) {
    let (server, agents) = acme_server(db, 3).await;
    let distributor = server.store.distributor_id("ACME").await.unwrap();
    let (_, territory) = position_of(&server, &agents[0]).await;
    let (second, _) = position_of(&server, &agents[1]).await;
    server
        .store
        .move_org_unit(distributor, second, Some(territory))
        .await
        .unwrap();
    (server, agents, distributor)
}

/// A raw device, its card actor (from its first pull page) and what it pulled.
async fn raw_device(server: &TestServer, agent: &SeededAgent) -> (SyncedDevice, ActorId) {
    let device = SyncedDevice::new(&server.url, agent).await;
    let page: v1::PullResponse = device
        .client
        .pull(device.session, Vec::new(), 1)
        .await
        .decode();
    assert_eq!(page.card_actor.len(), 16, "every page names the card actor");
    let actor = ActorId::from(page.card_actor.as_slice());
    (device, actor)
}

fn card_changed(outlet_id: i64, changes: Vec<Vec<u8>>) -> Kind {
    Kind::CardChanged(v1::CardChanged { outlet_id, changes })
}

fn monday(value: &str) -> CardEdit {
    CardEdit::Hours {
        hours: Hours::Opening,
        day: "mon".into(),
        value: value.into(),
    }
}

/// One change by `actor` on `doc` (a valid card edit).
fn change(doc: &mut Automerge, actor: &ActorId, edits: &[CardEdit]) -> Vec<u8> {
    cards::edit(doc, actor, Role::Agent, "raw", 1_000, edits)
        .unwrap()
        .unwrap()
        .raw_bytes()
        .to_vec()
}

/// A change made with Automerge directly (bypassing the card's own checks).
fn raw_change(
    doc: &mut Automerge,
    actor: &ActorId,
    f: impl FnOnce(&mut fieldsync_protocol::automerge::transaction::Transaction<'_>),
) -> Vec<u8> {
    doc.set_actor(actor.clone());
    let ok = doc
        .transact_with::<_, _, fieldsync_protocol::automerge::AutomergeError, _>(
            |_| CommitOptions::default().with_time(1),
            |tx| {
                f(tx);
                Ok(())
            },
        )
        .unwrap();

    doc.get_change_by_hash(&ok.hash.unwrap())
        .unwrap()
        .raw_bytes()
        .to_vec()
}

fn outcome(r: &RawResponse) -> Vec<(MutationOutcome, ErrorCode, String)> {
    assert_eq!(r.status, 200);
    let resp: v1::PushResponse = r.decode();
    resp.results
        .iter()
        .map(|x| (x.outcome(), x.code(), x.reason.clone()))
        .collect()
}

async fn server_heads(server: &TestServer, outlet: i64) -> String {
    let doc = server.store.outlet_card_doc(outlet).await.unwrap();
    doc.map(|d| cards::heads_hex(&d)).unwrap_or_default()
}

/// The card bytes of pulled changes, merged into genesis.
fn merged(changes: &[v1::Change], outlet: i64) -> (Automerge, usize, usize) {
    let mut doc = cards::genesis();
    let (mut documents, mut change_payloads) = (0, 0);
    for c in changes {
        if let Some(v1::change::Entity::OutletCard(card)) = &c.entity
            && card.outlet_id == outlet
        {
            match card.payload() {
                v1::CardPayload::CardDocument => documents += 1,
                _ => change_payloads += 1,
            }
            doc.load_incremental(&card.automerge).unwrap();
        }
    }
    (doc, documents, change_payloads)
}

async fn exactly_once_and_refusals(db: &TestDb) {
    let (server, agents, _) = shared_world(db).await;
    let (mut a, actor_a) = raw_device(&server, &agents[0]).await;
    let (b, actor_b) = raw_device(&server, &agents[1]).await;
    assert_ne!(actor_a, actor_b, "each device has its own actor");
    let outlet = a.outlet().id;
    assert!(
        b.known.outlets.iter().any(|o| o.id == outlet),
        "the moved position shares the territory"
    );

    // One change, applied once; the same change again (a re-sent mutation) is a duplicate.
    let mut doc = cards::genesis();
    let first = change(&mut doc, &actor_a, &[monday("08:00-18:00")]);
    let m1 = a.builder.wrap(card_changed(outlet, vec![first.clone()]));
    let r = a.push(vec![m1.clone()]).await;
    assert_eq!(outcome(&r)[0].0, MutationOutcome::Applied);
    let again = a.builder.wrap(card_changed(outlet, vec![first.clone()]));
    let r = a.push(vec![m1, again]).await;
    let o = outcome(&r);
    assert_eq!(
        (o[0].0, o[1].0),
        (MutationOutcome::Duplicate, MutationOutcome::Duplicate)
    );
    let heads = server_heads(&server, outlet).await;
    assert_eq!(heads, cards::heads_hex(&doc));
    assert_eq!(count(&server.store, "card_log").await, 1);

    // Refusals, each with its reason; nothing of them is stored.
    let (_, c_territory) = position_of(&server, &agents[2]).await;
    let (foreign_outlet,): (i64,) =
        sqlx::query_as("SELECT id FROM outlets WHERE territory_id = $1 ORDER BY id LIMIT 1")
            .bind(c_territory)
            .fetch_one(server.store.test_pool())
            .await
            .unwrap();
    let mut other = cards::genesis();
    let outside = change(&mut other, &actor_a, &[monday("09:00-17:00")]);
    let mut forged_doc = doc.clone();
    let forged = change(&mut forged_doc, &actor_b, &[monday("10:00-11:00")]);
    let mut big_doc = doc.clone();
    let big = raw_change(&mut big_doc, &actor_a, |tx| {
        let notes = match tx.get(ROOT, "notes").unwrap() {
            Some((_, id)) => id,
            None => unreachable!(),
        };
        tx.splice_text(&notes, 0, 0, &"x".repeat(20_000)).unwrap();
    });
    let mut field_doc = doc.clone();
    let not_a_field = raw_change(&mut field_doc, &actor_a, |tx| {
        tx.put(ROOT, "credit_limit", 1_000_000_i64).unwrap();
    });
    let mut compressed = first.clone();
    compressed[8] = 2;
    let mut ahead = doc.clone();
    let _never_sent = change(&mut ahead, &actor_a, &[monday("07:00-19:00")]);
    let orphan = change(&mut ahead, &actor_a, &[monday("07:00-20:00")]);
    let too_many: Vec<Vec<u8>> = (0..33).map(|_| first.clone()).collect();
    let cases: Vec<(Kind, ErrorCode, &str)> = vec![
        (
            card_changed(foreign_outlet, vec![outside]),
            ErrorCode::NotVisible,
            "territory",
        ),
        (
            card_changed(outlet, vec![forged]),
            ErrorCode::InvalidMutation,
            "not by this device",
        ),
        (
            card_changed(outlet, vec![big]),
            ErrorCode::InvalidMutation,
            "too large",
        ),
        (
            card_changed(outlet, vec![not_a_field]),
            ErrorCode::InvalidMutation,
            "credit_limit",
        ),
        (
            card_changed(outlet, vec![compressed]),
            ErrorCode::InvalidMutation,
            "type 2",
        ),
        (
            card_changed(outlet, vec![orphan]),
            ErrorCode::UnknownReference,
            "not received",
        ),
        (
            card_changed(outlet, too_many),
            ErrorCode::InvalidMutation,
            "too large",
        ),
        (
            card_changed(outlet, vec![]),
            ErrorCode::InvalidMutation,
            "no changes",
        ),
    ];
    for (kind, code, reason) in cases {
        let m = a.builder.wrap(kind);
        let r = a.push(vec![m]).await;
        let o = outcome(&r);
        assert_eq!(
            (o[0].0, o[0].1),
            (MutationOutcome::Refused, code),
            "{}",
            o[0].2
        );
        assert!(
            o[0].2.contains(reason),
            "{:?} should say {reason:?}",
            o[0].2
        );
        assert_eq!(server_heads(&server, outlet).await, heads, "nothing stored");
    }
    assert_eq!(count(&server.store, "card_log").await, 1);
    assert_eq!(count(&server.store, "refused_mutations").await, 8);

    // The other device of the territory pulls the change and has the server's card.
    let (pulled, _) = b.client.pull_from(b.session, Vec::new()).await;
    let (doc_b, _, changes_b) = merged(&pulled, outlet);
    assert_eq!(changes_b, 1);
    assert_eq!(cards::heads_hex(&doc_b), heads);
    assert_eq!(CardView::read(&doc_b).opening["mon"].value, "08:00-18:00");
    // The third device, in another territory, receives no card of this outlet.
    let (c, _) = raw_device(&server, &agents[2]).await;
    let (pulled_c, _) = c.client.pull_from(c.session, Vec::new()).await;
    assert_eq!(merged(&pulled_c, outlet).2, 0);
    server.stop().await;
}
on_both_backends!(
    card_changes_are_applied_once_and_every_bad_one_is_refused_with_its_reason,
    exactly_once_and_refusals
);

async fn compaction(db: &TestDb) {
    let (server, agents, _) = shared_world(db).await;
    let (mut a, actor_a) = raw_device(&server, &agents[0]).await;
    let outlet = a.outlet().id;
    let (_, mut cursor) = a.client.pull_from(a.session, Vec::new()).await;
    let mut doc = cards::genesis();
    let mut documents_seen_live = 0;
    let edits = 2 * fieldsync_server::store::outlet_cards::COMPACT_AT + 3;
    for i in 0..edits {
        let c = change(
            &mut doc,
            &actor_a,
            &[CardEdit::Notes(format!("visit {i}: ask for Olena"))],
        );
        let m = a.builder.wrap(card_changed(outlet, vec![c]));
        assert_eq!(
            outcome(&a.push(vec![m]).await)[0].0,
            MutationOutcome::Applied
        );
        // A live device, pulling after every edit, never receives a compacted document.
        let (page, next) = a.client.pull_from(a.session, cursor).await;
        cursor = next;
        documents_seen_live += merged(&page, outlet).1;
    }
    assert_eq!(documents_seen_live, 0);
    let heads = server_heads(&server, outlet).await;
    assert_eq!(heads, cards::heads_hex(&doc));
    // A new device of the territory gets one document and fewer than COMPACT_AT changes.
    let (b, _) = raw_device(&server, &agents[1]).await;
    let (pulled, _) = b.client.pull_from(b.session, Vec::new()).await;
    let (doc_b, documents, changes) = merged(&pulled, outlet);
    assert_eq!(documents, 1);
    assert!(
        (changes as i64) < fieldsync_server::store::outlet_cards::COMPACT_AT,
        "{changes} changes"
    );
    assert_eq!(cards::heads_hex(&doc_b), heads);
    assert_eq!(
        CardView::read(&doc_b).notes,
        format!("visit {}: ask for Olena", edits - 1)
    );
    // Every change stays in the history.
    assert_eq!(count(&server.store, "card_log").await, edits);
    server.stop().await;
}
on_both_backends!(
    a_card_edited_many_times_reaches_a_new_device_as_one_document,
    compaction
);

/// A real phone, activated and synced.
async fn phone(server: &TestServer, agent: &SeededAgent) -> Phone {
    Phone::activated(&server.url, agent).await
}

fn view(e: &Engine, outlet: i64) -> CardView {
    e.card(outlet).unwrap().view
}

async fn engines_and_key_user(db: &TestDb) {
    let (server, agents, distributor) = shared_world(db).await;
    let a = phone(&server, &agents[0]).await;
    let b = phone(&server, &agents[1]).await;
    let outlet = a.outlet_ids()[0];
    assert!(b.outlet_ids().contains(&outlet));

    // Offline, both agents set Monday's hours and add a line to the notes.
    assert!(
        a.engine
            .edit_card(outlet, &[monday("08:00-18:00")])
            .unwrap()
    );
    assert!(
        b.engine
            .edit_card(
                outlet,
                &[
                    monday("09:00-17:00"),
                    CardEdit::Notes("Back door.\n".into())
                ]
            )
            .unwrap()
    );
    assert!(
        a.engine
            .edit_card(
                outlet,
                &[
                    CardEdit::Contact {
                        id: "olena".into(),
                        name: Some("Olena".into()),
                        role: Some("buyer".into()),
                        phone: Some("+380441234567".into()),
                    },
                    CardEdit::Propose {
                        field: "address".into(),
                        value: "Khreshchatyk 22".into(),
                    },
                ]
            )
            .unwrap()
    );
    assert_eq!(
        a.engine.card(outlet).unwrap().pending,
        2,
        "saved at once, offline"
    );
    // Nothing changed: no change, no mutation.
    assert!(
        !a.engine
            .edit_card(outlet, &[monday("08:00-18:00")])
            .unwrap()
    );
    a.sync().await;
    b.sync().await;
    a.sync().await;
    let (va, vb) = (view(&a.engine, outlet), view(&b.engine, outlet));
    assert_eq!(va, vb, "both phones show the same card");
    assert_eq!(a.engine.card(outlet).unwrap().pending, 0);
    let mon = &va.opening["mon"];
    assert!(
        mon.is_conflict(),
        "a concurrent write is shown as a conflict"
    );
    let mut who: Vec<String> = std::iter::once(&mon.by)
        .chain(mon.conflicts.iter().map(|c| &c.1))
        .map(|x| va.who(x))
        .collect();
    who.sort();
    assert_eq!(who.len(), 2);
    assert_ne!(who[0], who[1], "both authors are named");
    assert_eq!(va.notes, "Back door.\n");
    assert_eq!(va.contacts[0].name.value, "Olena");
    assert_eq!(va.proposals["address"].value, "Khreshchatyk 22");
    let heads = server_heads(&server, outlet).await;
    assert_eq!(cards::heads_hex(&a.engine.card_doc(outlet).unwrap()), heads);
    assert_eq!(cards::heads_hex(&b.engine.card_doc(outlet).unwrap()), heads);

    // The key user sees the same, settles Monday, and accepts the proposed address.
    let page = server.store.outlet_card(outlet).await.unwrap();
    assert_eq!(page.view, va);
    assert_eq!(page.history.len(), 3);
    let key_user = server
        .store
        .edit_card_as_key_user(
            distributor,
            outlet,
            1,
            "Key User",
            &[
                monday("08:30-18:00"),
                CardEdit::Decide {
                    field: "address".into(),
                    accept: true,
                },
            ],
        )
        .await
        .unwrap()
        .unwrap();
    assert!(key_user.is_some());
    b.sync().await;
    a.sync().await;
    let (va, vb) = (view(&a.engine, outlet), view(&b.engine, outlet));
    assert_eq!(va, vb);
    assert!(
        va.conflicts().is_empty(),
        "setting the field again clears the conflict"
    );
    assert_eq!(va.opening["mon"].value, "08:30-18:00");
    assert_eq!(va.decisions["address"].value, "accepted\tKhreshchatyk 22");
    assert!(va.proposals.is_empty());
    assert_eq!(
        a.engine.outlet(outlet).unwrap().unwrap().address,
        "Khreshchatyk 22",
        "the accepted proposal is master data on the phone"
    );
    let heads = server_heads(&server, outlet).await;
    assert_eq!(cards::heads_hex(&a.engine.card_doc(outlet).unwrap()), heads);
    assert_eq!(cards::heads_hex(&b.engine.card_doc(outlet).unwrap()), heads);
    // A contact person and a tag removed on one phone are gone on the other.
    assert!(
        b.engine
            .edit_card(
                outlet,
                &[CardEdit::Tag {
                    tag: "vip".into(),
                    on: true
                }]
            )
            .unwrap()
    );
    b.sync().await;
    a.sync().await;
    assert_eq!(view(&a.engine, outlet).tags, ["vip"]);
    assert!(
        a.engine
            .edit_card(
                outlet,
                &[
                    CardEdit::RemoveContact { id: "olena".into() },
                    CardEdit::Tag {
                        tag: "vip".into(),
                        on: false
                    },
                ]
            )
            .unwrap()
    );
    a.sync().await;
    b.sync().await;
    let vb = view(&b.engine, outlet);
    assert!(vb.contacts.is_empty() && vb.tags.is_empty(), "{vb:?}");
    server.stop().await;
}
on_both_backends!(
    two_phones_and_a_key_user_edit_one_card_and_converge_with_the_conflict_shown,
    engines_and_key_user
);

async fn refused_edit_leaves_the_phone(db: &TestDb) {
    let (server, agents, _) = shared_world(db).await;
    let a = phone(&server, &agents[0]).await;
    let b = phone(&server, &agents[1]).await;
    let outlet = a.outlet_ids()[0];
    let tags = |prefix: &str| -> Vec<CardEdit> {
        (0..20)
            .map(|i| CardEdit::Tag {
                tag: format!("{prefix}{i}"),
                on: true,
            })
            .collect()
    };
    // Each phone's 20 tags fit the card; both together would be 40, over the 30 allowed.
    assert!(a.engine.edit_card(outlet, &tags("a")).unwrap());
    assert!(b.engine.edit_card(outlet, &tags("b")).unwrap());
    assert!(
        b.engine
            .edit_card(outlet, &[monday("09:00-17:00")])
            .unwrap()
    );
    a.sync().await;
    let report = b.try_sync().await.unwrap();
    assert_eq!(report.refused, 2, "the tags, and the edit built on them");
    let screen = b.engine.card(outlet).unwrap();
    assert_eq!(screen.pending, 0, "the refused changes are taken out");
    assert_eq!(screen.view.tags.len(), 20);
    assert!(screen.view.tags.iter().all(|t| t.starts_with('a')));
    assert!(screen.view.opening.is_empty());
    let heads = server_heads(&server, outlet).await;
    assert_eq!(cards::heads_hex(&b.engine.card_doc(outlet).unwrap()), heads);
    // The phone goes on editing the card as the server has it.
    assert!(
        b.engine
            .edit_card(outlet, &[monday("09:00-17:00")])
            .unwrap()
    );
    b.sync().await;
    a.sync().await;
    assert_eq!(view(&a.engine, outlet).opening["mon"].value, "09:00-17:00");
    server.stop().await;
}
on_both_backends!(
    card_edits_the_server_refuses_disappear_from_the_phone,
    refused_edit_leaves_the_phone
);

async fn in_the_back_office(db: &TestDb) {
    use fieldsync_testkit::browser::{Browser, ensure_leaflet};
    ensure_leaflet();
    let (server, agents, _) = shared_world(db).await;
    let a = phone(&server, &agents[0]).await;
    let b = phone(&server, &agents[1]).await;
    let outlet = a.outlet_ids()[0];
    // Two agents set Monday differently while offline; one proposes a new address and adds a
    // contact person.
    a.engine
        .edit_card(
            outlet,
            &[
                monday("08:00-18:00"),
                CardEdit::Propose {
                    field: "address".into(),
                    value: "Khreshchatyk 22".into(),
                },
                CardEdit::Contact {
                    id: "olena".into(),
                    name: Some("Olena <b>Buyer</b>".into()),
                    role: Some("buyer".into()),
                    phone: Some("+380441234567".into()),
                },
            ],
        )
        .unwrap();
    b.engine
        .edit_card(outlet, &[monday("09:00-17:00")])
        .unwrap();
    a.sync().await;
    b.sync().await;
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
    let br = Browser::start().await;
    br.log_in(url, "acme-kp", "secret123").await;
    br.goto(&format!("{url}/outlets/{outlet}")).await;
    // The agent's edit, escaped; the conflict with both agents' values; the history.
    assert!(
        br.text("#card-contacts")
            .await
            .contains("Olena <b>Buyer</b>")
    );
    assert!(br.text("#card-conflicts").await.contains('1'));
    let monday_row = br.text("#card-hours-mon").await;
    assert!(
        monday_row.contains("08:00-18:00") && monday_row.contains("09:00-17:00"),
        "{monday_row}"
    );
    assert!(monday_row.contains("Conflict"), "{monday_row}");
    assert_eq!(br.count("#card-history tbody tr").await, 2);
    // The key user settles Monday through the form and accepts the proposal.
    br.run("document.querySelector('#card-edit').open = true")
        .await;
    br.fill("#open-mon", "08:30-18:00").await;
    br.click("#save-card").await;
    assert!(br.find_opt("#card-conflicts").await.is_none());
    assert!(br.text("#card-hours-mon").await.contains("08:30-18:00"));
    assert_eq!(br.count("#card-history tbody tr").await, 3);
    assert!(br.text("#card-history").await.contains("acme-kp"));
    br.click("#proposal-address button.accept").await;
    assert!(br.text("#decision-address").await.contains("Accepted"));
    let shown = br.text("body").await;
    assert!(shown.contains("Khreshchatyk 22"));
    shot(&br, db, "outlet-card").await;
    br.close().await;
    // The phones see the key user's value, the decision and the new address.
    a.sync().await;
    let v = view(&a.engine, outlet);
    assert_eq!(v.opening["mon"].value, "08:30-18:00");
    assert!(v.conflicts().is_empty());
    assert_eq!(v.decisions["address"].value, "accepted\tKhreshchatyk 22");
    assert_eq!(
        a.engine.outlet(outlet).unwrap().unwrap().address,
        "Khreshchatyk 22"
    );
    assert_eq!(
        cards::heads_hex(&a.engine.card_doc(outlet).unwrap()),
        server_heads(&server, outlet).await
    );
    server.stop().await;
}
on_both_backends!(
    a_key_user_sees_the_agents_edits_the_conflict_and_the_history_and_accepts_a_proposal,
    in_the_back_office
);

async fn card_follows_moves(db: &TestDb) {
    let (server, agents, distributor) = shared_world(db).await;
    let a = phone(&server, &agents[0]).await;
    let c = phone(&server, &agents[2]).await;
    let outlet = a.outlet_ids()[0];
    assert!(!c.outlet_ids().contains(&outlet));
    // Edited in its territory, many times (so that it is compacted too), then moved by an
    // import to the third agent's territory.
    for i in 0..20 {
        assert!(
            a.engine
                .edit_card(outlet, &[CardEdit::Notes(format!("line {i}"))])
                .unwrap()
        );
        if i % 5 == 4 {
            a.sync().await;
        }
    }
    a.sync().await;
    let (_, c_territory) = position_of(&server, &agents[2]).await;
    let (code, name): (String, String) =
        sqlx::query_as("SELECT code, name FROM outlets WHERE id = $1")
            .bind(outlet)
            .fetch_one(server.store.test_pool())
            .await
            .unwrap();
    server
        .store
        .upsert_outlets(
            distributor,
            &[fieldsync_server::store::world::OutletPatch {
                code,
                name,
                address: None,
                contact_name: None,
                phone: None,
                channel: None,
                territory_id: Some(Some(c_territory)),
                location: None,
                price_list_id: None,
            }],
            fieldsync_server::store::world::PatchMode::Apply,
        )
        .await
        .unwrap();
    c.sync().await;
    a.sync().await;
    assert!(c.outlet_ids().contains(&outlet));
    assert!(!a.outlet_ids().contains(&outlet));
    assert_eq!(
        view(&c.engine, outlet).notes,
        "line 19",
        "the card came with the outlet"
    );
    // The new territory edits it; the server and the phone agree.
    assert!(
        c.engine
            .edit_card(outlet, &[monday("08:00-18:00")])
            .unwrap()
    );
    c.sync().await;
    let heads = server_heads(&server, outlet).await;
    assert_eq!(cards::heads_hex(&c.engine.card_doc(outlet).unwrap()), heads);
    // The old territory's phone dropped it.
    assert!(a.engine.card(outlet).unwrap().view.notes.is_empty());

    // A position moved into a territory receives the cards of its outlets.
    let b = phone(&server, &agents[1]).await;
    let (b_position, _) = position_of(&server, &agents[1]).await;
    server
        .store
        .move_org_unit(distributor, b_position, Some(c_territory))
        .await
        .unwrap();
    b.sync().await;
    assert_eq!(view(&b.engine, outlet).notes, "line 19");
    assert_eq!(cards::heads_hex(&b.engine.card_doc(outlet).unwrap()), heads);
    server.stop().await;
}
on_both_backends!(
    a_card_follows_its_outlet_to_another_territory_and_a_moved_position_gets_its_new_cards,
    card_follows_moves
);
