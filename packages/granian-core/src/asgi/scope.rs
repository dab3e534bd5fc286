//! The ASGI HTTP and WebSocket scopes: dicts, as the specification requires, built once per request.

use http::header::HOST;
use http::request::Parts;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::http::decoded_path;
use crate::net::Endpoint;
use crate::workers::ConnectionInfo;
use crate::{pytemplate, pytext};

pub const ASGI_VERSION: &str = "3.0";
pub const ASGI_SPEC_VERSION: &str = "2.4";
/// WebSocket scopes follow 2.5, which added `reason` to `websocket.disconnect`.
pub const ASGI_WEBSOCKET_SPEC_VERSION: &str = "2.5";

/// An ASGI address: `(host, port)` for TCP, `(path, None)` for a Unix socket, None for an unnamed one.
fn address<'py>(py: Python<'py>, endpoint: &Endpoint) -> PyResult<Bound<'py, PyAny>> {
    match endpoint {
        Endpoint::Tcp { address, host } => {
            Ok(PyTuple::new(py, [PyString::new(py, host).into_any(), address.port().into_pyobject(py)?.into_any()])?
                .into_any())
        }
        Endpoint::Unix(Some(path)) => {
            Ok(PyTuple::new(py, [PyString::new(py, path).into_any(), py.None().into_bound(py)])?.into_any())
        }
        Endpoint::Unix(None) => Ok(py.None().into_bound(py)),
    }
}

/// Per-worker values every scope shares.
pub struct ScopeTemplate {
    pub root_path: Py<PyString>,
    /// The lifespan state; each request gets a shallow copy.
    pub state: Option<Py<PyDict>>,
}

/// The scope entries all requests of a connection share: the server's and the client's address,
/// the root path, with a place for each entry a request sets (see [`crate::pytemplate`]). Values
/// that an app could change in place (`asgi`, `headers`, `state`, `extensions`) are new for every
/// request.
fn connection_scope<'py>(
    py: Python<'py>,
    template: &ScopeTemplate,
    connection: &ConnectionInfo,
) -> PyResult<Bound<'py, PyDict>> {
    use pyo3::intern;
    let scope = PyDict::new(py);
    pytemplate::placeholders(
        &scope,
        &[
            intern!(py, "type"),
            intern!(py, "asgi"),
            intern!(py, "http_version"),
            intern!(py, "scheme"),
            intern!(py, "path"),
            intern!(py, "raw_path"),
            intern!(py, "query_string"),
            intern!(py, "headers"),
            intern!(py, "extensions"),
        ],
    )?;
    scope.set_item(intern!(py, "server"), address(py, &connection.local)?)?;
    scope.set_item(intern!(py, "client"), address(py, &connection.peer)?)?;
    scope.set_item(intern!(py, "root_path"), template.root_path.bind(py))?;
    if template.state.is_some() {
        pytemplate::placeholders(&scope, &[intern!(py, "state")])?;
    }
    Ok(scope)
}

/// The keys HTTP and WebSocket scopes share.
fn base_scope<'py>(
    py: Python<'py>,
    kind: &Bound<'py, PyString>,
    spec_version: &Bound<'py, PyString>,
    template: &ScopeTemplate,
    parts: &Parts,
    connection: &ConnectionInfo,
) -> PyResult<Bound<'py, PyDict>> {
    use pyo3::intern;
    let scope = connection.request_template.copy(py, || connection_scope(py, template, connection))?;
    scope.set_item(intern!(py, "type"), kind)?;
    let asgi = PyDict::new(py);
    asgi.set_item(intern!(py, "version"), intern!(py, ASGI_VERSION))?;
    asgi.set_item(intern!(py, "spec_version"), spec_version)?;
    scope.set_item(intern!(py, "asgi"), asgi)?;
    scope.set_item(intern!(py, "http_version"), pytext::asgi_http_version(py, parts.version))?;
    let raw_path = parts.uri.path();
    scope.set_item(intern!(py, "path"), decoded_path(raw_path))?;
    scope.set_item(intern!(py, "raw_path"), PyBytes::new(py, raw_path.as_bytes()))?;
    scope.set_item(intern!(py, "query_string"), PyBytes::new(py, parts.uri.query().unwrap_or("").as_bytes()))?;
    let headers = PyList::empty(py);
    if !parts.headers.contains_key(HOST) {
        // HTTP/2 carries the host in :authority; ASGI apps look for a host header.
        if let Some(authority) = parts.uri.authority() {
            headers.append((PyBytes::new(py, b"host"), PyBytes::new(py, authority.as_str().as_bytes())))?;
        }
    }
    for (name, value) in &parts.headers {
        headers.append((PyBytes::new(py, name.as_str().as_bytes()), PyBytes::new(py, value.as_bytes())))?;
    }
    scope.set_item(intern!(py, "headers"), headers)?;
    if let Some(state) = &template.state {
        scope.set_item(intern!(py, "state"), state.bind(py).copy()?)?;
    }
    Ok(scope)
}

pub fn http_scope<'py>(
    py: Python<'py>,
    template: &ScopeTemplate,
    parts: &Parts,
    connection: &ConnectionInfo,
) -> PyResult<Bound<'py, PyDict>> {
    use pyo3::intern;
    let scope = base_scope(py, intern!(py, "http"), intern!(py, ASGI_SPEC_VERSION), template, parts, connection)?;
    let scheme = pytext::scheme(py, connection.tls.is_some(), false);
    scope.set_item(intern!(py, "scheme"), scheme)?;
    scope.set_item(intern!(py, "method"), pytext::method(py, &parts.method))?;
    let extensions = PyDict::new(py);
    extensions.set_item(intern!(py, "http.response.pathsend"), PyDict::new(py))?;
    add_tls(py, &extensions, connection)?;
    scope.set_item(intern!(py, "extensions"), extensions)?;
    Ok(scope)
}

/// The `tls` extension (asgiref's TLS extension specification) on HTTPS connections: built by the
/// connection's first request, a shallow copy for each request after it.
fn add_tls(py: Python<'_>, extensions: &Bound<'_, PyDict>, connection: &ConnectionInfo) -> PyResult<()> {
    use pyo3::intern;
    let Some(tls) = &connection.tls else {
        return Ok(());
    };
    let view = tls.python_view.get_or_try_init(py, || -> PyResult<Py<PyDict>> {
        let data = PyDict::new(py);
        data.set_item(intern!(py, "server_cert"), tls.server_certificate.python(py))?;
        data.set_item(intern!(py, "client_cert_chain"), PyList::new(py, &tls.client_chain)?)?;
        data.set_item(intern!(py, "client_cert_name"), tls.client_name.as_deref())?;
        // rustls completes a handshake only with a verified client certificate (or none).
        data.set_item(intern!(py, "client_cert_error"), py.None())?;
        data.set_item(intern!(py, "tls_version"), tls.version)?;
        // Unknown on HTTP/3 (quinn does not tell): None, as the extension allows.
        data.set_item(intern!(py, "cipher_suite"), (tls.cipher_suite != 0).then_some(tls.cipher_suite))?;
        Ok(data.unbind())
    })?;
    extensions.set_item(intern!(py, "tls"), view.bind(py).copy()?)
}

/// The scope of a WebSocket connection (`type == 'websocket'`, spec 2.5: close reasons).
pub fn websocket_scope<'py>(
    py: Python<'py>,
    template: &ScopeTemplate,
    parts: &Parts,
    connection: &ConnectionInfo,
    subprotocols: &[String],
) -> PyResult<Bound<'py, PyDict>> {
    use pyo3::intern;
    let scope = base_scope(
        py,
        intern!(py, "websocket"),
        intern!(py, ASGI_WEBSOCKET_SPEC_VERSION),
        template,
        parts,
        connection,
    )?;
    let scheme = pytext::scheme(py, connection.tls.is_some(), true);
    scope.set_item(intern!(py, "scheme"), scheme)?;
    scope.set_item(intern!(py, "subprotocols"), PyList::new(py, subprotocols)?)?;
    let extensions = PyDict::new(py);
    extensions.set_item(intern!(py, "websocket.http.response"), PyDict::new(py))?;
    add_tls(py, &extensions, connection)?;
    scope.set_item(intern!(py, "extensions"), extensions)?;
    Ok(scope)
}
