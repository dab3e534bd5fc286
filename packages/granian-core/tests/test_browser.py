"""A real browser over HTTPS: headless Chromium trusts the test CA (through its NSS database), loads a
page from each async interface, which must arrive over h2, and echoes a message over `wss://`."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests_support.certs import server_pki

APPS_DIR = Path(__file__).parent / 'apps'
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
CERTUTIL = shutil.which('certutil')

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CERTUTIL is None,
    reason='needs chromium and certutil (Debian: apt-get install chromium libnss3-tools; .ci/run installs them)',
)


@pytest.fixture(scope='module')
def browser_home(tmp_path_factory):
    """A HOME whose NSS database trusts a fresh test CA; yields (home, ca, cert, key)."""
    home = tmp_path_factory.mktemp('browser-home')
    pki = server_pki(home)
    database = home / '.pki' / 'nssdb'
    database.mkdir(parents=True)
    subprocess.run([CERTUTIL, '-d', f'sql:{database}', '-N', '--empty-password'], check=True, timeout=30)
    subprocess.run(
        [CERTUTIL, '-d', f'sql:{database}', '-A', '-t', 'C,,', '-n', 'granian-test-ca', '-i', str(pki.ca_file)],
        check=True,
        timeout=30,
    )
    return home, pki.ca, pki.cert, pki.key


@pytest.mark.parametrize('interface', ['rsgi', 'asgi'])
def test_chromium_loads_the_page_over_h2_and_echoes_over_wss(server_factory, browser_home, interface):
    home, ca, cert, key = browser_home
    args = ['--ssl-certificate', str(cert), '--ssl-keyfile', str(key)]
    server = server_factory(f'browser_app:{interface}', interface=interface, working_dir=APPS_DIR, extra_args=args)
    url = f'https://127.0.0.1:{server.port}/'
    env = {**os.environ, 'HOME': str(home)}
    browser = subprocess.Popen(
        [
            CHROMIUM, '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
            f'--user-data-dir={home / "profile"}', '--remote-debugging-port=0', url,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    context = ssl.create_default_context()
    ca.configure_trust(context)
    result = ''
    try:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and not result:
            time.sleep(0.5)
            result = httpx.get(f'{url}result', verify=context, timeout=10).text
    finally:
        os.killpg(browser.pid, 9)
        browser.wait(10)
    assert result == 'h2 echo: hello from the browser', result
