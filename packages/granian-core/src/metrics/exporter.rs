//! The metrics endpoint of the supervisor: HTTP/1.1 on its own thread and single-thread runtime,
//! answering any path with the text exposition (`GET`, `HEAD`; other methods get 405).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

use super::exposition::Registry;
use crate::http::{error_response, response, without_body, ResponseBody};

const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A running metrics endpoint; [`Exporter::stop`] ends it.
pub struct Exporter {
    stop: CancellationToken,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Exporter {
    /// Serves `registry` on `listener` (a listening TCP socket) until stopped.
    pub fn start(listener: std::net::TcpListener, registry: Arc<Registry>) -> std::io::Result<Self> {
        listener.set_nonblocking(true)?;
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = std::thread::Builder::new().name("granian-metrics".into()).spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                loop {
                    tokio::select! {
                        _ = stopped.cancelled() => break,
                        accepted = listener.accept() => {
                            if let Ok((stream, _)) = accepted {
                                tokio::spawn(serve(stream, registry.clone(), stopped.clone()));
                            }
                        }
                    }
                }
            });
        })?;
        Ok(Self { stop, thread: Mutex::new(Some(thread)) })
    }

    /// Stops accepting, closes open scrapes and waits for the thread.
    pub fn stop(&self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

async fn serve(stream: tokio::net::TcpStream, registry: Arc<Registry>, stop: CancellationToken) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let registry = registry.clone();
        async move { Ok::<_, Infallible>(answer(&request, &registry)) }
    });
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        _ = stop.cancelled() => {}
    }
}

fn answer(request: &Request<Incoming>, registry: &Registry) -> Response<ResponseBody> {
    match *request.method() {
        Method::GET | Method::HEAD => {
            let mut headers = http::HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_TEXT));
            let page = response(StatusCode::OK, headers, ResponseBody::full(Bytes::from(registry.render())));
            if request.method() == Method::HEAD {
                without_body(page, &CancellationToken::new())
            } else {
                page
            }
        }
        _ => {
            let mut refused = error_response(StatusCode::METHOD_NOT_ALLOWED);
            refused.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            refused
        }
    }
}
