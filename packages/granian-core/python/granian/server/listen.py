"""The listening socket: a TCP address, a Unix socket (`uds`), or one inherited from the parent process
(`fd`, or systemd socket activation through `LISTEN_FDS`).

The supervisor opens it once and every worker inherits it, so replacing a worker never drops the
connections queued in the kernel. An inherited socket also outlives the server: when systemd restarts
the service, connections that arrive meanwhile wait in the backlog for the next server.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigurationError, FatalError
from ..log import logger

if TYPE_CHECKING:
    from .config import WorkerSettings

#: The first descriptor systemd passes (SD_LISTEN_FDS_START in sd-daemon).
SYSTEMD_FIRST_FD = 3

#: Linux's cap on listen backlogs.
SOMAXCONN_PATH = '/proc/sys/net/core/somaxconn'

#: Whether Linux hands the connections queued on a closed SO_REUSEPORT socket to another one of its group.
MIGRATE_REQ_PATH = '/proc/sys/net/ipv4/tcp_migrate_req'


@dataclass(frozen=True)
class BindSpec:
    """Where the server listens: `fd` first, then `uds`, then `address` and `port`."""

    address: str
    port: int
    backlog: int
    uds: str | None = None
    uds_permissions: int | None = None
    fd: int | None = None
    #: Each worker listens on its own SO_REUSEPORT socket (TCP only); the supervisor only reserves the address.
    reuse_port: bool = False

    @property
    def url(self) -> str:
        """The configured address, for humans (an inherited socket is described once it is open)."""
        if self.fd is not None:
            return f'fd {self.fd}'
        if self.uds is not None:
            return f'unix:{self.uds}'
        return tcp_url(self.address, self.port)


def host_port(host: str, port: int) -> str:
    """`host:port`, with brackets around IPv6 hosts."""
    shown = f'[{host}]' if ':' in host else host
    return f'{shown}:{port}'


def tcp_url(host: str, port: int) -> str:
    """`http://host:port`, with brackets around IPv6 hosts."""
    return f'http://{host_port(host, port)}'


def read_somaxconn() -> int | None:
    """The kernel's cap on listen backlogs, where the system tells it."""
    try:
        with open(SOMAXCONN_PATH, encoding='ascii') as file:
            return int(file.read().strip())
    except (OSError, ValueError):
        return None


def somaxconn_notice(backlog: int, somaxconn: int | None) -> str | None:
    """What to log when the kernel will queue fewer connections than `backlog` asks for."""
    if somaxconn is None or backlog <= somaxconn:
        return None
    return (
        f'backlog {backlog} is above net.core.somaxconn ({somaxconn}): the kernel queues at most '
        f'{somaxconn} connections; raise the sysctl to use more'
    )


def migrate_req_notice(path: str = MIGRATE_REQ_PATH) -> str | None:
    """What to log in reuse-port mode when a replaced worker's queued connections would be reset."""
    try:
        with open(path, encoding='ascii') as file:
            if file.read().strip() == '1':
                return None
    except OSError:
        pass
    return (
        'reuse_port: when a worker is replaced, the connections queued on its socket are reset unless '
        'net.ipv4.tcp_migrate_req=1 (sysctl) moves them to another worker'
    )


def socket_address(sock: socket.socket) -> str:
    """Where a socket is bound: `HOST:PORT` (brackets around IPv6 hosts) or `unix:PATH`."""
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f'unix:{name}'
    return host_port(name[0], name[1])


def describe(sock: socket.socket) -> str:
    """Where an open listening socket listens, for humans."""
    if sock.family == socket.AF_UNIX:
        return socket_address(sock) if sock.getsockname() else 'an unnamed Unix socket'
    return f'http://{socket_address(sock)}'


def systemd_sockets(environ: dict[str, str] | None = None) -> list[int]:
    """The descriptors systemd socket activation passed to this process (empty without activation).

    Activation is for the process systemd started (`LISTEN_PID`); the variables are removed, as
    sd_listen_fds does, so processes started later do not take the sockets for theirs.
    """
    environ = os.environ if environ is None else environ
    pid, count = environ.get('LISTEN_PID'), environ.get('LISTEN_FDS')
    for name in ('LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'):
        environ.pop(name, None)
    if pid is None or count is None or pid.strip() != str(os.getpid()):
        return []
    try:
        number = int(count)
    except ValueError:
        raise FatalError(f'LISTEN_FDS={count!r} from socket activation is not a number') from None
    return list(range(SYSTEMD_FIRST_FD, SYSTEMD_FIRST_FD + max(0, number)))


class Listener:
    """The open listening socket and what closing it involves (removing the Unix socket file we made)."""

    def __init__(self, sock: socket.socket, description: str, owned_path: str | None = None) -> None:
        self.socket = sock
        self.description = description
        self._owned_path = owned_path
        self._owned_inode = os.stat(owned_path).st_ino if owned_path else None

    def fileno(self) -> int:
        """The descriptor workers inherit."""
        return self.socket.fileno()

    def close(self) -> None:
        """Close the socket; remove the socket file this server created, unless something replaced it."""
        self.socket.close()
        if self._owned_path is None:
            return
        with contextlib.suppress(OSError):
            if os.stat(self._owned_path).st_ino == self._owned_inode:
                os.unlink(self._owned_path)


def open_listener(bind: BindSpec, *, inherited: list[int] | None = None) -> Listener:
    """Open the socket `bind` describes; raises FatalError with one line when it cannot.

    `inherited` are the descriptors of socket activation (see `systemd_sockets`); with one, it is
    served; with several, `fd` picks one of them.
    """
    inherited = inherited or []
    if inherited:
        if bind.fd is None and len(inherited) > 1:
            shown = ', '.join(map(str, inherited))
            raise ConfigurationError(
                f'socket activation passed {len(inherited)} sockets (descriptors {shown}); choose one with --fd',
                key='fd',
            )
        if bind.fd is not None and bind.fd not in inherited:
            shown = ', '.join(map(str, inherited))
            raise ConfigurationError(
                f'--fd {bind.fd} is not one of the sockets socket activation passed (descriptors {shown})', key='fd'
            )
        return inherited_listener(inherited[0] if bind.fd is None else bind.fd, 'socket activation')
    if bind.fd is not None:
        return inherited_listener(bind.fd, '--fd')
    if bind.uds is not None:
        return unix_listener(bind)
    return tcp_listener(bind)


def inherited_listener(fd: int, source: str) -> Listener:
    """A listening stream socket on descriptor `fd`, which this process inherited."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError as exc:
        raise FatalError(f'{source}: descriptor {fd} is not an open socket ({exc.strerror or exc})') from None
    problem = None
    if sock.family not in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
        problem = 'is not a TCP or Unix socket'
    elif sock.type != socket.SOCK_STREAM:
        problem = 'is not a stream socket'
    elif not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        problem = 'is not listening'
    if problem is not None:
        sock.close()
        raise FatalError(f'{source}: descriptor {fd} {problem}')
    sock.set_inheritable(True)
    return Listener(sock, f'{describe(sock)} (descriptor {fd}, from {source})')


def tcp_listener(bind: BindSpec) -> Listener:
    """Bind and listen on `bind.address`, `bind.port`.

    In reuse-port mode the socket is bound and not listening: it reserves the address (and the port
    picked for port 0) for the workers' own sockets and never receives a connection itself.
    """
    family = socket.AF_INET6 if ':' in bind.address else socket.AF_INET
    sock = _bound_tcp(family, (bind.address, bind.port), bind.reuse_port, bind.url)
    if bind.reuse_port:
        sock.set_inheritable(True)
        return Listener(sock, f'{describe(sock)} (a socket per worker, SO_REUSEPORT)')
    _listen(sock, bind.backlog)
    return Listener(sock, describe(sock))


def endpoint_socket(address: str, port: int, what: str) -> socket.socket:
    """A listening TCP socket of the supervisor's own (workers do not inherit it), such as the metrics
    endpoint; FatalError naming `what` when the address cannot be had."""
    family = socket.AF_INET6 if ':' in address else socket.AF_INET
    sock = _bound_tcp(family, (address, port), False, f'{what} {tcp_url(address, port)}')
    sock.listen(128)
    return sock


def reuse_port_member(reserved: socket.socket, backlog: int) -> socket.socket:
    """A worker's own listening socket on the address `reserved` holds (reuse-port mode)."""
    where = describe(reserved)
    sock = _bound_tcp(reserved.family, reserved.getsockname(), True, where)
    try:
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise FatalError(f'cannot listen on {where}: {exc.strerror or exc}') from None
    return sock


#: The UDP buffer size asked for each HTTP/3 socket (the kernel caps it at net.core.rmem_max/wmem_max).
QUIC_BUFFER_BYTES = 2 * 1024 * 1024


@dataclass
class QuicSlot:
    """A worker slot's HTTP/3 UDP socket, and the lock file its worker holds while it serves the
    socket: a replacement worker (reload, recycling, respawn) starts HTTP/3 once the lock is free,
    so the old and new worker of a slot never read the socket at once (each would get a share of
    the other's datagrams, and the draining worker's clients would lose packets)."""

    socket: socket.socket
    #: None for the embedded server, whose one worker is never replaced while another serves.
    lock_path: str | None = None

    def worker_settings(self, settings: WorkerSettings) -> WorkerSettings:
        """`settings` for the worker that serves this slot."""
        return settings.replace(http3_udp_fd=self.socket.fileno(), http3_slot_lock=self.lock_path)


def quic_socket(listening: socket.socket) -> socket.socket:
    """A UDP socket on the address and port of the TCP socket `listening`, in the SO_REUSEPORT group
    that the HTTP/3 sockets of every worker slot share; FatalError naming the address when it cannot
    be had."""
    address = listening.getsockname()
    where = f'udp://{host_port(address[0], address[1])}'
    sock = socket.socket(listening.family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, QUIC_BUFFER_BYTES)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise FatalError(f'cannot serve HTTP/3 on {where}: {exc.strerror or exc}') from None
    return sock


def _bound_tcp(family: int, address: tuple, reuse_port: bool, where: str) -> socket.socket:
    """A TCP socket bound to `address` (SO_REUSEADDR, and SO_REUSEPORT when asked); FatalError naming
    `where` when the address cannot be had."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise FatalError(f'cannot listen on {where}: {exc.strerror or exc}') from None
    return sock


def unix_listener(bind: BindSpec) -> Listener:
    """Bind and listen on the Unix socket `bind.uds`, replacing a socket file no server listens on."""
    path = bind.uds
    assert path is not None
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise FatalError(f'cannot listen on unix:{path}: {exc.strerror or exc}') from None
    listener = Listener(sock, f'unix:{path}', owned_path=path)
    if bind.uds_permissions is not None:
        try:
            os.chmod(path, bind.uds_permissions)
        except OSError as exc:
            listener.close()
            raise FatalError(
                f'cannot set permissions {bind.uds_permissions:o} on unix:{path}: {exc.strerror or exc}'
            ) from None
    _listen(sock, bind.backlog)
    return listener


def _remove_stale_socket(path: str) -> None:
    """Remove a socket file left by a server that is gone; refuse one a live server listens on, and any
    other kind of file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise FatalError(f'cannot listen on unix:{path}: {exc.strerror or exc}') from None
    if not stat.S_ISSOCK(mode):
        raise FatalError(f'cannot listen on unix:{path}: the path exists and is not a socket')
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        logger.info('Removing stale socket file %s', path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    finally:
        probe.close()
    raise FatalError(f'cannot listen on unix:{path}: another server is listening on it')


def _listen(sock: socket.socket, backlog: int) -> None:
    notice = somaxconn_notice(backlog, read_somaxconn())
    if notice is not None:
        logger.warning('%s', notice)
    sock.listen(backlog)
    sock.set_inheritable(True)
