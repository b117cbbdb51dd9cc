"""The dashboard in a real browser: Debian's headless Chromium (scripts/ensure-chromium) driven
by Playwright for Python. Log in with the admin token, see the accounts, add a key, use it
through the Anthropic SDK, see it in the charts and the recent requests, disable it. Screenshots
of each step are saved under the test's tmp dir (printed at the end)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from adapters.simulator import gateway_environment
from tests.e2e.conformance.conftest import Process, base_env, free_port, start

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

CHROMIUM = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CLIENT = "browser-client-token-0123456789"
ADMIN = "browser-admin-token-0123456789"

playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Process]:
    sim_port, port = free_port(), free_port()
    simulator = start("simulator", [sys.executable, "-m", "adapters.simulator", "--port", str(sim_port),
                                    "--pace-ms", "0", "--log-level", "WARNING"], sim_port, base_env())
    env = base_env()
    env.update(gateway_environment(simulator.url))
    env.update({"KIRO_CLIENT_TOKEN": CLIENT, "KIRO_ADMIN_TOKEN": ADMIN, "LOG_LEVEL": "WARNING",
                "KIRO_STATE": f"sqlite:///{tmp_path}/state.db"})
    process = start("gateway", [sys.executable, "-m", "adapters.cli", "serve", "--port", str(port)], port, env)
    yield process
    process.stop()
    simulator.stop()


def test_log_in_see_accounts_add_a_key_use_it_and_see_it_charted(gateway: Process, tmp_path: Path) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no Chromium at {CHROMIUM}: run scripts/ensure-chromium")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with playwright_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
        )
        try:
            page = context.new_page()
            page.goto(f"{gateway.url}/admin")
            assert page.locator("form#login").is_visible()
            page.fill("input[name=token]", CLIENT)  # a client key is not the admin token
            page.click("form#login button")
            assert "not the admin token" in page.locator("#login-problem").inner_text()
            page.fill("input[name=token]", ADMIN)
            page.click("form#login button")
            page.wait_for_selector("table#accounts")
            page.screenshot(path=str(shots / "1-accounts.png"), full_page=True)
            assert page.url == f"{gateway.url}/admin"  # no token in any URL
            account = page.locator("table#accounts tr.account").first
            assert "simulator demo" in account.inner_text() and "usable" in account.inner_text()
            cookies = {c["name"]: c for c in context.cookies()}
            session = cookies["kiro2api_admin"]
            assert session["httpOnly"] and session["sameSite"] == "Strict" and ADMIN not in session["value"]
            assert page.evaluate("document.cookie") == ""  # no script can read the session

            page.click("text=Add a key")
            page.fill("form#add-key input[name=name]", "browser-bot")
            page.fill("form#add-key input[name=rpm]", "30")
            page.click("form#add-key button")
            key = page.locator("#new-key").inner_text()
            page.screenshot(path=str(shots / "2-new-key.png"), full_page=True)
            assert key.startswith("k2a_")

            time.sleep(1.2)  # every replica, this one included, reads new keys within a second
            client = anthropic.Anthropic(api_key=key, base_url=gateway.url, max_retries=0)
            answer = client.messages.create(
                model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hello from the browser test"}]
            )
            assert answer.content and answer.content[0].type == "text"

            page.goto(f"{gateway.url}/admin")
            row = page.locator("table#keys tr.key[data-name=browser-bot]")
            assert "active" in row.inner_text()
            assert key not in page.content()  # shown once, never again
            # The usage is written in batches off the request path: reload until it is there.
            for _ in range(20):
                if page.locator("#chart-requests rect.bar[height]:not([height='0.0'])").count():
                    break
                page.wait_for_timeout(250)
                page.reload()
            assert page.locator("#chart-requests rect.bar:not([height='0.0'])").count() >= 1
            assert "browser-bot" in page.locator("table#requests").inner_text()
            page.screenshot(path=str(shots / "3-chart.png"), full_page=True)

            row.locator("text=Disable").click()
            page.wait_for_selector("table#keys")
            assert "disabled" in page.locator("table#keys tr.key[data-name=browser-bot]").inner_text()
            time.sleep(1.2)
            with pytest.raises(anthropic.AuthenticationError):
                client.messages.create(model="claude-sonnet-4-5", max_tokens=16,
                                       messages=[{"role": "user", "content": "still there?"}])
            audit = page.locator("table#audit").inner_text()
            assert "keys.add" in audit and "keys.disable" in audit and "login" in audit
            page.screenshot(path=str(shots / "4-disabled.png"), full_page=True)
        finally:
            context.close()
    saved = sorted(p.name for p in shots.iterdir())
    assert saved == ["1-accounts.png", "2-new-key.png", "3-chart.png", "4-disabled.png"]
    print(f"screenshots: {shots}")
