//! A connection handed to the relay's RTSP client (retina) on a loopback port. retina dials a
//! URL; as the relay stands between it and every camera (an agent's tunnel, or a direct
//! camera's connection whose stream is checked), the relay listens on `127.0.0.1:0`, points
//! retina there and serves the one connection it makes. Any local process could connect
//! first, so only a connection this very process made is taken ([`peer`]).

mod peer;

use crate::error::Error;
use eyeward::CameraId;
use std::future::Future;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// How long the port waits for the RTSP client to connect.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// A loopback port offered to this process's RTSP client; the port closes, and the
/// connection served there ends, when this is dropped.
pub struct Offered {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Offered {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens on a loopback port and gives the first connection this process makes there to
/// `serve`; connections of other processes are refused and logged under `camera`.
pub async fn offer<F, Fut>(camera: CameraId, serve: F) -> Result<Offered, Error>
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listen_error = |e: std::io::Error| Error::internal("loopback listener").with_source(e);
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(listen_error)?;
    let local = listener.local_addr().map_err(listen_error)?;
    let task = tokio::spawn(async move {
        let mut waited = std::pin::pin!(tokio::time::sleep(CONNECT_WAIT));
        let tcp = loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut waited => return,
            };
            let Ok((tcp, peer)) = accepted else {
                return;
            };
            if peer::made_by_this_process(local, peer) {
                break tcp;
            }
            tracing::warn!(
                camera = camera.0,
                "another local process connected to a camera's loopback port: refused"
            );
        };
        drop(listener);
        serve(tcp).await;
    });
    Ok(Offered {
        port: local.port(),
        task,
    })
}
