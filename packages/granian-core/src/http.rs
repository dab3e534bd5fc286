//! HTTP plumbing shared by every interface: protocol settings, the response body type, the
//! responses the server itself produces, and turning an app's response intent into a response.
//! Nothing here touches Python.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, SERVER};
use http::{Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::sendfile::{self, FileLedger};

/// Which HTTP versions a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMode {
    /// HTTP/1.1 and HTTP/2 with prior knowledge on the same port.
    Auto,
    Http1,
    Http2,
}

impl HttpMode {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "auto" => Some(Self::Auto),
            "1" => Some(Self::Http1),
            "2" => Some(Self::Http2),
            _ => None,
        }
    }
}

/// HTTP/1 settings, as given by `granian.http.HTTP1Settings`.
#[derive(Clone, Debug)]
pub struct Http1Settings {
    pub header_read_timeout: Duration,
    pub keep_alive: bool,
    pub max_buffer_size: usize,
    pub pipeline_flush: bool,
}

/// HTTP/2 settings, as given by `granian.http.HTTP2Settings`.
#[derive(Clone, Debug)]
pub struct Http2Settings {
    pub adaptive_window: bool,
    pub initial_connection_window_size: u32,
    pub initial_stream_window_size: u32,
    pub keep_alive_interval: Option<Duration>,
    pub keep_alive_timeout: Duration,
    pub max_concurrent_streams: u32,
    pub max_frame_size: u32,
    pub max_headers_size: u32,
    pub max_send_buffer_size: usize,
}

/// HTTP/3 settings (`--http3`, `--http3-*`).
#[derive(Clone, Debug)]
pub struct Http3Settings {
    /// A QUIC connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Most requests (bidirectional streams) a client may have open on one connection.
    pub max_concurrent_streams: u32,
    /// The UDP socket the supervisor bound for this worker's slot (its buffers sized there).
    pub udp_fd: Option<i32>,
    /// The slot's lock file, held while serving the socket (none for the embedded server).
    pub slot_lock: Option<std::path::PathBuf>,
}

/// Applies the HTTP/1 settings to hyper's builder or to hyper-util's (their methods share names).
macro_rules! apply_http1 {
    ($builder:expr, $h1:expr) => {
        $builder
            .timer(TokioTimer::new())
            // The request validation under hyper runs this timeout (validation::CheckedStream).
            .header_read_timeout(None)
            .keep_alive($h1.keep_alive)
            .max_buf_size($h1.max_buffer_size)
            .pipeline_flush($h1.pipeline_flush)
    };
}

/// hyper's HTTP/1 connection builder, for listeners that speak HTTP/1 only.
pub fn http1_builder(h1: &Http1Settings) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    apply_http1!(builder, h1);
    builder
}

/// Builds the hyper connection builder for a listener; `websockets` enables RFC 8441 extended CONNECT.
pub fn connection_builder(
    mode: HttpMode,
    h1: &Http1Settings,
    h2: &Http2Settings,
    websockets: bool,
) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    apply_http1!(builder.http1(), h1);
    builder
        .http2()
        .timer(TokioTimer::new())
        .initial_connection_window_size(h2.initial_connection_window_size)
        .initial_stream_window_size(h2.initial_stream_window_size)
        .keep_alive_interval(h2.keep_alive_interval)
        .keep_alive_timeout(h2.keep_alive_timeout)
        .max_concurrent_streams(h2.max_concurrent_streams)
        .max_frame_size(h2.max_frame_size)
        .max_header_list_size(h2.max_headers_size)
        .max_send_buf_size(h2.max_send_buffer_size);
    if h2.adaptive_window {
        // After the window sizes: hyper turns adaptive windows off when a size is set, and an adaptive
        // window starts from the protocol's 64 KiB and grows with the measured bandwidth-delay product.
        builder.http2().adaptive_window(true);
    }
    if websockets {
        builder.http2().enable_connect_protocol();
    }
    match mode {
        HttpMode::Auto => builder,
        HttpMode::Http1 => builder.http1_only(),
        HttpMode::Http2 => builder.http2_only(),
    }
}

/// The body of every response the server sends.
pub enum ResponseBody {
    Empty,
    Full(Option<Bytes>),
    /// Chunks pushed by the app as it produces them (see [`stream_body`]).
    Channel {
        chunks: mpsc::Receiver<Bytes>,
        complete: Arc<AtomicBool>,
    },
    /// A file region sent as hyper asks for it (see [`file_response`]): `remaining` bytes from
    /// `offset` (where the file's cursor stands) are left to send. They are read in chunks on the
    /// runtime thread, or, once a connection that can has adopted the body ([`ResponseBody::send_with`]),
    /// handed to the kernel with `sendfile` (see [`crate::sendfile`]).
    File {
        file: Arc<std::fs::File>,
        offset: u64,
        remaining: u64,
        zero_copy: Option<FileLedger>,
    },
}

impl ResponseBody {
    pub fn full(bytes: Bytes) -> Self {
        if bytes.is_empty() {
            Self::Empty
        } else {
            Self::Full(Some(bytes))
        }
    }

    /// Lets a file body go zero-copy through `ledger`, the ledger of the plain-text HTTP/1
    /// connection that sends it; other bodies are left as they are.
    pub fn send_with(&mut self, ledger: &FileLedger) {
        if let ResponseBody::File { zero_copy, .. } = self {
            *zero_copy = Some(ledger.clone());
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match &mut *self {
            ResponseBody::Empty => Poll::Ready(None),
            ResponseBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            ResponseBody::Channel { chunks, complete } => match chunks.poll_recv(cx) {
                Poll::Ready(Some(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
                Poll::Ready(None) if complete.load(Ordering::Acquire) => Poll::Ready(None),
                // The app stopped before finishing its response: fail the body so hyper aborts the
                // connection instead of presenting a truncated response as complete.
                Poll::Ready(None) => {
                    Poll::Ready(Some(Err(std::io::Error::other("the application did not finish the response"))))
                }
                Poll::Pending => Poll::Pending,
            },
            ResponseBody::File { file, offset, remaining, zero_copy } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                if let Some(ledger) = zero_copy {
                    let length = (*remaining).min(sendfile::MAX_FRAME as u64);
                    let frame = ledger.record(file, *offset, length as usize);
                    *offset += length;
                    *remaining -= length;
                    return Poll::Ready(Some(Ok(Frame::data(frame))));
                }
                let want = (*remaining).min(INLINE_CHUNK_SIZE) as usize;
                match read_region(file, *offset, want, ReadWant::Chunk) {
                    Ok(chunk) if chunk.is_empty() => {
                        Poll::Ready(Some(Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof))))
                    }
                    Ok(chunk) => {
                        *offset += chunk.len() as u64;
                        *remaining -= chunk.len() as u64;
                        Poll::Ready(Some(Ok(Frame::data(chunk))))
                    }
                    Err(err) => Poll::Ready(Some(Err(err))),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Empty => true,
            ResponseBody::Full(data) => data.is_none(),
            ResponseBody::Channel { .. } => false,
            ResponseBody::File { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Empty => SizeHint::with_exact(0),
            ResponseBody::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            ResponseBody::Channel { .. } => SizeHint::default(),
            ResponseBody::File { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}

/// The app's end of a streamed response body.
#[derive(Clone)]
pub struct StreamSender {
    chunks: mpsc::Sender<Bytes>,
    complete: Arc<AtomicBool>,
}

impl StreamSender {
    /// Queues a chunk if there is room; `Err(Full(chunk))` hands it back to wait for room.
    pub fn try_send(&self, chunk: Bytes) -> Result<(), mpsc::error::TrySendError<Bytes>> {
        self.chunks.try_send(chunk)
    }

    /// Waits for room from a thread outside tokio; fails when the client is gone.
    pub fn blocking_send(&self, chunk: Bytes) -> Result<(), mpsc::error::SendError<Bytes>> {
        self.chunks.blocking_send(chunk)
    }

    /// Waits for room, then queues the chunk; fails when the client is gone.
    pub async fn send(&self, chunk: Bytes) -> Result<(), mpsc::error::SendError<Bytes>> {
        self.chunks.send(chunk).await
    }

    /// Declares the body complete: once every sender is dropped, the response ends normally.
    /// Without this, the end of the senders aborts the connection.
    pub fn complete(&self) {
        self.complete.store(true, Ordering::Release);
    }
}

/// A streamed response body holding up to `capacity` chunks, and the sender that feeds it.
pub fn stream_body(capacity: usize) -> (StreamSender, ResponseBody) {
    let (chunks, receiver) = mpsc::channel(capacity);
    let complete = Arc::new(AtomicBool::new(false));
    (StreamSender { chunks, complete: complete.clone() }, ResponseBody::Channel { chunks: receiver, complete })
}

/// What the app asked the server to send.
pub enum ResponseIntent {
    Ready(Response<ResponseBody>),
    /// A file (or the byte range `start..end` of it); opened on tokio; 404 when it does not exist,
    /// 403 or 500 when it cannot be read ([`file_error_status`]).
    File {
        status: StatusCode,
        headers: HeaderMap,
        path: std::path::PathBuf,
        range: Option<(u64, u64)>,
    },
}

/// Builds a response with the server's default headers added.
pub fn response(status: StatusCode, mut headers: HeaderMap, body: ResponseBody) -> Response<ResponseBody> {
    if !headers.contains_key(SERVER) {
        headers.insert(SERVER, HeaderValue::from_static("granian"));
    }
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The answer to a HEAD request: the same head, the length the body would have had, no body.
/// (hyper drops HEAD bodies on HTTP/1 but sends them on HTTP/2.)
///
/// A streaming app keeps sending after the head went out, and its sends must succeed (they would
/// fail as if the client had gone): what it sends is read and dropped until it ends, or until
/// `client_gone` is cancelled (then its sends fail, as they should for a client that left).
pub fn without_body(mut response: Response<ResponseBody>, client_gone: &CancellationToken) -> Response<ResponseBody> {
    if let Some(length) = response.body().size_hint().exact() {
        if !response.headers().contains_key(CONTENT_LENGTH) {
            response.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
    }
    if let ResponseBody::Channel { mut chunks, .. } = std::mem::replace(response.body_mut(), ResponseBody::Empty) {
        let client_gone = client_gone.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    chunk = chunks.recv() => if chunk.is_none() { break },
                    _ = client_gone.cancelled() => break,
                }
            }
        });
    }
    response
}

/// A response the server produces on its own (errors), with a short plain-text body.
pub fn error_response(status: StatusCode) -> Response<ResponseBody> {
    let text = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::BAD_REQUEST => "Bad request",
        StatusCode::PAYLOAD_TOO_LARGE => "Content too large",
        StatusCode::SERVICE_UNAVAILABLE => "Service unavailable",
        StatusCode::INTERNAL_SERVER_ERROR => "Internal server error",
        other => other.canonical_reason().unwrap_or("Error"),
    };
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response(status, headers, ResponseBody::full(Bytes::from_static(text.as_bytes())))
}

/// The answer to a request whose body is larger than `--max-request-body-size`: 413 in place of a
/// server error (an app whose body read failed), with `Connection: close` on HTTP/1, since the
/// rest of the body is left unread.
pub fn body_too_large(version: http::Version, app_response: Option<Response<ResponseBody>>) -> Response<ResponseBody> {
    let mut response = match app_response {
        Some(response) if response.status() != StatusCode::INTERNAL_SERVER_ERROR => response,
        _ => error_response(StatusCode::PAYLOAD_TOO_LARGE),
    };
    if version <= http::Version::HTTP_11 {
        response.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The status for a file that could not be opened or read: 404 only when it does not exist; 403
/// when the server may not read it; 500 for any other failure (an I/O error, a directory).
pub fn file_error_status(error: &std::io::Error) -> StatusCode {
    match error.kind() {
        std::io::ErrorKind::NotFound => StatusCode::NOT_FOUND,
        std::io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The request path, percent-decoded (invalid UTF-8 replaced); borrowed when nothing needed decoding.
pub fn decoded_path(raw: &str) -> std::borrow::Cow<'_, str> {
    percent_encoding::percent_decode_str(raw).decode_utf8_lossy()
}

/// Parses a status code the app gave.
pub fn status_from_u16(code: u16) -> Option<StatusCode> {
    if (100..=999).contains(&code) {
        StatusCode::from_u16(code).ok()
    } else {
        None
    }
}

/// How much of a file region [`read_region`] reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReadWant {
    /// What one `pread` returns, up to the length asked (empty at the end of the file): a chunk.
    Chunk,
    /// The whole length asked, in as many reads as it takes; a file that ends sooner is an error.
    Whole,
}

/// Up to `want` bytes of `file` from `offset`, read straight into uninitialised capacity.
///
/// Zeroing the buffer first would cost as much as the read itself: a zeroed 50 KiB buffer took
/// 50k of the 113k instructions of a WSGI file response (benchmarks/PROFILING.md). And
/// `Read::read_to_end` through a `Take` reads in growing steps (five reads for 256 KiB).
fn read_region(file: &std::fs::File, offset: u64, want: usize, how: ReadWant) -> std::io::Result<Bytes> {
    use std::os::fd::AsRawFd;
    let mut chunk = Vec::<u8>::with_capacity(want);
    while chunk.len() < want {
        let position = offset.checked_add(chunk.len() as u64).and_then(|at| libc::off_t::try_from(at).ok());
        let position = position.ok_or_else(|| std::io::Error::other("file offset out of range"))?;
        let free = want - chunk.len();
        // SAFETY: the kernel writes at most `free` bytes just past the vector's initialised part,
        // inside its capacity of `want`; the descriptor is open (`file` is borrowed).
        #[allow(unsafe_code)]
        let read = unsafe { libc::pread(file.as_raw_fd(), chunk.as_mut_ptr().add(chunk.len()).cast(), free, position) };
        if read < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        // SAFETY: the `read` bytes (at most `free`) after the initialised part were just written.
        #[allow(unsafe_code)]
        unsafe {
            chunk.set_len(chunk.len() + read as usize);
        }
        match how {
            ReadWant::Chunk => break,
            ReadWant::Whole if read == 0 => return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
            ReadWant::Whole => {}
        }
    }
    Ok(Bytes::from(chunk))
}

/// Chunk size of [`ResponseBody::File`].
const INLINE_CHUNK_SIZE: u64 = 256 * 1024;

/// Turns an intent into the response hyper sends.
///
/// Files the app names by path are opened (and, when small, read) on the runtime's blocking
/// threads (`--runtime-blocking-threads`): the app may name any file, on any storage. Those the
/// Python side hands over in a batch arrive here already opened, all of a batch on one blocking
/// thread ([`crate::errands`]); one that arrives as a path is opened here. Larger files are then
/// sent as the connection takes them (see [`file_response`]). A WSGI app's open file is measured
/// on the app's own thread, which may block, and arrives here ready.
pub async fn materialize(intent: ResponseIntent) -> Response<ResponseBody> {
    match intent {
        ResponseIntent::Ready(response) => response,
        ResponseIntent::File { status, headers, path, range } => {
            tokio::task::spawn_blocking(move || named_file_response(status, headers, &path, range))
                .await
                .unwrap_or_else(|_| error_response(StatusCode::INTERNAL_SERVER_ERROR))
        }
    }
}

/// The response sending the file at `path` (or `range` of it); blocks while it opens the file
/// and, when small, reads it. 404 when it does not exist, 403 or 500 when it cannot be read.
pub fn named_file_response(
    status: StatusCode,
    headers: HeaderMap,
    path: &std::path::Path,
    range: Option<(u64, u64)>,
) -> Response<ResponseBody> {
    match std::fs::File::open(path).and_then(|file| file_response(status, headers, file, range)) {
        Ok(response) => response,
        Err(error) => error_response(file_error_status(&error)),
    }
}

/// File regions up to this size are read in one go and sent as a whole body; larger ones become a
/// [`ResponseBody::File`], sent with `sendfile` on plain-text HTTP/1 connections and read in
/// [`INLINE_CHUNK_SIZE`] chunks as the connection takes them elsewhere. Measured on one core
/// (docs/architecture.md, "Static files"): `sendfile` costs a second system call and packet for
/// the head, 30% of the rate of a 4 KiB file, breaks even between 16 and 50 KiB, and serves 200 KiB
/// files 1.3-1.7x faster.
const READ_WHOLE_UP_TO: u64 = 64 * 1024;

/// The response sending `range` (start, exclusive end; clamped to the file) of `file`, or all of it.
///
/// Blocks while it reads a small region; a large one is sent later, by the kernel or read chunk by
/// chunk on the thread polling the body (page-cache reads take microseconds, less than a hand-off to
/// another thread: measured in docs/architecture.md, "Static files").
pub fn file_response(
    status: StatusCode,
    mut headers: HeaderMap,
    file: std::fs::File,
    range: Option<(u64, u64)>,
) -> std::io::Result<Response<ResponseBody>> {
    let size = file.metadata()?.len();
    let (start, end) = clamp_range(range, size);
    let length = end - start;
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    if length <= READ_WHOLE_UP_TO {
        let whole = read_region(&file, start, length as usize, ReadWant::Whole)?;
        return Ok(response(status, headers, ResponseBody::full(whole)));
    }
    let body = ResponseBody::File { file: Arc::new(file), offset: start, remaining: length, zero_copy: None };
    Ok(response(status, headers, body))
}

fn clamp_range(range: Option<(u64, u64)>, size: u64) -> (u64, u64) {
    match range {
        Some((start, end)) => (start.min(size), end.min(size).max(start.min(size))),
        None => (0, size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_responses_keep_their_length_but_lose_the_body() {
        let full = response(StatusCode::OK, HeaderMap::new(), ResponseBody::full(Bytes::from_static(b"hello")));
        let head = without_body(full, &CancellationToken::new());
        assert_eq!(head.headers()[CONTENT_LENGTH], "5");
        assert!(head.body().is_end_stream());
    }

    #[test]
    fn only_a_missing_file_is_a_404() {
        use std::io::{Error, ErrorKind};
        assert_eq!(file_error_status(&Error::from(ErrorKind::NotFound)), StatusCode::NOT_FOUND);
        assert_eq!(file_error_status(&Error::from(ErrorKind::PermissionDenied)), StatusCode::FORBIDDEN);
        assert_eq!(file_error_status(&Error::from_raw_os_error(libc::EISDIR)), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(file_error_status(&Error::from_raw_os_error(libc::EIO)), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn paths_are_percent_decoded_lossily() {
        assert_eq!(decoded_path("/a%20b"), "/a b");
        assert_eq!(decoded_path("/%c0"), "/\u{fffd}");
    }

    #[test]
    fn status_codes_outside_the_valid_range_are_rejected() {
        assert!(status_from_u16(99).is_none());
        assert!(status_from_u16(1000).is_none());
        assert_eq!(status_from_u16(204), Some(StatusCode::NO_CONTENT));
    }

    #[test]
    fn server_header_is_added_unless_the_app_sets_one() {
        let plain = response(StatusCode::OK, HeaderMap::new(), ResponseBody::Empty);
        assert_eq!(plain.headers()[SERVER], "granian");
        let mut own = HeaderMap::new();
        own.insert(SERVER, HeaderValue::from_static("mine"));
        assert_eq!(response(StatusCode::OK, own, ResponseBody::Empty).headers()[SERVER], "mine");
    }

    #[tokio::test]
    async fn file_ranges_are_clamped_to_the_file() {
        let dir = std::env::temp_dir().join(format!("granian-http-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.bin");
        std::fs::write(&path, b"0123456789").unwrap();
        let length = |range| {
            let file = std::fs::File::open(&path).unwrap();
            let sent = file_response(StatusCode::OK, HeaderMap::new(), file, range).unwrap();
            sent.headers()[CONTENT_LENGTH].to_str().unwrap().to_owned()
        };
        assert_eq!(length(Some((2, 5))), "3");
        assert_eq!(length(Some((8, 50))), "2");
        assert_eq!(length(Some((50, 60))), "0");
        assert_eq!(length(None), "10");
        let missing = ResponseIntent::File {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            path: dir.join("missing"),
            range: None,
        };
        assert_eq!(materialize(missing).await.status(), StatusCode::NOT_FOUND);
        let small = ResponseIntent::File {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            path: path.clone(),
            range: Some((3, 6)),
        };
        let sent = materialize(small).await;
        assert_eq!(sent.headers()[CONTENT_LENGTH], "3");
        let body = http_body_util::BodyExt::collect(sent.into_body()).await.unwrap().to_bytes();
        assert_eq!(&body[..], b"345");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_regions_are_read_whole_or_as_one_chunk() {
        let dir = std::env::temp_dir().join(format!("granian-http-region-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.bin");
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let whole = read_region(&file, 1000, 150_000, ReadWant::Whole).unwrap();
        assert_eq!(&whole[..], &content[1000..151_000]);
        let chunk = read_region(&file, 199_990, 100, ReadWant::Chunk).unwrap();
        assert_eq!(&chunk[..], &content[199_990..]);
        assert!(read_region(&file, 200_000, 100, ReadWant::Chunk).unwrap().is_empty());
        // A file shorter than the region asked for whole (it shrank since its size was read).
        let short = read_region(&file, 199_990, 100, ReadWant::Whole).unwrap_err();
        assert_eq!(short.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(read_region(&file, 0, 0, ReadWant::Whole).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
