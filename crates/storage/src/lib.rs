//! Rotor's persistence: Postgres repositories scoped by workspace, and the domain types they return.
//!
//! Every function that touches tenant data takes the workspace id and puts it in the SQL
//! `WHERE` clause, so a foreign id is indistinguishable from a missing one. Arguments come in
//! one order: the pool (and keyring), the workspace, the target's typed id, the actor, then
//! the data; ids are typed ([`ids`]), so two swapped ids do not compile.

pub mod api_keys;
pub mod audit;
pub mod credentials;
pub mod crypto;
pub mod error;
pub mod ids;
pub mod licenses;
pub mod load_balancing;
pub mod members;
pub mod models;
pub mod page;
pub mod providers;
pub mod tokens;
pub mod types;
pub mod usage;
pub mod users;
pub mod workspaces;

pub use error::{Error, Result};
pub use ids::*;
pub use page::{Page, Paged};
pub use types::*;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

/// Migrations embedded in the binary so `rotor serve` and `rotor migrate` need no files on disk.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Opens a pool that fails fast when the database is gone, so handlers can answer 503 quickly.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool> {
    let options = PgConnectOptions::from_str(url).map_err(Error::Database)?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Applies every pending migration; safe to call concurrently from several replicas.
pub async fn migrate(pool: &PgPool) -> Result<()> {
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(e) => Error::from(e),
        other => Error::Migration(other.to_string()),
    })
}

/// Answers whether the database takes a trivial query, for `/readyz`.
pub async fn ping(pool: &PgPool) -> Result<()> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}
