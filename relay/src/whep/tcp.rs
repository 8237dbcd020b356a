//! ICE over TCP (RFC 6544, the relay's candidates passive): for viewers whose network blocks
//! UDP. Each connection carries one viewer's datagrams framed by a two-byte length (RFC 4571).
//! The first must be an ICE check naming a viewer (see [`Demux`]); a connection that sends
//! anything else, nothing within [`FIRST_DATAGRAM_TIMEOUT`], or a frame longer than
//! [`MAX_FRAME`], is closed.
//!
//! The viewer's task is handed the connection's [`TcpLink`] with that first datagram and
//! writes its batches to it; a connection ends with its viewer, or when the browser closes it.

use super::demux::{Datagram, Demux, TcpLink, deliver};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

/// How long a new connection has to send its ICE check.
pub const FIRST_DATAGRAM_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest frame taken: a viewer's datagrams are under 1,500 bytes.
pub const MAX_FRAME: usize = 2048;
/// Connections open at once; past this new ones wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 4096;
/// Batches waiting to be written to one connection: past this the viewer's connection is
/// too slow and batches drop (the viewer asks again for what it misses, or for a keyframe).
const LINK_QUEUE: usize = 64;
/// How long one write may wait for the browser to read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts viewers' ICE-TCP connections on `listener` for ever; run as a task.
pub async fn run(listener: TcpListener, demux: Arc<Demux>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, say: wait, rather than spin.
                tracing::warn!(error = %e, "viewer TCP port accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let demux = demux.clone();
        tokio::spawn(async move {
            let _ = serve(stream, from, demux).await;
            drop(slot);
        });
    }
}

/// Reads one RFC 4571 frame into `buf`; its length.
async fn read_frame(
    reader: &mut (impl AsyncReadExt + Unpin),
    buf: &mut [u8; MAX_FRAME],
) -> io::Result<usize> {
    let len = usize::from(reader.read_u16().await?);
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "frame too long"));
    }
    reader.read_exact(&mut buf[..len]).await?;
    Ok(len)
}

/// Frames `datagrams` (RFC 4571) into one buffer, for one write.
pub fn frame<'a>(datagrams: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for d in datagrams {
        // Datagrams here are under 1,500 bytes; a longer one cannot be framed and is left out.
        if let Ok(len) = u16::try_from(d.len()) {
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(d);
        }
    }
    out
}

async fn serve(stream: TcpStream, from: SocketAddr, demux: Arc<Demux>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let local = stream.local_addr()?;
    let (mut reader, mut writer) = stream.into_split();
    let mut buf = Box::new([0u8; MAX_FRAME]);
    let len = tokio::time::timeout(FIRST_DATAGRAM_TIMEOUT, read_frame(&mut reader, &mut buf))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no ICE check"))??;
    let Some(inbox) = demux.inbox_named_in(&buf[..len]) else {
        return Ok(());
    };
    let (link, mut batches): (TcpLink, _) = mpsc::channel(LINK_QUEUE);
    let first = Datagram {
        local,
        from,
        data: buf[..len].to_vec(),
        tcp: Some(link),
    };
    if !deliver(&demux, &inbox, first) {
        return Ok(());
    }
    // Reads go on in a task of their own: a read cut off half-way would lose the framing.
    let reads = tokio::spawn(async move {
        let mut buf = Box::new([0u8; MAX_FRAME]);
        while let Ok(len) = read_frame(&mut reader, &mut buf).await {
            let datagram = Datagram {
                local,
                from,
                data: buf[..len].to_vec(),
                tcp: None,
            };
            if !deliver(&demux, &inbox, datagram) {
                return;
            }
        }
    });
    // Writes until the viewer lets go of the link (it ended), the browser closes, or it
    // stops reading.
    let written = async {
        while let Some(batch) = batches.recv().await {
            tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(&batch))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "viewer not reading"))??;
        }
        Ok::<_, io::Error>(())
    };
    let stop_reads = reads.abort_handle();
    let result = tokio::select! {
        result = written => result,
        // The browser closed the connection, or the viewer is gone.
        _ = reads => Ok(()),
    };
    stop_reads.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_are_framed_by_their_length() {
        let framed = frame([&[1u8, 2, 3][..], &[9u8][..]].into_iter());
        assert_eq!(framed, [0, 3, 1, 2, 3, 0, 1, 9]);
    }

    #[tokio::test]
    async fn a_frame_longer_than_the_bound_is_refused_before_it_is_read() {
        let mut input: &[u8] = &[0xff, 0xff, 1, 2, 3];
        let mut buf = Box::new([0u8; MAX_FRAME]);
        let err = read_frame(&mut input, &mut buf)
            .await
            .expect_err("too long");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let mut input: &[u8] = &[0, 2, 7, 8];
        assert_eq!(read_frame(&mut input, &mut buf).await.expect("frame"), 2);
        assert_eq!(&buf[..2], &[7, 8]);
    }
}
