//! `eyeward-relay check-config`: a configuration checked without serving, for deployment
//! pipelines. The file is read and validated as `serve` reads it; then each server it names
//! is reached and looked at without changing anything in it: the database (and whether this
//! relay can run its schema), the picture storage, the SMTP server, and the TLS files.

use crate::config::Config;
use crate::error::Error;
use crate::objects::Objects;
use crate::store::backup::{self as db, Probe};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// How long each server may take to answer.
const REACH_TIMEOUT: Duration = Duration::from_secs(15);

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What was checked: `config`, `data_dir`, `database`, `storage`, `mail`, `tls`.
    pub part: &'static str,
    pub ok: bool,
    /// What was found, or why it failed (never a secret).
    pub detail: String,
}

/// Checks the configuration at `path` (the defaults without one) and everything it names.
pub async fn check(path: Option<&Path>) -> Vec<Finding> {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => return vec![found("config", Err(e))],
    };
    let mut findings = vec![found("config", Ok(config.redacted()))];
    findings.push(found("data_dir", data_dir(&config.data_dir)));
    findings.push(found("database", within(database(&config)).await));
    findings.push(found("storage", within(storage(&config)).await));
    findings.push(found("mail", within(mail(&config)).await));
    if let Some(tls) = &config.tls {
        findings.push(found(
            "tls",
            crate::http::tls::Tls::load(tls).map(|_| "certificate and key read".to_owned()),
        ));
    }
    findings
}

fn found(part: &'static str, result: Result<String, Error>) -> Finding {
    match result {
        Ok(detail) => Finding {
            part,
            ok: true,
            detail,
        },
        Err(e) => Finding {
            part,
            ok: false,
            detail: e.chain(),
        },
    }
}

async fn within(check: impl Future<Output = Result<String, Error>>) -> Result<String, Error> {
    tokio::time::timeout(REACH_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| {
            Err(Error::new(
                crate::error::ErrorKind::Unavailable,
                format!("no answer in {} s", REACH_TIMEOUT.as_secs()),
            ))
        })
}

/// `data_dir` is a folder the relay can write in (checked with a file made and removed),
/// or one it can make.
fn data_dir(dir: &Path) -> Result<String, Error> {
    let unusable = |e: std::io::Error| {
        Error::new(
            crate::error::ErrorKind::InvalidArgument,
            format!("data_dir {} cannot be written", dir.display()),
        )
        .with_source(e)
    };
    if !dir.exists() {
        let parent = dir
            .ancestors()
            .skip(1)
            .find(|a| a.exists())
            .unwrap_or(Path::new("."));
        let writable = std::fs::metadata(parent).map_err(unusable)?;
        if writable.permissions().readonly() {
            return Err(unusable(std::io::Error::from(
                std::io::ErrorKind::PermissionDenied,
            )));
        }
        return Ok(format!("{} is made at the first start", dir.display()));
    }
    let probe = dir.join(".check-config");
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(unusable)?;
    Ok(format!("{} is writable", dir.display()))
}

async fn database(config: &Config) -> Result<String, Error> {
    let (probe, place) = match &config.database.url {
        None => (
            db::probe_sqlite(&config.data_dir).await?,
            "SQLite in data_dir",
        ),
        Some(url) => (
            db::probe_postgres(url, &config.database).await?,
            "PostgreSQL reached",
        ),
    };
    let Probe {
        engine,
        schema_version,
        ..
    } = probe;
    let newest = engine.newest_schema();
    Ok(match schema_version {
        None => format!("{place}: no database yet, made at the first start (schema {newest})"),
        Some(v) => {
            engine.refuse_newer(v)?;
            if v == newest {
                format!("{place}: schema {v}, this relay's")
            } else {
                format!("{place}: schema {v}, upgraded to {newest} at the next start")
            }
        }
    })
}

async fn storage(config: &Config) -> Result<String, Error> {
    match &config.storage.s3 {
        None => Ok("pictures are files in data_dir".to_owned()),
        Some(s3) => {
            Objects::bucket(s3)?.check().await?;
            Ok(format!("bucket {} at {} answers", s3.bucket, s3.endpoint))
        }
    }
}

async fn mail(config: &Config) -> Result<String, Error> {
    Ok(if crate::mail::reach_smtp(&config.mail).await? {
        let url = config.mail.smtp_url.as_ref();
        format!(
            "the SMTP server at {} answers",
            url.and_then(|u| u.host_str()).unwrap_or_default()
        )
    } else {
        "no SMTP server set: mails are written to data_dir/outbox".to_owned()
    })
}
