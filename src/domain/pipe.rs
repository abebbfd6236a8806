//! How a streamed response body is written: the chunks a source yields go
//! into a sink that takes one write at a time (in the edge, the writer of the
//! runtime's native pipe, `edge::http::stream`). No runtime and no clock here:
//! the edge supplies the sink.
//!
//! - Chunks that become ready while a write is pending go out together in the
//!   next write, whole and in order: a chunk is never split, so the events a
//!   source framed stay intact, and nothing waits that could be written now.
//! - The source runs at most `read_ahead` bytes ahead of a pending write; past
//!   that the pump waits for the write, so a slow reader slows the source.
//! - A failed write means the reader is gone: the pump returns at once,
//!   without polling the source again, so that the caller can drop it (which
//!   stops the upstream read, and settles whatever the source meters).

use std::future::Future;
use std::mem;

use futures::future::{Either, select};
use futures::{Stream, StreamExt};

/// Where the chunks go, one write at a time.
pub trait Sink {
    /// A write in flight: `true` once written, `false` when it failed (the reader is gone).
    type Written: Future<Output = bool> + Unpin;
    /// Starts writing `chunk`; `None` when the sink refused it at once.
    fn write(&mut self, chunk: Vec<u8>) -> Option<Self::Written>;
}

/// How a pump ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Pumped<E> {
    /// The source ended, and everything it yielded was written.
    Done,
    /// The source ended with this error, after everything it yielded before was written.
    Failed(E),
    /// A write failed: the reader is gone. The source was not polled after that.
    Gone,
}

/// Writes what `source` yields into `sink` until the source ends or a write fails.
/// Empty chunks are skipped.
pub async fn pump<S, E, K>(source: &mut S, sink: &mut K, read_ahead: usize) -> Pumped<E>
where
    S: Stream<Item = Result<Vec<u8>, E>> + Unpin,
    K: Sink,
{
    let mut ready: Vec<u8> = Vec::new();
    let mut writing: Option<K::Written> = None;
    // `Some` once the source ended: how.
    let mut ended: Option<Result<(), E>> = None;
    // Bounded: each turn takes one item from the source or settles one write, the source
    // ends (in the edge, its idle guard ends a stalled upstream), and a write resolves once
    // the reader took it or left.
    loop {
        if writing.is_none() && !ready.is_empty() {
            match sink.write(mem::take(&mut ready)) {
                Some(written) => writing = Some(written),
                None => return Pumped::Gone,
            }
        }
        let next = match writing.as_mut() {
            None => match ended {
                Some(Ok(())) => return Pumped::Done,
                Some(Err(e)) => return Pumped::Failed(e),
                None => source.next().await,
            },
            Some(pending) if ended.is_some() || ready.len() >= read_ahead => {
                if !pending.await {
                    return Pumped::Gone;
                }
                writing = None;
                continue;
            }
            // The write is polled first, so a failed one is seen before the source is
            // polled again. `next` is cancel-safe: a stream keeps its state between polls.
            Some(pending) => match select(pending, source.next()).await {
                Either::Left((written, _)) => {
                    if !written {
                        return Pumped::Gone;
                    }
                    writing = None;
                    continue;
                }
                Either::Right((next, _)) => next,
            },
        };
        match next {
            Some(Ok(chunk)) if ready.is_empty() => ready = chunk,
            Some(Ok(chunk)) => ready.extend_from_slice(&chunk),
            Some(Err(e)) => ended = Some(Err(e)),
            None => ended = Some(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::rc::Rc;
    use std::task::{Context, Poll, Waker};

    use futures::FutureExt;
    use futures::channel::{mpsc, oneshot};
    use futures::future::Map;
    use futures::stream;

    type Item = Result<Vec<u8>, String>;

    /// A sink whose writes the test completes by hand, recording what was written.
    #[derive(Default)]
    struct Recorder {
        written: Rc<RefCell<Vec<String>>>,
        pending: Rc<RefCell<VecDeque<oneshot::Sender<bool>>>>,
        refuse: bool,
    }

    type Outcome = Result<bool, oneshot::Canceled>;

    impl Sink for Recorder {
        type Written = Map<oneshot::Receiver<bool>, fn(Outcome) -> bool>;
        fn write(&mut self, chunk: Vec<u8>) -> Option<Self::Written> {
            if self.refuse {
                return None;
            }
            self.written
                .borrow_mut()
                .push(String::from_utf8_lossy(&chunk).into_owned());
            let (tx, rx) = oneshot::channel();
            self.pending.borrow_mut().push_back(tx);
            Some(rx.map(|r: Outcome| r.unwrap_or(false)))
        }
    }

    /// The test's handles on a pump: its source's sender and poll count, and its sink.
    struct Rig {
        tx: Option<mpsc::UnboundedSender<Item>>,
        polls: Rc<Cell<usize>>,
        written: Rc<RefCell<Vec<String>>>,
        pending: Rc<RefCell<VecDeque<oneshot::Sender<bool>>>>,
    }

    impl Rig {
        fn send(&self, chunk: &str) {
            if let Some(tx) = &self.tx {
                let _ = tx.unbounded_send(Ok(chunk.as_bytes().to_vec()));
            }
        }
        fn fail(&self, why: &str) {
            if let Some(tx) = &self.tx {
                let _ = tx.unbounded_send(Err(why.to_owned()));
            }
        }
        fn end(&mut self) {
            self.tx = None;
        }
        /// Completes the oldest pending write.
        fn complete(&self, ok: bool) {
            let tx = self.pending.borrow_mut().pop_front();
            assert!(tx.is_some(), "no write is pending");
            if let Some(tx) = tx {
                let _ = tx.send(ok);
            }
        }
        fn written(&self) -> Vec<String> {
            self.written.borrow().clone()
        }
        fn pending_writes(&self) -> usize {
            self.pending.borrow().len()
        }
    }

    type Source = Pin<Box<dyn Stream<Item = Item>>>;

    /// A pump over a hand-fed source, polled by hand.
    fn rig(
        read_ahead: usize,
        refuse: bool,
    ) -> (Rig, Pin<Box<dyn Future<Output = Pumped<String>>>>) {
        let (tx, mut rx) = mpsc::unbounded::<Item>();
        let polls = Rc::new(Cell::new(0));
        let counted = Rc::clone(&polls);
        let mut source: Source = Box::pin(stream::poll_fn(move |cx| {
            counted.set(counted.get() + 1);
            rx.poll_next_unpin(cx)
        }));
        let mut sink = Recorder {
            refuse,
            ..Recorder::default()
        };
        let rig = Rig {
            tx: Some(tx),
            polls,
            written: Rc::clone(&sink.written),
            pending: Rc::clone(&sink.pending),
        };
        let fut = Box::pin(async move { pump(&mut source, &mut sink, read_ahead).await });
        (rig, fut)
    }

    fn poll(fut: &mut Pin<Box<dyn Future<Output = Pumped<String>>>>) -> Poll<Pumped<String>> {
        fut.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn chunks_ready_during_a_write_go_out_together_whole_and_in_order() {
        let (mut rig, mut fut) = rig(1024, false);
        rig.send("data: a\n\n");
        assert_eq!(poll(&mut fut), Poll::Pending);
        assert_eq!(rig.written(), ["data: a\n\n"]);
        rig.send("data: b\n\n");
        rig.send("data: c\n\n");
        assert_eq!(poll(&mut fut), Poll::Pending);
        assert_eq!(rig.pending_writes(), 1, "one write at a time");
        rig.complete(true);
        assert_eq!(poll(&mut fut), Poll::Pending);
        assert_eq!(rig.written(), ["data: a\n\n", "data: b\n\ndata: c\n\n"]);
        rig.end();
        assert_eq!(
            poll(&mut fut),
            Poll::Pending,
            "the last write is still pending"
        );
        rig.complete(true);
        assert_eq!(poll(&mut fut), Poll::Ready(Pumped::Done));
    }

    #[test]
    fn a_chunk_is_written_at_once_when_no_write_is_pending() {
        let (rig, mut fut) = rig(1024, false);
        rig.send("a");
        assert_eq!(poll(&mut fut), Poll::Pending);
        rig.complete(true);
        assert_eq!(poll(&mut fut), Poll::Pending);
        rig.send("b");
        assert_eq!(poll(&mut fut), Poll::Pending);
        assert_eq!(rig.written(), ["a", "b"]);
    }

    #[test]
    fn a_failed_write_returns_without_polling_the_source_again() {
        let (rig, mut fut) = rig(1024, false);
        rig.send("a");
        assert_eq!(poll(&mut fut), Poll::Pending);
        let polls = rig.polls.get();
        rig.send("b");
        rig.complete(false);
        assert_eq!(poll(&mut fut), Poll::Ready(Pumped::Gone));
        assert_eq!(
            rig.polls.get(),
            polls,
            "the source was not polled after the failure"
        );
        assert_eq!(rig.written(), ["a"]);
    }

    #[test]
    fn a_failed_write_is_seen_while_the_source_has_nothing() {
        let (rig, mut fut) = rig(1024, false);
        rig.send("a");
        assert_eq!(poll(&mut fut), Poll::Pending);
        assert_eq!(poll(&mut fut), Poll::Pending);
        rig.complete(false);
        assert_eq!(poll(&mut fut), Poll::Ready(Pumped::Gone));
    }

    #[test]
    fn the_source_runs_at_most_read_ahead_bytes_ahead_of_a_pending_write() {
        let (rig, mut fut) = rig(4, false);
        rig.send("a");
        assert_eq!(poll(&mut fut), Poll::Pending);
        rig.send("bbbb");
        rig.send("cc");
        assert_eq!(poll(&mut fut), Poll::Pending);
        let polls = rig.polls.get();
        assert_eq!(poll(&mut fut), Poll::Pending);
        assert_eq!(
            rig.polls.get(),
            polls,
            "4 bytes ahead: the source waits for the write"
        );
        rig.complete(true);
        assert_eq!(poll(&mut fut), Poll::Pending);
        rig.complete(true);
        assert_eq!(poll(&mut fut), Poll::Pending);
        assert_eq!(rig.written(), ["a", "bbbb", "cc"]);
    }

    #[test]
    fn an_error_ends_the_pump_after_what_came_before_it_is_written() {
        let (rig, mut fut) = rig(1024, false);
        rig.send("a");
        assert_eq!(poll(&mut fut), Poll::Pending);
        rig.send("b");
        rig.fail("broke");
        assert_eq!(poll(&mut fut), Poll::Pending);
        rig.complete(true);
        assert_eq!(poll(&mut fut), Poll::Pending);
        assert_eq!(rig.written(), ["a", "b"]);
        rig.complete(true);
        assert_eq!(poll(&mut fut), Poll::Ready(Pumped::Failed("broke".into())));
    }

    #[test]
    fn empty_chunks_are_skipped_and_an_empty_source_writes_nothing() {
        let (mut rig, mut fut) = rig(1024, false);
        rig.send("");
        assert_eq!(poll(&mut fut), Poll::Pending);
        assert!(rig.written().is_empty());
        rig.end();
        assert_eq!(poll(&mut fut), Poll::Ready(Pumped::Done));
        assert!(rig.written().is_empty());
    }

    #[test]
    fn a_sink_that_refuses_a_write_ends_the_pump() {
        let (rig, mut fut) = rig(1024, true);
        rig.send("a");
        assert_eq!(poll(&mut fut), Poll::Ready(Pumped::Gone));
    }
}
