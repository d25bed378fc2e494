//! Fills a tower-auth database with many users and live sessions, quickly, for load tests
//! at scale (`benches/load.sh --scale`).
//!
//! ```sh
//! cargo run --release --example seed_load -- --database-url "sqlite://big.db?mode=rwc" \
//!     --users 1000000 --tokens-out tokens.txt --known 1000
//! ```
//!
//! Creates `--users` accounts (`user<N>@load.test`, every one with the password
//! `load-test password`, hashed once at bcrypt cost 4 and stored for all) and one live
//! session each. The first `--known` sessions get real tokens, written one per line to
//! `--tokens-out` for the load generator; the others get random token hashes (no token
//! exists for them: they are rows for the lookups to find their way past). Rows are made by
//! the database itself (`generate_series` on PostgreSQL, a recursive CTE on SQLite), in
//! batches, each batch one transaction. Then it prints what the rows take on disk, per user
//! and per session (tables and their indexes).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use tower_auth::store::TokenHash;

/// The one password of every seeded account.
const PASSWORD: &str = "load-test password";
/// Rows per transaction.
const BATCH: i64 = 50_000;

#[derive(Parser, Debug)]
struct Args {
    /// `sqlite://...` or `postgres://...`; tower-auth's tables are created if missing.
    #[arg(long)]
    database_url: String,
    /// Accounts (and live sessions) to add.
    #[arg(long)]
    users: i64,
    /// Sessions whose tokens are written out.
    #[arg(long, default_value_t = 1000)]
    known: i64,
    /// Where the known sessions' tokens go, one per line.
    #[arg(long)]
    tokens_out: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.known > args.users {
        return Err("--known cannot exceed --users".into());
    }
    // Migrations, through the crate itself.
    drop(tower_auth::store::connect(&args.database_url, false).await?);
    let hash = bcrypt::hash(PASSWORD, 4)?;
    let now_ms = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    let expires_ms = now_ms + 30 * 24 * 3600 * 1000;
    let tokens: Vec<String> = (0..args.known)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let started = Instant::now();
    let plan = Plan {
        args: &args,
        hash: &hash,
        now_ms,
        expires_ms,
        tokens: &tokens,
    };
    let sizes = if args.database_url.starts_with("sqlite:") {
        sqlite::seed(&plan).await?
    } else {
        postgres::seed(&plan).await?
    };
    std::fs::write(&args.tokens_out, tokens.join("\n") + "\n")?;
    let took = started.elapsed();
    println!(
        "seeded {} users and {} sessions in {:.1} s ({:.0} rows/s)",
        args.users,
        args.users,
        took.as_secs_f64(),
        2.0 * args.users as f64 / took.max(Duration::from_millis(1)).as_secs_f64()
    );
    println!(
        "bytes on disk: {} per user, {} per session (tables and indexes)",
        sizes.0 / args.users.max(1),
        sizes.1 / args.users.max(1)
    );
    Ok(())
}

/// What to seed, and with what.
#[derive(Clone, Copy)]
struct Plan<'a> {
    args: &'a Args,
    /// The one password hash every account gets.
    hash: &'a str,
    now_ms: i64,
    expires_ms: i64,
    /// The known sessions' tokens.
    tokens: &'a [String],
}

/// Rows `[from, to)` of the next batch, for `total` rows.
fn batches(total: i64) -> impl Iterator<Item = (i64, i64)> {
    (0..(total + BATCH - 1) / BATCH).map(move |b| (b * BATCH, ((b + 1) * BATCH).min(total)))
}

mod sqlite {
    use sqlx::{Connection as _, SqliteConnection};

    use super::{Plan, TokenHash, batches};

    /// The database's size now, in bytes (after moving the WAL into it).
    async fn size(conn: &mut SqliteConnection) -> Result<i64, sqlx::Error> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *conn)
            .await?;
        sqlx::query_scalar(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        )
        .fetch_one(&mut *conn)
        .await
    }

    pub(super) async fn seed(plan: &Plan<'_>) -> Result<(i64, i64), Box<dyn std::error::Error>> {
        let Plan {
            args,
            hash,
            now_ms,
            expires_ms,
            tokens,
        } = *plan;
        let mut conn = SqliteConnection::connect(&args.database_url).await?;
        let base: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM auth_users")
            .fetch_one(&mut conn)
            .await?;
        let before = size(&mut conn).await?;
        for (from, to) in batches(args.users) {
            let mut tx = conn.begin().await?;
            sqlx::query(
                "WITH RECURSIVE g(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM g WHERE n + 1 < ?2) \
                 INSERT INTO auth_users (id, email, password_hash, created_at_ms, \
                                         email_confirmed_at_ms) \
                 SELECT ?3 + n + 1, 'user' || (?3 + n) || '@load.test', ?4, ?5, ?5 FROM g",
            )
            .bind(from)
            .bind(to)
            .bind(base)
            .bind(hash)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        let after_users = size(&mut conn).await?;
        let mut tx = conn.begin().await?;
        for (i, token) in tokens.iter().enumerate() {
            sqlx::query(
                "INSERT INTO auth_sessions (token_hash, user_id, created_at_ms, last_seen_ms, \
                   expires_at_ms, authenticated_at_ms, remembered) \
                 VALUES (?1, ?2, ?3, ?3, ?4, ?3, 0)",
            )
            .bind(&TokenHash::of(token).as_bytes()[..])
            .bind(base + 1 + i as i64)
            .bind(now_ms)
            .bind(expires_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let known = tokens.len() as i64;
        for (from, to) in batches(args.users - known) {
            let mut tx = conn.begin().await?;
            sqlx::query(
                "WITH RECURSIVE g(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM g WHERE n + 1 < ?2) \
                 INSERT INTO auth_sessions (token_hash, user_id, created_at_ms, last_seen_ms, \
                   expires_at_ms, authenticated_at_ms, remembered) \
                 SELECT randomblob(32), ?3 + n + 1, ?4, ?4, ?5, ?4, 0 FROM g",
            )
            .bind(from)
            .bind(to)
            .bind(base + known)
            .bind(now_ms)
            .bind(expires_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        let after_sessions = size(&mut conn).await?;
        Ok((after_users - before, after_sessions - after_users))
    }
}

mod postgres {
    use sqlx::{Connection as _, PgConnection};

    use super::{Plan, TokenHash, batches};

    async fn size(conn: &mut PgConnection, table: &str) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT pg_total_relation_size($1::regclass)")
            .bind(table)
            .fetch_one(&mut *conn)
            .await
    }

    pub(super) async fn seed(plan: &Plan<'_>) -> Result<(i64, i64), Box<dyn std::error::Error>> {
        let Plan {
            args,
            hash,
            now_ms,
            expires_ms,
            tokens,
        } = *plan;
        let mut conn = PgConnection::connect(&args.database_url).await?;
        let users_before = size(&mut conn, "auth_users").await?;
        let sessions_before = size(&mut conn, "auth_sessions").await?;
        let mut ids = Vec::new();
        let mut first_id = None;
        for (from, to) in batches(args.users) {
            let mut tx = conn.begin().await?;
            let batch: Vec<i64> = sqlx::query_scalar(
                "INSERT INTO auth_users (email, password_hash, created_at_ms, \
                                         email_confirmed_at_ms) \
                 SELECT 'user' || n || '-' || $5 || '@load.test', $3, $4, $4 \
                 FROM generate_series($1::bigint, $2::bigint - 1) n RETURNING id",
            )
            .bind(from)
            .bind(to)
            .bind(hash)
            .bind(now_ms)
            .bind(now_ms.to_string())
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            first_id = first_id.or(batch.first().copied());
            if ids.len() < tokens.len() {
                ids.extend(batch.into_iter().take(tokens.len() - ids.len()));
            }
        }
        let first_unknown = ids.last().map_or(first_id.unwrap_or(1), |id| id + 1);
        let mut tx = conn.begin().await?;
        let hashes: Vec<Vec<u8>> = tokens
            .iter()
            .map(|t| TokenHash::of(t).as_bytes().to_vec())
            .collect();
        sqlx::query(
            "INSERT INTO auth_sessions (token_hash, user_id, created_at_ms, last_seen_ms, \
               expires_at_ms, authenticated_at_ms, remembered) \
             SELECT h, u, $3, $3, $4, $3, false FROM unnest($1::bytea[], $2::bigint[]) AS t(h, u)",
        )
        .bind(&hashes)
        .bind(&ids)
        .bind(now_ms)
        .bind(expires_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // Every other new user gets a session with a random hash.
        let last: i64 = sqlx::query_scalar("SELECT MAX(id) FROM auth_users")
            .fetch_one(&mut conn)
            .await?;
        let mut from = first_unknown;
        while from <= last {
            let to = (from + super::BATCH).min(last + 1);
            let mut tx = conn.begin().await?;
            sqlx::query(
                "INSERT INTO auth_sessions (token_hash, user_id, created_at_ms, last_seen_ms, \
                   expires_at_ms, authenticated_at_ms, remembered) \
                 SELECT sha256(gen_random_uuid()::text::bytea), id, $3, $3, $4, $3, false \
                 FROM auth_users WHERE id >= $1 AND id < $2",
            )
            .bind(from)
            .bind(to)
            .bind(now_ms)
            .bind(expires_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            from = to;
        }
        sqlx::query("VACUUM ANALYZE auth_users")
            .execute(&mut conn)
            .await?;
        sqlx::query("VACUUM ANALYZE auth_sessions")
            .execute(&mut conn)
            .await?;
        let users = size(&mut conn, "auth_users").await? - users_before;
        let sessions = size(&mut conn, "auth_sessions").await? - sessions_before;
        Ok((users, sessions))
    }
}
