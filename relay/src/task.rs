//! Panics stay in the task they happen in. A camera's feed, a viewer's stream and an agent's
//! link each run as their own task; a panic in one ends that task alone (a feed then pulls
//! its camera again), is logged and is counted in `eyeward_task_panics_total{task}`, while
//! the other cameras, viewers and the process go on.

use crate::metrics::{Metrics, TaskLabels};
use futures_util::FutureExt;
use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

/// Which kind of task panicked (the metric's label).
#[derive(Clone, Copy, Debug)]
pub enum Task {
    /// A camera's pull and fan-out.
    Feed,
    /// One viewer's outgoing frames.
    Viewer,
    /// One agent's control link.
    AgentLink,
}

impl Task {
    fn label(self) -> &'static str {
        match self {
            Task::Feed => "feed",
            Task::Viewer => "viewer",
            Task::AgentLink => "agent_link",
        }
    }
}

/// Runs `fut`, turning a panic in it into `None` (logged and counted).
///
/// Unwind safety: what these tasks share with others sits behind mutexes that recover from
/// poisoning and is consistent between statements, so a task ended mid-way leaves nothing
/// half-changed for the rest.
pub async fn contained<F: Future>(metrics: &Metrics, task: Task, fut: F) -> Option<F::Output> {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(out) => Some(out),
        Err(payload) => {
            metrics
                .task_panics
                .get_or_create(&TaskLabels { task: task.label() })
                .inc();
            // The message is the code's own (a failed assertion or index), never request
            // data: our panics format no sources or credentials.
            tracing::error!(
                task = task.label(),
                panic = message(&*payload),
                "task panicked"
            );
            None
        }
    }
}

fn message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}

/// A fault-injection point for tests, in builds with the `failpoints` feature only: the fail
/// point `{name}-{camera id}`, so that a test can make one camera's task panic (`panic`, or
/// `1*panic` for one task of the camera) and leave the others be.
#[cfg(feature = "failpoints")]
pub fn fail_point(name: &str, camera: eyeward::CameraId) {
    fail::fail_point!(&format!("{name}-{}", camera.0));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_becomes_none_and_is_counted() {
        let metrics = Metrics::new();
        assert_eq!(contained(&metrics, Task::Feed, async { 7 }).await, Some(7));
        let out = contained(&metrics, Task::Viewer, async {
            if metrics.ingest_frames.get() == 0 {
                panic!("index out of range");
            }
        })
        .await;
        assert_eq!(out, None);
        let text = metrics.encode();
        assert!(
            text.contains("eyeward_task_panics_total{task=\"viewer\"} 1"),
            "{text}"
        );
        assert!(!text.contains("task=\"feed\""), "{text}");
    }
}
