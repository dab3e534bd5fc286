"""A throwaway certificate authority and server certificate for HTTPS tests (trustme)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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


@dataclass
class Pki:
    """A test CA and a server certificate it issued, as files."""

    cert: Path
    key: Path
    ca_file: Path
    #: The trustme.CA, to issue more certificates (client certificates).
    ca: Any

    def args(self, *extra: str) -> list[str]:
        """The server's TLS options for them, then `extra`."""
        return ['--ssl-certificate', str(self.cert), '--ssl-keyfile', str(self.key), *extra]


def server_pki(directory: Path) -> Pki:
    """A fresh CA and a certificate for 127.0.0.1 and localhost, written to `directory` (cert.pem,
    key.pem and the CA's ca.pem)."""
    import trustme

    ca = trustme.CA()
    issued = ca.issue_cert('127.0.0.1', 'localhost')
    pki = Pki(directory / 'cert.pem', directory / 'key.pem', directory / 'ca.pem', ca)
    issued.cert_chain_pems[0].write_to_path(str(pki.cert))
    issued.private_key_pem.write_to_path(str(pki.key))
    ca.cert_pem.write_to_path(str(pki.ca_file))
    return pki
