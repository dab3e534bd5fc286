//! The serving engine of one worker process: accept loops, connections, backpressure and drain.
//!
//! Interfaces plug in through [`Dispatcher`]: the engine owns sockets and HTTP, the dispatcher turns
//! a request into a response (by asking the Python app). Backpressure is counted in requests handed
//! to the dispatcher, not in connections, so idle keep-alive connections cost no app capacity.

use std::convert::Infallible;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use http::header::{HeaderValue, ALT_SVC};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accesslog::{automatic_response_status, AccessFormat, AccessLog, Record};
use crate::coalesce::{Coalesced, WriteBatch};
use crate::http::{
    body_too_large, connection_builder, error_response, http1_builder, Http1Settings, Http2Settings, Http3Settings,
    HttpMode, ResponseBody,
};
use crate::incoming::TransportBody;
use crate::metrics::{Field, InFlight, WorkerMetrics};
use crate::net::{Accept, Accepted, AsyncListener, Endpoint, Listener, UnixAcceptor};
use crate::observe::ObservedBody;
use crate::pytemplate::RequestTemplate;
use crate::runtime::{RuntimeMode, RuntimeThreads};
use crate::sendfile::{FileLedger, SendfileStream, SendfileTarget};
use crate::statics::StaticFiles;
use crate::tls::info::TlsInfo;
use crate::tls::{ServerTls, Tls};
use crate::validation::{CheckedStream, Exchanges, OpenExchange};
use crate::ws::handshake::is_websocket_request;
use crate::ws::session::WsSettings;

/// Everything a worker needs to know to serve, independent of the interface.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub http_mode: HttpMode,
    pub http1: Http1Settings,
    pub http2: Http2Settings,
    /// HTTP/3 on UDP beside the TCP listener (needs `tls`); None without it.
    pub http3: Option<Http3Settings>,
    pub runtime_mode: RuntimeMode,
    pub runtime_threads: usize,
    pub backpressure: usize,
    /// WebSocket settings; None when WebSockets are off (upgrade requests reach the app as HTTP).
    pub websockets: Option<WsSettings>,
    /// HTTPS; None serves plain HTTP.
    pub tls: Option<ServerTls>,
    /// Most threads each runtime starts for blocking work (file I/O).
    pub blocking_threads: usize,
    /// How long a shutdown waits for connections to finish before closing the rest; None waits.
    pub drain_timeout: Option<Duration>,
    /// Static file mounts answered before the app; None when there are none.
    pub statics: Option<Arc<StaticFiles>>,
    /// The access log format; None when the access log is off.
    pub access_log: Option<AccessFormat>,
    /// This worker's slot of the supervisor's metrics; None when metrics are off.
    pub metrics: Option<WorkerMetrics>,
    /// The largest request body accepted, in bytes; None accepts any size.
    pub max_request_body_size: Option<u64>,
}

/// What every connection of a worker shares with the engine.
pub struct ServerContext {
    /// Cancelled when the worker starts shutting down.
    pub shutdown: CancellationToken,
    /// Tasks the drain waits for: connections, and WebSocket sessions that outlive their request.
    pub tasks: TaskTracker,
    pub websockets: Option<WsSettings>,
    /// Requests received so far (WebSocket handshakes included), for request-count recycling.
    pub requests: AtomicU64,
    pub metrics: Option<WorkerMetrics>,
    /// The largest request body accepted, in bytes; None accepts any size.
    pub max_request_body_size: Option<u64>,
}

/// Facts about one client connection, shared by its requests.
pub struct ConnectionInfo {
    pub local: Endpoint,
    pub peer: Endpoint,
    pub scheme: &'static str,
    /// TLS facts (HTTPS connections only).
    pub tls: Option<TlsInfo>,
    /// The entries every request dict of this connection shares (the WSGI environ, the ASGI
    /// scope), made by the interface for the first request; each request starts from a copy.
    pub request_template: RequestTemplate,
    /// Cancelled when the connection is gone.
    pub closed: CancellationToken,
    /// Where file bodies of HTTP/1 responses go zero-copy; None on connections that cannot.
    zero_copy: Option<FileLedger>,
    pub server: Arc<ServerContext>,
    /// Set when the first request arrives (see [`FIRST_REQUEST_GRACE`]).
    first_request: AtomicBool,
    first_request_arrived: Notify,
}

impl ConnectionInfo {
    pub(crate) fn new(
        local: Endpoint,
        peer: Endpoint,
        tls: Option<TlsInfo>,
        zero_copy: Option<FileLedger>,
        server: Arc<ServerContext>,
    ) -> Self {
        Self {
            zero_copy,
            local,
            peer,
            scheme: if tls.is_some() { "https" } else { "http" },
            tls,
            request_template: RequestTemplate::new(),
            closed: CancellationToken::new(),
            server,
            first_request: AtomicBool::new(false),
            first_request_arrived: Notify::new(),
        }
    }

    fn mark_request(&self) {
        self.server.requests.fetch_add(1, Ordering::Relaxed);
        if !self.first_request.swap(true, Ordering::AcqRel) {
            self.first_request_arrived.notify_one();
        }
    }
}

/// How long a connection accepted just before shutdown may take to send its first request.
///
/// hyper closes a connection with no request in flight at once when told to shut down, but a client
/// that has just connected has its request on the way (often already in the socket buffer): closing
/// would reset it. Waiting for that one request, then closing after its response, loses nothing.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// Longest a connection that ended without a shutdown waits to write what it still holds.
const FINAL_WRITES: Duration = Duration::from_secs(1);

/// Turns a request into a response; implemented once per interface.
pub trait Dispatcher: Send + Sync + 'static {
    /// `permit` is one unit of backpressure: hold it until the app is done with the request.
    /// The request may be handed to the app when this is called, not when the future is first
    /// polled: call it only to await the response.
    fn dispatch<B: TransportBody>(
        &self,
        request: Request<B>,
        connection: Arc<ConnectionInfo>,
        permit: OwnedSemaphorePermit,
    ) -> impl Future<Output = Response<ResponseBody>> + Send;
}

/// Reports a problem seen on a tokio thread (the interface decides where it is logged).
pub type ErrorSink = Arc<dyn Fn(String) + Send + Sync>;

/// Reports what happened on a tokio thread at debug level (failed TLS handshakes: scanners, plain
/// HTTP sent to the TLS port); None when the log level hides it.
pub type DebugSink = Option<Arc<dyn Fn(String) + Send + Sync>>;

pub(crate) struct Engine<D> {
    dispatcher: D,
    http_mode: HttpMode,
    builder: auto::Builder<TokioExecutor>,
    http1: hyper::server::conn::http1::Builder,
    backpressure: Arc<Semaphore>,
    pub(crate) shutdown: CancellationToken,
    /// Cancelled when the drain timeout expires: connections still open are closed.
    pub(crate) abort: CancellationToken,
    pub(crate) connections: TaskTracker,
    pub(crate) context: Arc<ServerContext>,
    pub(crate) report: ErrorSink,
    pub(crate) debug: DebugSink,
    tls: Option<Tls>,
    /// The `Alt-Svc` header TCP responses carry while HTTP/3 is served; None without HTTP/3.
    alt_svc: Option<HeaderValue>,
    /// Plain-text HTTP/1 connections send file bodies with `sendfile` (not with `pipeline_flush`,
    /// under which hyper copies body frames: see [`crate::sendfile`]).
    zero_copy_files: bool,
    /// The most bytes of an incomplete request head validation holds (hyper's buffer limit).
    pub(crate) max_head_bytes: usize,
    head_timeout: Duration,
    statics: Option<Arc<StaticFiles>>,
    access: Option<Arc<AccessLog>>,
}

/// A running worker: runtimes accepting connections until [`Worker::begin_shutdown`].
pub struct Worker {
    shutdown: CancellationToken,
    abort: CancellationToken,
    drain_timeout: Option<Duration>,
    connections: TaskTracker,
    threads: Mutex<Option<RuntimeThreads>>,
    context: Arc<ServerContext>,
    report: ErrorSink,
}

impl Worker {
    /// Starts the runtimes and their accept loops on `listener`; `access` writes the access log.
    pub fn start<D: Dispatcher>(
        config: &WorkerConfig,
        listener: Listener,
        dispatcher: D,
        report: ErrorSink,
        debug: DebugSink,
        access: Option<Arc<AccessLog>>,
    ) -> std::io::Result<Self> {
        let shutdown = CancellationToken::new();
        let connections = TaskTracker::new();
        let context = Arc::new(ServerContext {
            shutdown: shutdown.clone(),
            tasks: connections.clone(),
            websockets: config.websockets.clone(),
            requests: AtomicU64::new(0),
            metrics: config.metrics.clone(),
            max_request_body_size: config.max_request_body_size,
        });
        #[cfg(feature = "http3")]
        let quic = match (&config.http3, &config.tls) {
            (Some(settings), Some(tls)) => Some(crate::http3::QuicListener::bind(settings, tls)?),
            _ => None,
        };
        #[cfg(feature = "http3")]
        let alt_svc = quic.as_ref().map(crate::http3::QuicListener::alt_svc);
        #[cfg(not(feature = "http3"))]
        let alt_svc = None;
        #[cfg(feature = "http3")]
        let quic = Mutex::new(quic);
        let engine = Arc::new(Engine {
            dispatcher,
            http_mode: config.http_mode,
            builder: connection_builder(config.http_mode, &config.http1, &config.http2, config.websockets.is_some()),
            http1: http1_builder(&config.http1),
            backpressure: Arc::new(Semaphore::new(config.backpressure.max(1))),
            shutdown,
            abort: CancellationToken::new(),
            connections,
            context,
            report,
            debug,
            tls: config.tls.clone().map(Tls::new),
            zero_copy_files: !config.http1.pipeline_flush,
            max_head_bytes: config.http1.max_buffer_size,
            head_timeout: config.http1.header_read_timeout,
            statics: config.statics.clone(),
            access,
            alt_svc,
        });
        let listeners =
            (0..config.runtime_threads.max(1)).map(|_| listener.try_clone()).collect::<std::io::Result<Vec<_>>>()?;
        let listeners = Mutex::new(listeners);
        let shutdown = engine.shutdown.clone();
        let connections = engine.connections.clone();
        let context = engine.context.clone();
        let abort = engine.abort.clone();
        let report = engine.report.clone();
        let threads =
            RuntimeThreads::start(config.runtime_mode, config.runtime_threads, config.blocking_threads, |index| {
                let engine = engine.clone();
                let listener =
                    listeners.lock().ok().and_then(|mut l| l.get_mut(index).and_then(|l| l.try_clone().ok()));
                // HTTP/3 runs on the first runtime: one QUIC endpoint per worker.
                #[cfg(feature = "http3")]
                let quic = quic.lock().ok().and_then(|mut quic| quic.take());
                async move {
                    #[cfg(feature = "http3")]
                    if let Some(quic) = quic {
                        engine.connections.spawn(crate::http3::serve(quic, engine.clone()));
                    }
                    if let Some(listener) = listener {
                        match listener.into_async() {
                            Ok(AsyncListener::Tcp(acceptor)) => accept_loop(&acceptor, engine.clone()).await,
                            Ok(AsyncListener::Unix(listener, path)) => {
                                accept_loop(&UnixAcceptor(&listener, &path), engine.clone()).await
                            }
                            Err(err) => (engine.report)(format!("cannot use the listening socket: {err}")),
                        }
                    }
                    // Keep the runtime alive until every connection (of every runtime) has drained.
                    engine.connections.wait().await;
                }
            })?;
        Ok(Self {
            shutdown,
            abort,
            drain_timeout: config.drain_timeout,
            connections,
            threads: Mutex::new(Some(threads)),
            context,
            report,
        })
    }

    /// Requests received since the worker started.
    pub fn requests_received(&self) -> u64 {
        self.context.requests.load(Ordering::Relaxed)
    }

    /// Stops accepting; open connections are told to close once their in-flight requests finish.
    /// With a drain timeout, the connections still open when it expires are closed.
    pub fn begin_shutdown(&self) {
        self.connections.close();
        self.shutdown.cancel();
        if let Some(timeout) = self.drain_timeout {
            let (abort, connections, report) = (self.abort.clone(), self.connections.clone(), self.report.clone());
            let spawned = std::thread::Builder::new().name("granian-drain-timeout".into()).spawn(move || {
                std::thread::sleep(timeout);
                // The tracker counts connections and WebSocket sessions still running.
                let open = connections.len();
                if open > 0 {
                    let seconds = timeout.as_secs_f64();
                    report(format!("drain timeout of {seconds} s reached: closing {open} connection(s) still open"));
                    abort.cancel();
                }
            });
            if spawned.is_err() {
                self.abort.cancel();
            }
        }
    }

    /// Blocks until every runtime thread has ended (after [`Worker::begin_shutdown`] and the drain).
    pub fn join(&self) {
        let threads = self.threads.lock().ok().and_then(|mut t| t.take());
        if let Some(threads) = threads {
            threads.join();
        }
    }
}

impl<D: Dispatcher> Engine<D> {
    /// Notes a request's arrival, whatever carried it: counted, its access record and metrics timer
    /// started. The caller answers it with [`respond`], then hands the response to
    /// [`Arrival::observe`]. (Three steps rather than one async function: the request would
    /// otherwise sit in one more future, and a request's futures are moved several times.)
    pub(crate) fn arrive<B>(&self, request: &Request<B>, info: &ConnectionInfo) -> Arrival {
        info.mark_request();
        Arrival {
            timing: self.context.metrics.as_ref().map(WorkerMetrics::begin_request),
            // Boxed: the service future stays small when the access log is off.
            record: self.access.as_ref().map(|log| Box::new(begin_record(log, request, self, info))),
        }
    }
}

/// A request's access record and metrics timer, from its arrival until its response is observed.
pub(crate) struct Arrival {
    timing: Option<InFlight>,
    record: Option<Box<Record>>,
}

impl Arrival {
    /// The response, observed until its body is sent (access log, metrics, `exchange`).
    pub(crate) fn observe(
        self,
        response: Response<ResponseBody>,
        exchange: Option<OpenExchange>,
    ) -> Response<ObservedBody> {
        ObservedBody::wrap(response, self.record, self.timing, exchange)
    }
}

impl<D> Engine<D> {
    /// The connection's stream under request validation (none on HTTP/2-only listeners).
    fn checked<S: AsyncRead + AsyncWrite + Unpin>(&self, stream: S, exchanges: &Arc<Exchanges>) -> CheckedStream<S> {
        let check = self.http_mode != HttpMode::Http2;
        CheckedStream::new(stream, check, self.max_head_bytes, self.head_timeout, exchanges.clone())
    }
}

async fn accept_loop<D: Dispatcher, L: Accept>(listener: &L, engine: Arc<Engine<D>>) {
    loop {
        tokio::select! {
            biased;
            _ = engine.shutdown.cancelled() => {
                // Connections the kernel already completed would be reset when the socket closes:
                // serve them (each is drained like any other connection).
                while let Some(Ok(accepted)) = listener.accept_waiting() {
                    engine.connections.spawn(serve_connection(accepted, engine.clone()));
                }
                break;
            }
            accepted = listener.accept_one() => match accepted {
                Ok(accepted) => {
                    engine.connections.spawn(serve_connection(accepted, engine.clone()));
                }
                Err(err) => {
                    // Out of descriptors or memory: back off briefly instead of spinning.
                    (engine.report)(format!("accepting a connection failed: {err}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

async fn serve_connection<D: Dispatcher, S: SendfileTarget>(accepted: Accepted<S>, engine: Arc<Engine<D>>) {
    let Accepted { stream, local, peer } = accepted;
    let _open = engine.context.metrics.as_ref().map(WorkerMetrics::open_connection);
    match &engine.tls {
        None => {
            let ledger = engine.zero_copy_files.then(FileLedger::default);
            let info = ConnectionInfo::new(local, peer, None, ledger.clone(), engine.context.clone());
            let exchanges = Arc::new(Exchanges::default());
            let stream = engine.checked(SendfileStream::new(stream, ledger), &exchanges);
            serve_http(stream, info, engine, exchanges).await;
        }
        Some(tls) => match tls.handshake(stream).await {
            Ok((stream, facts)) => {
                let info = ConnectionInfo::new(local, peer, Some(facts), None, engine.context.clone());
                let exchanges = Arc::new(Exchanges::default());
                let stream = engine.checked(stream, &exchanges);
                serve_http(stream, info, engine, exchanges).await;
            }
            // Scanners, plain HTTP on the TLS port, clients that give up: not the server's error.
            Err(reason) => {
                if let Some(metrics) = &engine.context.metrics {
                    metrics.increment(Field::TlsHandshakeFailures);
                    metrics.increment(Field::ConnectionsFailed);
                }
                if let Some(debug) = &engine.debug {
                    let client =
                        if peer.host().is_empty() { "a Unix socket client".to_owned() } else { peer.to_string() };
                    debug(format!("TLS handshake with {client} failed: {reason}"));
                }
            }
        },
    }
}

async fn serve_http<D, S>(stream: S, info: ConnectionInfo, engine: Arc<Engine<D>>, exchanges: Arc<Exchanges>)
where
    D: Dispatcher,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let info = Arc::new(info);
    let service = {
        let exchanges = exchanges.clone();
        let engine = engine.clone();
        let info = info.clone();
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let engine = engine.clone();
            let info = info.clone();
            let http1 = request.version() <= http::Version::HTTP_11;
            // Counted when hyper takes the request (not when the future first runs): the checked
            // stream holds back a refusal's end of stream until every such request is answered.
            let exchange = http1.then(|| exchanges.open());
            let connect = request.method() == http::Method::CONNECT;
            let exchanges = exchanges.clone();
            async move {
                let arrival = engine.arrive(&request, &info);
                let mut response = respond(request, &engine, &info).await;
                let status = response.status();
                if http1 && (status == StatusCode::SWITCHING_PROTOCOLS || (connect && status.is_success())) {
                    // hyper hands the connection to the upgrade: request validation stops.
                    exchanges.switch_protocols();
                }
                if let (true, Some(ledger)) = (http1, &info.zero_copy) {
                    response.body_mut().send_with(ledger);
                }
                if let Some(alt_svc) = &engine.alt_svc {
                    response.headers_mut().insert(ALT_SVC, alt_svc.clone());
                }
                Ok::<_, Infallible>(arrival.observe(response, exchange))
            }
        })
    };
    let (stream, writes) = Coalesced::new(stream);
    let io = TokioIo::new(stream);
    // hyper-util's auto connection with upgrades ignores an HTTP/1-only or HTTP/2-only choice, so
    // those modes use hyper's own connections (HTTP/2 extended CONNECT needs no upgrade support).
    let failure = match engine.http_mode {
        HttpMode::Auto => {
            let connection = pin!(engine.builder.serve_connection_with_upgrades(io, service));
            drive(connection, |c| c.graceful_shutdown(), &engine, &info, &writes).await.and_then(Result::err)
        }
        HttpMode::Http1 => {
            let connection = pin!(engine.http1.serve_connection(io, service).with_upgrades());
            drive(connection, |c| c.graceful_shutdown(), &engine, &info, &writes)
                .await
                .and_then(|r| r.err().map(Into::into))
        }
        HttpMode::Http2 => {
            let connection = pin!(engine.builder.serve_connection(io, service));
            drive(connection, |c| c.graceful_shutdown(), &engine, &info, &writes).await.and_then(Result::err)
        }
    };
    // Apps still waiting on a request of this connection hear that it is gone at once.
    info.closed.cancel();
    // A connection that ended on an I/O error may still hold a batch of writes.
    let _ = tokio::time::timeout(FINAL_WRITES, std::future::poll_fn(|cx| writes.poll_finish(cx))).await;
    // A request the validation refused was answered by the stream itself (400, 431, 505).
    if let Some(status) = exchanges.refused() {
        if let Some(metrics) = &engine.context.metrics {
            metrics.increment(Field::ConnectionsFailed);
        }
        if let Some(log) = &engine.access {
            log.parse_error(status, info.peer.ip(), info.scheme);
        }
    }
    let Some(failure) = failure else {
        return;
    };
    if let Some(metrics) = &engine.context.metrics {
        metrics.increment(Field::ConnectionsFailed);
    }
    // A request hyper could not parse was answered by hyper itself (400, 414, 431): log it too.
    if let (Some(log), Some(status)) = (&engine.access, automatic_response_status(failure.as_ref())) {
        log.parse_error(status, info.peer.ip(), info.scheme);
    }
}

/// The response to one request: a static file, or the app's answer (503 when the worker stopped
/// handing out backpressure permits).
///
/// Decided when called: a static file or a refusal is ready at once, and a request with a permit
/// is handed to the app right away; the future returned is the app's response, boxed only while
/// the request waits for a permit. (An `async fn` here kept a copy of the request in its future
/// for its whole life: benchmarks/PROFILING.md, "The request's future".)
pub(crate) fn respond<'a, D: Dispatcher, B: TransportBody>(
    request: Request<B>,
    engine: &'a Engine<D>,
    info: &Arc<ConnectionInfo>,
) -> impl Future<Output = Response<ResponseBody>> + Send + 'a {
    use futures_util::future::Either;
    let ready = |response| Either::Left(std::future::ready(response));
    let metrics = engine.context.metrics.as_ref();
    if let Some(limit) = engine.context.max_request_body_size {
        // A declared length (Content-Length) over the limit is refused before anything runs.
        if http_body::Body::size_hint(request.body()).lower() > limit {
            return ready(body_too_large(request.version(), None));
        }
    }
    if let Some(statics) = &engine.statics {
        if let Some(target) = statics.route(request.uri().path()) {
            let response = statics.serve(target, &request);
            if let Some(metrics) = metrics {
                metrics.increment(Field::StaticRequestsHandled);
                if response.status().is_client_error() || response.status().is_server_error() {
                    metrics.increment(Field::StaticRequestsFailed);
                }
            }
            return ready(response);
        }
    }
    match engine.backpressure.clone().try_acquire_owned() {
        Ok(permit) => Either::Right(Either::Left(engine.dispatcher.dispatch(request, info.clone(), permit))),
        Err(TryAcquireError::NoPermits) => {
            if let Some(metrics) = metrics {
                metrics.increment(Field::BackpressureWaits);
            }
            let info = info.clone();
            let waiting: Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send + 'a>> = Box::pin(async move {
                match engine.backpressure.clone().acquire_owned().await {
                    Ok(permit) => engine.dispatcher.dispatch(request, info, permit).await,
                    Err(_) => error_response(StatusCode::SERVICE_UNAVAILABLE),
                }
            });
            Either::Right(Either::Right(waiting))
        }
        Err(TryAcquireError::Closed) => ready(error_response(StatusCode::SERVICE_UNAVAILABLE)),
    }
}

fn begin_record<D: Dispatcher, B>(
    log: &Arc<AccessLog>,
    request: &Request<B>,
    engine: &Engine<D>,
    info: &ConnectionInfo,
) -> Record {
    let scheme = match (engine.context.websockets.is_some() && is_websocket_request(request), &info.tls) {
        (false, _) => info.scheme,
        (true, None) => "ws",
        (true, Some(_)) => "wss",
    };
    log.begin(request, info.peer.ip(), scheme)
}

/// Serves a connection until it ends; on shutdown, lets its in-flight requests finish first.
/// Returns how the connection ended, or None when the drain timeout closed it.
async fn drive<C: Future, D: Dispatcher, T: AsyncWrite + Unpin>(
    mut connection: Pin<&mut C>,
    graceful_shutdown: impl FnOnce(Pin<&mut C>),
    engine: &Engine<D>,
    info: &ConnectionInfo,
    writes: &WriteBatch<T>,
) -> Option<C::Output> {
    // Every poll of the connection goes through `writes`: an HTTP/2 connection's writes made
    // during one poll leave together.
    fn batched<'a, C: Future, T: AsyncWrite + Unpin>(
        mut connection: Pin<&'a mut C>,
        writes: &'a WriteBatch<T>,
    ) -> impl Future<Output = C::Output> + 'a {
        std::future::poll_fn(move |cx| writes.around(cx, |cx| connection.as_mut().poll(cx)))
    }
    // The connection is polled on every wake-up of its task (twice per request at least); the stop
    // signal's future is polled once to register this task's waker, and again only once the token
    // says it fired: polling it costs two locks (the token's and its `Notify`'s) each time, which
    // `select!` would pay on every wake-up.
    let served = {
        let mut serving = pin!(batched(connection.as_mut(), writes));
        let mut stop = pin!(engine.shutdown.cancelled());
        let mut registered = false;
        std::future::poll_fn(|cx| {
            if let Poll::Ready(ended) = serving.as_mut().poll(cx) {
                return Poll::Ready(Some(ended));
            }
            if !registered || engine.shutdown.is_cancelled() {
                registered = true;
                if stop.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
            }
            Poll::Pending
        })
        .await
    };
    if served.is_some() {
        return served;
    }
    // The worker is stopping.
    if !info.first_request.load(Ordering::Acquire) {
        tokio::select! {
            ended = batched(connection.as_mut(), writes) => return Some(ended),
            _ = info.first_request_arrived.notified() => {}
            _ = tokio::time::sleep(FIRST_REQUEST_GRACE) => {}
        }
    }
    graceful_shutdown(connection.as_mut());
    // Dropping the connection at the drain timeout closes its socket.
    tokio::select! {
        ended = batched(connection, writes) => Some(ended),
        _ = engine.abort.cancelled() => None,
    }
}
