//! Where a benchmark's relay keeps its state: the embedded default (SQLite and files in
//! `data_dir`), or PostgreSQL and S3 (Garage) servers the benchmark starts (issue 20).

use anyhow::{Result, bail};
use eyeward_testkit::garage::Garage;
use eyeward_testkit::postgres::Postgres;
use std::path::Path;

/// A relay's storage, and the servers it needs.
pub enum Backend {
    Embedded,
    Servers {
        postgres: Box<Postgres>,
        garage: Box<Garage>,
        name: &'static str,
    },
}

impl Backend {
    /// The backend a `--backend` flag names: `embedded`, or `postgres-s3` (PostgreSQL with
    /// fsync and synchronous commit on; Garage with its defaults).
    pub fn named(name: &str) -> Result<Backend> {
        Ok(match name {
            "embedded" => Backend::Embedded,
            "postgres-s3" => Backend::Servers {
                postgres: Box::new(Postgres::start()?),
                garage: Box::new(Garage::start()?),
                name: "PostgreSQL + S3 (Garage)",
            },
            other => bail!("--backend {other}: embedded or postgres-s3"),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Embedded => "SQLite + files",
            Backend::Servers { name, .. } => name,
        }
    }

    /// The relay config's `[database]` and `[storage]` for this backend, with a database and
    /// a bucket prefix of its own; nothing for the embedded default. `dir` holds the
    /// credential files.
    pub fn config(&self, dir: &Path) -> Result<String> {
        Ok(match self {
            Backend::Embedded => String::new(),
            Backend::Servers {
                postgres, garage, ..
            } => format!(
                "[database]\nurl = {:?}\ntls = \"disable\"\n{}",
                postgres.database()?,
                garage.place().config(dir)?
            ),
        })
    }
}
