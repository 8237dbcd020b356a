//! The one UDP port every viewer's media goes through, so a relay needs one firewall rule
//! and runs behind a cloud load balancer or in a container. Datagrams are told apart by
//! [`Demux`].
//!
//! Sends go out in batches (one [`Transmit`] a system call, segmented by the kernel where it
//! can: UDP GSO), straight from each viewer's task: the socket is shared, not locked.

use super::demux::{Datagram, Demux};
use super::peer::Transmit;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::io::Interest;

/// The largest datagram read: a viewer's are under 1,500 bytes.
const MAX_DATAGRAM: usize = 2048;
/// Datagrams read per system call.
const BATCH: usize = 16;

/// The shared UDP socket.
pub struct UdpPort {
    socket: tokio::net::UdpSocket,
    state: quinn_udp::UdpSocketState,
    local: SocketAddr,
    /// Whether the socket listens on every address (then each send names its source).
    unspecified: bool,
}

impl UdpPort {
    /// Binds `address` (port 0: any free port).
    pub fn bind(address: SocketAddr) -> io::Result<UdpPort> {
        let std_socket = std::net::UdpSocket::bind(address)?;
        std_socket.set_nonblocking(true)?;
        let state = quinn_udp::UdpSocketState::new((&std_socket).into())?;
        // Room for bursts of many viewers' frames at once, and for the viewers' feedback.
        let _ = state.set_send_buffer_size((&std_socket).into(), 8 << 20);
        let _ = state.set_recv_buffer_size((&std_socket).into(), 4 << 20);
        let local = std_socket.local_addr()?;
        let socket = tokio::net::UdpSocket::from_std(std_socket)?;
        Ok(UdpPort {
            socket,
            state,
            local,
            unspecified: local.ip().is_unspecified(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Datagrams one send may hold.
    pub fn max_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// Reads datagrams and hands them to their viewers, for ever; run as a task.
    pub async fn run(self: Arc<Self>, demux: Arc<Demux>) {
        let mut buffers = vec![[0u8; MAX_DATAGRAM]; BATCH];
        let mut meta = vec![quinn_udp::RecvMeta::default(); BATCH];
        loop {
            let read = self
                .socket
                .async_io(Interest::READABLE, || {
                    let mut slices: Vec<IoSliceMut<'_>> =
                        buffers.iter_mut().map(|b| IoSliceMut::new(b)).collect();
                    self.state
                        .recv((&self.socket).into(), &mut slices, &mut meta)
                })
                .await;
            let n = match read {
                Ok(n) => n,
                // ICMP errors of earlier sends surface here on some kernels: not fatal.
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
                    tracing::debug!(error = %e, "viewer port read");
                    continue;
                }
                Err(_) => continue,
            };
            for (m, buffer) in meta.iter().zip(&buffers).take(n) {
                let local = SocketAddr::new(m.dst_ip.unwrap_or(self.local.ip()), self.local.port());
                let stride = m.stride.max(1);
                for data in buffer[..m.len].chunks(stride) {
                    demux.route(Datagram {
                        local,
                        from: m.addr,
                        data: data.to_vec(),
                        tcp: None,
                    });
                }
            }
        }
    }

    /// Sends a batch, waiting while the socket's buffer is full. A batch the kernel refuses
    /// to segment goes again datagram by datagram; other errors drop it (UDP: the viewer's
    /// NACKs and keyframe requests recover).
    pub async fn send(&self, transmit: &Transmit) {
        let segmented = transmit.contents.len() > transmit.segment_size;
        let src_ip = self.source(transmit.from.ip());
        let batch = quinn_udp::Transmit {
            destination: transmit.to,
            ecn: None,
            contents: &transmit.contents,
            segment_size: segmented.then_some(transmit.segment_size),
            src_ip,
        };
        if self.try_send(&batch).await.is_ok() || !segmented {
            return;
        }
        for datagram in transmit.datagrams() {
            let single = quinn_udp::Transmit {
                contents: datagram,
                segment_size: None,
                ..batch
            };
            let _ = self.try_send(&single).await;
        }
    }

    async fn try_send(&self, transmit: &quinn_udp::Transmit<'_>) -> io::Result<()> {
        self.socket
            .async_io(Interest::WRITABLE, || {
                self.state.try_send((&self.socket).into(), transmit)
            })
            .await
    }

    fn source(&self, ip: IpAddr) -> Option<IpAddr> {
        (self.unspecified && !ip.is_unspecified()).then_some(ip)
    }
}
