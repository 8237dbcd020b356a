//! Which viewer a datagram is for, on ports every viewer shares (UDP and ICE-TCP).
//!
//! A viewer's first datagrams are ICE connectivity checks (STUN Binding requests) whose
//! USERNAME starts with the relay's ICE username fragment for that viewer, which is unique
//! per viewer; from then on the viewer's address is known and its DTLS and SRTP datagrams
//! follow it. What matches no viewer is dropped.

use prometheus_client::metrics::counter::Counter;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::sync::mpsc;

/// Where a viewer's replies over ICE-TCP go: datagrams already framed (RFC 4571) for its
/// connection.
pub type TcpLink = mpsc::Sender<Vec<u8>>;

/// A datagram for one viewer.
pub struct Datagram {
    /// The relay's address it was sent to.
    pub local: SocketAddr,
    pub from: SocketAddr,
    pub data: Vec<u8>,
    /// Set on the first datagram of an ICE-TCP connection: how to answer `from`.
    pub tcp: Option<TcpLink>,
}

/// Datagrams waiting for a viewer's task: past this the viewer is too slow and they drop
/// (its ICE, DTLS and RTCP cope with loss).
pub const INBOX: usize = 256;
/// Addresses one viewer may send from over UDP (a browser checks each of its candidates).
const MAX_ADDRESSES_PER_VIEWER: usize = 8;

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

/// The viewers behind the shared ports.
#[derive(Default)]
pub struct Demux {
    routes: Mutex<Routes>,
    /// Datagrams that matched no viewer.
    unknown: Counter,
    /// Datagrams dropped because a viewer's inbox was full.
    inbox_full: Counter,
}

impl Demux {
    /// A demultiplexer counting what it drops in `unknown` and `inbox_full` (the metrics').
    pub fn new(unknown: Counter, inbox_full: Counter) -> Demux {
        Demux {
            routes: Mutex::default(),
            unknown,
            inbox_full,
        }
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Routes datagrams for the viewer whose relay-side ICE username fragment is `ufrag` to
    /// the returned receiver, until [`Demux::unregister`].
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

    /// The inbox of the viewer an ICE-TCP connection's first datagram names, if any.
    pub fn inbox_named_in(&self, first: &[u8]) -> Option<mpsc::Sender<Datagram>> {
        let ufrag = stun_username_ufrag(first)?;
        let inbox = self.routes().by_ufrag.get(ufrag).map(|r| r.inbox.clone());
        if inbox.is_none() {
            self.unknown.inc();
        }
        inbox
    }

    /// Hands a UDP datagram to its viewer, learning the viewer's address from its ICE checks.
    pub fn route(&self, datagram: Datagram) {
        let from = datagram.from;
        let mut routes = self.routes();
        let ufrag = match stun_username_ufrag(&datagram.data) {
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
        let inbox = ufrag
            .as_deref()
            .and_then(|u| routes.by_ufrag.get(u))
            .map(|r| r.inbox.clone());
        drop(routes);
        match inbox {
            None => {
                self.unknown.inc();
            }
            Some(inbox) => {
                deliver(self, &inbox, datagram);
            }
        }
    }
}

/// Puts `datagram` in `inbox`; whether the viewer is still there.
pub fn deliver(demux: &Demux, inbox: &mpsc::Sender<Datagram>, datagram: Datagram) -> bool {
    match inbox.try_send(datagram) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            demux.inbox_full.inc();
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
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

    fn datagram(from: &str, data: &[u8]) -> Datagram {
        Datagram {
            local: "10.0.0.1:3478".parse().expect("address"),
            from: from.parse().expect("address"),
            data: data.to_vec(),
            tcp: None,
        }
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

    #[test]
    fn a_viewers_address_is_learnt_from_its_check_and_forgotten_with_it() {
        let demux = Demux::default();
        let mut a = demux.register("aaaa");
        let mut b = demux.register("bbbb");
        // Media from an address no check came from reaches nobody.
        demux.route(datagram("10.0.0.2:5000", &[0x80; 40]));
        assert_eq!(demux.unknown.get(), 1);
        demux.route(datagram("10.0.0.2:5000", &binding_request(b"aaaa:x")));
        demux.route(datagram("10.0.0.3:5000", &binding_request(b"bbbb:y")));
        demux.route(datagram("10.0.0.2:5000", &[0x80; 40]));
        assert_eq!(a.try_recv().expect("check").data[0], 0x00);
        assert_eq!(a.try_recv().expect("media").data[0], 0x80);
        assert_eq!(b.try_recv().expect("check").from.port(), 5000);
        assert!(b.try_recv().is_err(), "a's media went to a only");
        demux.unregister("aaaa");
        demux.route(datagram("10.0.0.2:5000", &[0x80; 40]));
        assert_eq!(demux.unknown.get(), 2);
        // A check naming a viewer that is gone, or never was, reaches nobody either.
        demux.route(datagram("10.0.0.9:5000", &binding_request(b"aaaa:x")));
        assert_eq!(demux.unknown.get(), 3);
    }

    #[test]
    fn a_viewer_that_does_not_keep_up_loses_datagrams_not_the_port() {
        let demux = Demux::default();
        let _slow = demux.register("slow");
        for _ in 0..INBOX + 10 {
            demux.route(datagram("10.0.0.2:5000", &binding_request(b"slow:x")));
        }
        assert_eq!(demux.inbox_full.get(), 10);
    }
}
