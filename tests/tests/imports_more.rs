//! Imports of org units, price lists and sync points, and the dry run of every kind:
//! - each new kind creates, then updates, and a file of fewer columns changes only those;
//!   bad rows (an unknown parent code, a cycle in the org tree, an empty required cell, a
//!   kind that would change) are refused with their line numbers;
//! - a position moved by an import takes its phone along: after its next sync the real agent
//!   engine has the new territory's outlets and none of the old one's;
//! - sync points are granted by the head office only: a distributor's API key is refused;
//! - a dry run of every kind leaves every table (and the change log) as it was, and reports
//!   exactly what the real run of the same file then reports.

use fieldsync_server::Store;
use fieldsync_server::store::imports::{ImportJob, ImportScope, KINDS};
use fieldsync_server::store::keyusers::Role;
use fieldsync_server::store::now_ms;
use fieldsync_tests::*;

/// Runs an import of a CSV file straight on the store and waits for its job.
async fn run(
    s: &Store,
    scope: ImportScope,
    d: i64,
    kind: &str,
    csv: &str,
    dry_run: bool,
) -> ImportJob {
    s.start_import_as(
        scope,
        d,
        kind,
        "test",
        "file.csv",
        "csv",
        csv.to_string().into(),
        now_ms(),
        dry_run,
    )
    .await
    .unwrap()
    .finished()
    .await
    .unwrap()
}

/// A head office import of ACME.
async fn ho(s: &Store, d: i64, kind: &str, csv: &str) -> ImportJob {
    run(s, ImportScope::HeadOffice, d, kind, csv, false).await
}

/// The lines of a job's refused rows.
fn lines(job: &ImportJob) -> Vec<i64> {
    job.errors.iter().map(|e| e.0).collect()
}

/// The reason logged for `line`.
fn reason(job: &ImportJob, line: i64) -> &str {
    job.errors
        .iter()
        .find(|e| e.0 == line)
        .map(|e| e.1.as_str())
        .unwrap_or_default()
}

async fn id_of(s: &Store, sql: &str, key: &str) -> i64 {
    let (id,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(key.to_string())
        .fetch_one(s.test_pool())
        .await
        .unwrap();
    id
}

async fn unit(s: &Store, code: &str) -> i64 {
    id_of(s, "SELECT id FROM org_units WHERE code = $1", code).await
}

/// (parent, name, kind) of an org unit.
async fn unit_row(s: &Store, code: &str) -> (Option<i64>, String, String) {
    sqlx::query_as("SELECT parent_id, name, kind FROM org_units WHERE code = $1")
        .bind(code)
        .fetch_one(s.test_pool())
        .await
        .unwrap()
}

/// Everything an import may touch, as text: every row of every table it writes, the change
/// log and the counter behind it.
async fn snapshot(s: &Store) -> Vec<String> {
    macro_rules! rows {
        ($t:ty, $sql:expr) => {
            format!(
                "{}: {:?}",
                $sql,
                sqlx::query_as::<_, $t>($sql)
                    .fetch_all(s.test_pool())
                    .await
                    .unwrap()
            )
        };
    }
    type Seq = (i64, i64, i64, i64, i64);
    vec![
        rows!(
            (i64, String, String, Option<i64>, Option<i64>),
            "SELECT id, name, address, territory_id, price_list_id FROM outlets ORDER BY id"
        ),
        rows!(
            (i64, String, String, i64),
            "SELECT id, name, unit, must_stock FROM products ORDER BY id"
        ),
        rows!(
            (i64, String, String),
            "SELECT id, code, name FROM warehouses ORDER BY id"
        ),
        rows!(
            (i64, i64, i64, i64),
            "SELECT id, price_list_id, product_id, price_minor FROM prices ORDER BY id"
        ),
        rows!(
            (i64, i64, i64, i64),
            "SELECT warehouse_id, product_id, quantity_milli, updated_at_ms FROM stock ORDER BY warehouse_id, product_id"
        ),
        rows!(
            (String, i64, i64, i64),
            "SELECT invoice_number, line_no, quantity_milli, amount_minor FROM actual_sales ORDER BY invoice_number, line_no"
        ),
        rows!(
            (String, i64, String, i64, i64),
            "SELECT invoice_number, outlet_id, due_date, amount_minor, paid_minor FROM receivables ORDER BY invoice_number"
        ),
        rows!(
            (i64, String, String, i64, i64),
            "SELECT id, period, scope, scope_id, target FROM plans ORDER BY id"
        ),
        rows!(
            (i64, i64, String),
            "SELECT id, position_id, route_date FROM routes ORDER BY id"
        ),
        rows!(
            (i64, i64, i64),
            "SELECT route_id, stop_order, outlet_id FROM route_stops ORDER BY route_id, stop_order"
        ),
        rows!(
            (i64, Option<i64>, String, String),
            "SELECT id, parent_id, code, name FROM org_units ORDER BY id"
        ),
        rows!(
            (i64, String, String),
            "SELECT id, name, payment_form FROM price_lists ORDER BY id"
        ),
        rows!(
            (i64, Option<i64>),
            "SELECT id, default_price_list_id FROM distributors ORDER BY id"
        ),
        rows!(
            (i64, i64),
            "SELECT key_user_id, distributor_id FROM key_user_sync_points ORDER BY key_user_id, distributor_id"
        ),
        rows!(
            Seq,
            "SELECT seq, entity_kind, entity_id, scope_id, deleted FROM change_log ORDER BY seq"
        ),
        rows!((i64,), "SELECT value FROM counters ORDER BY name"),
    ]
}

async fn org_units(db: &TestDb) {
    let (server, _) = acme_server(db, 1).await;
    let s = &server.store;
    let d = s.distributor_id("ACME").await.unwrap();
    let team = unit(s, "ACME-T1").await;

    // The position comes before its new territory: it waits for it.
    let job = ho(
        s,
        d,
        "org_units",
        "code,name,kind,parent_code\nIMP-P,Import agent,position,IMP-TR\nIMP-TR,Import territory,territory,ACME-T1\n",
    )
    .await;
    assert_eq!(job.status, "done", "{job:?}");
    assert!(job.message.starts_with("2 created, 0 changed"), "{job:?}");
    let territory = unit(s, "IMP-TR").await;
    assert_eq!(
        unit_row(s, "IMP-P").await,
        (Some(territory), "Import agent".into(), "position".into())
    );
    assert_eq!(unit_row(s, "IMP-TR").await.0, Some(team));

    // Code and name only: renamed, left where it is.
    let job = ho(
        s,
        d,
        "org_units",
        "code,name\nIMP-TR,North\nIMP-P,Import agent\n",
    )
    .await;
    assert!(
        job.message.starts_with(
            "0 created, 1 changed, 1 unchanged; IMP-TR name: \"Import territory\" → \"North\""
        ),
        "{job:?}"
    );
    assert_eq!(
        unit_row(s, "IMP-TR").await,
        (Some(team), "North".into(), "territory".into())
    );

    // A parent code column: moved under the region, the name stays.
    let region = unit(s, "ACME-R1").await;
    let job = ho(
        s,
        d,
        "org_units",
        "code,name,parent_code\nIMP-TR,North,ACME-R1\n",
    )
    .await;
    assert!(
        job.message
            .contains("IMP-TR parent: \"ACME-T1\" → \"ACME-R1\""),
        "{job:?}"
    );
    assert_eq!(
        unit_row(s, "IMP-TR").await,
        (Some(region), "North".into(), "territory".into())
    );

    // Refused rows by line; the good one is applied.
    let (_, region_name, _) = unit_row(s, "ACME-R1").await;
    let units = count(s, "org_units").await;
    let csv = format!(
        "code,name,kind,parent_code\n\
         X1,No parent,team,NO-SUCH\n\
         ,Nameless,region,\n\
         ACME-R1,{region_name},,ACME-T1\n\
         C1,Circle 1,territory,C2\n\
         C2,Circle 2,territory,C1\n\
         IMP-TR,North,team,ACME-R1\n\
         GOOD-R,Good region,region,\n\
         BAD-P,Misplaced,position,ACME-T1\n"
    );
    let job = ho(s, d, "org_units", &csv).await;
    assert_eq!(job.status, "partial", "{job:?}");
    assert_eq!(lines(&job), vec![2, 3, 4, 5, 6, 7, 9], "{job:?}");
    assert!(
        reason(&job, 2).contains("no org unit \"NO-SUCH\""),
        "{job:?}"
    );
    assert!(reason(&job, 3).contains("required"), "{job:?}");
    assert!(
        reason(&job, 4).contains("under itself or a unit below it"),
        "{job:?}"
    );
    assert!(
        reason(&job, 5).contains("under itself or a unit below it"),
        "{job:?}"
    );
    assert!(
        reason(&job, 6).contains("under itself or a unit below it"),
        "{job:?}"
    );
    assert!(reason(&job, 7).contains("kind does not change"), "{job:?}");
    assert!(
        reason(&job, 9).contains("a position under a territory"),
        "{job:?}"
    );
    assert_eq!(count(s, "org_units").await, units + 1);
    assert_eq!(unit_row(s, "ACME-R1").await.0, None);
    assert_eq!(unit_row(s, "GOOD-R").await.0, None);
    server.stop().await;
}
on_both_backends!(
    org_units_are_created_renamed_and_moved_by_code_and_bad_rows_are_refused_by_line,
    org_units
);

async fn moved_position(db: &TestDb) {
    let (server, agents) = acme_server(db, 2).await;
    let s = &server.store;
    let api = ApiClient::new(&server, "ACME", "test").await;
    let outlets_of = |territory: &'static str| async move {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT o.id FROM outlets o JOIN org_units t ON t.id = o.territory_id \
             WHERE t.code = $1 AND o.deleted = 0 ORDER BY o.id",
        )
        .bind(territory)
        .fetch_all(s.test_pool())
        .await
        .unwrap();
        rows.into_iter().map(|r| r.0).collect::<Vec<i64>>()
    };
    let phone = Phone::activated(&server.url, &agents[0]).await;
    let (in_t1, in_t2) = (
        outlets_of("ACME-TR0001").await,
        outlets_of("ACME-TR0002").await,
    );
    assert!(!in_t1.is_empty() && !in_t2.is_empty());
    assert_eq!(phone.outlet_ids(), in_t1);
    let (_, name, _) = unit_row(s, "ACME-P0001").await;
    let csv = format!("code,name,parent_code\nACME-P0001,{name},ACME-TR0002\n");

    // A dry run: the phone and the tables stay as they are.
    let before = snapshot(s).await;
    let (status, job) = api
        .import("org_units?format=csv&dry_run=1", csv.clone())
        .await;
    assert_eq!(
        (status, job["status"].as_str()),
        (200, Some("checked")),
        "{job}"
    );
    assert!(
        job["message"]
            .as_str()
            .unwrap()
            .contains("0 created, 1 changed"),
        "{job}"
    );
    assert_eq!(snapshot(s).await, before);
    phone.sync().await;
    assert_eq!(phone.outlet_ids(), in_t1);

    // The real move: after its next sync the phone has the new territory's outlets only.
    let (status, job) = api.import("org_units?format=csv", csv).await;
    assert_eq!(
        (status, job["status"].as_str()),
        (200, Some("done")),
        "{job}"
    );
    phone.sync().await;
    assert_eq!(
        phone.outlet_ids(),
        in_t2,
        "the moved phone has the new territory's outlets only"
    );
    server.stop().await;
}
on_both_backends!(
    a_position_moved_by_an_import_loses_the_outlets_it_no_longer_covers_on_its_phone,
    moved_position
);

async fn price_lists(db: &TestDb) {
    let (server, _) = acme_server(db, 1).await;
    let s = &server.store;
    let d = s.distributor_id("ACME").await.unwrap();
    let stored = || async {
        let row: (String, Option<i64>) = sqlx::query_as(
            "SELECT pl.payment_form, d.default_price_list_id FROM price_lists pl \
             JOIN distributors d ON d.id = pl.distributor_id WHERE pl.name = 'Imported list'",
        )
        .fetch_one(s.test_pool())
        .await
        .unwrap();
        row
    };
    let job = ho(
        s,
        d,
        "price_lists",
        "name,payment_form,default\nImported list,credit,yes\n",
    )
    .await;
    assert!(job.message.starts_with("1 created"), "{job:?}");
    let list = id_of(
        s,
        "SELECT id FROM price_lists WHERE name = $1",
        "Imported list",
    )
    .await;
    assert_eq!(stored().await, ("credit".into(), Some(list)));

    // Another payment form; the default stays without its column.
    let job = ho(
        s,
        d,
        "price_lists",
        "name,payment_form\nImported list,bank_transfer\n",
    )
    .await;
    assert!(
        job.message
            .contains("Imported list payment_form: \"credit\" → \"bank_transfer\""),
        "{job:?}"
    );
    assert_eq!(stored().await, ("bank_transfer".into(), Some(list)));
    // Just the name: nothing changes.
    let job = ho(s, d, "price_lists", "name\nImported list\n").await;
    assert!(
        job.message.starts_with("0 created, 0 changed, 1 unchanged"),
        "{job:?}"
    );
    // An empty default cell: no longer the default; the payment form stays.
    let job = ho(s, d, "price_lists", "name,default\nImported list,\n").await;
    assert!(job.message.starts_with("0 created, 1 changed"), "{job:?}");
    assert_eq!(stored().await, ("bank_transfer".into(), None));

    // Refused by line.
    let job = ho(
        s,
        d,
        "price_lists",
        "name,payment_form,default\n,cash,no\nBad form,cheque,no\nBad flag,cash,maybe\n",
    )
    .await;
    assert_eq!(job.status, "failed", "{job:?}");
    assert_eq!(lines(&job), vec![2, 3, 4]);
    assert!(
        reason(&job, 3).contains("cash, credit or bank_transfer"),
        "{job:?}"
    );

    // The prices import names it.
    let (code,): (String,) =
        sqlx::query_as("SELECT code FROM products WHERE distributor_id = $1 ORDER BY id LIMIT 1")
            .bind(d)
            .fetch_one(s.test_pool())
            .await
            .unwrap();
    let job = ho(
        s,
        d,
        "prices",
        &format!("price_list,product_code,price\nImported list,{code},5.00\n"),
    )
    .await;
    assert!(job.message.starts_with("1 created"), "{job:?}");
    server.stop().await;
}
on_both_backends!(
    price_lists_are_created_and_changed_by_name_and_bad_rows_are_refused_by_line,
    price_lists
);

async fn sync_points(db: &TestDb) {
    let (server, _) = acme_server(db, 1).await;
    let s = &server.store;
    seed(s, &small_world("OTHER", 1)).await;
    let d = s.distributor_id("ACME").await.unwrap();
    for (login, role) in [("kp-a", Role::KeyUser), ("ro-a", Role::ReadOnly)] {
        s.create_key_user(login, "secret123", role, &["ACME".into()], now_ms())
            .await
            .unwrap();
    }
    let grants = |login: &'static str| async move {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT d.code FROM key_user_sync_points g JOIN distributors d ON d.id = g.distributor_id \
             JOIN key_users k ON k.id = g.key_user_id WHERE k.login = $1 ORDER BY d.code",
        )
        .bind(login)
        .fetch_all(s.test_pool())
        .await
        .unwrap();
        rows.into_iter().map(|r| r.0).collect::<Vec<String>>()
    };

    let job = ho(s, d, "sync_points", "login,distributor_code\nkp-a,OTHER\n").await;
    assert!(job.message.starts_with("1 created"), "{job:?}");
    assert_eq!(grants("kp-a").await, vec!["ACME", "OTHER"]);
    let job = ho(s, d, "sync_points", "login,distributor_code\nkp-a,OTHER\n").await;
    assert!(
        job.message.starts_with("0 created, 0 changed, 1 unchanged"),
        "{job:?}"
    );
    let job = ho(
        s,
        d,
        "sync_points",
        "login,distributor_code,granted\nkp-a,ACME,no\n",
    )
    .await;
    assert!(job.message.starts_with("0 created, 1 changed"), "{job:?}");
    assert_eq!(grants("kp-a").await, vec!["OTHER"]);

    let job = ho(
        s,
        d,
        "sync_points",
        "login,distributor_code,granted\nnobody,ACME,yes\nkp-a,NOPE,yes\nkp-a,OTHER,no\nro-a,ACME,no\n,ACME,yes\n",
    )
    .await;
    assert_eq!(lines(&job), vec![2, 3, 4, 5, 6], "{job:?}");
    assert!(reason(&job, 2).contains("no key user"), "{job:?}");
    assert!(reason(&job, 3).contains("no distributor NOPE"), "{job:?}");
    assert!(
        reason(&job, 4).contains("at least one distributor"),
        "{job:?}"
    );
    assert!(reason(&job, 5).contains("see every distributor"), "{job:?}");
    assert!(reason(&job, 6).contains("required"), "{job:?}");
    assert_eq!(grants("kp-a").await, vec!["OTHER"]);
    assert_eq!(grants("ro-a").await, vec!["ACME"]);

    // A distributor's API key (and any distributor-scoped import) cannot grant itself more.
    let api = ApiClient::new(&server, "OTHER", "test").await;
    let before = snapshot(s).await;
    let (status, job) = api
        .import(
            "sync_points?format=csv",
            "login,distributor_code\nro-a,OTHER\n",
        )
        .await;
    assert_eq!(
        (status, job["status"].as_str()),
        (422, Some("failed")),
        "{job}"
    );
    assert!(
        job["message"]
            .as_str()
            .unwrap()
            .contains("head office only"),
        "{job}"
    );
    let job = run(
        s,
        ImportScope::Distributor,
        d,
        "sync_points",
        "login,distributor_code\nkp-a,ACME\n",
        false,
    )
    .await;
    assert_eq!(job.status, "failed");
    assert_eq!(snapshot(s).await, before);
    server.stop().await;
}
on_both_backends!(
    sync_points_are_granted_and_taken_back_by_the_head_office_only,
    sync_points
);

async fn dry_runs(db: &TestDb) {
    let (server, _) = acme_server(db, 2).await;
    let s = &server.store;
    seed(s, &small_world("OTHER", 1)).await;
    s.create_key_user(
        "kp-a",
        "secret123",
        Role::KeyUser,
        &["ACME".into()],
        now_ms(),
    )
    .await
    .unwrap();
    let d = s.distributor_id("ACME").await.unwrap();
    let text = |sql: &'static str| async move {
        let row: (String, String) = sqlx::query_as(sql)
            .bind(d)
            .fetch_one(s.test_pool())
            .await
            .unwrap();
        row
    };
    let (o1, o1_name) =
        text("SELECT code, name FROM outlets WHERE distributor_id = $1 ORDER BY id LIMIT 1").await;
    let (o2, o2_name) =
        text("SELECT code, name FROM outlets WHERE distributor_id = $1 ORDER BY id DESC LIMIT 1")
            .await;
    let (p1, _) =
        text("SELECT code, name FROM products WHERE distributor_id = $1 ORDER BY id LIMIT 1").await;
    let (p2, p2_name) =
        text("SELECT code, name FROM products WHERE distributor_id = $1 ORDER BY id DESC LIMIT 1")
            .await;
    let (w1, w1_name) =
        text("SELECT code, name FROM warehouses WHERE distributor_id = $1 ORDER BY id LIMIT 1")
            .await;
    let (list, form) = text(
        "SELECT name, payment_form FROM price_lists WHERE distributor_id = $1 ORDER BY id LIMIT 1",
    )
    .await;
    let other_form = if form == "credit" {
        "bank_transfer"
    } else {
        "credit"
    };
    let (_, p0001, _) = unit_row(s, "ACME-P0001").await;
    let (position, date) = text(
        "SELECT u.code, r.route_date FROM routes r JOIN org_units u ON u.id = r.position_id \
         WHERE r.distributor_id = $1 ORDER BY r.id LIMIT 1",
    )
    .await;
    // A sales file to re-send with a line less and one line changed.
    ho(
        s,
        d,
        "sales",
        &format!(
            "invoice_number,invoice_date,outlet_code,product_code,quantity,amount\n\
             INV-1,2026-01-05,{o1},{p1},1,10.00\nINV-1,2026-01-05,{o1},{p2},2,20.00\nINV-1,2026-01-05,{o1},{p2},3,30.00\n"
        ),
    )
    .await;
    // Invoices to change, leave; plans to change (outlet) and leave (position).
    ho(
        s,
        d,
        "receivables",
        &format!(
            "invoice_number,outlet_code,invoice_date,due_date,amount\n\
             R-1,{o1},2026-01-05,2026-02-05,10\nR-2,{o2},2026-01-05,2026-02-05,5\n"
        ),
    )
    .await;
    ho(
        s,
        d,
        "plans",
        &format!(
            "period,outlet_code,position_code,target\n2026-01,{o1},,100\n2026-01,,{position},500\n"
        ),
    )
    .await;
    let files: Vec<(&str, String)> = vec![
        (
            "outlets",
            format!(
                "code,name\n{o1},Dry one\nDRY-O1,New outlet\n{o2},{o2_name}\nDRY-O1,New outlet again\n"
            ),
        ),
        (
            "products",
            format!("code,name\n{p1},Dry tea\nDRY-P1,New product\n{p2},{p2_name}\n"),
        ),
        (
            "warehouses",
            format!("code,name\n{w1},Dry warehouse\nDRY-W1,New warehouse\n{w1},Dry warehouse\n"),
        ),
        (
            "prices",
            format!("price_list,product_code,price\n{list},{p1},99.99\n{list},{p1},99.99\n"),
        ),
        (
            "stock",
            format!("warehouse_code,product_code,quantity\n{w1},{p1},7\n{w1},{p2},8.5\n"),
        ),
        (
            "sales",
            format!(
                "invoice_number,invoice_date,outlet_code,product_code,quantity,amount\n\
                 INV-1,2026-01-05,{o1},{p1},1,10.00\nINV-1,2026-01-05,{o1},{p2},5,50.00\nINV-2,2026-01-06,{o2},{p1},1,1.00\n"
            ),
        ),
        (
            "receivables",
            format!(
                "invoice_number,outlet_code,invoice_date,due_date,amount,paid\n\
                 R-1,{o1},2026-01-05,2026-02-05,10,4\nR-2,{o2},2026-01-05,2026-02-05,5,\nR-3,{o1},2026-01-06,2026-02-06,7.5,\n"
            ),
        ),
        (
            "plans",
            format!(
                "period,outlet_code,position_code,target\n2026-01,{o1},,150\n2026-01,,{position},500\n2026-02,{o2},,80\n"
            ),
        ),
        (
            "routes",
            format!(
                "date,position_code,stop,outlet_code\n{date},{position},1,{o2}\n{date},{position},2,{o1}\n2030-01-01,{position},1,{o1}\n"
            ),
        ),
        (
            "org_units",
            format!(
                "code,name,kind,parent_code\nDRY-TR,Dry territory,territory,ACME-T1\nDRY-P,Dry agent,position,DRY-TR\nACME-T1,Dry team,,ACME-R1\nACME-P0001,{p0001},,DRY-TR\n"
            ),
        ),
        (
            "price_lists",
            format!(
                "name,payment_form,default\n{list},{other_form},no\nDry list,cash,yes\nDry list,,yes\n"
            ),
        ),
        (
            "sync_points",
            "login,distributor_code\nkp-a,OTHER\nkp-a,ACME\nnobody,ACME\n".into(),
        ),
    ];
    assert_eq!(
        files.iter().map(|f| f.0).collect::<Vec<_>>(),
        KINDS.map(|k| k.0).to_vec(),
        "every kind has a dry run here"
    );
    for (kind, csv) in &files {
        let before = snapshot(s).await;
        let dry = run(s, ImportScope::HeadOffice, d, kind, csv, true).await;
        assert_eq!(dry.status, "checked", "{kind}: {dry:?}");
        let after = snapshot(s).await;
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(b, a, "{kind}: a dry run wrote something");
        }
        let real = ho(s, d, kind, csv).await;
        assert_eq!(
            dry.message,
            format!("dry run, nothing was written: {}", real.message),
            "{kind}: the dry run's counts are not the real run's"
        );
        assert_eq!(
            (dry.rows_applied, &dry.errors),
            (real.rows_applied, &real.errors),
            "{kind}"
        );
        assert_ne!(
            snapshot(s).await,
            before,
            "{kind}: the real run changed nothing"
        );
        let expected = match *kind {
            "outlets" => "1 created, 2 changed, 1 unchanged",
            "products" => "1 created, 1 changed, 1 unchanged",
            "warehouses" => "1 created, 1 changed, 1 unchanged",
            "prices" => "0 created, 1 changed, 1 unchanged",
            "sales" => "1 created, 1 changed, 1 unchanged, 1 removed",
            "receivables" => "1 created, 1 changed, 1 unchanged",
            "plans" => "1 created, 1 changed, 1 unchanged",
            "routes" => "1 created, 1 changed, 0 unchanged",
            "org_units" => "2 created, 2 changed, 0 unchanged",
            "price_lists" => "1 created, 1 changed, 1 unchanged",
            "sync_points" => "1 created, 0 changed, 1 unchanged",
            _ => "",
        };
        assert!(real.message.starts_with(expected), "{kind}: {real:?}");
    }
    let _ = (o1_name, w1_name);
    server.stop().await;
}
on_both_backends!(
    a_dry_run_of_every_kind_writes_nothing_and_counts_what_the_real_run_does,
    dry_runs
);

#[tokio::test]
async fn the_api_description_lists_every_import_kind() {
    let doc = fieldsync_server::exchange::openapi::spec();
    let kinds = &doc["paths"]["/api/v1/imports/{kind}"]["post"]["parameters"][0]["schema"]["enum"];
    let kinds: Vec<&str> = kinds
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(kinds, KINDS.map(|k| k.0).to_vec());
}
