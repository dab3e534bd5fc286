//! Coarse time limits shared by many tasks: the handshake limit of every new connection.
//!
//! A tokio timer per connection costs more than its entry in the timer wheel. When a new deadline
//! is the earliest one the runtime holds (on a server accepting connections one at a time, the
//! handshake deadline of each new connection is), registering it writes the runtime's own eventfd
//! so that its driver re-arms the park timeout, and the thread then turns its event loop once more
//! before it sleeps: a write and an empty loop turn per connection that arrives alone.
//!
//! [`within`] gives every task that starts in the same second the same deadline: one
//! [`CancellationToken`] per thread and second, cancelled by one task that sleeps until the
//! second's end plus the limit. So a limit `d` fires between `d` and `d` + [`GRAIN`] after the
//! task started, and a thread registers one timer per second of new connections instead of one
//! per connection; an idle thread registers none.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The width of the slot of start times that share one deadline.
pub const GRAIN: Duration = Duration::from_secs(1);

/// The tasks started on this thread in one slot, for one limit.
struct Slot {
    limit: Duration,
    open_until: Instant,
    expired: CancellationToken,
}

thread_local! {
    /// One open slot per limit in use on this thread (the server uses one limit, so this stays
    /// a single entry).
    static SLOTS: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

/// Runs `future` until it completes (`Some`) or its limit has passed (`None`): `limit` at least,
/// `limit` + [`GRAIN`] at most. Must run inside a tokio runtime.
pub async fn within<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    // A future done at its first poll needs no deadline at all.
    let expired = match poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await {
        Poll::Ready(output) => return Some(output),
        Poll::Pending => expiry(limit),
    };
    let mut cancelled = pin!(expired.cancelled());
    poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => cancelled.as_mut().poll(cx).map(|()| None),
    })
    .await
}

/// The token of this thread's open slot for `limit`, opening a new slot (and spawning its timer
/// task) when the last one has closed.
fn expiry(limit: Duration) -> CancellationToken {
    let now = Instant::now();
    SLOTS.with_borrow_mut(|slots| {
        let open = slots.iter().position(|slot| slot.limit == limit);
        if let Some(slot) = open.map(|index| &slots[index]) {
            // A cancelled token of an open slot means its timer task was dropped with its runtime.
            if now < slot.open_until && !slot.expired.is_cancelled() {
                return slot.expired.clone();
            }
        }
        let expired = CancellationToken::new();
        let fires = now + GRAIN + limit;
        // The guard cancels the token when the task ends: at `fires`, or when its runtime drops it.
        let guard = expired.clone().drop_guard();
        tokio::spawn(async move {
            tokio::time::sleep_until(fires).await;
            drop(guard);
        });
        let slot = Slot { limit, open_until: now + GRAIN, expired: expired.clone() };
        match open {
            Some(index) => slots[index] = slot,
            None => slots.push(slot),
        }
        expired
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
    }

    #[test]
    fn a_ready_future_completes_without_a_slot() {
        runtime().block_on(async {
            assert_eq!(within(Duration::ZERO, async { 7 }).await, Some(7));
        });
        assert!(SLOTS.with_borrow(|slots| slots.is_empty()));
    }

    #[test]
    fn a_pending_future_gives_up_between_the_limit_and_the_limit_plus_the_grain() {
        runtime().block_on(async {
            let limit = Duration::from_millis(200);
            let started = Instant::now();
            let first = tokio::spawn(within(limit, std::future::pending::<()>()));
            tokio::time::sleep(Duration::from_millis(100)).await;
            let second_started = Instant::now();
            let second = within(limit, std::future::pending::<()>());
            assert_eq!(second.await, None);
            assert!(second_started.elapsed() >= limit, "{:?}", second_started.elapsed());
            assert_eq!(first.await.unwrap(), None);
            let waited = started.elapsed();
            assert!(waited >= limit && waited <= limit + GRAIN + Duration::from_millis(300), "{waited:?}");
        });
    }

    #[test]
    fn a_future_that_completes_in_time_wins_and_tasks_in_one_slot_share_a_timer() {
        runtime().block_on(async {
            let limit = Duration::from_secs(30);
            for value in 0..3 {
                let late = async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    value
                };
                assert_eq!(within(limit, late).await, Some(value));
            }
            let slots = SLOTS.with_borrow(|slots| slots.iter().filter(|slot| slot.limit == limit).count());
            assert_eq!(slots, 1);
        });
    }

    #[test]
    fn a_slot_whose_runtime_ended_is_not_reused() {
        let limit = Duration::from_secs(30);
        runtime().block_on(async {
            let late = async { tokio::time::sleep(Duration::from_millis(5)).await };
            assert_eq!(within(limit, late).await, Some(()));
        });
        // The first runtime dropped the slot's timer task, which cancelled the token: the new
        // runtime opens a new slot instead of inheriting a deadline no task will ever fire.
        runtime().block_on(async {
            let late = async { tokio::time::sleep(Duration::from_millis(5)).await };
            assert_eq!(within(limit, late).await, Some(()));
            assert!(SLOTS.with_borrow(|slots| slots.iter().all(|slot| !slot.expired.is_cancelled())));
        });
    }
}
