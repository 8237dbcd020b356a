//! HTTPS served by the relay itself: rustls with the certificate and key of `[tls]`, read again
//! on SIGHUP so that a renewed certificate is taken without a restart.
//!
//! Handshakes run in tasks of their own, so a client that stalls in its handshake holds up no
//! one else; only finished connections reach the HTTP server.

use crate::config::TlsConfig;
use crate::error::Error;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The relay's certificate, swappable while serving.
#[derive(Clone)]
pub struct Tls {
    files: TlsConfig,
    acceptor: Arc<RwLock<TlsAcceptor>>,
}

impl Tls {
    /// Loads the certificate and key of `files`.
    pub fn load(files: &TlsConfig) -> Result<Tls, Error> {
        Ok(Tls {
            files: files.clone(),
            acceptor: Arc::new(RwLock::new(acceptor(files)?)),
        })
    }

    /// Reads the files again; new connections get the new certificate. On error the
    /// certificate in use stays.
    pub fn reload(&self) -> Result<(), Error> {
        let fresh = acceptor(&self.files)?;
        *self.acceptor.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// Reloads on every SIGHUP, until dropped.
    pub async fn reload_on_sighup(self) {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "no SIGHUP handler: the certificate is not reloaded");
                return;
            }
        };
        while hup.recv().await.is_some() {
            match self.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded, the old one stays");
                }
            }
        }
    }

    /// Serves TLS on `tcp`.
    pub fn listen(&self, tcp: TcpListener) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, incoming) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, self.acceptor.clone(), tx));
        Ok(TlsListener { incoming, local })
    }
}

fn acceptor(files: &TlsConfig) -> Result<TlsAcceptor, Error> {
    let bad = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        Error::bad_request(format!("tls.{what} {}: {e}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(&files.cert_file)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad("cert_file", &files.cert_file, &e))?;
    if certs.is_empty() {
        return Err(bad("cert_file", &files.cert_file, &"no certificate in it"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key_file)
        .map_err(|e| bad("key_file", &files.key_file, &e))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::internal("TLS").with_source(e))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| bad("key_file", &files.key_file, &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TCP connections and hands each to a handshake task, until the listener is dropped.
async fn accept_loop(
    tcp: TcpListener,
    acceptor: Arc<RwLock<TlsAcceptor>>,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            () = ready.closed() => return,
            accepted = tcp.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.read().unwrap_or_else(|e| e.into_inner()).clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// The connections that finished their handshake, for `axum::serve`.
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            // The accept loop only ends once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}
