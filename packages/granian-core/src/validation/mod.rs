//! Request validation before hyper: the bytes of an HTTP/1 connection pass through
//! [`CheckedStream`], which hands hyper only what [`http1::Http1Checker`] accepts.
//!
//! hyper's parser accepts inputs that RFC 9112 says to refuse and that other servers or proxies
//! read differently (bare LF line endings, control characters, Content-Length with
//! Transfer-Encoding, framing fields in trailers, loose chunk lines): the classic request smuggling
//! material. hyper cannot be made stricter and exposes no raw bytes, so the check sits under it.
//!
//! A request head is handed over only once it is complete and valid, so hyper never sees the start
//! of a message that is refused: a refused head ends the stream at the message before it (hyper
//! answers the requests before it, then closes), and the connection's shutdown writes the refusal
//! (`400`, `505`, or `431` for a head that outgrows the buffer). A body that breaks its chunked
//! framing ends the stream where it breaks: hyper sees an incomplete body and the connection closes.
//! Bodies of known length pass without a look; chunk lines and trailers are checked as they pass.
//! HTTP/2's preface ends the checking for the rest of the connection; so does a request asking to
//! switch protocols (Upgrade, CONNECT) once its response switched (101, or 2xx to CONNECT): what
//! follows it waits until the answer is known, and is checked as requests when it did not switch.

pub mod http1;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use http1::{Http1Checker, Step};

/// What a connection's service and its checked stream share: the requests hyper has taken and not
/// yet finished answering, and the status the stream refused a request with (0: none), for the
/// access log and metrics once the connection has ended.
pub struct Exchanges {
    open: AtomicUsize,
    all_answered: AtomicWaker,
    refused: AtomicU16,
    /// Set when a response switched protocols (101, or a 2xx to CONNECT).
    switched: AtomicBool,
    /// When the connection started, and since when (microseconds after that) no request is open:
    /// where the wait for the next request head begins.
    started: Instant,
    idle_since: AtomicU64,
}

impl Default for Exchanges {
    fn default() -> Self {
        Self {
            open: AtomicUsize::new(0),
            all_answered: AtomicWaker::new(),
            refused: AtomicU16::new(0),
            switched: AtomicBool::new(false),
            started: Instant::now(),
            idle_since: AtomicU64::new(0),
        }
    }
}

impl Exchanges {
    /// A request hyper handed to the service (call it synchronously, when hyper does).
    pub fn open(self: &Arc<Self>) -> OpenExchange {
        self.open.fetch_add(1, Ordering::AcqRel);
        OpenExchange(self.clone())
    }

    /// The service's answer to a request switches the connection to another protocol.
    pub fn switch_protocols(&self) {
        self.switched.store(true, Ordering::Release);
    }

    pub fn refused(&self) -> Option<StatusCode> {
        StatusCode::from_u16(self.refused.load(Ordering::Relaxed)).ok()
    }
}

/// A request being answered; dropped with its response body (the response is in hyper's hands).
pub struct OpenExchange(Arc<Exchanges>);

impl Drop for OpenExchange {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            let idle_since = self.0.started.elapsed().as_micros() as u64;
            self.0.idle_since.store(idle_since, Ordering::Release);
            self.0.all_answered.wake();
        }
    }
}

enum Reading {
    Checking,
    /// Not HTTP/1 messages any more (or never checked): bytes pass as they come.
    PassThrough,
    /// Stopped: after the released bytes the client's stream ends for hyper. After a refused
    /// head, only once the requests before it are answered (an end while a request is open makes
    /// hyper drop it unanswered); after a broken body, at once (the request it belongs to must see
    /// its body end short).
    Ended {
        after_answers: bool,
    },
}

/// What checking a run of bytes found.
enum Outcome {
    /// Everything is released.
    Released,
    /// Released up to `at`; from there on, bytes wait: for more of an incomplete unit, or for the
    /// outcome of a requested protocol switch.
    Hold(usize),
    /// Released up to `at`, where a refused message starts or a body breaks.
    Stop {
        at: usize,
        refusal: Option<StatusCode>,
    },
    PassThrough,
}

/// A client stream whose HTTP/1 requests are checked before hyper reads them.
pub struct CheckedStream<S> {
    inner: S,
    checker: Http1Checker,
    reading: Reading,
    /// Bytes read but not handed to hyper yet; the first `released` of them may go.
    held: Vec<u8>,
    released: usize,
    /// The most bytes an incomplete unit may hold (hyper's buffer limit).
    max_held: usize,
    /// hyper's header read timeout, kept here (hyper's own is off, see [`CheckedStream::head_overdue`]):
    /// how long a request head may take, from when the connection waits for it until it is whole.
    head_timeout: Duration,
    /// The connection's one timer for it, made at the first wait, and whether it runs now.
    head_timer: Option<Pin<Box<tokio::time::Sleep>>>,
    head_timer_running: bool,
    /// The refusal still to be written before the connection closes.
    refusal: Option<Vec<u8>>,
    exchanges: Arc<Exchanges>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> CheckedStream<S> {
    /// `check` false passes everything through (HTTP/2-only listeners).
    pub fn new(inner: S, check: bool, max_held: usize, head_timeout: Duration, exchanges: Arc<Exchanges>) -> Self {
        Self {
            inner,
            checker: Http1Checker::default(),
            reading: if check { Reading::Checking } else { Reading::PassThrough },
            held: Vec::new(),
            released: 0,
            max_held,
            head_timeout,
            head_timer: None,
            head_timer_running: false,
            refusal: None,
            exchanges,
        }
    }

    fn check(&mut self, data: &[u8]) -> Outcome {
        let mut at = 0;
        while at < data.len() {
            let in_head = self.checker.in_head();
            match self.checker.step(&data[at..]) {
                Step::Release(n) => {
                    at += n;
                    if in_head {
                        self.head_timer_running = false;
                    }
                }
                Step::NeedMore if data.len() - at > self.max_held => {
                    let refusal = self.checker.in_head().then_some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
                    return Outcome::Stop { at, refusal };
                }
                Step::NeedMore | Step::AwaitUpgrade => return Outcome::Hold(at),
                Step::RefuseMessage(status) => return Outcome::Stop { at, refusal: Some(status) },
                Step::BreakBody => return Outcome::Stop { at, refusal: None },
                Step::PassThrough => return Outcome::PassThrough,
            }
        }
        Outcome::Released
    }

    fn stop(&mut self, refusal: Option<StatusCode>) {
        self.reading = Reading::Ended { after_answers: refusal.is_some() };
        if let Some(status) = refusal {
            self.exchanges.refused.store(status.as_u16(), Ordering::Relaxed);
            self.refusal = Some(refusal_response(status));
        }
    }

    /// Whether the request head the connection waits for is overdue: hyper's header read timeout,
    /// run here. It runs from when no request is open (hyper reads the next head once the last
    /// response is out; at first, from the connection's start) until a whole head is released.
    ///
    /// hyper ran it with a new timer per request, allocated, registered in tokio's timer wheel and
    /// removed again (benchmarks/PROFILING.md). This is one timer per connection, moved to a later
    /// deadline for each head, which tokio does without touching its wheel until the old deadline
    /// comes. It is set while a request is answered too, for later than that could end: hyper does
    /// not read again once it has answered, so the timer's wake-up is what brings the connection
    /// back here to find out whether the head is overdue.
    fn head_overdue(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.checker.in_head() {
            return false;
        }
        loop {
            let deadline = (!self.head_timer_running).then(|| self.head_deadline());
            self.head_timer_running = true;
            let timer = match (&mut self.head_timer, deadline) {
                (Some(timer), Some(deadline)) => {
                    timer.as_mut().reset(deadline);
                    timer
                }
                (Some(timer), None) => timer,
                (slot @ None, deadline) => {
                    let deadline = deadline.unwrap_or_else(tokio::time::Instant::now);
                    slot.insert(Box::pin(tokio::time::sleep_until(deadline)))
                }
            };
            if timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            // The timer ran out: the head is overdue unless the wait began later than it was set
            // for; then it is set again.
            if self.head_deadline() <= tokio::time::Instant::now() {
                return true;
            }
            self.head_timer_running = false;
        }
    }

    /// When the head waited for is due: the timeout after the connection went idle, or, while a
    /// request is open, after now (the earliest the wait could begin).
    fn head_deadline(&self) -> tokio::time::Instant {
        let exchanges = &self.exchanges;
        let start = if exchanges.open.load(Ordering::Acquire) > 0 {
            Instant::now()
        } else {
            exchanges.started + Duration::from_micros(exchanges.idle_since.load(Ordering::Acquire))
        };
        tokio::time::Instant::from_std(start + self.head_timeout)
    }

    /// Checks the held bytes from their start (none of them released yet).
    fn recheck_held(&mut self) {
        let held = std::mem::take(&mut self.held);
        let outcome = self.check(&held);
        self.held = held;
        match outcome {
            Outcome::Released => self.released = self.held.len(),
            Outcome::PassThrough => {
                self.released = self.held.len();
                self.reading = Reading::PassThrough;
            }
            Outcome::Hold(at) => self.released = at,
            Outcome::Stop { at, refusal } => {
                self.held.truncate(at);
                self.released = at;
                self.stop(refusal);
            }
        }
    }

    /// Hands over released held bytes; false when there are none.
    fn deliver_held(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        if self.released == 0 {
            return false;
        }
        let n = self.released.min(buf.remaining());
        buf.put_slice(&self.held[..n]);
        self.held.drain(..n);
        self.released -= n;
        true
    }
}

/// The complete response to a refused request head.
fn refusal_response(status: StatusCode) -> Vec<u8> {
    let reason = status.canonical_reason().unwrap_or("Bad Request");
    format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\nserver: granian\r\n\r\n{reason}",
        status.as_u16(),
        reason.len()
    )
    .into_bytes()
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for CheckedStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.deliver_held(buf) {
                return Poll::Ready(Ok(()));
            }
            match this.reading {
                Reading::Ended { after_answers } => {
                    if after_answers {
                        this.exchanges.all_answered.register(cx.waker());
                        if this.exchanges.open.load(Ordering::Acquire) > 0 {
                            return Poll::Pending;
                        }
                    }
                    return Poll::Ready(Ok(()));
                }
                Reading::PassThrough if this.held.is_empty() => return Pin::new(&mut this.inner).poll_read(cx, buf),
                Reading::PassThrough => {
                    this.released = this.held.len();
                    continue;
                }
                Reading::Checking => {}
            }
            if this.checker.awaiting_upgrade() {
                // hyper reads again only once the request asking to switch is answered, or to
                // notice a closed connection meanwhile: either way, wait for the answer.
                this.exchanges.all_answered.register(cx.waker());
                if this.exchanges.open.load(Ordering::Acquire) > 0 {
                    return Poll::Pending;
                }
                this.checker.resolve_upgrade(this.exchanges.switched.load(Ordering::Acquire));
                if !this.held.is_empty() {
                    this.recheck_held();
                }
                continue;
            }
            let before = buf.filled().len();
            if Pin::new(&mut this.inner).poll_read(cx, buf)?.is_pending() {
                if this.head_overdue(cx) {
                    // As hyper does when its header timer runs out: close, no answer.
                    this.head_timer_running = false;
                    this.held.clear();
                    this.stop(None);
                    continue;
                }
                return Poll::Pending;
            }
            let fresh = buf.filled().len() - before;
            if fresh == 0 {
                // The client's end of the stream; what is held was never complete, so hyper sees
                // the stream end where the last complete unit did.
                return Poll::Ready(Ok(()));
            }
            if this.held.is_empty() {
                // The common case: checked where hyper will read it, nothing copied.
                let outcome = this.check(&buf.filled()[before..]);
                match outcome {
                    Outcome::Released => return Poll::Ready(Ok(())),
                    Outcome::PassThrough => {
                        this.reading = Reading::PassThrough;
                        return Poll::Ready(Ok(()));
                    }
                    Outcome::Hold(at) => {
                        this.held.extend_from_slice(&buf.filled()[before + at..]);
                        buf.set_filled(before + at);
                        if at > 0 {
                            return Poll::Ready(Ok(()));
                        }
                    }
                    Outcome::Stop { at, refusal } => {
                        buf.set_filled(before + at);
                        this.stop(refusal);
                        return Poll::Ready(Ok(()));
                    }
                }
            } else {
                // More of an incomplete unit: check it from its start, in the held copy.
                this.held.extend_from_slice(&buf.filled()[before..]);
                buf.set_filled(before);
                this.recheck_held();
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for CheckedStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    /// hyper shuts the stream down once it has answered every request before a refused one: the
    /// refusal goes out first.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while let Some(refusal) = &mut this.refusal {
            let written = ready!(Pin::new(&mut this.inner).poll_write(cx, refusal))?;
            refusal.drain(..written);
            if written == 0 || refusal.is_empty() {
                this.refusal = None;
            }
        }
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
