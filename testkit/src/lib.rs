//! The test kit of every test and benchmark: fresh databases (a temp SQLite file, or a uniquely named PostgreSQL
//! database dropped afterwards), a real server on port 0, and a raw protocol client.
//!
//! PostgreSQL runs when `FIELDSYNC_TEST_POSTGRES_URL` is set (`.ci/run` sets it), e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`; each test creates its own database there.

pub mod browser;
pub mod smtp;

use fieldsync_protocol::v1;
use fieldsync_protocol::{PROTOCOL_VERSION, ids};
use fieldsync_server::seed::{SeededAgent, WorldSpec};
use fieldsync_server::{AppState, Store};
use prost::Message;
use sqlx::Executor;
use tokio::sync::oneshot;
use uuid::Uuid;

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database for one test.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
    pg_admin: Option<(String, String)>,
}

/// The PostgreSQL admin URL, when PostgreSQL tests are enabled.
pub fn postgres_url() -> Option<String> {
    std::env::var("FIELDSYNC_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

impl TestDb {
    /// A fresh database for a test: a temp SQLite file, or a PostgreSQL database next to
    /// `FIELDSYNC_TEST_POSTGRES_URL` (`None` when that is not set: the case is skipped).
    pub async fn new(backend: Backend) -> Option<TestDb> {
        let admin = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(postgres_url()?),
        };
        Some(
            TestDb::create(admin.as_deref())
                .await
                .expect("create test database"),
        )
    }

    /// `None`: a temp SQLite file. `Some(postgres://.../db)`: a fresh, uniquely named
    /// database on that server, dropped by [`TestDb::cleanup`].
    pub async fn create(postgres_admin_url: Option<&str>) -> anyhow::Result<TestDb> {
        match postgres_admin_url {
            None => {
                let dir = tempfile::tempdir()?;
                Ok(TestDb {
                    url: format!("sqlite://{}", dir.path().join("test.db").display()),
                    backend: Backend::Sqlite,
                    _dir: Some(dir),
                    pg_admin: None,
                })
            }
            Some(admin) => {
                sqlx::any::install_default_drivers();
                let name = format!("fieldsync_test_{}", Uuid::new_v4().simple());
                let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(admin).await?;
                conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await?;
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
                Ok(TestDb {
                    url: format!("{base}/{name}"),
                    backend: Backend::Postgres,
                    _dir: None,
                    pg_admin: Some((admin.to_string(), name)),
                })
            }
        }
    }

    /// `sqlite` or `postgres`, as benchmark tables name the backend.
    pub fn label(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Drops a PostgreSQL test database (SQLite files go with their temp dir).
    pub async fn cleanup(self) {
        if let Some((admin, name)) = &self.pg_admin
            && let Ok(mut conn) = <sqlx::AnyConnection as sqlx::Connection>::connect(admin).await
        {
            let _ = conn
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await;
        }
    }
}

/// Runs a test body on a backend, or says why it is skipped.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::TestDb::new($crate::Backend::Sqlite).await.unwrap();
                super::$body(&db).await;
                db.cleanup().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::TestDb::new($crate::Backend::Postgres).await else {
                    eprintln!("FIELDSYNC_TEST_POSTGRES_URL not set: PostgreSQL case skipped");
                    return;
                };
                super::$body(&db).await;
                db.cleanup().await;
            }
        }
    };
}

/// A real server on a port-0 listener.
pub struct TestServer {
    pub url: String,
    pub store: Store,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(db: &TestDb) -> TestServer {
        let store = Store::connect(&db.url).await.expect("open test database");
        Self::start_with(store).await
    }

    pub async fn start_with(store: Store) -> TestServer {
        Self::start_configured(store, |_| {}).await
    }

    /// Starts a server whose state (limits, settings) `configure` adjusts first.
    pub async fn start_configured(
        store: Store,
        configure: impl FnOnce(&mut AppState),
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut state = AppState::new(store.clone());
        configure(&mut state);
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn({
            let state = state.clone();
            async move {
                fieldsync_server::serve(listener, state, async {
                    let _ = rx.await;
                })
                .await
                .expect("serve");
            }
        });
        TestServer {
            url,
            store,
            state,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stops accepting and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// A small world: `agents` agents, 40 outlets each... sized for tests.
pub fn small_world(code: &str, agents: usize) -> WorldSpec {
    WorldSpec {
        distributor_code: code.into(),
        distributor_name: format!("{code} test distribution"),
        agents,
        outlets: agents * 20,
        products: 60,
        ..WorldSpec::demo()
    }
}

pub async fn seed(store: &Store, spec: &WorldSpec) -> Vec<SeededAgent> {
    fieldsync_server::seed::seed_world(store, spec)
        .await
        .expect("seed")
}

/// A `v1` push or pull request of an incremental sync in `session`, sent now, with the request's
/// own fields given after it.
macro_rules! incremental {
    ($request:ident, $session:expr, { $($field:ident $(: $value:expr)?),* $(,)? }) => {
        v1::$request {
            protocol_version: PROTOCOL_VERSION,
            session_id: ids::to_wire($session),
            mode: v1::SyncMode::Incremental as i32,
            device_time_ms: fieldsync_server::store::now_ms(),
            $($field $(: $value)?,)*
            ..Default::default()
        }
    };
}

/// A real server on the test database with one distributor, ACME, of `agents` agents seeded;
/// returns the agents too.
pub async fn acme_server(db: &TestDb, agents: usize) -> (TestServer, Vec<SeededAgent>) {
    let server = TestServer::start(db).await;
    let seeded = seed(&server.store, &small_world("ACME", agents)).await;
    (server, seeded)
}

/// A distributor's system on the JSON API, with an API key of its own.
pub struct ApiClient {
    pub http: reqwest::Client,
    pub url: String,
    pub key: String,
    /// The distributor's id.
    pub distributor: i64,
}

impl ApiClient {
    /// Creates an API key named `name` for the distributor with code `distributor`.
    pub async fn new(server: &TestServer, distributor: &str, name: &str) -> ApiClient {
        let d = server.store.distributor_id(distributor).await.unwrap();
        let (_, key) = server
            .store
            .create_api_key(d, name, fieldsync_server::store::now_ms())
            .await
            .unwrap();
        ApiClient {
            http: reqwest::Client::new(),
            url: server.url.clone(),
            key,
            distributor: d,
        }
    }

    /// Posts an import file; `what` is the kind and the query string, as in
    /// `outlets?format=csv`. Returns the answer's status and job.
    pub async fn import(
        &self,
        what: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        let (status, text) = self.import_raw(what, None, body).await;
        (status, serde_json::from_str(&text).unwrap())
    }

    /// [`ApiClient::import`] with the file's `content_type` if given, and the answer's text.
    pub async fn import_raw(
        &self,
        what: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (u16, String) {
        let mut req = self
            .http
            .post(format!("{}/api/v1/imports/{what}", self.url))
            .bearer_auth(&self.key);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.body(body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }
}

/// The JSON document a GET of `url` answers.
pub async fn get_json(url: &str) -> serde_json::Value {
    serde_json::from_str(&reqwest::get(url).await.unwrap().text().await.unwrap()).unwrap()
}

/// A protocol-level client: sends exactly the bytes a test wants.
#[derive(Clone)]
pub struct RawClient {
    pub url: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
}

/// A decoded response: status and body bytes.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn decode<T: Message + Default>(&self) -> T {
        T::decode(self.body.as_slice())
            .unwrap_or_else(|e| panic!("status {}: undecodable body: {e}", self.status))
    }
    /// The `Error` of a failed call.
    pub fn error(&self) -> v1::Error {
        assert!(self.status >= 400, "expected an error, got {}", self.status);
        self.decode()
    }
}

impl RawClient {
    pub fn new(url: &str) -> RawClient {
        RawClient {
            url: url.to_string(),
            http: reqwest::Client::new(),
            token: None,
        }
    }

    pub async fn post_bytes(&self, path: &str, body: Vec<u8>) -> RawResponse {
        let mut req = self
            .http
            .post(format!("{}{}", self.url, path))
            .header("content-type", fieldsync_protocol::CONTENT_TYPE)
            .body(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        RawResponse {
            status,
            body: resp.bytes().await.expect("body").to_vec(),
        }
    }

    pub async fn post(&self, path: &str, msg: &impl Message) -> RawResponse {
        self.post_bytes(path, msg.encode_to_vec()).await
    }

    pub async fn activate(&self, login: &str, pin: &str) -> RawResponse {
        self.post(
            fieldsync_protocol::paths::ACTIVATE,
            &v1::ActivateRequest {
                protocol_version: PROTOCOL_VERSION,
                login: login.into(),
                pin: pin.into(),
                device_uid: ids::to_wire(ids::new_id()),
                device_model: "test".into(),
                app_version: "test".into(),
                device_time_ms: fieldsync_server::store::now_ms(),
            },
        )
        .await
    }

    /// Activates and keeps the token; panics if refused.
    pub async fn activated(url: &str, agent: &SeededAgent) -> (RawClient, v1::ActivateResponse) {
        let mut c = RawClient::new(url);
        let r = c.activate(&agent.login, &agent.pin).await;
        assert_eq!(r.status, 200, "activation failed: {:?}", r.error());
        let a: v1::ActivateResponse = r.decode();
        c.token = Some(a.device_token.clone());
        (c, a)
    }

    pub async fn push(&self, session: Uuid, mutations: Vec<v1::Mutation>) -> RawResponse {
        let request = incremental!(PushRequest, session, {
            app_version: "test".into(),
            mutations,
        });
        self.post(fieldsync_protocol::paths::PUSH, &request).await
    }

    pub async fn pull(&self, session: Uuid, cursor: Vec<u8>, max: u32) -> RawResponse {
        let request = incremental!(PullRequest, session, {
            cursor,
            max_changes: max,
        });
        self.post(fieldsync_protocol::paths::PULL, &request).await
    }

    /// Pulls every page; returns all changes.
    pub async fn pull_all(&self, session: Uuid) -> Vec<v1::Change> {
        self.pull_from(session, Vec::new()).await.0
    }

    /// Pulls every page after `cursor`; returns the changes and the cursor to go on from.
    pub async fn pull_from(
        &self,
        session: Uuid,
        mut cursor: Vec<u8>,
    ) -> (Vec<v1::Change>, Vec<u8>) {
        let mut all = Vec::new();
        loop {
            let r = self.pull(session, cursor, 1000).await;
            assert_eq!(r.status, 200);
            let page: v1::PullResponse = r.decode();
            all.extend(page.changes);
            cursor = page.next_cursor;
            if !page.has_more {
                return (all, cursor);
            }
        }
    }
}

/// A device that activated as an agent and pulled everything in one sync session: its
/// client, the session, what it learned, and a builder numbering its mutations from 1.
pub struct SyncedDevice {
    pub client: RawClient,
    pub session: Uuid,
    pub known: Known,
    pub builder: MutationBuilder,
}

impl SyncedDevice {
    /// Activates as `agent` (panics if refused) and pulls every page.
    pub async fn new(url: &str, agent: &SeededAgent) -> SyncedDevice {
        let (client, session, known) = synced_device(url, agent).await;
        SyncedDevice {
            client,
            session,
            known,
            builder: MutationBuilder::new(),
        }
    }

    /// The first outlet it knows.
    pub fn outlet(&self) -> v1::Outlet {
        self.known.outlets[0].clone()
    }

    /// One whole visit to the first outlet, not pushed yet: its start, then one order per entry
    /// of `orders` with that many lines, then its end. Returns the visit, the orders and the batch.
    pub fn visit_with_orders(&mut self, orders: &[usize]) -> (Uuid, Vec<Uuid>, Vec<v1::Mutation>) {
        let outlet = self.outlet();
        let visit = ids::new_id();
        let mut batch = vec![self.builder.start_visit(visit, &outlet)];
        let mut ids = Vec::new();
        for &lines in orders {
            let (id, m) = self.builder.order(&self.known, visit, &outlet, lines);
            ids.push(id);
            batch.push(m);
        }
        batch.push(self.builder.end_visit(visit, &outlet));
        (visit, ids, batch)
    }

    /// Pushes `mutations` in its session.
    pub async fn push(&self, mutations: Vec<v1::Mutation>) -> RawResponse {
        self.client.push(self.session, mutations).await
    }
}

/// The parts of a [`SyncedDevice`]: its client, its sync session and what it learned.
pub async fn synced_device(url: &str, agent: &SeededAgent) -> (RawClient, Uuid, Known) {
    let (client, _) = RawClient::activated(url, agent).await;
    let session = ids::new_id();
    let known = Known::from_changes(&client.pull_all(session).await);
    (client, session, known)
}

/// A real agent engine with its database at `path`, activated as `agent` against `url` over
/// HTTP (nothing synced yet), and the transport it uses.
pub async fn activated_engine(
    url: &str,
    agent: &SeededAgent,
    path: &std::path::Path,
    device_model: &str,
    app_version: &str,
) -> anyhow::Result<(fieldsync_agent::Engine, fieldsync_agent::HttpTransport)> {
    let engine = fieldsync_agent::Engine::open(path)?;
    let transport = fieldsync_agent::HttpTransport::new(url);
    engine
        .activate(
            &transport,
            url,
            &agent.login,
            &agent.pin,
            device_model,
            app_version,
        )
        .await?;
    Ok((engine, transport))
}

/// An agent's phone: the real engine, activated over HTTP and synced once.
pub struct Phone {
    pub engine: fieldsync_agent::Engine,
    pub transport: fieldsync_agent::HttpTransport,
    _dir: tempfile::TempDir,
}

impl Phone {
    pub async fn activated(url: &str, agent: &SeededAgent) -> Phone {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.db");
        let (engine, transport) = activated_engine(url, agent, &path, "phone", "1.0")
            .await
            .unwrap();
        let phone = Phone {
            engine,
            transport,
            _dir: dir,
        };
        phone.sync().await;
        phone
    }

    /// One sync, which must succeed.
    pub async fn sync(&self) {
        self.engine.sync(&self.transport).await.unwrap();
    }

    /// One sync, as the engine reports it.
    pub async fn try_sync(
        &self,
    ) -> Result<fieldsync_agent::SyncReport, fieldsync_agent::SyncError> {
        self.engine.sync(&self.transport).await
    }

    /// The product's price in the price list as the phone has it, if it has one.
    pub fn price(&self, product: i64, price_list: i64) -> Option<i64> {
        let seen = self.engine.product(product, price_list).unwrap();
        seen.expect("the product is on the phone").price_minor
    }

    /// The outlet's name as the phone has it, if it has it.
    pub fn outlet_name(&self, id: i64) -> Option<String> {
        self.engine.outlet(id).unwrap().map(|o| o.name)
    }

    /// The ids of every outlet on the phone, in order.
    pub fn outlet_ids(&self) -> Vec<i64> {
        let all = self.engine.search_outlets("", 100_000).unwrap();
        let mut ids: Vec<i64> = all.into_iter().map(|o| o.id).collect();
        ids.sort();
        ids
    }
}

/// The text in `page` between the first `after` and the next `until` (a form field's value,
/// a cell's text).
pub fn text_between<'a>(page: &'a str, after: &str, until: char) -> Option<&'a str> {
    page.split(after)
        .nth(1)
        .and_then(|rest| rest.split(until).next())
}

/// What a device learned from a full pull, for building valid mutations.
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub outlets: Vec<v1::Outlet>,
    pub products: Vec<v1::Product>,
    pub prices: Vec<v1::Price>,
    pub warehouses: Vec<v1::Warehouse>,
    pub questionnaires: Vec<v1::Questionnaire>,
    pub routes: Vec<v1::Route>,
}

impl Known {
    pub fn from_changes(changes: &[v1::Change]) -> Known {
        use v1::change::Entity;
        let mut k = Known::default();
        for c in changes {
            match c.entity.clone() {
                Some(Entity::Outlet(o)) => k.outlets.push(o),
                Some(Entity::Product(p)) => k.products.push(p),
                Some(Entity::Price(p)) => k.prices.push(p),
                Some(Entity::Warehouse(w)) => k.warehouses.push(w),
                Some(Entity::Questionnaire(q)) => k.questionnaires.push(q),
                Some(Entity::Route(r)) => k.routes.push(r),
                _ => {}
            }
        }
        k
    }

    pub fn price(&self, price_list: i64, product: i64) -> i64 {
        self.prices
            .iter()
            .find(|p| p.price_list_id == price_list && p.product_id == product)
            .map(|p| p.price_minor)
            .expect("price")
    }
}

/// Builds mutations with consecutive sequence numbers.
pub struct MutationBuilder {
    pub next_seq: u64,
}

impl MutationBuilder {
    pub fn new() -> Self {
        MutationBuilder { next_seq: 1 }
    }

    pub fn wrap(&mut self, kind: v1::mutation::Kind) -> v1::Mutation {
        let seq = self.next_seq;
        self.next_seq += 1;
        v1::Mutation {
            seq,
            id: ids::to_wire(ids::new_id()),
            device_time_ms: fieldsync_server::store::now_ms(),
            kind: Some(kind),
        }
    }

    pub fn start_visit(&mut self, visit: Uuid, outlet: &v1::Outlet) -> v1::Mutation {
        self.wrap(v1::mutation::Kind::VisitStarted(v1::VisitStarted {
            visit_id: ids::to_wire(visit),
            outlet_id: outlet.id,
            route_id: 0,
            fixes: vec![fix_at(outlet.lat_e7, outlet.lon_e7, 80)],
        }))
    }

    pub fn end_visit(&mut self, visit: Uuid, outlet: &v1::Outlet) -> v1::Mutation {
        self.wrap(v1::mutation::Kind::VisitEnded(v1::VisitEnded {
            visit_id: ids::to_wire(visit),
            fixes: vec![fix_at(outlet.lat_e7, outlet.lon_e7, 50)],
        }))
    }

    /// A valid order of `lines` products for an outlet within a visit.
    pub fn order(
        &mut self,
        known: &Known,
        visit: Uuid,
        outlet: &v1::Outlet,
        lines: usize,
    ) -> (Uuid, v1::Mutation) {
        let id = ids::new_id();
        let lines: Vec<v1::OrderLine> = known
            .products
            .iter()
            .take(lines)
            .enumerate()
            .map(|(i, p)| {
                let price = known.price(outlet.price_list_id, p.id);
                let q = (i as i64 + 1) * 1000;
                v1::OrderLine {
                    product_id: p.id,
                    quantity_milli: q,
                    price_minor: price,
                    sum_minor: fieldsync_protocol::money::line_sum(q, price).unwrap(),
                    comment: String::new(),
                }
            })
            .collect();
        let total = lines.iter().map(|l| l.sum_minor).sum();
        let m = self.wrap(v1::mutation::Kind::OrderPlaced(v1::OrderPlaced {
            order_id: ids::to_wire(id),
            visit_id: ids::to_wire(visit),
            outlet_id: outlet.id,
            price_list_id: outlet.price_list_id,
            warehouse_id: known.warehouses[0].id,
            lines,
            total_minor: total,
            comment: "test".into(),
            delivery_date: String::new(),
            overdue_reason: String::new(),
        }));
        (id, m)
    }
}

impl Default for MutationBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// A GPS fix at a point with an accuracy in decimetres.
pub fn fix_at(lat_e7: i32, lon_e7: i32, accuracy_dm: u32) -> v1::GpsFix {
    v1::GpsFix {
        lat_e7,
        lon_e7,
        accuracy_dm,
        provider: v1::LocationProvider::Gps as i32,
        mock: false,
        device_time_ms: fieldsync_server::store::now_ms(),
    }
}

/// Counts rows of a table with a simple filter-less query.
pub async fn count(store: &Store, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(store.test_pool())
        .await
        .expect("count");
    n
}

/// The number a `SELECT COUNT(...) ...` query answers, with `binds` bound to its placeholders
/// in order.
pub async fn count_where(store: &Store, sql: &str, binds: &[&str]) -> i64 {
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()));
    for b in binds {
        query = query.bind(*b);
    }
    let (n,): (i64,) = query.fetch_one(store.test_pool()).await.expect("count");
    n
}

/// A counter or gauge from a server's `/metrics`.
pub async fn metric(url: &str, name: &str) -> u64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no metric {name}"))
        .trim()
        .parse()
        .expect("a number")
}

/// Today's date on the server's clock (UTC), as routes are dated.
pub fn today() -> String {
    use fieldsync_protocol::dates;
    dates::format_day_number(dates::day_of_ms(fieldsync_server::store::now_ms()))
}

/// Saves a screenshot of the browser as `NAME-BACKEND.png` into `FIELDSYNC_WEB_SHOTS`, when set
/// (CI keeps them).
pub async fn shot(b: &browser::Browser, db: &TestDb, name: &str) {
    if let Ok(dir) = std::env::var("FIELDSYNC_WEB_SHOTS") {
        let _ = std::fs::create_dir_all(&dir);
        let path = std::path::Path::new(&dir).join(format!("{name}-{:?}.png", db.backend));
        b.screenshot(&path).await;
    }
}
