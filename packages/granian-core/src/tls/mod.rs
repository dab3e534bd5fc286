//! HTTPS: the rustls server configuration built from the `ssl_*` options, and the per-connection
//! handshake (with a time limit) that runs in the connection's own task, never on the accept loop.
//!
//! Crypto provider: ring by default, AWS-LC with the `crypto-aws-lc` feature (see
//! docs/architecture.md). ALPN follows `--http`: `h2` and `http/1.1` for auto, only one otherwise.

pub mod info;
mod pem;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::http::HttpMode;
use info::TlsInfo;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS setting the server cannot use: one line naming the file and the problem.
#[derive(Debug)]
pub struct TlsError(pub String);

impl TlsError {
    fn file(path: &Path, problem: impl fmt::Display) -> Self {
        Self(format!("TLS: {} {problem}", path.display()))
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The lowest TLS version the server accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolMin {
    Tls12,
    Tls13,
}

impl ProtocolMin {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "tls1.2" => Some(Self::Tls12),
            "tls1.3" => Some(Self::Tls13),
            _ => None,
        }
    }
}

/// The `ssl_*` options.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub key_password: Option<String>,
    pub protocol_min: ProtocolMin,
    /// CA whose certificates clients may present (mTLS).
    pub client_ca: Option<PathBuf>,
    pub revocation_lists: Vec<PathBuf>,
    /// Whether a client certificate is required (needs `client_ca`).
    pub client_verify: bool,
}

#[cfg(not(any(feature = "crypto-ring", feature = "crypto-aws-lc")))]
compile_error!("granian-core needs a TLS crypto provider: the crypto-ring or the crypto-aws-lc feature");

/// The crypto provider the build chose (ring unless built with `crypto-aws-lc` alone).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[cfg(feature = "crypto-ring")]
    let provider = rustls::crypto::ring::default_provider();
    #[cfg(all(feature = "crypto-aws-lc", not(feature = "crypto-ring")))]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    Arc::new(provider)
}

/// A worker's TLS: the rustls configuration and the server's certificate as apps see it.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    /// The server's own certificate (PEM), for the ASGI `tls` extension.
    pub certificate_pem: Arc<str>,
}

/// Builds the rustls configuration, reading and checking every file.
pub fn server_config(settings: &TlsSettings, http_mode: HttpMode) -> Result<ServerTls, TlsError> {
    let chain = pem::certificates(&settings.certificate, "certificate")?;
    let certificate_pem: Arc<str> = info::pem_certificate(&chain[0]).into();
    let key = pem::private_key(&settings.key, settings.key_password.as_deref())?;
    let versions: &[&rustls::SupportedProtocolVersion] = match settings.protocol_min {
        ProtocolMin::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        ProtocolMin::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|err| TlsError(format!("TLS: cannot use the protocol versions: {err}")))?;
    let builder = match &settings.client_ca {
        Some(ca) => builder.with_client_cert_verifier(client_verifier(settings, ca)?),
        None if settings.client_verify => {
            return Err(TlsError(
                "TLS: --ssl-client-verify needs --ssl-ca (the CA that signs client certificates)".into(),
            ))
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|err| match err {
        rustls::Error::InconsistentKeys(_) => TlsError(format!(
            "TLS: the private key in {} does not match the certificate in {}",
            settings.key.display(),
            settings.certificate.display()
        )),
        other => TlsError::file(&settings.key, format!("cannot be used with the certificate ({other})")),
    })?;
    config.alpn_protocols = match http_mode {
        HttpMode::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        HttpMode::Http1 => vec![b"http/1.1".to_vec()],
        HttpMode::Http2 => vec![b"h2".to_vec()],
    };
    Ok(ServerTls { config: Arc::new(config), certificate_pem })
}

fn client_verifier(
    settings: &TlsSettings,
    ca: &Path,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in pem::certificates(ca, "CA certificate")? {
        roots.add(certificate).map_err(|err| TlsError::file(ca, format!("holds a bad CA certificate ({err})")))?;
    }
    let roots = Arc::new(roots);
    let mut lists = Vec::new();
    for path in &settings.revocation_lists {
        let found = pem::revocation_lists(path)?;
        // Checked one file at a time, so a bad list is reported with its own file name.
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .with_crls(found.iter().cloned())
            .build()
            .map_err(|err| TlsError::file(path, format!("holds a bad CRL ({err})")))?;
        lists.extend(found);
    }
    let mut builder = WebPkiClientVerifier::builder_with_provider(roots, provider()).with_crls(lists);
    if !settings.client_verify {
        builder = builder.allow_unauthenticated();
    }
    builder.build().map_err(|err| TlsError::file(ca, format!("cannot verify clients ({err})")))
}

/// Accepts TLS on new connections.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    certificate_pem: Arc<str>,
}

impl Tls {
    pub fn new(server: ServerTls) -> Self {
        Self { acceptor: TlsAcceptor::from(server.config), certificate_pem: server.certificate_pem }
    }

    /// Runs the handshake, bounded by [`HANDSHAKE_TIMEOUT`]; the error says why it failed.
    pub async fn handshake(&self, stream: TcpStream) -> Result<(TlsStream<TcpStream>, TlsInfo), String> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await {
            Ok(Ok(stream)) => {
                let info = TlsInfo::of(stream.get_ref().1, &self.certificate_pem);
                Ok((stream, info))
            }
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no handshake within {} s", HANDSHAKE_TIMEOUT.as_secs())),
        }
    }
}
