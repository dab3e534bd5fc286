//! Reading certificates, private keys and CRLs from PEM files, with one-line errors that name the
//! file and say what is wrong with it.
//!
//! Keys: PKCS#8 (`PRIVATE KEY`), encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`, PBES2, with a password),
//! PKCS#1 (`RSA PRIVATE KEY`) and SEC1 (`EC PRIVATE KEY`). OpenSSL's legacy encrypted PEM
//! (`Proc-Type: 4,ENCRYPTED`) is refused with the command that converts it.

use std::path::Path;

use pkcs8::der::pem::PemLabel;
use pkcs8::EncryptedPrivateKeyInfo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::TlsError;

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|err| TlsError::file(path, format!("cannot be read ({err})")))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// Every certificate of a PEM file (a chain: the server's own first).
pub fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let text = read(path)?;
    let certificates = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::file(path, format!("is not valid PEM ({err})")))?;
    if certificates.is_empty() {
        return Err(TlsError::file(path, format!("holds no {what} (expected PEM 'BEGIN CERTIFICATE' blocks)")));
    }
    Ok(certificates)
}

/// Every CRL of a PEM file.
pub fn revocation_lists(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let text = read(path)?;
    let lists = CertificateRevocationListDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::file(path, format!("is not valid PEM ({err})")))?;
    if lists.is_empty() {
        return Err(TlsError::file(path, "holds no CRL (expected a PEM 'BEGIN X509 CRL' block)"));
    }
    Ok(lists)
}

/// The private key of a PEM file, decrypted with `password` when it is encrypted PKCS#8.
pub fn private_key(path: &Path, password: Option<&str>) -> Result<PrivateKeyDer<'static>, TlsError> {
    let text = read(path)?;
    if contains(&text, b"Proc-Type: 4,ENCRYPTED") {
        return Err(TlsError::file(
            path,
            format!(
                "is encrypted in OpenSSL's legacy PEM format, which is not supported; convert it to \
                 encrypted PKCS#8 with: openssl pkcs8 -topk8 -v2 aes-256-cbc -in {} -out key.pem",
                path.display()
            ),
        ));
    }
    let begin = format!("-----BEGIN {}-----", EncryptedPrivateKeyInfo::PEM_LABEL);
    if let Some(start) = find(&text, begin.as_bytes()) {
        let Some(password) = password else {
            return Err(TlsError::file(path, "is encrypted: give its password with --ssl-keyfile-password"));
        };
        return decrypt(path, &text[start..], password);
    }
    match PrivateKeyDer::from_pem_slice(&text) {
        Ok(key) => Ok(key),
        Err(rustls::pki_types::pem::Error::NoItemsFound) => Err(TlsError::file(
            path,
            "holds no private key (expected a PEM 'PRIVATE KEY', 'ENCRYPTED PRIVATE KEY', 'RSA PRIVATE KEY' or \
             'EC PRIVATE KEY' block)",
        )),
        Err(err) => Err(TlsError::file(path, format!("is not valid PEM ({err})"))),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

fn decrypt(path: &Path, from_begin: &[u8], password: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    let end = format!("-----END {}-----", EncryptedPrivateKeyInfo::PEM_LABEL);
    let block_end = find(from_begin, end.as_bytes())
        .map(|at| at + end.len())
        .ok_or_else(|| TlsError::file(path, "is not valid PEM (the encrypted key block has no END line)"))?;
    let (_, der) = pkcs8::der::pem::decode_vec(&from_begin[..block_end])
        .map_err(|err| TlsError::file(path, format!("is not valid PEM ({err})")))?;
    let info = EncryptedPrivateKeyInfo::try_from(der.as_slice())
        .map_err(|err| TlsError::file(path, format!("is not a valid encrypted PKCS#8 key ({err})")))?;
    let document = info
        .decrypt(password)
        .map_err(|_| TlsError::file(path, "cannot be decrypted: wrong --ssl-keyfile-password"))?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(document.as_bytes().to_vec())))
}
