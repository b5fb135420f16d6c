//! A small migration runner over the SQL files embedded at build time.
//!
//! Each file runs once, in version order, inside its own transaction, and is recorded with a
//! checksum; a landed file that was edited afterwards stops the server with a clear error.
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Executor};

use super::{Backend, Result, StoreError, now_ms};

/// One embedded migration file.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

mod embedded {
    use super::Migration;
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// The migrations of a backend, in version order.
pub fn migrations(backend: Backend) -> &'static [Migration] {
    match backend {
        Backend::Sqlite => embedded::SQLITE,
        Backend::Postgres => embedded::POSTGRES,
    }
}

fn checksum(sql: &str) -> String {
    let digest = Sha256::digest(sql.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn run(pool: &AnyPool, backend: Backend) -> Result<()> {
    run_until(pool, backend, i64::MAX).await
}

/// Applies the migrations up to version `last` only: a database as an older release left it
/// (for the tests of a later migration's upgrade).
pub async fn run_until(pool: &AnyPool, backend: Backend, last: i64) -> Result<()> {
    let mut conn = pool.acquire().await?;
    if backend == Backend::Postgres {
        // Several server processes may start at once against one database.
        conn.execute("SELECT pg_advisory_lock(727272)").await?;
    }
    let result = apply(&mut conn, backend, last).await;
    if backend == Backend::Postgres {
        conn.execute("SELECT pg_advisory_unlock(727272)").await?;
    }
    result
}

async fn apply(conn: &mut sqlx::AnyConnection, backend: Backend, last: i64) -> Result<()> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at_ms BIGINT NOT NULL)",
    )
    .await?;
    let applied: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, checksum FROM schema_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await?;
    for m in migrations(backend).iter().filter(|m| m.version <= last) {
        let sum = checksum(m.sql);
        if let Some((_, stored)) = applied.iter().find(|(v, _)| *v == m.version) {
            if *stored != sum {
                return Err(StoreError::Invalid(format!(
                    "migration {} ({}) was edited after it was applied; add a new migration instead",
                    m.version, m.name
                )));
            }
            continue;
        }
        if backend == Backend::Sqlite {
            // SQLite's way to rebuild a table others reference (0008 does): foreign keys off
            // around the transaction (the pragma is a no-op inside one), checked before commit.
            conn.execute("PRAGMA foreign_keys = OFF").await?;
        }
        let applied = apply_one(&mut *conn, backend, m, sum).await;
        if backend == Backend::Sqlite {
            conn.execute("PRAGMA foreign_keys = ON").await?;
        }
        applied?;
        tracing::info!(version = m.version, name = m.name, "migration applied");
    }
    Ok(())
}

/// Runs one migration and records it, in one transaction.
async fn apply_one(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    m: &Migration,
    sum: String,
) -> Result<()> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    tx.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(m.sql)))
        .await?;
    if backend == Backend::Sqlite {
        let broken: Vec<(String,)> =
            sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
                .fetch_all(&mut *tx)
                .await?;
        if let Some((table,)) = broken.first() {
            return Err(StoreError::Invalid(format!(
                "migration {} ({}) left rows of {table} with a broken reference",
                m.version, m.name
            )));
        }
    }
    sqlx::query(
        "INSERT INTO schema_migrations (version, name, checksum, applied_at_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(m.version)
    .bind(m.name)
    .bind(sum)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
