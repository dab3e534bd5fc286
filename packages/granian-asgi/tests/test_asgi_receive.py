"""ASGI 2.4 `receive()`: `http.request` messages carry the body, then `http.disconnect` once the response is done."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from urllib.parse import quote

import h11
import httpx
import pytest

from tests_support.bodies import BODY_SIZES, check_echo
from tests_support.server import HOST
from tests_support.waiting import wait_until


@pytest.fixture(scope='module', params=list(BODY_SIZES), ids=list(BODY_SIZES))
def body(request: pytest.FixtureRequest) -> bytes:
    return os.urandom(BODY_SIZES[request.param])


async def full_duplex_post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    """POST `body` over HTTP/1.1 while reading the response at the same time; return (status, response body).

    httpx sends the whole request body before it reads the response. A server that echoes each chunk as it
    arrives and applies backpressure would then block on a client that never reads: that deadlock is the
    client's, so the streamed echo over HTTP/1.1 uses this client instead.
    """
    reader, writer = await asyncio.open_connection(HOST, port)
    conn = h11.Connection(h11.CLIENT)
    headers = [('host', 'localhost'), ('content-length', str(len(body))), ('connection', 'close')]
    writer.write(conn.send(h11.Request(method='POST', target=path, headers=headers)))

    async def send_body() -> None:
        for start in range(0, len(body), 65536):
            writer.write(conn.send(h11.Data(data=body[start : start + 65536])))
            await writer.drain()
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()

    sender = asyncio.create_task(send_body())
    status, chunks = 0, []
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
        await sender
    finally:
        sender.cancel()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return status, b''.join(chunks)


@pytest.mark.parametrize('route', ['/echo', '/stream-echo'], ids=['whole-body', 'streamed'])
def test_echo(asgi_server, http_client: httpx.Client, http_version: str, body: bytes, route: str):
    if route == '/stream-echo' and http_version == '1.1':
        status, content = asyncio.run(asyncio.wait_for(full_duplex_post(asgi_server.port, route, body), 60))
        assert status == 200, content[:200]
        assert len(content) == len(body)
        assert content == body
        return
    check_echo(http_client.post(asgi_server.url(route), content=body), body)


@pytest.mark.parametrize('route', ['/echo', '/stream-echo'], ids=['whole-body', 'streamed'])
def test_echo_request_body_sent_in_pieces(asgi_server, http_client: httpx.Client, route: str):
    # A generator body has no length: HTTP/1.1 sends it chunked, HTTP/2 as several DATA frames.
    pieces = [os.urandom(size) for size in (1, 4096, 70000, 3)]
    check_echo(http_client.post(asgi_server.url(route), content=iter(pieces)), b''.join(pieces))


def test_request_without_body_is_one_empty_message(asgi_server, http_client: httpx.Client):
    response = http_client.get(asgi_server.url('/receive-log'))
    assert response.status_code == 200, response.text
    assert response.json() == [{'type': 'http.request', 'body_type': 'bytes', 'body_length': 0, 'more_body': False}]


def test_body_messages_are_http_request_with_more_body_until_the_last(asgi_server, http_client: httpx.Client):
    pieces = [os.urandom(size) for size in (10, 100_000, 5)]
    response = http_client.post(asgi_server.url('/receive-log'), content=iter(pieces))
    assert response.status_code == 200, response.text
    log = response.json()
    assert all(entry['type'] == 'http.request' for entry in log), log
    assert all(entry['body_type'] == 'bytes' for entry in log), log
    assert sum(entry['body_length'] for entry in log) == sum(map(len, pieces))
    assert [entry['more_body'] for entry in log] == [True] * (len(log) - 1) + [False], log


def test_receive_after_complete_response_is_http_disconnect(
    asgi_server, http_client: httpx.Client, tmp_path: Path, read_marker
):
    marker = tmp_path / 'after-response.json'
    response = http_client.post(asgi_server.url(f'/receive-after-response?marker={quote(str(marker))}'), content=b'x')
    assert (response.status_code, response.text) == (200, 'done')
    # The client keeps its connection open; the response being complete is what ends the request for the app.
    assert wait_until(marker.exists, 10), 'receive() after the response completed did not return within 10 s'
    record = read_marker(marker)
    assert record['outcome'] == 'message', record
    assert record['message']['type'] == 'http.disconnect', record
    assert http_client.get(asgi_server.url('/scope')).status_code == 200
