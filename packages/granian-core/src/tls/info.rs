//! What apps may see of a TLS connection, worked out once per connection right after the handshake:
//! protocol version, cipher suite, the server's certificate and the client's chain as PEM, and the
//! client certificate's subject as an RFC 4514 string.

use std::sync::Arc;

use base64::Engine;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};
use pyo3::{Py, Python};
use rustls::pki_types::CertificateDer;
use rustls::ServerConnection;
use x509_cert::der::Decode;

/// TLS facts of one connection.
pub struct TlsInfo {
    /// The TLS version as its wire value (0x0303 for TLS 1.2, 0x0304 for TLS 1.3).
    pub version: u16,
    /// The IANA number of the negotiated cipher suite.
    pub cipher_suite: u16,
    /// The server's certificate.
    pub server_certificate: Arc<ServerCertificate>,
    /// The client's certificate chain (PEM each, the client's own first); empty without one.
    pub client_chain: Vec<String>,
    /// The subject of the client's certificate, RFC 4514 (`CN=alice,O=Example`).
    pub client_name: Option<String>,
    /// The ASGI `tls` extension's dict, made by the first request and copied by every later one, so
    /// keep-alive requests do not turn the PEM text into Python strings again. (WSGI keeps its
    /// `HTTPS`/`SSL_CLIENT_*` entries in the connection's environ template.)
    pub python_view: PyOnceLock<Py<PyDict>>,
}

impl TlsInfo {
    pub fn of(connection: &ServerConnection, server_certificate: &Arc<ServerCertificate>) -> Self {
        Self::new(
            connection.protocol_version().map_or(0, u16::from),
            connection.negotiated_cipher_suite().map_or(0, |suite| u16::from(suite.suite())),
            server_certificate,
            connection.peer_certificates().unwrap_or_default(),
        )
    }

    /// `cipher_suite` 0 when it is not known (QUIC connections: quinn does not tell).
    pub fn new(
        version: u16,
        cipher_suite: u16,
        server_certificate: &Arc<ServerCertificate>,
        client: &[CertificateDer<'_>],
    ) -> Self {
        Self {
            version,
            cipher_suite,
            server_certificate: server_certificate.clone(),
            client_chain: client.iter().map(|certificate| pem_certificate(certificate)).collect(),
            client_name: client.first().and_then(|certificate| subject(certificate)),
            python_view: PyOnceLock::new(),
        }
    }
}

/// The server's own certificate as apps see it (the ASGI `tls` extension's `server_cert`): PEM
/// text, and the Python str made of it by the worker's first TLS connection that asks, which every
/// later connection shares.
pub struct ServerCertificate {
    pem: Box<str>,
    python: PyOnceLock<Py<PyString>>,
}

impl ServerCertificate {
    pub fn from_der(der: &[u8]) -> Self {
        Self { pem: pem_certificate(der).into(), python: PyOnceLock::new() }
    }

    pub fn python<'py>(&self, py: Python<'py>) -> &pyo3::Bound<'py, PyString> {
        self.python.get_or_init(py, || PyString::new(py, &self.pem).unbind()).bind(py)
    }
}

impl std::fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCertificate").field("pem", &self.pem).finish_non_exhaustive()
    }
}

/// A DER certificate as PEM text.
pub fn pem_certificate(der: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::with_capacity(encoded.len() + encoded.len() / 64 + 64);
    pem.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

fn subject(der: &[u8]) -> Option<String> {
    let certificate = x509_cert::Certificate::from_der(der).ok()?;
    Some(certificate.tbs_certificate.subject.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_lines_are_64_characters() {
        let pem = pem_certificate(&[7u8; 100]);
        let body: Vec<&str> = pem.lines().filter(|line| !line.starts_with("-----")).collect();
        assert_eq!(body.len(), 3);
        assert!(body[..2].iter().all(|line| line.len() == 64));
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n") && pem.ends_with("-----END CERTIFICATE-----\n"));
    }
}
