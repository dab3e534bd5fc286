//! HTTPS: the rustls server configuration built from the `ssl_*` options, and the per-connection
//! handshake (with a time limit) that runs in the connection's own task, never on the accept loop.
//!
//! Crypto provider: ring by default, AWS-LC with the `crypto-aws-lc` feature (see
//! docs/architecture.md). ALPN follows `--http`: `h2` and `http/1.1` for auto, only one otherwise.

pub mod info;
mod pem;

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::deadline;
use crate::http::HttpMode;
use info::TlsInfo;

/// How long a client may take to complete the TLS handshake (up to one [`deadline::GRAIN`] more:
/// the connections that arrive in the same second share one timer).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a handshake (TLS over TCP, or QUIC) bounded by [`HANDSHAKE_TIMEOUT`]; the error is the
/// debug log line saying why it failed.
pub async fn bounded_handshake<T, E: fmt::Display>(handshake: impl Future<Output = Result<T, E>>) -> Result<T, String> {
    match deadline::within(HANDSHAKE_TIMEOUT, handshake).await {
        Some(result) => result.map_err(|err| err.to_string()),
        None => Err(format!("no handshake within {} s", HANDSHAKE_TIMEOUT.as_secs())),
    }
}

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
    // AWS-LC is built without its load-time constructor (.cargo/config.toml), so that a process
    // serving no TLS keeps its code out of memory: its CPU feature detection runs here, once, before
    // any of its functions does. Without it AWS-LC would take its portable code, correct but slower.
    #[cfg(any(feature = "x25519-aws-lc", feature = "crypto-aws-lc"))]
    aws_lc_rs::init();
    #[cfg(feature = "crypto-ring")]
    let provider = rustls::crypto::ring::default_provider();
    #[cfg(all(feature = "crypto-ring", feature = "x25519-aws-lc"))]
    let provider = fast_x25519(provider);
    #[cfg(all(feature = "crypto-aws-lc", not(feature = "crypto-ring")))]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    Arc::new(prefer_aes128(provider))
}

/// ring with AWS-LC's X25519 in place of its own (the `x25519-aws-lc` feature, on by default). X25519
/// is the key exchange nearly every client offers first, and the largest part of a full handshake's
/// server CPU: AWS-LC computes it in about half ring's time (a key pair and a shared secret, 33 us
/// against 62 us on this project's machine), and only its X25519 code is linked in, not the rest of
/// AWS-LC (see docs/architecture.md, "Crates").
#[cfg(all(feature = "crypto-ring", feature = "x25519-aws-lc"))]
fn fast_x25519(mut provider: rustls::crypto::CryptoProvider) -> rustls::crypto::CryptoProvider {
    for group in provider.kx_groups.iter_mut() {
        if group.name() == rustls::NamedGroup::X25519 {
            *group = rustls::crypto::aws_lc_rs::kx_group::X25519;
        }
    }
    provider
}

/// AES-128-GCM first, in TLS 1.3 and 1.2 alike: as strong as a client needs (128-bit security, as
/// X25519 and P-256 give) and cheaper than AES-256-GCM, whose SHA-384 handshake hash also costs more
/// than SHA-256 (with SHA instructions). The order is the server's (see `ignore_client_order`).
fn prefer_aes128(mut provider: rustls::crypto::CryptoProvider) -> rustls::crypto::CryptoProvider {
    use rustls::CipherSuite::*;
    let rank = |suite: &rustls::SupportedCipherSuite| match suite.suite() {
        TLS13_AES_128_GCM_SHA256 | TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 0,
        TLS13_AES_256_GCM_SHA384 | TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 | TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => 1,
        _ => 2,
    };
    // A stable sort keeps TLS 1.3 suites ahead of TLS 1.2 ones within each rank's version.
    provider.cipher_suites.sort_by_key(|suite| (suite.version() != &rustls::version::TLS13, rank(suite)));
    provider
}

/// A worker's TLS: the rustls configuration and the server's certificate as apps see it.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    /// The server's own certificate, for the ASGI `tls` extension.
    pub certificate: Arc<info::ServerCertificate>,
}

/// Builds the rustls configuration, reading and checking every file.
pub fn server_config(settings: &TlsSettings, http_mode: HttpMode) -> Result<ServerTls, TlsError> {
    let chain = pem::certificates(&settings.certificate, "certificate")?;
    let certificate = Arc::new(info::ServerCertificate::from_der(&chain[0]));
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
    config.ignore_client_order = true;
    // One TLS 1.3 session ticket per full handshake (rustls sends two): a ticket resumes one later
    // connection, and every resumed connection gets a new one. A client that opens connections in
    // parallel can ask for more (RFC 9149 `ticket_request`) and gets up to four. See
    // docs/architecture.md (HTTPS) for what a ticket costs the server.
    config.send_tls13_tickets = 1;
    config.max_tls13_tickets = 4;
    config.alpn_protocols = match http_mode {
        HttpMode::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        HttpMode::Http1 => vec![b"http/1.1".to_vec()],
        HttpMode::Http2 => vec![b"h2".to_vec()],
    };
    Ok(ServerTls { config: Arc::new(config), certificate })
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
    certificate: Arc<info::ServerCertificate>,
}

impl Tls {
    pub fn new(server: ServerTls) -> Self {
        Self { acceptor: TlsAcceptor::from(server.config), certificate: server.certificate }
    }

    /// Runs the handshake, bounded by [`HANDSHAKE_TIMEOUT`]; the error says why it failed.
    pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
    ) -> Result<(TlsStream<S>, TlsInfo), String> {
        let stream = bounded_handshake(self.acceptor.accept(stream)).await?;
        let info = TlsInfo::of(stream.get_ref().1, &self.certificate);
        Ok((stream, info))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::CipherSuite::*;

    #[test]
    fn aes128_gcm_leads_each_protocol_version() {
        let suites: Vec<_> = provider().cipher_suites.iter().map(|suite| suite.suite()).collect();
        assert_eq!(&suites[..3], &[TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256]);
        let tls12 = &suites[3..];
        assert!(tls12.len() >= 2 && tls12.iter().all(|suite| !format!("{suite:?}").starts_with("TLS13")));
        assert!(format!("{:?}", tls12[0]).ends_with("AES_128_GCM_SHA256"), "{tls12:?}");
    }

    /// Accepts any server certificate: the measurement below times the server's side only.
    #[derive(Debug)]
    struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

    impl rustls::client::danger::ServerCertVerifier for AnyServer {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// A throwaway ECDSA P-256 certificate for localhost, made with openssl, in its own directory.
    fn test_settings(label: &str) -> (TlsSettings, PathBuf) {
        let directory = std::env::temp_dir().join(format!("granian-{label}-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let (cert, key) = (directory.join("cert.pem"), directory.join("key.pem"));
        let made = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-subj", "/CN=localhost", "-days", "1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(made.status.success());
        let settings = TlsSettings {
            certificate: cert,
            key,
            key_password: None,
            protocol_min: ProtocolMin::Tls13,
            client_ca: None,
            revocation_lists: vec![],
            client_verify: false,
        };
        (settings, directory)
    }

    fn client_config(provider: Arc<rustls::crypto::CryptoProvider>) -> Arc<rustls::ClientConfig> {
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
                .with_no_client_auth(),
        )
    }

    /// One handshake between `client` and a new server connection, in memory, then a request's
    /// worth of application data from the client, which the server must read back. Returns the
    /// server connection and the time the server's side took.
    fn handshake(
        client_config: &Arc<rustls::ClientConfig>,
        server_config: &Arc<ServerConfig>,
    ) -> (rustls::ServerConnection, Duration) {
        use std::io::{Read, Write};
        use std::time::Instant;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut client = rustls::ClientConnection::new(client_config.clone(), name).unwrap();
        let began = Instant::now();
        let mut server = rustls::ServerConnection::new(server_config.clone()).unwrap();
        let mut server_time = began.elapsed();
        let mut wire = Vec::new();
        while client.is_handshaking() || server.is_handshaking() {
            wire.clear();
            while client.wants_write() {
                client.write_tls(&mut wire).unwrap();
            }
            let began = Instant::now();
            let mut incoming = &wire[..];
            while !incoming.is_empty() {
                server.read_tls(&mut incoming).unwrap();
                server.process_new_packets().unwrap();
            }
            let mut reply = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut reply).unwrap();
            }
            server_time += began.elapsed();
            let mut incoming = &reply[..];
            while !incoming.is_empty() {
                client.read_tls(&mut incoming).unwrap();
                client.process_new_packets().unwrap();
            }
        }
        // One request's worth of application data keeps the traffic keys honest: both sides derived
        // them from the same shared secret, or the server could not read it.
        client.writer().write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        wire.clear();
        client.write_tls(&mut wire).unwrap();
        let mut incoming = &wire[..];
        server.read_tls(&mut incoming).unwrap();
        server.process_new_packets().unwrap();
        let mut request = [0u8; 64];
        let read = server.reader().read(&mut request).unwrap();
        assert_eq!(&request[..read], b"GET / HTTP/1.1\r\n\r\n");
        (server, server_time)
    }

    /// The server's X25519 is AWS-LC's (with `x25519-aws-lc`), and it agrees on the shared secret
    /// with another implementation: a client using ring's X25519 only.
    #[cfg(all(feature = "crypto-ring", feature = "x25519-aws-lc"))]
    #[test]
    fn x25519_from_aws_lc_agrees_with_ring() {
        let x25519 = provider().kx_groups.iter().copied().find(|group| group.name() == rustls::NamedGroup::X25519);
        let aws_lc: &dyn rustls::crypto::SupportedKxGroup = rustls::crypto::aws_lc_rs::kx_group::X25519;
        assert!(std::ptr::addr_eq(x25519.unwrap(), aws_lc), "X25519 is not AWS-LC's");
        assert_eq!(provider().kx_groups[0].name(), rustls::NamedGroup::X25519);

        let (settings, directory) = test_settings("x25519");
        let server_config = server_config(&settings, HttpMode::Auto).unwrap().config;
        let ring_client = client_config(Arc::new(rustls::crypto::ring::default_provider()));
        for _ in 0..8 {
            let (server, _) = handshake(&ring_client, &server_config);
            assert_eq!(
                server.negotiated_key_exchange_group().map(|group| group.name()),
                Some(rustls::NamedGroup::X25519)
            );
        }
        std::fs::remove_dir_all(&directory).ok();
    }

    /// AWS-LC's CPU feature detection ran (the build leaves out the constructor that would run it
    /// at load): with it, AWS-LC finds the AES and carry-less multiply instructions this CPU has.
    #[cfg(all(target_arch = "x86_64", any(feature = "x25519-aws-lc", feature = "crypto-aws-lc")))]
    #[test]
    fn aws_lc_knows_the_cpu() {
        if !(std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")) {
            return;
        }
        provider();
        #[allow(unsafe_code)]
        // SAFETY: a query of AWS-LC's CPU capability flags, no arguments.
        let found = unsafe { aws_lc_sys::EVP_has_aes_hardware() };
        assert_eq!(found, 1, "AWS-LC did not detect the CPU's AES instructions");
    }

    /// Server CPU time of one full TLS 1.3 handshake (ECDSA P-256 certificate, X25519, the cipher
    /// the server prefers), client and server in memory: the figure the crypto provider was chosen
    /// by. `cargo test --release -p granian-core handshake_cost -- --ignored --nocapture`, with the
    /// default features, with `--no-default-features -F crypto-ring` (ring alone) and with
    /// `--no-default-features -F crypto-aws-lc`. Needs openssl.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn handshake_cost() {
        let (settings, directory) = test_settings("handshake");
        let server_config = server_config(&settings, HttpMode::Auto).unwrap().config;
        let client_config = client_config(provider());
        let rounds = 2000;
        let mut server_time = Duration::ZERO;
        for _ in 0..rounds {
            server_time += handshake(&client_config, &server_config).1;
        }
        std::fs::remove_dir_all(&directory).ok();
        println!(
            "server CPU per TLS 1.3 handshake: {:.1} us ({rounds} handshakes)",
            server_time.as_secs_f64() * 1e6 / rounds as f64
        );
    }
}
