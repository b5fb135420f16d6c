//! `fieldsync-sim cards`: agents who share a territory edit the shared cards of its outlets
//! concurrently, offline and through a faulty network, with real agent engines; then every
//! replica is compared with what the server serves.
//!
//! Each agent activates, pulls, then makes `edits` random card edits on the first `outlets`
//! outlets of its territory (hours, contact people, notes, tags, proposals), syncing now and
//! then through the fault injector (drops, duplicates, offline stretches, process restarts).
//! An optional key user (the back office, in-process tests) edits the same cards meanwhile.
//! Once everyone's outbox is empty, every engine syncs again over a clean line, and the server's
//! cards are read the way a new device would: a pull from the start.
//!
//! The summary: `outlets`, `edits` (changes made), `converged` (every replica's heads equal the
//! server's for every card), `divergent` (replica-card pairs that differ), `conflicts` (fields
//! the server's cards show as conflicting) and `refused` (card edits the server refused).
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fieldsync_agent::{Engine, HttpTransport, Transport};
use fieldsync_protocol::automerge::Automerge;
use fieldsync_protocol::cards::{self, CardEdit, CardView, Hours, WEEKDAYS};
use fieldsync_protocol::v1;
use fieldsync_protocol::{PROTOCOL_VERSION, paths};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::faults::{FaultSpec, FaultTransport, NetStats};
use crate::field::{AgentOutcome, Spread, server_list, sync};

/// Edits made by someone who is not a phone (the back office), for in-process runs.
pub trait KeyUser: Send + Sync {
    /// Edits the card of the `outlet_index`-th outlet (by id) of the first agent's territory;
    /// returns that outlet and the change's hash (none: nothing changed).
    fn edit<'a>(
        &'a self,
        outlet_index: usize,
        edits: Vec<CardEdit>,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<Option<(i64, String)>>> + Send + 'a>>;
}

pub struct CardsOptions {
    pub server: String,
    pub agents: Vec<(String, String)>,
    /// Cards edited: the first this many outlets (by id) of each agent's territory.
    pub outlets: usize,
    /// Edits per agent (and per key user).
    pub edits: usize,
    pub faults: FaultSpec,
    pub seed: u64,
    pub workdir: PathBuf,
    pub deadline: Duration,
    pub key_user: Option<Arc<dyn KeyUser>>,
}

/// One edit as made: by whom, which change (hex hash), which field and value. What the
/// in-process property test checks conflicts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditRecord {
    pub who: String,
    pub outlet_id: i64,
    pub hash: String,
    pub field: String,
    pub value: String,
}

pub struct CardsResult {
    pub json: serde_json::Value,
    pub divergent: usize,
    /// The server's card of each edited outlet (as a new device would merge it).
    pub server_docs: BTreeMap<i64, Automerge>,
    /// Each engine's card of each edited outlet.
    pub replica_docs: Vec<BTreeMap<i64, Automerge>>,
    pub edits: Vec<EditRecord>,
}

/// A random edit of one card field, as `who` would make it on the card as `view` shows it;
/// returns the edit, the field's path and the value written (for the record).
pub fn random_edit(rng: &mut StdRng, view: &CardView, who: &str) -> (CardEdit, String, String) {
    let notes = view.notes.as_str();
    const VALUES: [&str; 4] = ["08:00-18:00", "09:00-17:00", "10:00-14:00", ""];
    match rng.random_range(0..10) {
        0..=3 => {
            let hours = if rng.random_bool(0.5) {
                Hours::Opening
            } else {
                Hours::Delivery
            };
            // Few days, so that concurrent writes to one field happen.
            let day = WEEKDAYS[rng.random_range(0..2)];
            let value = VALUES[rng.random_range(0..VALUES.len())].to_string();
            (
                CardEdit::Hours {
                    hours,
                    day: day.to_string(),
                    value: value.clone(),
                },
                format!("{}/{day}", hours.key()),
                value,
            )
        }
        4..=5 => {
            // An existing contact person, or a new one (new ids are the author's own, as the
            // apps make them unique).
            let id = if !view.contacts.is_empty() && rng.random_bool(0.8) {
                view.contacts[rng.random_range(0..view.contacts.len())]
                    .id
                    .clone()
            } else {
                format!("{who}-{}", rng.random_range(0..1_000_000))
            };
            let phone = format!("+38044{:07}", rng.random_range(0..10_000_000));
            (
                CardEdit::Contact {
                    id: id.clone(),
                    name: None,
                    role: None,
                    phone: Some(phone.clone()),
                },
                format!("contacts/{id}/phone"),
                phone,
            )
        }
        6..=7 => {
            // A line inserted at a random line boundary: everyone's lines must survive.
            let mut lines: Vec<&str> = notes.lines().collect();
            if lines.len() > 12 {
                lines.remove(rng.random_range(0..lines.len()));
            }
            let line = format!("note {}", rng.random_range(0..1_000_000));
            let at = rng.random_range(0..=lines.len());
            let mut new_lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            new_lines.insert(at, line.clone());
            (CardEdit::Notes(new_lines.join("\n")), "notes".into(), line)
        }
        8 => {
            let tag = format!("tag{}", rng.random_range(0..4));
            let on = rng.random_bool(0.6);
            (
                CardEdit::Tag {
                    tag: tag.clone(),
                    on,
                },
                format!("tags/{tag}"),
                on.to_string(),
            )
        }
        _ => {
            let value = format!("Street {}", rng.random_range(1..100));
            (
                CardEdit::Propose {
                    field: "address".into(),
                    value: value.clone(),
                },
                "proposals/address".into(),
                value,
            )
        }
    }
}

/// What one agent did.
#[derive(Default)]
struct Agent {
    outcome: AgentOutcome,
    edits: Vec<EditRecord>,
    outlets: Vec<i64>,
}

async fn drive_agent(
    opts: &CardsOptions,
    index: usize,
    engine: &mut Engine,
    open: &(dyn Fn() -> Result<Engine, fieldsync_agent::EngineError> + Send + Sync),
    faulty: &FaultTransport<Spread>,
    deadline: Instant,
    agent: &mut Agent,
) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(opts.seed.wrapping_mul(7_919).wrapping_add(index as u64));
    sync(engine, open, faulty, deadline, true, &mut agent.outcome).await?;
    let mut outlets: Vec<i64> = engine
        .search_outlets("", 1_000_000)?
        .into_iter()
        .map(|o| o.id)
        .collect();
    outlets.sort_unstable();
    outlets.truncate(opts.outlets);
    anyhow::ensure!(!outlets.is_empty(), "agent {index} has no outlets");
    agent.outlets = outlets.clone();
    let login = &opts.agents[index].0;
    for _ in 0..opts.edits {
        let outlet = outlets[rng.random_range(0..outlets.len())];
        let view = engine.card(outlet)?.view;
        let (edit, field, value) = random_edit(&mut rng, &view, login);
        let before = engine.card_doc(outlet)?.get_heads();
        match engine.edit_card(outlet, std::slice::from_ref(&edit)) {
            Ok(true) => {
                let after = engine.card_doc(outlet)?;
                let hash = after
                    .get_heads()
                    .into_iter()
                    .find(|h| !before.contains(h))
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                agent.edits.push(EditRecord {
                    who: login.clone(),
                    outlet_id: outlet,
                    hash,
                    field,
                    value,
                });
            }
            Ok(false) => {}
            // A card at its limits: the phone refuses the edit before queuing it.
            Err(fieldsync_agent::WorkflowError::InvalidCard(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if rng.random_bool(0.3) {
            sync(engine, open, faulty, deadline, false, &mut agent.outcome).await?;
        }
        tokio::task::yield_now().await;
    }
    // Everything out, through the faults (the network is back: drops, duplicates and
    // restarts go on).
    faulty.set_offline(false);
    sync(engine, open, faulty, deadline, true, &mut agent.outcome).await?;
    Ok(())
}

/// Reads the server's cards of `outlets` as a new device would: a pull from the start, with
/// every card payload merged into genesis.
pub async fn server_cards(
    url: &str,
    token: &str,
    outlets: &[i64],
) -> anyhow::Result<BTreeMap<i64, Automerge>> {
    let http = HttpTransport::new(url);
    let session = fieldsync_protocol::ids::to_wire(fieldsync_protocol::ids::new_id());
    let mut docs: BTreeMap<i64, Automerge> =
        outlets.iter().map(|o| (*o, cards::genesis())).collect();
    let mut cursor = Vec::new();
    loop {
        let req = v1::PullRequest {
            protocol_version: PROTOCOL_VERSION,
            session_id: session.clone(),
            mode: v1::SyncMode::FullResync as i32,
            cursor: cursor.clone(),
            max_changes: 5000,
            device_time_ms: 0,
            utc_offset_minutes: 0,
        };
        let (status, body) = http
            .post(paths::PULL, req.encode_to_vec(), Some(token))
            .await
            .map_err(|e| anyhow::anyhow!("pull: {}", e.0))?;
        anyhow::ensure!(status == 200, "pull answered {status}");
        let page = v1::PullResponse::decode(body)?;
        for c in &page.changes {
            if let Some(v1::change::Entity::OutletCard(card)) = &c.entity
                && let Some(doc) = docs.get_mut(&card.outlet_id)
            {
                doc.load_incremental(&card.automerge)?;
            }
        }
        cursor = page.next_cursor;
        if !page.has_more {
            return Ok(docs);
        }
    }
}

/// Fields of the card shown as conflicting.
pub fn conflict_count(doc: &Automerge) -> usize {
    CardView::read(doc).conflicts().len()
}

pub async fn run_cards(opts: CardsOptions) -> anyhow::Result<CardsResult> {
    let started = Instant::now();
    let deadline = started + opts.deadline;
    let servers = server_list(&opts.server)?;
    let stats = Arc::new(NetStats::default());
    let opts = Arc::new(opts);
    let mut tasks = Vec::new();
    for index in 0..opts.agents.len() {
        let opts = opts.clone();
        let servers = servers.clone();
        let stats = stats.clone();
        tasks.push(tokio::spawn(async move {
            let mut agent = Agent::default();
            let path = opts.workdir.join(format!("cards-{index:05}.db"));
            let _ = std::fs::remove_file(&path);
            let open = || Engine::open(&path);
            let result = async {
                let mut engine = open()?;
                let (login, pin) = &opts.agents[index];
                let clean = Spread::new(&servers, index);
                let mut delay = Duration::from_millis(200);
                loop {
                    match engine
                        .activate(&clean, &servers[0], login, pin, "fieldsync-sim", "sim")
                        .await
                    {
                        Ok(_) => break,
                        Err(e) if e.is_retryable() && Instant::now() + delay < deadline => {
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(5));
                        }
                        Err(e) => anyhow::bail!("activation of {login}: {e}"),
                    }
                }
                let faulty = FaultTransport::new(
                    Spread::new(&servers, index),
                    opts.faults,
                    opts.seed.wrapping_add(index as u64 * 31),
                    stats,
                );
                drive_agent(
                    &opts,
                    index,
                    &mut engine,
                    &open,
                    &faulty,
                    deadline,
                    &mut agent,
                )
                .await?;
                Ok::<_, anyhow::Error>(engine)
            }
            .await;
            (index, agent, result)
        }));
    }
    // The key user edits the same cards while the agents work.
    let key_user_task = opts.key_user.clone().map(|ku| {
        let opts = opts.clone();
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(opts.seed ^ 0x5eed);
            let mut made = Vec::new();
            for _ in 0..opts.edits {
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..30))).await;
                let outlet_index = rng.random_range(0..opts.outlets.max(1));
                let (edit, field, value) = random_edit(&mut rng, &CardView::default(), "ku");
                // The key user edits from the form without reading the card here: hours,
                // tags and proposals (not notes or contact people, which need the card).
                if matches!(edit, CardEdit::Notes(_) | CardEdit::Contact { .. }) {
                    continue;
                }
                if let Some((outlet_id, hash)) = ku.edit(outlet_index, vec![edit]).await? {
                    made.push(EditRecord {
                        who: "key user".into(),
                        outlet_id,
                        hash,
                        field,
                        value,
                    });
                }
            }
            Ok::<_, anyhow::Error>(made)
        })
    });
    let mut engines: Vec<Option<Engine>> = Vec::new();
    let mut agents: Vec<Agent> = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        let (index, agent, result) = t.await?;
        match result {
            Ok(e) => engines.push(Some(e)),
            Err(e) => {
                errors.push(format!("agent {index}: {e:#}"));
                engines.push(None);
            }
        }
        agents.push(agent);
    }
    let mut edits: Vec<EditRecord> = agents.iter().flat_map(|a| a.edits.clone()).collect();
    if let Some(task) = key_user_task {
        edits.extend(task.await??);
    }
    // Everyone syncs over a clean line until no one has anything left to learn: two rounds
    // (the last pushes of one round reach the others in the next).
    for _ in 0..2 {
        for (i, e) in engines.iter().enumerate() {
            if let Some(e) = e {
                let clean = Spread::new(&servers, i);
                e.sync_with_retry(&clean, deadline).await?;
            }
        }
    }
    let mut all_outlets: Vec<i64> = agents.iter().flat_map(|a| a.outlets.clone()).collect();
    all_outlets.sort_unstable();
    all_outlets.dedup();
    let mut server_docs = BTreeMap::new();
    let mut replica_docs = Vec::new();
    let mut divergent = 0;
    let mut compared = 0;
    for (e, a) in engines.iter().zip(&agents) {
        let Some(e) = e else {
            replica_docs.push(BTreeMap::new());
            continue;
        };
        let token = e.device_token()?.unwrap_or_default();
        let docs = server_cards(&servers[0], &token, &a.outlets).await?;
        let mut mine = BTreeMap::new();
        for (outlet, server_doc) in docs {
            let doc = e.card_doc(outlet)?;
            compared += 1;
            if cards::heads_hex(&doc) != cards::heads_hex(&server_doc)
                || CardView::read(&doc) != CardView::read(&server_doc)
            {
                divergent += 1;
            }
            mine.insert(outlet, doc);
            server_docs.entry(outlet).or_insert(server_doc);
        }
        replica_docs.push(mine);
    }
    let conflicts: usize = server_docs.values().map(conflict_count).sum();
    let refused: u64 = engines
        .iter()
        .flatten()
        .map(|e| {
            e.outbox_status()
                .map(|s| s.refused.len() as u64)
                .unwrap_or(0)
        })
        .sum();
    let restarts: u64 = agents.iter().map(|a| a.outcome.restarts).sum();
    let by_outlet: HashMap<i64, usize> = edits.iter().fold(HashMap::new(), |mut m, e| {
        *m.entry(e.outlet_id).or_default() += 1;
        m
    });
    let json = json!({
        "agents": opts.agents.len(),
        "outlets": server_docs.len(),
        "edits": edits.len(),
        "edits_per_outlet_max": by_outlet.values().max().copied().unwrap_or(0),
        "compared": compared,
        "converged": divergent == 0 && errors.is_empty() && compared > 0,
        "divergent": divergent,
        "conflicts": conflicts,
        "refused": refused,
        "restarts": restarts,
        "requests": stats.requests.load(std::sync::atomic::Ordering::Relaxed),
        "faults_injected": stats.injected.load(std::sync::atomic::Ordering::Relaxed),
        "seconds": started.elapsed().as_secs_f64(),
        "errors": errors,
    });
    Ok(CardsResult {
        json,
        divergent,
        server_docs,
        replica_docs,
        edits,
    })
}
