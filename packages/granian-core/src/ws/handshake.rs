//! The WebSocket opening handshake, for HTTP/1.1 (RFC 6455, section 4) and HTTP/2 extended CONNECT
//! (RFC 8441): recognising an upgrade request, refusing a bad one with a short reason, and the
//! response that accepts it. Python-free.

use base64::Engine as _;
use bytes::Bytes;
use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS,
    SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{Method, Request, Response, StatusCode, Version};
use sha1::{Digest, Sha1};

use super::deflate::{negotiate, DeflateAgreement};
use crate::http::{response, ResponseBody};

/// The GUID RFC 6455 appends to the client's key.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// How the connection will be upgraded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// HTTP/1.1 `Upgrade: websocket`, answered with 101 and this `Sec-WebSocket-Accept`.
    Http1 { accept: HeaderValue },
    /// HTTP/2 extended CONNECT with `:protocol websocket`, answered with 200.
    Http2,
}

/// A valid WebSocket opening request.
#[derive(Clone, Debug)]
pub struct Opening {
    pub transport: Transport,
    /// The subprotocols the client offered, in its order.
    pub subprotocols: Vec<String>,
    /// permessage-deflate, when offered acceptably and enabled on the server.
    pub deflate: Option<DeflateAgreement>,
}

/// Why a WebSocket request is refused before it reaches the app.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 400 with this reason.
    BadRequest(&'static str),
    /// 426: the client speaks a WebSocket version other than 13.
    UnsupportedVersion,
}

/// Whether `request` asks for a WebSocket: an HTTP/1.1 `Upgrade: websocket` or an RFC 8441 CONNECT.
pub fn is_websocket_request<B>(request: &Request<B>) -> bool {
    if request.method() == Method::CONNECT {
        return request.extensions().get::<hyper::ext::Protocol>().is_some_and(|p| p.as_str() == "websocket");
    }
    request.headers().get_all(UPGRADE).iter().any(|value| header_has_token(value, "websocket"))
}

fn header_has_token(value: &HeaderValue, token: &str) -> bool {
    value.to_str().is_ok_and(|text| text.split(',').any(|part| part.trim().eq_ignore_ascii_case(token)))
}

/// The `Sec-WebSocket-Accept` value for a client key.
pub fn accept_key(key: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(key);
    hasher.update(ACCEPT_GUID);
    base64::engine::general_purpose::STANDARD.encode(hasher.finalize())
}

fn valid_key(key: &HeaderValue) -> bool {
    base64::engine::general_purpose::STANDARD.decode(key.as_bytes()).is_ok_and(|decoded| decoded.len() == 16)
}

/// Subprotocols offered in every `Sec-WebSocket-Protocol` header, split on commas.
pub fn offered_subprotocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Checks a WebSocket request (see [`is_websocket_request`]); `deflate` enables permessage-deflate.
pub fn inspect<B>(request: &Request<B>, deflate: bool) -> Result<Opening, Refusal> {
    let headers = request.headers();
    let transport = if request.method() == Method::CONNECT {
        Transport::Http2
    } else {
        if request.method() != Method::GET {
            return Err(Refusal::BadRequest("a WebSocket handshake must use GET"));
        }
        if request.version() < Version::HTTP_11 {
            return Err(Refusal::BadRequest("a WebSocket handshake needs HTTP/1.1"));
        }
        if !headers.get_all(CONNECTION).iter().any(|value| header_has_token(value, "upgrade")) {
            return Err(Refusal::BadRequest("the Connection header must include Upgrade"));
        }
        let key = match headers.get(SEC_WEBSOCKET_KEY) {
            Some(key) if valid_key(key) => key,
            _ => return Err(Refusal::BadRequest("Sec-WebSocket-Key is missing or not 16 bytes of base64")),
        };
        let accept = HeaderValue::from_str(&accept_key(key.as_bytes()))
            .map_err(|_| Refusal::BadRequest("invalid Sec-WebSocket-Key"))?;
        Transport::Http1 { accept }
    };
    match headers.get(SEC_WEBSOCKET_VERSION) {
        Some(version) if version.as_bytes() == b"13" => {}
        _ => return Err(Refusal::UnsupportedVersion),
    }
    let deflate = if deflate {
        negotiate(headers.get_all(SEC_WEBSOCKET_EXTENSIONS).iter().filter_map(|v| v.to_str().ok()))
    } else {
        None
    };
    Ok(Opening { transport, subprotocols: offered_subprotocols(headers), deflate })
}

/// The HTTP answer to a refused WebSocket request.
pub fn refusal_response(refusal: &Refusal) -> Response<ResponseBody> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    match refusal {
        Refusal::BadRequest(reason) => {
            response(StatusCode::BAD_REQUEST, headers, ResponseBody::full(Bytes::from_static(reason.as_bytes())))
        }
        Refusal::UnsupportedVersion => {
            headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            let body = Bytes::from_static(b"only WebSocket version 13 is supported");
            response(StatusCode::UPGRADE_REQUIRED, headers, ResponseBody::full(body))
        }
    }
}

/// The response that accepts the WebSocket, with the app's subprotocol choice and extra headers.
pub fn accept_response(
    opening: &Opening,
    subprotocol: Option<&str>,
    extra_headers: HeaderMap,
) -> Result<Response<ResponseBody>, &'static str> {
    let mut headers = HeaderMap::new();
    for (name, value) in &extra_headers {
        if !is_handshake_header(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Some(subprotocol) = subprotocol {
        let value = HeaderValue::from_str(subprotocol).map_err(|_| "the subprotocol is not a valid header value")?;
        headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
    }
    if let Some(agreement) = &opening.deflate {
        if let Ok(value) = HeaderValue::from_str(&agreement.header_value()) {
            headers.insert(SEC_WEBSOCKET_EXTENSIONS, value);
        }
    }
    let status = match &opening.transport {
        Transport::Http1 { accept } => {
            headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(SEC_WEBSOCKET_ACCEPT, accept.clone());
            StatusCode::SWITCHING_PROTOCOLS
        }
        Transport::Http2 => StatusCode::OK,
    };
    Ok(response(status, headers, ResponseBody::Empty))
}

/// Headers the server owns in a handshake response; an app's values for them are ignored.
fn is_handshake_header(name: &HeaderName) -> bool {
    [UPGRADE, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS].contains(name)
        || name.as_str().eq_ignore_ascii_case("content-length")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::get("/ws").version(Version::HTTP_11);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("request")
    }

    const VALID: &[(&str, &str)] = &[
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ];

    #[test]
    fn rfc_6455_example_key() {
        assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn valid_request_is_accepted_with_101() {
        let request = request(VALID);
        assert!(is_websocket_request(&request));
        let opening = inspect(&request, true).expect("valid");
        let response = accept_response(&opening, None, HeaderMap::new()).expect("response");
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(response.headers()[SEC_WEBSOCKET_ACCEPT], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert!(!response.headers().contains_key(SEC_WEBSOCKET_EXTENSIONS));
    }

    #[test]
    fn subprotocols_are_split_on_commas() {
        let mut headers = VALID.to_vec();
        headers.push(("sec-websocket-protocol", "chat, superchat"));
        headers.push(("sec-websocket-protocol", "v3"));
        let opening = inspect(&request(&headers), false).expect("valid");
        assert_eq!(opening.subprotocols, ["chat", "superchat", "v3"]);
        let response = accept_response(&opening, Some("superchat"), HeaderMap::new()).expect("response");
        assert_eq!(response.headers()[SEC_WEBSOCKET_PROTOCOL], "superchat");
    }

    #[test]
    fn bad_requests_are_refused() {
        let without = |name: &str| -> Vec<(&str, &str)> { VALID.iter().copied().filter(|(n, _)| *n != name).collect() };
        assert!(matches!(inspect(&request(&without("connection")), false), Err(Refusal::BadRequest(_))));
        assert!(matches!(inspect(&request(&without("sec-websocket-key")), false), Err(Refusal::BadRequest(_))));
        let mut short_key = without("sec-websocket-key");
        short_key.push(("sec-websocket-key", "c2hvcnQ="));
        assert!(matches!(inspect(&request(&short_key), false), Err(Refusal::BadRequest(_))));
        let mut old = without("sec-websocket-version");
        old.push(("sec-websocket-version", "8"));
        assert_eq!(inspect(&request(&old), false).err(), Some(Refusal::UnsupportedVersion));
        let response = refusal_response(&Refusal::UnsupportedVersion);
        assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(response.headers()[SEC_WEBSOCKET_VERSION], "13");
    }

    #[test]
    fn deflate_only_when_enabled() {
        let mut headers = VALID.to_vec();
        headers.push(("sec-websocket-extensions", "permessage-deflate; client_max_window_bits"));
        assert!(inspect(&request(&headers), true).expect("valid").deflate.is_some());
        assert!(inspect(&request(&headers), false).expect("valid").deflate.is_none());
    }

    #[test]
    fn app_cannot_override_handshake_headers() {
        let opening = inspect(&request(VALID), false).expect("valid");
        let mut extra = HeaderMap::new();
        extra.insert(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_static("forged"));
        extra.insert("x-app", HeaderValue::from_static("1"));
        let response = accept_response(&opening, None, extra).expect("response");
        assert_eq!(response.headers()[SEC_WEBSOCKET_ACCEPT], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(response.headers()["x-app"], "1");
    }
}
