//! Per-stream turns: commands on one stream in this process run one at a time, in the order
//! they arrived, instead of racing each other into conflicts. (Writers in other processes are
//! still caught by the expected-version check.)
//!
//! A stream has an entry only while a command holds or waits for its turn, and taking a free
//! turn allocates nothing: it is one map insert, and giving it back one removal.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use foldhash::HashMap;

use crate::stream::StreamId;

/// The turns of every stream with a command in flight.
#[derive(Default)]
pub(crate) struct StreamTurns(Mutex<HashMap<StreamId, Queue>>);

/// One stream's turn: who holds it and who waits for it.
struct Queue {
    /// The ticket of the command holding the turn.
    holder: u64,
    /// The ticket the next command to arrive draws.
    next: u64,
    /// The commands waiting, in ticket order.
    waiting: VecDeque<Waiter>,
}

struct Waiter {
    ticket: u64,
    /// Set once the waiting command has been polled.
    waker: Option<Waker>,
}

/// A command's place in a stream's queue: the turn itself once [`StreamTurns::take`] returns
/// it. Dropping it gives the turn to the next command, or gives up the place in the queue.
pub(crate) struct StreamTurn<'a> {
    turns: &'a StreamTurns,
    id: &'a StreamId,
    ticket: u64,
}

impl StreamTurns {
    // Nothing panics while the guard is held, so a poisoned lock still guards consistent data.
    fn lock(&self) -> MutexGuard<'_, HashMap<StreamId, Queue>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the turn of stream `id`, behind the commands that asked for it before.
    pub(crate) async fn take<'a>(&'a self, id: &'a StreamId) -> StreamTurn<'a> {
        let (ticket, free) = {
            let mut queues = self.lock();
            match queues.get_mut(id) {
                Some(queue) => {
                    let ticket = queue.next;
                    queue.next += 1;
                    queue.waiting.push_back(Waiter {
                        ticket,
                        waker: None,
                    });
                    (ticket, false)
                }
                None => {
                    queues.insert(
                        id.clone(),
                        Queue {
                            holder: 0,
                            next: 1,
                            waiting: VecDeque::new(),
                        },
                    );
                    (0, true)
                }
            }
        };
        // Built before waiting, so a command dropped while it waits leaves the queue.
        let turn = StreamTurn {
            turns: self,
            id,
            ticket,
        };
        if !free {
            poll_fn(|cx| self.poll_turn(id, ticket, cx)).await;
        }
        turn
    }

    fn poll_turn(&self, id: &StreamId, ticket: u64, cx: &mut Context<'_>) -> Poll<()> {
        let mut queues = self.lock();
        // The queue lives as long as our ticket is in it, so a missing one cannot happen; it
        // would mean nobody holds the turn.
        let Some(queue) = queues.get_mut(id) else {
            return Poll::Ready(());
        };
        if queue.holder == ticket {
            return Poll::Ready(());
        }
        if let Some(waiter) = queue.waiting.iter_mut().find(|w| w.ticket == ticket) {
            match &mut waiter.waker {
                Some(waker) => waker.clone_from(cx.waker()),
                None => waiter.waker = Some(cx.waker().clone()),
            }
        }
        Poll::Pending
    }
}

impl Drop for StreamTurn<'_> {
    fn drop(&mut self) {
        let mut queues = self.turns.lock();
        let Some(queue) = queues.get_mut(self.id) else {
            return;
        };
        if queue.holder != self.ticket {
            // Dropped while waiting: leave the queue.
            queue.waiting.retain(|w| w.ticket != self.ticket);
            return;
        }
        match queue.waiting.pop_front() {
            Some(next) => {
                queue.holder = next.ticket;
                if let Some(waker) = next.waker {
                    waker.wake();
                }
            }
            None => {
                queues.remove(self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    use super::StreamTurns;
    use crate::stream::StreamId;

    struct Noop;

    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }

    fn poll<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(&Waker::from(Arc::new(Noop))))
    }

    #[test]
    fn turns_pass_in_arrival_order_and_skip_who_left() -> Result<(), crate::InvalidStreamId> {
        let turns = StreamTurns::default();
        let id = StreamId::new("s")?;
        let mut first = pin!(turns.take(&id));
        let Poll::Ready(first) = poll(first.as_mut()) else {
            panic!("a free turn is taken at once");
        };
        let mut second = pin!(turns.take(&id));
        let mut third = Box::pin(turns.take(&id));
        let mut fourth = pin!(turns.take(&id));
        assert!(poll(second.as_mut()).is_pending());
        assert!(poll(third.as_mut()).is_pending());
        assert!(poll(fourth.as_mut()).is_pending());
        drop(third);
        drop(first);
        assert!(poll(fourth.as_mut()).is_pending());
        let Poll::Ready(second) = poll(second.as_mut()) else {
            panic!("the second command is next");
        };
        drop(second);
        let Poll::Ready(fourth) = poll(fourth.as_mut()) else {
            panic!("the fourth command is next: the third left");
        };
        drop(fourth);
        assert!(turns.lock().is_empty());
        Ok(())
    }

    #[test]
    fn a_turn_handed_to_a_command_that_left_passes_on() -> Result<(), crate::InvalidStreamId> {
        let turns = StreamTurns::default();
        let id = StreamId::new("s")?;
        let mut first = pin!(turns.take(&id));
        let Poll::Ready(first) = poll(first.as_mut()) else {
            panic!("a free turn is taken at once");
        };
        let mut second = Box::pin(turns.take(&id));
        let mut third = pin!(turns.take(&id));
        assert!(poll(second.as_mut()).is_pending());
        assert!(poll(third.as_mut()).is_pending());
        drop(first);
        // The second command holds the turn now, but leaves before it is polled again.
        drop(second);
        let Poll::Ready(third) = poll(third.as_mut()) else {
            panic!("the third command is next");
        };
        drop(third);
        assert!(turns.lock().is_empty());
        Ok(())
    }
}
