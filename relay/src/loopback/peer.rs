//! Who is at the other end of a loopback connection. A camera's connection is handed to the
//! relay's own RTSP client on a loopback port; any local process could connect there first and
//! watch the camera. Linux tells which socket is the peer (`/proc/net/tcp`: the connection seen from
//! the other side, with its inode) and which sockets this process holds (`/proc/self/fd`), so
//! the relay takes only a connection it made itself.

use std::net::SocketAddr;

/// Whether the connection accepted at `local` from `peer` was made by this very process.
/// Anything it cannot tell (not Linux, not IPv4 loopback) counts as someone else.
pub fn made_by_this_process(local: SocketAddr, peer: SocketAddr) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let Some(inode) = peer_inode(&table, local, peer) else {
        return false;
    };
    let want = format!("socket:[{inode}]");
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return false;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| target.as_os_str() == want.as_str())
}

/// The inode of the socket whose local end is `peer` and remote end `local`, from
/// `/proc/net/tcp`'s text.
fn peer_inode(table: &str, local: SocketAddr, peer: SocketAddr) -> Option<u64> {
    let (SocketAddr::V4(local), SocketAddr::V4(peer)) = (local, peer) else {
        return None;
    };
    // Addresses as the kernel prints them: the IPv4 address's bytes in host order (little
    // endian here), then the port, both in hex.
    let hex = |a: std::net::SocketAddrV4| {
        format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(a.ip().octets()),
            a.port()
        )
    };
    let (want_local, want_remote) = (hex(peer), hex(local));
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&want_local.as_str())
            && fields.get(2) == Some(&want_remote.as_str()))
        .then(|| fields.get(9)?.parse().ok())
        .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_connection_of_this_process_is_told_from_one_of_another() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let _ours = TcpStream::connect(local).unwrap();
        let (_, peer) = listener.accept().unwrap();
        assert!(made_by_this_process(local, peer));

        // Another process connects (python, which the tests' SMTP server needs anyway).
        let mut other = std::process::Command::new("python3")
            .args([
                "-c",
                "import socket, sys, time; s = socket.create_connection(('127.0.0.1', int(sys.argv[1]))); time.sleep(5)",
                &local.port().to_string(),
            ])
            .spawn()
            .unwrap();
        let (_, peer) = listener.accept().unwrap();
        assert!(!made_by_this_process(local, peer));
        let _ = other.kill();
        let _ = other.wait();
    }

    #[test]
    fn the_kernels_table_is_read_as_it_prints_addresses() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
            0: 0100007F:D2A4 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 424242 1 0 20 4 30 10 -1\n";
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let peer: SocketAddr = "127.0.0.1:53924".parse().unwrap();
        assert_eq!(peer_inode(table, local, peer), Some(424242));
        assert_eq!(peer_inode(table, peer, local), None);
    }
}
