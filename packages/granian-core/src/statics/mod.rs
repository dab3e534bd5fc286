//! Static files, served by the core before any app sees the request.
//!
//! A request whose path falls under a mount's route is answered here, whatever happens: the file,
//! a 304/206/416/412, or a 404; the app never sees those paths. File system work (resolving,
//! `stat`, reading) runs on the runtime thread, for files in the page cache (see `serve`); large
//! files are sent in chunks by `http::file_response`. `path` keeps requests inside the mount,
//! `conditional` handles validators, preconditions and ranges, and `encoding` picks a precompressed
//! sibling.

mod conditional;
mod encoding;
mod path;

use std::path::PathBuf;

use http::header::{
    ACCEPT_RANGES, ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    LAST_MODIFIED, VARY,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};

use crate::http::{error_response, file_error_status, file_response, response, ResponseBody};
use conditional::{Precondition, RangeDecision, Validators};

/// One route and the directory it serves.
#[derive(Debug)]
pub struct Mount {
    /// Starts with `/`, no trailing `/` (except the root route `/`, kept as the empty string).
    route: String,
    /// Canonical.
    root: PathBuf,
}

/// The static mounts of a worker and how their files are sent.
#[derive(Debug)]
pub struct StaticFiles {
    mounts: Vec<Mount>,
    dir_to_file: Option<String>,
    cache_control: Option<HeaderValue>,
}

/// A request that a mount answers: which mount, and the raw path after its route.
pub struct StaticTarget {
    mount: usize,
    rest: String,
}

impl StaticFiles {
    /// `mounts` are `(route, directory)` pairs, longest route matched first; `expires` in seconds
    /// (0: no Cache-Control). Fails with a one-line reason naming a directory that cannot be used.
    pub fn new(mounts: Vec<(String, String)>, dir_to_file: Option<String>, expires: u64) -> Result<Self, String> {
        let mut resolved = Vec::with_capacity(mounts.len());
        for (route, directory) in mounts {
            let root =
                std::fs::canonicalize(&directory).map_err(|err| format!("static directory {directory}: {err}"))?;
            if !root.is_dir() {
                return Err(format!("static directory {directory} is not a directory"));
            }
            resolved.push(Mount { route: route.trim_end_matches('/').to_owned(), root });
        }
        resolved.sort_by_key(|mount| std::cmp::Reverse(mount.route.len()));
        let cache_control = (expires > 0).then(|| HeaderValue::from_str(&format!("max-age={expires}")).ok()).flatten();
        Ok(Self { mounts: resolved, dir_to_file, cache_control })
    }

    /// The mount answering `path` (the raw request path), if any.
    pub fn route(&self, path: &str) -> Option<StaticTarget> {
        self.mounts.iter().enumerate().find_map(|(mount, Mount { route, .. })| {
            let rest = path.strip_prefix(route.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then(|| StaticTarget { mount, rest: rest.to_owned() })
        })
    }

    /// Answers a request a mount matched.
    pub fn serve<B>(&self, target: StaticTarget, request: &Request<B>) -> Response<ResponseBody> {
        let method = request.method();
        if method != Method::GET && method != Method::HEAD {
            let mut refused = error_response(StatusCode::METHOD_NOT_ALLOWED);
            refused.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return refused;
        }
        // File system work runs on the runtime thread, as in nginx without aio: static files are
        // expected in the page cache, where a stat or a read takes microseconds, and a hand-off to a
        // blocking thread per request would cost more than the work (see docs/architecture.md).
        match self.prepare(&target, method, request.headers()) {
            Prepared::Respond(response) => response,
            Prepared::File { status, headers, file, range } => file_response(status, headers, file, Some(range))
                .unwrap_or_else(|error| error_response(file_error_status(&error))),
        }
    }

    /// Everything up to the body.
    fn prepare(&self, target: &StaticTarget, method: &Method, request: &HeaderMap) -> Prepared {
        let root = &self.mounts[target.mount].root;
        let Some(found) = path::resolve(root, &target.rest, self.dir_to_file.as_deref()) else {
            return Prepared::Respond(error_response(StatusCode::NOT_FOUND));
        };
        let content_type = mime_guess::from_path(&found.path).first_or_octet_stream();
        let siblings = encoding::siblings(root, &found.path);
        let (found, encoding) = match encoding::choose(request, siblings.iter()) {
            Some(sibling) => (&sibling.file, Some(sibling.coding)),
            None => (&found, None),
        };
        let size = found.metadata.len();
        let modified = found.metadata.modified().unwrap_or(std::time::UNIX_EPOCH);
        let validators = Validators::new(size, modified, encoding);

        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(content_type.as_ref()) {
            headers.insert(CONTENT_TYPE, value);
        }
        if let Ok(value) = HeaderValue::from_str(&validators.etag) {
            headers.insert(ETAG, value);
        }
        if let Ok(value) = HeaderValue::from_str(&validators.last_modified_text()) {
            headers.insert(LAST_MODIFIED, value);
        }
        if let Some(cache_control) = &self.cache_control {
            headers.insert(CACHE_CONTROL, cache_control.clone());
        }
        if !siblings.is_empty() {
            headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
        }
        if let Some(coding) = encoding {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding));
        }

        match conditional::evaluate(request, &validators, method) {
            Precondition::Proceed => {}
            Precondition::NotModified => {
                headers.remove(CONTENT_TYPE);
                headers.remove(CONTENT_ENCODING);
                return Prepared::Respond(response(StatusCode::NOT_MODIFIED, headers, ResponseBody::Empty));
            }
            Precondition::Failed => return Prepared::Respond(error_response(StatusCode::PRECONDITION_FAILED)),
        }
        headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        let decision =
            if method == Method::GET { conditional::range(request, &validators, size) } else { RangeDecision::Full };
        let (status, range) = match decision {
            RangeDecision::Full => (StatusCode::OK, (0, size)),
            RangeDecision::Partial(start, end) => {
                let text = format!("bytes {start}-{}/{size}", end - 1);
                if let Ok(value) = HeaderValue::from_str(&text) {
                    headers.insert(CONTENT_RANGE, value);
                }
                (StatusCode::PARTIAL_CONTENT, (start, end))
            }
            RangeDecision::Unsatisfiable => {
                let mut refused = error_response(StatusCode::RANGE_NOT_SATISFIABLE);
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    refused.headers_mut().insert(CONTENT_RANGE, value);
                }
                return Prepared::Respond(refused);
            }
        };
        if *method == Method::HEAD {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(range.1 - range.0));
            return Prepared::Respond(response(status, headers, ResponseBody::Empty));
        }
        match std::fs::File::open(&found.path) {
            Ok(file) => Prepared::File { status, headers, file, range },
            // Found moments ago: gone now (404), unreadable (403), or failing (500).
            Err(error) => Prepared::Respond(error_response(file_error_status(&error))),
        }
    }
}

/// What the blocking part decided: a complete response, or a file region to send.
enum Prepared {
    Respond(Response<ResponseBody>),
    File { status: StatusCode, headers: HeaderMap, file: std::fs::File, range: (u64, u64) },
}
