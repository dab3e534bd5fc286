"""HTTPS with real clients: every interface over HTTP/1.1 and HTTP/2, ALPN, protocol versions, mTLS
with CRLs, encrypted keys, and the one-line error of each bad TLS setting.

Certificates are made at test time with trustme; CRLs and encrypted keys with `cryptography`.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from tests_support.server import HOST, free_port, run_granian

APPS_DIR = Path(__file__).parent / 'apps'
TARGETS = {'rsgi': 'tls_app:rsgi', 'asgi': 'tls_app:asgi', 'wsgi': 'tls_app:wsgi'}


@dataclass
class Pki:
    """A test CA, the server's certificate and key files, and client certificates."""

    directory: Path
    ca: trustme.CA
    cert: Path
    key: Path
    ca_file: Path
    client_good: trustme.LeafCert
    client_revoked: trustme.LeafCert
    crl: Path

    def client_context(self, certificate: trustme.LeafCert | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        if certificate is not None:
            certificate.configure_cert(context)
        return context


def _write_crl(ca: trustme.CA, revoked: trustme.LeafCert, path: Path) -> None:
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    serial = x509.load_pem_x509_certificate(revoked.cert_chain_pems[0].bytes()).serial_number
    now = datetime.datetime.now(datetime.timezone.utc)
    entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - datetime.timedelta(minutes=1))
        .next_update(now + datetime.timedelta(days=1))
        .add_revoked_certificate(entry)
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))


@pytest.fixture(scope='module')
def pki(tmp_path_factory) -> Pki:
    directory = tmp_path_factory.mktemp('pki')
    ca = trustme.CA()
    server = ca.issue_cert('127.0.0.1', 'localhost')
    cert, key, ca_file = directory / 'cert.pem', directory / 'key.pem', directory / 'ca.pem'
    server.cert_chain_pems[0].write_to_path(str(cert))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(cert), append=True)
    server.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    good = ca.issue_cert('client-good@example.com')
    revoked = ca.issue_cert('client-revoked@example.com')
    crl = directory / 'crl.pem'
    _write_crl(ca, revoked, crl)
    return Pki(directory, ca, cert, key, ca_file, good, revoked, crl)


def tls_args(pki: Pki, *extra: str) -> list[str]:
    return ['--ssl-certificate', str(pki.cert), '--ssl-keyfile', str(pki.key), *extra]


@pytest.fixture(scope='module', params=sorted(TARGETS))
def interface(request) -> str:
    return request.param


@pytest.fixture(scope='module')
def https_server(server_factory, pki, interface):
    return server_factory(TARGETS[interface], interface=interface, working_dir=APPS_DIR, extra_args=tls_args(pki))


def https_url(server, path: str = '/') -> str:
    return f'https://{server.host}:{server.port}{path}'


@pytest.mark.parametrize('http2', [False, True], ids=['http1.1', 'h2'])
def test_every_interface_serves_https_over_http1_and_http2(https_server, pki, interface, http2):
    with httpx.Client(verify=pki.client_context(), http1=not http2, http2=http2, timeout=10) as client:
        response = client.get(https_url(https_server))
    assert response.status_code == 200
    assert response.http_version == ('HTTP/2' if http2 else 'HTTP/1.1')
    seen = response.json()
    assert seen['scheme'] == 'https'
    if interface == 'wsgi':
        assert seen['https'] == 'on'
        assert seen['http_version'] == ('HTTP/2' if http2 else 'HTTP/1.1')
    else:
        assert seen['http_version'] == ('2' if http2 else '1.1')


def test_plain_http_on_the_tls_port_closes_that_connection_only(https_server, pki):
    with pytest.raises(httpx.HTTPError):
        httpx.get(f'http://{https_server.host}:{https_server.port}/', timeout=5)
    with httpx.Client(verify=pki.client_context(), timeout=10) as client:
        assert client.get(https_url(https_server)).status_code == 200


@pytest.mark.parametrize('level', ['debug', 'info'])
def test_failed_handshakes_are_logged_at_debug_level_only(server_factory, pki, level):
    server = server_factory(TARGETS['rsgi'], working_dir=APPS_DIR, extra_args=tls_args(pki, '--log-level', level))
    for _ in range(3):
        with pytest.raises(httpx.HTTPError):
            httpx.get(f'http://{server.host}:{server.port}/', timeout=5)
    with httpx.Client(verify=pki.client_context(), timeout=10) as client:
        assert client.get(https_url(server)).status_code == 200
    if level == 'debug':
        assert server.wait_for_output('TLS handshake with 127.0.0.1'), server.output
        lines = [line for line in server.output.splitlines() if 'TLS handshake with' in line]
        assert lines and all('DEBUG' in line for line in lines), lines
    else:
        assert 'TLS handshake' not in server.output and 'ERROR' not in server.output, server.output


def test_a_stalled_handshake_is_cut_off_after_the_handshake_timeout(server_factory, pki):
    server = server_factory(TARGETS['rsgi'], working_dir=APPS_DIR, extra_args=tls_args(pki, '--log-level', 'debug'))
    stalled = socket.create_connection((server.host, server.port), timeout=30)
    # The header of a handshake record whose body never comes: the server waits inside the handshake.
    stalled.sendall(b'\x16\x03\x01\x02\x00')
    started = time.monotonic()
    with httpx.Client(verify=pki.client_context(), timeout=10) as client:
        assert client.get(https_url(server)).status_code == 200
    try:
        assert stalled.recv(1024) == b''
    except ConnectionResetError:
        pass
    finally:
        stalled.close()
    waited = time.monotonic() - started
    # 10 s, plus up to 1 s: connections that arrive in the same second share one timer.
    assert 9.5 <= waited <= 20, waited
    assert server.wait_for_output('failed: no handshake within 10 s'), server.output


def _session_tickets(server) -> int:
    request = f'GET / HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n\r\n'
    done = subprocess.run(
        ['openssl', 's_client', '-connect', f'{server.host}:{server.port}', '-tls1_3', '-ign_eof'],
        input=request,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert 'HTTP/1.1 200' in done.stdout, done.stdout + done.stderr
    return done.stdout.count('Post-Handshake New Session Ticket arrived')


def test_one_session_ticket_per_handshake_and_resumption_works(server_factory, pki):
    server = server_factory(TARGETS['rsgi'], working_dir=APPS_DIR, extra_args=tls_args(pki))
    assert _session_tickets(server) == 1
    context = pki.client_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    request = f'GET / HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n\r\n'.encode()

    def fetch(session: ssl.SSLSession | None) -> tuple[ssl.SSLSession, bool]:
        raw = socket.create_connection((server.host, server.port), timeout=10)
        with context.wrap_socket(raw, server_hostname='localhost', session=session) as tls:
            tls.sendall(request)
            response = b''
            while chunk := tls.recv(65536):
                response += chunk
            assert response.startswith(b'HTTP/1.1 200'), response
            return tls.session, tls.session_reused

    first, reused = fetch(None)
    assert not reused
    second, reused = fetch(first)
    assert reused
    # The resumed connection got its own ticket, which resumes the next one.
    _, reused = fetch(second)
    assert reused


def test_websockets_over_tls(https_server, pki, interface):
    if interface == 'wsgi':
        pytest.skip('WSGI has no WebSockets')

    async def exchange() -> str:
        url = f'wss://{https_server.host}:{https_server.port}/ws'
        async with websockets.connect(url, ssl=pki.client_context(), open_timeout=10) as ws:
            await ws.send('hello')
            return await asyncio.wait_for(ws.recv(), 10)

    scheme = {'rsgi': 'https', 'asgi': 'wss'}[interface]
    assert asyncio.run(exchange()) == f'{scheme} hello'


def _subject(pem: str) -> str:
    return x509.load_pem_x509_certificate(pem.encode()).subject.rfc4514_string()


def _same_certificate(first: str, second: str) -> bool:
    load = x509.load_pem_x509_certificate
    return load(first.encode()).public_bytes(serialization.Encoding.DER) == load(second.encode()).public_bytes(
        serialization.Encoding.DER
    )


TLS13_SUITES = {0x1301, 0x1302, 0x1303}


@pytest.mark.parametrize('client_certificate', [False, True], ids=['no-client-cert', 'client-cert'])
def test_asgi_tls_extension_describes_the_connection(server_factory, pki, client_certificate):
    args = tls_args(pki, '--ssl-ca', str(pki.ca_file))
    server = server_factory(TARGETS['asgi'], interface='asgi', working_dir=APPS_DIR, extra_args=args)
    context = pki.client_context(pki.client_good if client_certificate else None)
    with httpx.Client(verify=context, timeout=10) as client:
        first = client.get(https_url(server)).json()['tls']
        second = client.get(https_url(server)).json()['tls']
    assert first == second, 'the same connection reports the same TLS facts, whatever the app changed'
    assert _same_certificate(first['server_cert'], pki.cert.read_text())
    assert first['tls_version'] == 0x0304
    assert first['cipher_suite'] in TLS13_SUITES
    assert first['client_cert_error'] is None
    if client_certificate:
        client_pem = pki.client_good.cert_chain_pems[0].bytes().decode()
        assert _same_certificate(first['client_cert_chain'][0], client_pem)
        assert first['client_cert_name'] == _subject(client_pem)
    else:
        assert first['client_cert_chain'] == []
        assert first['client_cert_name'] is None


def test_asgi_tls_extension_reports_tls12(server_factory, pki):
    args = tls_args(pki, '--ssl-protocol-min', 'tls1.2')
    server = server_factory(TARGETS['asgi'], interface='asgi', working_dir=APPS_DIR, extra_args=args)
    tls = httpx.get(https_url(server), verify=_tls12_only(pki), timeout=10).json()['tls']
    assert tls['tls_version'] == 0x0303
    assert tls['cipher_suite'] not in TLS13_SUITES and tls['cipher_suite'] > 0


def test_plain_http_has_no_tls_extension(server_factory):
    server = server_factory(TARGETS['asgi'], interface='asgi', working_dir=APPS_DIR)
    assert httpx.get(server.url('/'), timeout=10).json()['tls'] is None


def test_wsgi_sees_the_client_certificate_as_mod_ssl_names_it(server_factory, pki):
    args = tls_args(pki, '--ssl-ca', str(pki.ca_file))
    server = server_factory(TARGETS['wsgi'], interface='wsgi', working_dir=APPS_DIR, extra_args=args)
    with httpx.Client(verify=pki.client_context(pki.client_good), timeout=10) as client:
        seen = client.get(https_url(server)).json()
        again = client.get(https_url(server)).json()
    assert seen == again, 'every request on the connection sees the same entries'
    client_pem = pki.client_good.cert_chain_pems[0].bytes().decode()
    assert _same_certificate(seen['ssl_client_cert'], client_pem)
    assert seen['ssl_client_s_dn'] == _subject(client_pem)
    anonymous = httpx.get(https_url(server), verify=pki.client_context(), timeout=10).json()
    assert anonymous['ssl_client_cert'] is None and anonymous['ssl_client_s_dn'] is None


def _alpn(server, offer: str, *extra: str) -> str:
    done = subprocess.run(
        ['openssl', 's_client', '-connect', f'{server.host}:{server.port}', '-alpn', offer, *extra],
        input='',
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith('ALPN protocol:'):
            return line.split(':', 1)[1].strip()
        if line.startswith('No ALPN negotiated'):
            return ''
    raise AssertionError(f'openssl printed no ALPN result:\n{done.stdout}\n{done.stderr}')


def test_alpn_offers_h2_and_http11_by_default(server_factory, pki):
    server = server_factory(TARGETS['rsgi'], working_dir=APPS_DIR, extra_args=tls_args(pki))
    assert _alpn(server, 'h2') == 'h2'
    assert _alpn(server, 'http/1.1') == 'http/1.1'
    assert _alpn(server, 'h2,http/1.1') == 'h2'


def test_http1_only_offers_only_http11(server_factory, pki):
    server = server_factory(TARGETS['rsgi'], working_dir=APPS_DIR, extra_args=tls_args(pki, '--http', '1'))
    assert _alpn(server, 'h2,http/1.1') == 'http/1.1'
    with httpx.Client(verify=pki.client_context(), http2=True, timeout=10) as client:
        assert client.get(https_url(server)).http_version == 'HTTP/1.1'


def _tls12_only(pki: Pki) -> ssl.SSLContext:
    context = pki.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def test_default_minimum_is_tls13_and_refuses_a_tls12_client(server_factory, pki):
    server = server_factory(TARGETS['rsgi'], working_dir=APPS_DIR, extra_args=tls_args(pki))
    with pytest.raises(httpx.ConnectError):
        httpx.get(https_url(server), verify=_tls12_only(pki), timeout=5)


def test_protocol_min_tls12_accepts_a_tls12_client(server_factory, pki):
    server = server_factory(
        TARGETS['rsgi'], working_dir=APPS_DIR, extra_args=tls_args(pki, '--ssl-protocol-min', 'tls1.2')
    )
    assert httpx.get(https_url(server), verify=_tls12_only(pki), timeout=10).status_code == 200


def test_client_certificates_are_optional_with_a_ca_alone(server_factory, pki):
    server = server_factory(
        TARGETS['rsgi'], working_dir=APPS_DIR, extra_args=tls_args(pki, '--ssl-ca', str(pki.ca_file))
    )
    assert httpx.get(https_url(server), verify=pki.client_context(), timeout=10).status_code == 200
    good = pki.client_context(pki.client_good)
    assert httpx.get(https_url(server), verify=good, timeout=10).status_code == 200


def test_required_client_certificate_and_crl(server_factory, pki):
    args = tls_args(pki, '--ssl-ca', str(pki.ca_file), '--ssl-client-verify', '--ssl-crl', str(pki.crl))
    server = server_factory(TARGETS['rsgi'], working_dir=APPS_DIR, extra_args=args)
    good = pki.client_context(pki.client_good)
    assert httpx.get(https_url(server), verify=good, timeout=10).status_code == 200
    # TLS 1.3 client authentication fails after the client's handshake completes: the refusal shows
    # on the first read, as a connection or protocol error.
    for context in (pki.client_context(), pki.client_context(pki.client_revoked)):
        with pytest.raises(httpx.TransportError):
            httpx.get(https_url(server), verify=context, timeout=5)
    assert httpx.get(https_url(server), verify=good, timeout=10).status_code == 200


def _encrypted_key(pki: Pki, password: bytes, name: str, legacy: bool = False) -> Path:
    key = serialization.load_pem_private_key(pki.key.read_bytes(), password=None)
    form = serialization.PrivateFormat.TraditionalOpenSSL if legacy else serialization.PrivateFormat.PKCS8
    path = pki.directory / name
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, form, serialization.BestAvailableEncryption(password))
    )
    return path


def test_encrypted_pkcs8_key_with_its_password(server_factory, pki):
    key = _encrypted_key(pki, b's3cret', 'encrypted.pem')
    args = ['--ssl-certificate', str(pki.cert), '--ssl-keyfile', str(key), '--ssl-keyfile-password', 's3cret']
    server = server_factory(TARGETS['rsgi'], working_dir=APPS_DIR, extra_args=args)
    assert httpx.get(https_url(server), verify=pki.client_context(), timeout=10).json()['scheme'] == 'https'


@pytest.mark.parametrize(
    ('key_type', 'form', 'label'),
    [
        ('RSA', 'PKCS8', b'BEGIN PRIVATE KEY'),
        ('RSA', 'TraditionalOpenSSL', b'BEGIN RSA PRIVATE KEY'),
        ('ECDSA', 'TraditionalOpenSSL', b'BEGIN EC PRIVATE KEY'),
    ],
    ids=['rsa-pkcs8', 'rsa-pkcs1', 'ec-sec1'],
)
def test_key_formats(server_factory, tmp_path, key_type, form, label):
    ca = trustme.CA()
    leaf = ca.issue_cert('127.0.0.1', key_type=getattr(trustme.KeyType, key_type))
    cert, key = tmp_path / 'cert.pem', tmp_path / 'key.pem'
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    loaded = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    pem = loaded.private_bytes(
        serialization.Encoding.PEM, getattr(serialization.PrivateFormat, form), serialization.NoEncryption()
    )
    assert label in pem
    key.write_bytes(pem)
    args = ['--ssl-certificate', str(cert), '--ssl-keyfile', str(key)]
    server = server_factory(TARGETS['rsgi'], working_dir=APPS_DIR, extra_args=args)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    assert httpx.get(https_url(server), verify=context, timeout=10).json()['scheme'] == 'https'


def _refused(pki: Pki, args: list[str]) -> str:
    """Runs the server with `args`; asserts exit code 1 and no traceback; returns the output."""
    result = run_granian(
        ['--interface', 'rsgi', '--host', HOST, '--port', str(free_port()), *args, TARGETS['rsgi']], cwd=APPS_DIR
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, f'exit code {result.returncode}; output:\n{output}'
    assert 'Traceback' not in output, output
    return output


def _one_line_naming(output: str, *needles: str) -> str:
    lines = [line for line in output.splitlines() if all(needle in line for needle in needles)]
    assert lines, f'no line names {needles}; output:\n{output}'
    return lines[0]


def test_bad_tls_settings_stop_the_server_with_one_line(pki):
    directory = pki.directory
    not_pem = directory / 'not-pem.txt'
    not_pem.write_text('hello\n')
    other_key = directory / 'other-key.pem'
    trustme.CA().issue_cert('127.0.0.1').private_key_pem.write_to_path(str(other_key))
    encrypted = _encrypted_key(pki, b'right', 'encrypted-2.pem')
    legacy = _encrypted_key(pki, b'right', 'legacy.pem', legacy=True)
    cert, key = str(pki.cert), str(pki.key)
    cases = [
        (['--ssl-certificate', str(directory / 'missing.pem'), '--ssl-keyfile', key], ('missing.pem',)),
        (['--ssl-certificate', str(not_pem), '--ssl-keyfile', key], ('not-pem.txt', 'no certificate')),
        (['--ssl-certificate', cert, '--ssl-keyfile', str(not_pem)], ('not-pem.txt', 'no private key')),
        (['--ssl-certificate', cert, '--ssl-keyfile', str(other_key)], ('other-key.pem', 'does not match')),
        (['--ssl-certificate', cert, '--ssl-keyfile', str(encrypted)], ('encrypted-2.pem', '--ssl-keyfile-password')),
        (
            ['--ssl-certificate', cert, '--ssl-keyfile', str(encrypted), '--ssl-keyfile-password', 'wrong'],
            ('encrypted-2.pem', 'wrong'),
        ),
        (['--ssl-certificate', cert, '--ssl-keyfile', str(legacy)], ('legacy.pem', 'openssl pkcs8 -topk8')),
        (['--ssl-certificate', cert, '--ssl-keyfile', key, '--ssl-ca', str(not_pem)], ('not-pem.txt', 'CA')),
        (
            ['--ssl-certificate', cert, '--ssl-keyfile', key, '--ssl-ca', str(pki.ca_file), '--ssl-crl', str(not_pem)],
            ('not-pem.txt', 'CRL'),
        ),
        (['--ssl-certificate', cert, '--ssl-keyfile', key, '--ssl-client-verify'], ('--ssl-client-verify', '--ssl-ca')),
        (['--ssl-certificate', cert], ('--ssl-keyfile',)),
    ]
    for args, needles in cases:
        _one_line_naming(_refused(pki, args), *needles)


def test_python_api_refuses_a_mismatched_key(pki):
    from granian.errors import TLSError
    from granian.server import Server

    other_key = pki.directory / 'other-key-api.pem'
    trustme.CA().issue_cert('127.0.0.1').private_key_pem.write_to_path(str(other_key))
    with pytest.raises(TLSError, match='does not match'):
        Server('tls_app:rsgi', ssl_cert=pki.cert, ssl_key=other_key)


def test_tls_environment_variables(server_factory, pki):
    env = {'GRANIAN_SSL_CERTIFICATE': str(pki.cert), 'GRANIAN_SSL_KEYFILE': str(pki.key)}
    server = server_factory(TARGETS['rsgi'], working_dir=APPS_DIR, env=env)
    assert json.loads(httpx.get(https_url(server), verify=pki.client_context(), timeout=10).text)['scheme'] == 'https'
