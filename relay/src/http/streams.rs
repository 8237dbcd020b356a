//! Server-sent event streams, one helper for every page's live stream (events, pan-tilt,
//! dispatch): each sends the page [`Live`] messages with one name for "fetch the list
//! again" (`resync`), keeps itself open with comments, ends when the relay stops (saying
//! `reconnect` last: the page connects again, and sets its video up again), when what
//! authorised it ends (see [`crate::revocation`]) or after `http.max_event_stream`, and one
//! account has at most `http.max_event_streams_per_account` open at once: each holds a
//! connection and a task.

use super::AppState;
use super::extract::Caller;
use crate::error::{Error, ErrorKind};
use crate::revocation::Grant;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// How often a quiet stream sends a comment, so that proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How soon a page connects its stream again after the relay ended it because it stops.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

/// Whose open streams a stream counts against: an account's, or a guard's phone's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamHolder {
    Account(i64),
    Guard(i64),
}

impl Caller {
    /// The caller's streams, counted.
    pub fn holder(&self) -> StreamHolder {
        StreamHolder::Account(self.account.id)
    }
}

/// How many streams each account (or guard's phone) has open.
pub struct StreamCounts {
    open: Mutex<HashMap<StreamHolder, usize>>,
    per_account: usize,
}

impl StreamCounts {
    pub fn new(per_account: usize) -> StreamCounts {
        StreamCounts {
            open: Mutex::new(HashMap::new()),
            per_account,
        }
    }

    fn take(self: &Arc<Self>, account: StreamHolder) -> Result<StreamSlot, Error> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(account).or_default();
        if *n >= self.per_account {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                "too many live streams open for this account; close a page first",
            )
            .with_code("too_many_streams"));
        }
        *n += 1;
        Ok(StreamSlot {
            counts: self.clone(),
            account,
        })
    }
}

/// One open stream of an account, given back when the stream ends.
struct StreamSlot {
    counts: Arc<StreamCounts>,
    account: StreamHolder,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.account) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.account);
            }
        }
    }
}

/// `stream`, opened by `holder` under `grant`: it counts against the holder's open streams
/// and ends when the grant is taken away or its time is up. 429 past the holder's limit.
fn event_stream<S: Stream>(
    st: &AppState,
    holder: StreamHolder,
    grant: Grant,
    stream: S,
) -> Result<impl Stream<Item = S::Item> + use<S>, Error> {
    let slot = st.streams.take(holder)?;
    Ok(stream
        .take_until(st.revocations.ended(grant, st.max_event_stream))
        .map(move |item| {
            // The slot lives as long as the stream.
            let _ = &slot;
            item
        }))
}

/// What a page's live stream sends it.
pub enum Live {
    /// A message called `name` whose data is `data` (JSON).
    Message { name: &'static str, data: String },
    /// The page fell behind: it fetches what it shows again (`resync`, the one name every
    /// page knows).
    Resync,
}

/// Each change of `changes` that `render` picks, as [`Live`]; [`Live::Resync`] when this
/// receiver fell behind the sender's buffer.
pub fn from_broadcast<T, R>(changes: broadcast::Receiver<T>, render: R) -> impl Stream<Item = Live>
where
    T: Clone + Send + 'static,
    R: FnMut(T) -> Option<Live> + Send + 'static,
{
    futures_util::stream::unfold((changes, render), |(mut changes, mut render)| async move {
        loop {
            let live = match changes.recv().await {
                Ok(change) => match render(change) {
                    Some(live) => live,
                    None => continue,
                },
                Err(broadcast::error::RecvError::Lagged(_)) => Live::Resync,
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            return Some((live, (changes, render)));
        }
    })
}

/// The value of `states` now and after each change, as `render` makes it.
pub fn from_watch<T, R>(mut states: watch::Receiver<T>, render: R) -> impl Stream<Item = Live>
where
    T: Send + Sync + 'static,
    R: FnMut(&T) -> Live + Send + 'static,
{
    states.mark_changed();
    futures_util::stream::unfold((states, render), |(mut states, mut render)| async move {
        states.changed().await.ok()?;
        let live = render(&states.borrow_and_update());
        Some((live, (states, render)))
    })
}

/// A page's server-sent event stream of `source`: a comment every 15 s keeps proxies from
/// closing it while quiet; it counts against the caller's open streams (429 past the
/// limit) and ends when `source` does, when the relay stops, when `grant` is taken away and
/// after `http.max_event_stream`.
pub fn live_stream(
    st: &AppState,
    holder: StreamHolder,
    grant: Grant,
    source: impl Stream<Item = Live> + Send + 'static,
) -> Result<Response, Error> {
    let mut closing = st.events.closing();
    let closed = closing.clone();
    let stopping = async move {
        let _ = closing.wait_for(|c| *c).await;
    };
    // A stream the relay ends because it stops says so last: the page connects again at
    // once (through the load balancer, to another node) and sets its video up again.
    let reconnect = futures_util::stream::once(async move { *closed.borrow() }).filter_map(
        |stopped| async move {
            stopped.then(|| {
                Ok(SseEvent::default()
                    .event("reconnect")
                    .data("{}")
                    .retry(RECONNECT_AFTER))
            })
        },
    );
    let events = source
        .take_until(stopping)
        .map(|live| {
            Ok::<_, Infallible>(match live {
                Live::Message { name, data } => SseEvent::default().event(name).data(data),
                Live::Resync => SseEvent::default().event("resync").data("{}"),
            })
        })
        .chain(reconnect);
    let events = event_stream(st, holder, grant, events)?;
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(lives: &[Live]) -> Vec<String> {
        lives
            .iter()
            .map(|l| match l {
                Live::Message { name, data } => format!("{name}:{data}"),
                Live::Resync => "resync".to_owned(),
            })
            .collect()
    }

    #[tokio::test]
    async fn a_receiver_that_fell_behind_is_told_to_resync_then_gets_what_follows() {
        let (tx, rx) = broadcast::channel(2);
        let source = from_broadcast(rx, |n: u32| {
            n.is_multiple_of(2).then(|| Live::Message {
                name: "n",
                data: n.to_string(),
            })
        });
        // Five sent into a buffer of two: the first three are lost.
        for n in 0..5 {
            tx.send(n).unwrap();
        }
        drop(tx);
        let got: Vec<Live> = source.collect().await;
        assert_eq!(names(&got), ["resync", "n:4"]);
    }

    #[tokio::test]
    async fn a_watched_state_comes_first_as_it_is_then_at_each_change() {
        let (tx, rx) = watch::channel(1u32);
        let mut source = Box::pin(from_watch(rx, |n| Live::Message {
            name: "state",
            data: n.to_string(),
        }));
        assert_eq!(names(&[source.next().await.unwrap()]), ["state:1"]);
        tx.send(2).unwrap();
        assert_eq!(names(&[source.next().await.unwrap()]), ["state:2"]);
        drop(tx);
        assert!(source.next().await.is_none(), "ends with its sender");
    }
}
