//! Calls to the node that holds a camera, over the cluster network, signed
//! ([`super::signing`]): a pan-tilt command and its answer, and the camera's feed, pulled
//! through the owner so that this node's viewers are fanned out here. The owner's side is the
//! HTTP edge's (`http::internal`); the feed's frames cross as [`encode_frame`] writes them.

use super::signing::{Signed, Signer};
use crate::error::{Error, ErrorKind};
use crate::ingest::{Frame, h264};
use crate::store::Owner;
use bytes::{Buf, Bytes, BytesMut};
use eyeward::CameraId;
use eyeward::ptz::{PtzCommand, PtzState};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Longest a call to another node may take to answer (a feed's frames then flow without it).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// A frame's head on the wire: its length after the head, its timestamp, keyframe or not,
/// and the owner's camera session.
const HEAD: usize = 4 + 8 + 1 + 8;

/// Bytes of a frame on the wire at most (the ingest's own bound on a picture, and room).
const MAX_WIRE_FRAME: usize = crate::ingest::frames::MAX_FRAME_BYTES + HEAD;

/// A pan-tilt command's outcome as the owner answers it.
#[derive(Debug, Serialize, Deserialize)]
pub enum PtzAnswer {
    Done {
        state: PtzState,
        record: bool,
    },
    Failed {
        kind: ErrorKind,
        message: String,
        offline: bool,
        retry_after_ms: Option<u64>,
    },
}

impl PtzAnswer {
    /// The owner's failure, to send back.
    pub fn failed(e: &Error) -> PtzAnswer {
        PtzAnswer::Failed {
            kind: e.kind(),
            message: e.to_string(),
            offline: e.given_code() == Some("camera_offline"),
            retry_after_ms: e.retry_delay().map(|d| d.as_millis() as u64),
        }
    }

    /// The answer as this node gives it to its caller.
    pub fn into_result(self) -> Result<(PtzState, bool), Error> {
        match self {
            PtzAnswer::Done { state, record } => Ok((state, record)),
            PtzAnswer::Failed {
                kind,
                message,
                offline,
                retry_after_ms,
            } => {
                let mut e = Error::new(kind, message);
                if offline {
                    e = e.with_code("camera_offline");
                }
                if let Some(ms) = retry_after_ms {
                    e = e.retry_after(Duration::from_millis(ms));
                }
                Err(e)
            }
        }
    }
}

/// Writes `frame` for the wire, with its owner's camera session `epoch`.
pub fn encode_frame(frame: &Frame, out: &mut BytesMut) {
    out.reserve(HEAD + frame.data.len());
    out.extend_from_slice(&((HEAD - 4 + frame.data.len()) as u32).to_be_bytes());
    out.extend_from_slice(&frame.timestamp.to_be_bytes());
    out.extend_from_slice(&[u8::from(frame.is_key)]);
    out.extend_from_slice(&frame.epoch.to_be_bytes());
    out.extend_from_slice(&frame.data);
}

/// A frame as it came off the wire: timestamp, keyframe, owner's session, Annex B data.
#[derive(Debug, PartialEq)]
pub struct WireFrame {
    pub timestamp: i64,
    pub is_key: bool,
    pub epoch: u64,
    pub data: Bytes,
}

/// Takes the next whole frame from `buf`, if it holds one; refuses one past the bound.
pub fn decode_frame(buf: &mut BytesMut) -> Result<Option<WireFrame>, &'static str> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len < HEAD - 4 {
        return Err("a frame shorter than its head");
    }
    if len + 4 > MAX_WIRE_FRAME {
        return Err("a frame past the bound");
    }
    if buf.len() < len + 4 {
        return Ok(None);
    }
    buf.advance(4);
    let timestamp = buf.get_i64();
    let is_key = buf.get_u8() != 0;
    let epoch = buf.get_u64();
    let data = buf.split_to(len - (HEAD - 4)).freeze();
    Ok(Some(WireFrame {
        timestamp,
        is_key,
        epoch,
        data,
    }))
}

/// A camera's feed pulled from its owner: frames as the ingest gives them. It ends when the
/// owner's camera session does (its timestamps restart), so the pulling feed starts a new
/// session too.
pub struct PeerFeed {
    response: reqwest::Response,
    buf: BytesMut,
    epoch: Option<u64>,
}

impl PeerFeed {
    /// The next frame; `None` when the owner's camera session ended.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, Error> {
        let broken = |why: &str| {
            Error::new(
                ErrorKind::Unavailable,
                format!("the camera's node stopped sending: {why}"),
            )
        };
        loop {
            if let Some(w) = decode_frame(&mut self.buf).map_err(broken)? {
                if *self.epoch.get_or_insert(w.epoch) != w.epoch {
                    return Ok(None);
                }
                let rtp_payloads = h264::rtp_payloads(&w.data).map_err(broken)?;
                return Ok(Some(Frame {
                    timestamp: w.timestamp,
                    is_key: w.is_key,
                    data: w.data,
                    rtp_payloads,
                    received: eyeward::clock::monotonic(),
                    epoch: 0,
                }));
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk),
                Ok(None) => return Err(broken("the stream ended")),
                Err(e) => return Err(broken(&e.to_string())),
            }
        }
    }
}

/// Signed calls to other nodes.
pub struct Peers {
    client: reqwest::Client,
    signer: Signer,
}

impl Peers {
    pub fn new(signer: Signer) -> Result<Peers, Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .no_proxy()
            .build()
            .map_err(|e| Error::internal("the cluster's HTTP client").with_source(e))?;
        Ok(Peers { client, signer })
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    fn request(
        &self,
        from: i64,
        method: reqwest::Method,
        owner: &Owner,
        path: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::RequestBuilder, Error> {
        let url = url::Url::parse(&owner.internal_url)
            .and_then(|u| u.join(path))
            .map_err(|e| Error::internal("a node's internal URL").with_source(e))?;
        let authorization = self.signer.authorization(&Signed {
            node: from,
            at_ms: eyeward::clock::Clock::real().now().0,
            method: method.as_str(),
            path,
            body: &body,
        });
        Ok(self
            .client
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(GENERATION_HEADER, owner.generation.to_string())
            .body(body))
    }

    /// Asks `owner` to carry out `command` on `camera`.
    pub async fn ptz(
        &self,
        from: i64,
        owner: &Owner,
        camera: CameraId,
        command: &PtzCommand,
    ) -> Result<PtzAnswer, Error> {
        let body =
            serde_json::to_vec(command).map_err(|e| Error::internal("ptz").with_source(e))?;
        let path = format!("/internal/v1/cameras/{}/ptz", camera.0);
        let response = self
            .request(from, reqwest::Method::POST, owner, &path, body)?
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(unreachable)?;
        let body = answered(response)
            .await?
            .bytes()
            .await
            .map_err(unreachable)?;
        serde_json::from_slice(&body).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                "the camera's node answered nonsense",
            )
            .with_source(e)
        })
    }

    /// Pulls `camera`'s feed from `owner`.
    pub async fn feed(
        &self,
        from: i64,
        owner: &Owner,
        camera: CameraId,
    ) -> Result<PeerFeed, Error> {
        let path = format!("/internal/v1/cameras/{}/feed", camera.0);
        let send = self
            .request(from, reqwest::Method::GET, owner, &path, Vec::new())?
            .send();
        let response = tokio::time::timeout(CALL_TIMEOUT, send)
            .await
            .map_err(|_| Error::new(ErrorKind::Unavailable, "the camera's node did not answer"))?
            .map_err(unreachable)?;
        Ok(PeerFeed {
            response: answered(response).await?,
            buf: BytesMut::new(),
            epoch: None,
        })
    }
}

/// A tunnel's WebSocket to the node holding its camera.
pub type PeerTunnel =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Peers {
    /// Connects tunnel `tunnel` of `camera`, which its agent opened on this node, to `owner`,
    /// which asked for it.
    pub async fn tunnel(
        &self,
        from: i64,
        owner: &Owner,
        camera: CameraId,
        tunnel: &str,
        max_message: usize,
    ) -> Result<PeerTunnel, Error> {
        let path = format!("/internal/v1/cameras/{}/tunnels/{tunnel}", camera.0);
        let (ws, _) = self.web_socket(from, owner, &path, max_message).await?;
        Ok(ws)
    }

    /// A new tunnel to `camera` (its video, or the camera itself: `to`) through the agent
    /// linked to `owner`, and the RTSP path the agent's camera takes.
    pub async fn rtsp(
        &self,
        from: i64,
        owner: &Owner,
        camera: CameraId,
        to: crate::link::TunnelTo,
        max_message: usize,
    ) -> Result<(PeerTunnel, String), Error> {
        let to = match to {
            crate::link::TunnelTo::Video => "video",
            crate::link::TunnelTo::Camera => "camera",
        };
        let path = format!("/internal/v1/cameras/{}/rtsp/{to}", camera.0);
        let (ws, headers) = self.web_socket(from, owner, &path, max_message).await?;
        let rtsp_path = headers
            .get(RTSP_PATH_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|p| p.starts_with('/'))
            .ok_or_else(|| Error::internal("the camera's node named no RTSP path"))?;
        Ok((ws, rtsp_path.to_owned()))
    }

    /// A signed WebSocket to `path` on `owner`'s internal listener, with the headers of its
    /// answer; 409 (the camera moved) is [`moved`].
    async fn web_socket(
        &self,
        from: i64,
        owner: &Owner,
        path: &str,
        max_message: usize,
    ) -> Result<(PeerTunnel, reqwest::header::HeaderMap), Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut url = url::Url::parse(&owner.internal_url)
            .and_then(|u| u.join(path))
            .map_err(|e| Error::internal("a node's internal URL").with_source(e))?;
        url.set_scheme("ws")
            .map_err(|()| Error::internal("a node's internal URL"))?;
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| Error::internal("a tunnel request").with_source(e))?;
        let authorization = self.signer.authorization(&Signed {
            node: from,
            at_ms: eyeward::clock::Clock::real().now().0,
            method: "GET",
            path,
            body: b"",
        });
        let headers = request.headers_mut();
        for (name, value) in [
            ("authorization", authorization),
            (GENERATION_HEADER, owner.generation.to_string()),
        ] {
            headers.insert(
                name,
                value
                    .parse()
                    .map_err(|_| Error::internal("a tunnel request header"))?,
            );
        }
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message));
        let connect = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
        match tokio::time::timeout(CALL_TIMEOUT, connect).await {
            Ok(Ok((ws, response))) => Ok((ws, response.headers().clone())),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(r)))
                if r.status() == reqwest::StatusCode::CONFLICT =>
            {
                Err(moved())
            }
            Ok(Err(e)) => Err(Error::new(
                ErrorKind::Unavailable,
                format!("the camera's node did not take the tunnel: {e}"),
            )),
            Err(_) => Err(Error::new(
                ErrorKind::Unavailable,
                "the camera's node did not answer",
            )),
        }
    }
}

/// The header in which the node holding a camera names the RTSP path its agent's camera
/// takes, answering a tunnel to it ([`Peers::rtsp`]). Between nodes only: it may carry the
/// camera's query.
pub const RTSP_PATH_HEADER: &str = "eyeward-rtsp-path";

pub const GENERATION_HEADER: &str = "eyeward-generation";

fn unreachable(e: reqwest::Error) -> Error {
    Error::new(ErrorKind::Unavailable, "the camera's node is unreachable").with_source(e)
}

/// The response if it succeeded; a 409 means the camera moved.
async fn answered(response: reqwest::Response) -> Result<reqwest::Response, Error> {
    match response.status() {
        s if s.is_success() => Ok(response),
        reqwest::StatusCode::CONFLICT => Err(moved()),
        s => Err(Error::new(
            ErrorKind::Unavailable,
            format!("the camera's node answered {s}"),
        )),
    }
}

/// The camera is no longer held where the caller looked.
pub fn moved() -> Error {
    Error::new(
        ErrorKind::FailedPrecondition,
        "the camera moved to another node",
    )
    .with_code("camera_moved")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ts: i64, is_key: bool, epoch: u64, data: &'static [u8]) -> Frame {
        Frame {
            timestamp: ts,
            is_key,
            data: Bytes::from_static(data),
            rtp_payloads: Vec::new(),
            received: eyeward::clock::monotonic(),
            epoch,
        }
    }

    #[test]
    fn frames_cross_the_wire_whole_whatever_the_chunks() {
        let mut wire = BytesMut::new();
        encode_frame(&frame(9000, true, 3, b"\0\0\0\x01\x67key"), &mut wire);
        encode_frame(&frame(12000, false, 3, b"\0\0\0\x01\x41p"), &mut wire);
        let wire = wire.freeze();
        // Cut anywhere, in pieces of every size, the frames come out the same.
        for piece in 1..wire.len() {
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for chunk in wire.chunks(piece) {
                buf.extend_from_slice(chunk);
                while let Some(f) = decode_frame(&mut buf).unwrap() {
                    out.push(f);
                }
            }
            assert_eq!(out.len(), 2, "pieces of {piece}");
            assert_eq!(out[0].timestamp, 9000);
            assert!(out[0].is_key && !out[1].is_key);
            assert_eq!((out[0].epoch, out[1].epoch), (3, 3));
            assert_eq!(&out[1].data[..], b"\0\0\0\x01\x41p");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn a_frame_past_the_bound_or_shorter_than_its_head_is_refused() {
        let mut huge = BytesMut::from(&((MAX_WIRE_FRAME as u32).to_be_bytes())[..]);
        assert!(decode_frame(&mut huge).is_err());
        let mut short = BytesMut::from(&3u32.to_be_bytes()[..]);
        assert!(decode_frame(&mut short).is_err());
    }

    #[test]
    fn a_failure_crosses_with_its_kind_code_and_delay() {
        let e = Error::new(ErrorKind::ResourceExhausted, "wait")
            .retry_after(Duration::from_millis(1500));
        let back = PtzAnswer::failed(&e).into_result().unwrap_err();
        assert_eq!(back.kind(), ErrorKind::ResourceExhausted);
        assert_eq!(back.retry_delay(), Some(Duration::from_millis(1500)));
        let offline = PtzAnswer::failed(&crate::link::camera_offline())
            .into_result()
            .unwrap_err();
        assert_eq!(offline.given_code(), Some("camera_offline"));
    }
}
