"""The headers mapping (rsgi.md section 4)."""

from __future__ import annotations

import httpx
import pytest

REQUEST_HEADERS = [('x-one', '1'), ('x-multi', 'a'), ('x-multi', 'b')]


@pytest.fixture(scope='module')
def headers(server) -> dict:
    response = httpx.get(server.url('/scope'), headers=REQUEST_HEADERS, timeout=10)
    assert response.status_code == 200
    return response.json()['headers']


@pytest.mark.requirement('headers-lookup')
def test_getitem_gives_the_first_value(headers):
    assert headers['getitem_x_one'] == '1'
    assert headers['getitem_x_multi'] == 'a'


@pytest.mark.requirement('headers-lookup')
def test_getitem_of_a_missing_name_raises_key_error(headers):
    assert headers['getitem_missing'] == {'raised': 'KeyError'}


@pytest.mark.requirement('headers-lookup')
def test_get(headers):
    assert headers['get_x_multi'] == 'a'
    assert headers['get_missing'] is None
    assert headers['get_missing_default'] == 'fallback'


@pytest.mark.requirement('headers-lookup')
def test_contains(headers):
    assert headers['contains_x_one'] is True
    assert headers['contains_missing'] is False


@pytest.mark.requirement('headers-views')
def test_items_hold_every_pair_in_order(headers):
    items = [tuple(item) for item in headers['items']]
    assert ('x-one', '1') in items
    assert [value for name, value in items if name == 'x-multi'] == ['a', 'b']


@pytest.mark.requirement('headers-views')
def test_values_follow_items(headers):
    assert headers['values'] == [value for _, value in headers['items']]


@pytest.mark.requirement('headers-views')
def test_keys_iter_and_len_cover_the_names(headers):
    names = {name for name, _ in headers['items']}
    assert set(headers['keys']) == names
    assert set(headers['iter']) == names
    assert isinstance(headers['len'], int) and len(names) <= headers['len'] <= len(headers['items'])
