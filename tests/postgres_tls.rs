//! The relay's connections to PostgreSQL over TLS (issue 20, `[database] tls` and `ca_file`):
//! with the company's certificate authority it connects encrypted; it refuses a server whose
//! certificate is not for the host it dialled, and one signed by an authority it was not
//! given.

mod common;

use anyhow::Result;
use common::Relay;
use eyeward_testkit::postgres::Postgres;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

const PW: &str = "correct horse battery";

/// A private certificate authority and a server certificate it signed for `localhost` only.
fn certificates() -> Result<(String, String, String)> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Database CA");
    let ca = ca.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let server =
        CertificateParams::new(vec!["localhost".to_owned()])?.signed_by(&key, &ca, &ca_key)?;
    Ok((ca.pem(), server.pem(), key.serialize_pem()))
}

/// The relay's config for `url` with `tls` and, if given, `ca_file`.
fn database(url: &str, tls: &str, ca_file: Option<&std::path::Path>) -> String {
    let ca = ca_file.map_or(String::new(), |f| format!("ca_file = {f:?}\n"));
    format!("[database]\nurl = {url:?}\ntls = {tls:?}\n{ca}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_talks_to_postgres_over_verified_tls_and_refuses_what_fails_the_check()
-> Result<()> {
    let (ca, certificate, key) = certificates()?;
    let pg = Postgres::start_with_tls(&certificate, &key)?;
    let dir = tempfile::tempdir()?;
    let ca_file = dir.path().join("database-ca.pem");
    std::fs::write(&ca_file, ca)?;
    let db = pg.database()?;
    let by_name = db.replace("127.0.0.1", "localhost");

    // The certificate is for the name dialled and signed by the authority given: it connects,
    // and every connection it holds is encrypted.
    let relay = Relay::start(&database(&by_name, "verify-full", Some(&ca_file)))?;
    let owner = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    relay.camera(owner, "Porch", "fixed", "dispatch", "agent")?;
    let alice = relay.login("a@example.jp", PW).await?;
    assert_eq!(alice.get("/api/cameras").await?.status(), 200);
    let admin = sqlx::PgPool::connect(&db).await?;
    let (encrypted, plain): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE s.ssl), COUNT(*) FILTER (WHERE NOT s.ssl) \
         FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'eyeward-relay'",
    )
    .fetch_one(&admin)
    .await?;
    assert!(
        encrypted > 0 && plain == 0,
        "{encrypted} encrypted, {plain} plain"
    );
    drop(relay);

    // Dialled by address, the certificate's name does not match: refused, and said why.
    // checked.
    let refused = Relay::start(&database(&db, "verify-full", Some(&ca_file)));
    let error = format!(
        "{:#}",
        refused.err().expect("a certificate for another name")
    );
    assert!(error.contains("cannot reach the database"), "{error}");
    assert!(error.contains("not valid for name"), "{error}");

    // An authority the relay was not given (only the public roots): refused.
    let refused = Relay::start(&database(&by_name, "verify-full", None));
    let error = format!("{:#}", refused.err().expect("an unknown authority"));
    assert!(error.contains("cannot reach the database"), "{error}");
    Ok(())
}
