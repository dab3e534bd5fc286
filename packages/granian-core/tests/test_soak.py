"""A short soak per interface (tests_support/soak.py): about 150,000 requests on keep-alive and new
connections against one worker; its RSS after the warm-up grows by less than 10% and its descriptors
return to their count before the load. `python tools/soak.py` runs the full million per interface."""

from __future__ import annotations

import shutil

import pytest

from tests_support.soak import report, soak

pytestmark = pytest.mark.skipif(shutil.which('wrk') is None, reason='wrk is not installed (.ci/run installs it)')


@pytest.mark.timeout(180)
@pytest.mark.parametrize('interface', ['rsgi', 'asgi', 'wsgi'])
def test_memory_and_descriptors_stay_bounded(interface):
    result = soak(interface, 150_000)
    assert result.holds(), report([result])
    assert result.requests > 50_000, report([result])
