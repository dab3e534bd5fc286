//! The WSGI environ (PEP 3333), built per request on the blocking thread.

use std::borrow::Cow;

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST};
use http::request::Parts;
use http::HeaderName;
use percent_encoding::percent_decode_str;
use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use pyo3::{ffi, intern};

use crate::workers::ConnectionInfo;
use crate::{pytemplate, pytext};

/// Per-worker values every environ shares.
pub struct EnvironTemplate {
    pub script_name: String,
    pub file_wrapper: Py<PyAny>,
    /// The entries every environ of this worker has, with a place for each entry a connection or
    /// a request sets, in a table with room for a request's headers (see [`crate::pytemplate`]).
    base: Py<PyDict>,
}

/// New keys an environ copied from the template takes before its table must grow: the TLS keys
/// and a request's headers (a browser sends 10-15).
const ENVIRON_ROOM: usize = 20;

impl EnvironTemplate {
    pub fn new(
        py: Python<'_>,
        script_name: String,
        file_wrapper: Py<PyAny>,
        multithread: bool,
        multiprocess: bool,
    ) -> PyResult<Self> {
        let base = PyDict::new(py);
        pytemplate::placeholders(
            &base,
            &[
                intern!(py, "REQUEST_METHOD"),
                intern!(py, "PATH_INFO"),
                intern!(py, "QUERY_STRING"),
                intern!(py, "SERVER_PROTOCOL"),
                intern!(py, "wsgi.input"),
                intern!(py, "SERVER_NAME"),
                intern!(py, "SERVER_PORT"),
                intern!(py, "REMOTE_ADDR"),
                intern!(py, "REMOTE_PORT"),
                intern!(py, "wsgi.url_scheme"),
            ],
        )?;
        base.set_item(intern!(py, "SCRIPT_NAME"), script_name.as_str())?;
        base.set_item(intern!(py, "SERVER_SOFTWARE"), intern!(py, "granian"))?;
        base.set_item(intern!(py, "GATEWAY_INTERFACE"), intern!(py, "CGI/1.1"))?;
        base.set_item(intern!(py, "wsgi.version"), (1, 0))?;
        base.set_item(intern!(py, "wsgi.input_terminated"), true)?;
        base.set_item(intern!(py, "wsgi.errors"), py.import("sys")?.getattr("stderr")?)?;
        base.set_item(intern!(py, "wsgi.multithread"), multithread)?;
        base.set_item(intern!(py, "wsgi.multiprocess"), multiprocess)?;
        base.set_item(intern!(py, "wsgi.run_once"), false)?;
        base.set_item(intern!(py, "wsgi.file_wrapper"), file_wrapper.bind(py))?;
        pytemplate::make_room(&base, ENVIRON_ROOM)?;
        Ok(Self { script_name, file_wrapper, base: base.unbind() })
    }
}

/// PEP 3333 strings are "bytes as latin-1": every byte maps to the code point of the same value.
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|b| char::from(*b)).collect()
}

/// The Python str of `bytes` read as latin-1, made by CPython in one pass (no UTF-8 check, no
/// `String` between; ASCII is its own latin-1).
fn latin1_str<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
    let length = ffi::Py_ssize_t::try_from(bytes.len()).map_err(|_| PyOverflowError::new_err("header too long"))?;
    // SAFETY: the pointer and length describe `bytes`, alive for the call, and CPython copies them;
    // a NULL result (no memory) becomes the pending exception. PyUnicode_DecodeLatin1 returns a str.
    #[allow(unsafe_code)]
    unsafe {
        let text = ffi::PyUnicode_DecodeLatin1(bytes.as_ptr().cast(), length, std::ptr::null());
        Ok(Bound::from_owned_ptr_or_err(py, text)?.cast_into_unchecked())
    }
}

/// The environ key of a request header: a shared, interned string for the common ones (no
/// allocation per request), else [`cgi_header_name`].
fn cgi_key<'py>(py: Python<'py>, name: &HeaderName) -> Bound<'py, PyString> {
    macro_rules! common {
        ($($header:literal => $key:literal,)*) => {
            match name.as_str() {
                $($header => return intern!(py, $key).clone(),)*
                _ => {}
            }
        };
    }
    common! {
        "host" => "HTTP_HOST",
        "user-agent" => "HTTP_USER_AGENT",
        "accept" => "HTTP_ACCEPT",
        "accept-encoding" => "HTTP_ACCEPT_ENCODING",
        "accept-language" => "HTTP_ACCEPT_LANGUAGE",
        "connection" => "HTTP_CONNECTION",
        "cookie" => "HTTP_COOKIE",
        "referer" => "HTTP_REFERER",
        "origin" => "HTTP_ORIGIN",
        "authorization" => "HTTP_AUTHORIZATION",
        "cache-control" => "HTTP_CACHE_CONTROL",
        "x-forwarded-for" => "HTTP_X_FORWARDED_FOR",
        "x-forwarded-proto" => "HTTP_X_FORWARDED_PROTO",
        "x-request-id" => "HTTP_X_REQUEST_ID",
    }
    PyString::new(py, &cgi_header_name(name))
}

/// `HTTP_` + the header name upper-cased with dashes as underscores.
pub fn cgi_header_name(name: &HeaderName) -> String {
    let mut key = String::with_capacity(5 + name.as_str().len());
    key.push_str("HTTP_");
    key.extend(name.as_str().chars().map(|c| if c == '-' { '_' } else { c.to_ascii_uppercase() }));
    key
}

/// PATH_INFO: the percent-decoded path as latin-1, without the SCRIPT_NAME prefix. Borrowed when
/// the path is ASCII with nothing to decode (latin-1 of ASCII is the same text).
pub fn path_info<'a>(raw_path: &'a str, script_name: &str) -> Cow<'a, str> {
    let path = if raw_path.is_ascii() && !raw_path.contains('%') {
        Cow::Borrowed(raw_path)
    } else {
        let decoded: Vec<u8> = percent_decode_str(raw_path).collect();
        Cow::Owned(latin1(&decoded))
    };
    if !script_name.is_empty() {
        if let Some(rest) = path.strip_prefix(script_name) {
            if rest.is_empty() || rest.starts_with('/') {
                return Cow::Owned(rest.to_owned());
            }
        }
    }
    path
}

/// The environ entries all requests of a connection share: the worker's template with the
/// server's and the client's address, the scheme and the TLS facts (see [`crate::pytemplate`]).
fn connection_environ<'py>(
    py: Python<'py>,
    template: &EnvironTemplate,
    connection: &ConnectionInfo,
) -> PyResult<Bound<'py, PyDict>> {
    // A copy keeps the template's table, and with it the room for the keys set below.
    let environ = template.base.bind(py).copy()?;
    // Unix sockets: the socket path and an empty port (as gunicorn; werkzeug reads it as no port).
    environ.set_item(intern!(py, "SERVER_NAME"), connection.local.host())?;
    environ.set_item(intern!(py, "SERVER_PORT"), port_text(connection.local.port()))?;
    environ.set_item(intern!(py, "REMOTE_ADDR"), connection.peer.host())?;
    environ.set_item(intern!(py, "REMOTE_PORT"), port_text(connection.peer.port()))?;
    environ.set_item(intern!(py, "wsgi.url_scheme"), pytext::scheme(py, connection.tls.is_some(), false))?;
    if let Some(tls) = &connection.tls {
        // As Apache mod_ssl names them; frameworks read HTTPS to build https URLs.
        environ.set_item(intern!(py, "HTTPS"), intern!(py, "on"))?;
        if let Some(certificate) = tls.client_chain.first() {
            environ.set_item(intern!(py, "SSL_CLIENT_CERT"), certificate)?;
        }
        if let Some(name) = &tls.client_name {
            environ.set_item(intern!(py, "SSL_CLIENT_S_DN"), name)?;
        }
    }
    Ok(environ)
}

pub fn build<'py>(
    py: Python<'py>,
    template: &EnvironTemplate,
    parts: &Parts,
    connection: &ConnectionInfo,
    input: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let environ = connection.request_template.copy(py, || connection_environ(py, template, connection))?;
    environ.set_item(intern!(py, "REQUEST_METHOD"), pytext::method(py, &parts.method))?;
    environ.set_item(intern!(py, "PATH_INFO"), path_info(parts.uri.path(), &template.script_name))?;
    environ.set_item(intern!(py, "QUERY_STRING"), parts.uri.query().unwrap_or(""))?;
    environ.set_item(intern!(py, "SERVER_PROTOCOL"), pytext::server_protocol(py, parts.version))?;
    environ.set_item(intern!(py, "wsgi.input"), input)?;
    if !parts.headers.contains_key(HOST) {
        // HTTP/2 carries the host in :authority.
        if let Some(authority) = parts.uri.authority() {
            environ.set_item(intern!(py, "HTTP_HOST"), authority.as_str())?;
        }
    }
    for name in parts.headers.keys() {
        // `X_Forwarded_For` and `X-Forwarded-For` would both become HTTP_X_FORWARDED_FOR: a client
        // could shadow a header a proxy set. Names with underscores are dropped, as nginx and
        // Apache do for CGI variables.
        if name.as_str().contains('_') {
            continue;
        }
        let mut values = parts.headers.get_all(name).iter();
        let Some(first) = values.next() else { continue };
        let value = match values.next() {
            None => latin1_str(py, first.as_bytes())?,
            Some(second) => {
                // Repeated headers are joined as RFC 9110 allows; cookies use their own separator.
                let separator: &[u8] = if name == COOKIE { b"; " } else { b", " };
                let mut joined = first.as_bytes().to_vec();
                for value in std::iter::once(second).chain(values) {
                    joined.extend_from_slice(separator);
                    joined.extend_from_slice(value.as_bytes());
                }
                latin1_str(py, &joined)?
            }
        };
        if name == CONTENT_TYPE {
            environ.set_item(intern!(py, "CONTENT_TYPE"), value)?;
        } else if name == CONTENT_LENGTH {
            environ.set_item(intern!(py, "CONTENT_LENGTH"), value)?;
        } else {
            environ.set_item(cgi_key(py, name), value)?;
        }
    }
    Ok(environ)
}

fn port_text(port: Option<u16>) -> String {
    port.map_or_else(String::new, |port| port.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_become_cgi_keys() {
        assert_eq!(cgi_header_name(&HeaderName::from_static("x-custom-thing")), "HTTP_X_CUSTOM_THING");
    }

    #[test]
    fn path_info_is_latin1_and_loses_the_script_name() {
        assert_eq!(path_info("/a%20b", ""), "/a b");
        assert_eq!(path_info("/caf%C3%A9", ""), "/caf\u{c3}\u{a9}");
        assert_eq!(path_info("/api/users", "/api"), "/users");
        assert_eq!(path_info("/api", "/api"), "");
        assert_eq!(path_info("/apiary", "/api"), "/apiary");
        assert!(matches!(path_info("/plain/path", ""), Cow::Borrowed("/plain/path")));
    }
}
