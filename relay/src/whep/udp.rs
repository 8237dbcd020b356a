//! The one UDP port every viewer's media goes through, so a relay needs one firewall rule
//! and runs behind a cloud load balancer or in a container.
//!
//! Datagrams are told apart by who sent them: a viewer's first datagrams are ICE
//! connectivity checks (STUN Binding requests) whose USERNAME starts with the relay's ICE
//! username fragment for that viewer, which is unique per viewer; from then on the viewer's
//! address is known and its DTLS and SRTP datagrams follow it. What matches no viewer is
//! dropped.
//!
//! Sends go out in batches (one [`Transmit`] a system call, segmented by the kernel where it
//! can: UDP GSO), straight from each viewer's task: the socket is shared, not locked.

use super::peer::Transmit;
use std::collections::HashMap;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::io::Interest;
use tokio::sync::mpsc;

/// A datagram for one viewer.
pub struct Datagram {
    /// The relay's address it was sent to.
    pub local: SocketAddr,
    pub from: SocketAddr,
    pub data: Vec<u8>,
}

/// Datagrams waiting for a viewer's task: past this the viewer is too slow and they drop
/// (its ICE, DTLS and RTCP cope with loss).
pub const INBOX: usize = 256;
/// Addresses one viewer may send from (a browser checks each of its candidates).
const MAX_ADDRESSES_PER_VIEWER: usize = 8;
/// The largest datagram read: a viewer's are under 1,500 bytes.
const MAX_DATAGRAM: usize = 2048;
/// Datagrams read per system call.
const BATCH: usize = 16;

struct Route {
    inbox: mpsc::Sender<Datagram>,
    addresses: Vec<SocketAddr>,
}

#[derive(Default)]
struct Routes {
    /// By the relay's ICE username fragment for the viewer.
    by_ufrag: HashMap<String, Route>,
    by_address: HashMap<SocketAddr, String>,
}

/// Counts of what the port did, for metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct UdpCounts {
    /// Datagrams that matched no viewer.
    pub unknown: u64,
    /// Datagrams dropped because a viewer's inbox was full.
    pub inbox_full: u64,
}

/// The shared UDP socket and who is behind each address.
pub struct UdpMux {
    socket: tokio::net::UdpSocket,
    state: quinn_udp::UdpSocketState,
    local: SocketAddr,
    /// Whether the socket listens on every address (then each send names its source).
    unspecified: bool,
    routes: Mutex<Routes>,
    counts: Mutex<UdpCounts>,
}

impl UdpMux {
    /// Binds `address` (port 0: any free port).
    pub fn bind(address: SocketAddr) -> io::Result<UdpMux> {
        let std_socket = std::net::UdpSocket::bind(address)?;
        std_socket.set_nonblocking(true)?;
        let state = quinn_udp::UdpSocketState::new((&std_socket).into())?;
        // Room for bursts of many viewers' frames at once, and for the viewers' feedback.
        let _ = state.set_send_buffer_size((&std_socket).into(), 8 << 20);
        let _ = state.set_recv_buffer_size((&std_socket).into(), 4 << 20);
        let local = std_socket.local_addr()?;
        let socket = tokio::net::UdpSocket::from_std(std_socket)?;
        Ok(UdpMux {
            socket,
            state,
            local,
            unspecified: local.ip().is_unspecified(),
            routes: Mutex::new(Routes::default()),
            counts: Mutex::new(UdpCounts::default()),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Datagrams one send may hold.
    pub fn max_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    pub fn counts(&self) -> UdpCounts {
        *self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Routes datagrams for the viewer whose relay-side ICE username fragment is `ufrag` to
    /// the returned receiver, until [`UdpMux::unregister`].
    pub fn register(&self, ufrag: &str) -> mpsc::Receiver<Datagram> {
        let (inbox, rx) = mpsc::channel(INBOX);
        self.routes().by_ufrag.insert(
            ufrag.to_owned(),
            Route {
                inbox,
                addresses: Vec::new(),
            },
        );
        rx
    }

    pub fn unregister(&self, ufrag: &str) {
        let mut routes = self.routes();
        if let Some(route) = routes.by_ufrag.remove(ufrag) {
            for address in route.addresses {
                if routes.by_address.get(&address).is_some_and(|u| u == ufrag) {
                    routes.by_address.remove(&address);
                }
            }
        }
    }

    /// Reads and routes datagrams until the socket fails (never, in practice); run as a task.
    pub async fn run(self: Arc<Self>) {
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
                    self.route(local, m.addr, data);
                }
            }
        }
    }

    /// Hands one datagram to its viewer, learning the viewer's address from its ICE checks.
    fn route(&self, local: SocketAddr, from: SocketAddr, data: &[u8]) {
        let mut routes = self.routes();
        let ufrag = match stun_username_ufrag(data) {
            Some(ufrag) if routes.by_ufrag.contains_key(ufrag) => {
                let ufrag = ufrag.to_owned();
                if routes.by_address.get(&from) != Some(&ufrag) {
                    let route = routes.by_ufrag.get_mut(&ufrag).expect("checked above");
                    if route.addresses.len() < MAX_ADDRESSES_PER_VIEWER {
                        route.addresses.push(from);
                        routes.by_address.insert(from, ufrag.clone());
                    }
                }
                Some(ufrag)
            }
            _ => routes.by_address.get(&from).cloned(),
        };
        let route = ufrag.as_deref().and_then(|u| routes.by_ufrag.get(u));
        let Some(route) = route else {
            self.count(|c| c.unknown += 1);
            return;
        };
        let datagram = Datagram {
            local,
            from,
            data: data.to_vec(),
        };
        if route.inbox.try_send(datagram).is_err() {
            drop(routes);
            self.count(|c| c.inbox_full += 1);
        }
    }

    fn count(&self, f: impl FnOnce(&mut UdpCounts)) {
        f(&mut self.counts.lock().unwrap_or_else(|p| p.into_inner()));
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

/// The relay's username fragment from a STUN Binding request's USERNAME
/// (`<relay ufrag>:<viewer ufrag>`), if `data` is one.
pub fn stun_username_ufrag(data: &[u8]) -> Option<&str> {
    const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    const USERNAME: u16 = 0x0006;
    const HEADER: usize = 20;
    if data.len() < HEADER || data[0] & 0xc0 != 0 || data[4..8] != MAGIC_COOKIE {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([data[2], data[3]]));
    let mut attributes = data.get(HEADER..HEADER + length)?;
    while attributes.len() >= 4 {
        let kind = u16::from_be_bytes([attributes[0], attributes[1]]);
        let len = usize::from(u16::from_be_bytes([attributes[2], attributes[3]]));
        let value = attributes.get(4..4 + len)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        // Attributes are padded to four bytes.
        attributes = attributes.get(4 + len.div_ceil(4) * 4..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &[u8]) -> Vec<u8> {
        let padded = username.len().div_ceil(4) * 4;
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&((4 + padded) as u16).to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&[0x00, 0x06]);
        m.extend_from_slice(&(username.len() as u16).to_be_bytes());
        m.extend_from_slice(username);
        m.resize(20 + 4 + padded, 0);
        m
    }

    #[test]
    fn a_binding_request_names_the_relays_username_fragment_first() {
        assert_eq!(
            stun_username_ufrag(&binding_request(b"relayUfrag:browser")),
            Some("relayUfrag")
        );
    }

    #[test]
    fn media_truncated_and_lying_datagrams_name_no_viewer() {
        // DTLS (first byte 20..63) and SRTP (128..191) are not STUN.
        assert_eq!(stun_username_ufrag(&[22; 40]), None);
        assert_eq!(stun_username_ufrag(&[0x80; 40]), None);
        let mut short = binding_request(b"abc:def");
        short.truncate(22);
        assert_eq!(stun_username_ufrag(&short), None);
        // An attribute length past the end of the message.
        let mut lying = binding_request(b"abc:def");
        lying[22..24].copy_from_slice(&500u16.to_be_bytes());
        assert_eq!(stun_username_ufrag(&lying), None);
    }
}
