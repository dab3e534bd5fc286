"""A throwaway certificate authority and server certificate for HTTPS tests (trustme)."""

from __future__ import annotations

import ssl
from pathlib import Path


def server_certificate(directory: Path) -> tuple[Path, Path, ssl.SSLContext]:
    """Write a certificate for 127.0.0.1 and its key to `directory` (cert.pem, key.pem); return both
    paths and a client context that trusts the certificate's authority."""
    import trustme

    authority = trustme.CA()
    issued = authority.issue_cert('127.0.0.1')
    cert, key = directory / 'cert.pem', directory / 'key.pem'
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return cert, key, context
