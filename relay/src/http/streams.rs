//! Server-sent event streams: each ends when what authorised it ends (see
//! [`crate::revocation`]) or after `http.max_event_stream`, and one account has at most
//! `http.max_event_streams_per_account` open at once: each holds a connection and a task.

use super::AppState;
use super::extract::Caller;
use crate::error::{Error, ErrorKind};
use crate::revocation::Grant;
use futures_util::{Stream, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How many streams each account has open.
pub struct StreamCounts {
    open: Mutex<HashMap<i64, usize>>,
    per_account: usize,
}

impl StreamCounts {
    pub fn new(per_account: usize) -> StreamCounts {
        StreamCounts {
            open: Mutex::new(HashMap::new()),
            per_account,
        }
    }

    fn take(self: &Arc<Self>, account: i64) -> Result<StreamSlot, Error> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(account).or_default();
        if *n >= self.per_account {
            return Err(Error::new(
                ErrorKind::TooManyRequests,
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
    account: i64,
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

/// `stream`, opened by `caller` under `grant`: it counts against the caller's open streams
/// and ends when the grant is taken away or its time is up. 429 past the account's limit.
pub fn event_stream<S: Stream>(
    st: &AppState,
    caller: &Caller,
    grant: Grant,
    stream: S,
) -> Result<impl Stream<Item = S::Item> + use<S>, Error> {
    let slot = st.streams.take(caller.account.id)?;
    Ok(stream
        .take_until(st.revocations.ended(grant, st.max_event_stream))
        .map(move |item| {
            // The slot lives as long as the stream.
            let _ = &slot;
            item
        }))
}
