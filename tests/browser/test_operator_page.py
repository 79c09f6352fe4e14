"""The operator page in a real headless browser (Debian's chromium + chromedriver).

The browser may reach the gateway only: every other host resolves to nothing and every
other address goes to a dead proxy, and the page's own resource list is checked. It signs
in, sees an alert that opens while it watches, acknowledges it with a click, and sees the
task list update after a task decision. A screenshot is saved as an artifact.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as visible
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.gateway import TEST_TOKEN, GatewayProcess
from tests.support.publish import publish_all
from tests.support.services import REPO_ROOT, Broker, free_port

OPERATOR_TOKEN = "operator-token-0123456789"
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "apt install chromium chromium-driver (.ci/run does)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,1000",
                 f"--user-data-dir={tmp_path / 'chrome'}",
                 # Only the gateway: no name resolves, and any other address meets a dead proxy.
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                 "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1"):
        options.add_argument(flag)
    session = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield session
    finally:
        session.quit()


def test_the_operator_page_shows_a_live_alert_and_a_click_decides(
    broker: Broker, make_gateway: Callable[..., GatewayProcess], browser: WebDriver,
) -> None:
    gateway = make_gateway(
        sensors={"pump-1/temp": {"asset": "pump-1", "limits": {"max": 90.0}}},
        assets={"pump-1": {"criticality": "high"}},
        http={"port": free_port(), "token": TEST_TOKEN, "operator_token": OPERATOR_TOKEN})
    gateway.start()
    now = time.time()
    publish_all(broker.port, [("factory/s1/pump-1/temp", json.dumps(
        {"ts": now - 120 + k, "value": 50.0 + (k % 5) * 0.4}).encode()) for k in range(110)])
    wait = WebDriverWait(browser, 20)
    browser.get(gateway.http_url + "/")
    browser.find_element(By.ID, "actor").send_keys("Jane (shift B)")
    browser.find_element(By.ID, "token").send_keys(OPERATOR_TOKEN)
    browser.find_element(By.CSS_SELECTOR, "#sign-in-form button").click()
    wait.until(visible.text_to_be_present_in_element((By.ID, "alerts"), "No open alert"))

    publish_all(broker.port, [("factory/s1/pump-1/temp", json.dumps(
        {"ts": time.time(), "value": 97.5}).encode())])  # the fault, while the page watches
    card = wait.until(visible.presence_of_element_located((By.CSS_SELECTOR, "article.alert")))
    assert "pump-1/temp" in card.text and "critical" in card.text
    wait.until(visible.presence_of_element_located((By.CSS_SELECTOR, "article.alert svg path.line")))
    card.find_element(By.CSS_SELECTOR, "button[data-action=acknowledge]").click()
    wait.until(visible.text_to_be_present_in_element((By.CSS_SELECTOR, "article.alert"),
                                                      "acknowledged by Jane (shift B)"))

    row = wait.until(visible.presence_of_element_located((By.CSS_SELECTOR, "#tasks tbody tr")))
    assert "open" in row.find_element(By.CSS_SELECTOR, ".state").text
    row.find_element(By.CSS_SELECTOR, "button[data-action=acknowledge]").click()
    wait.until(visible.text_to_be_present_in_element((By.CSS_SELECTOR, "#tasks tbody tr .state"),
                                                      "acknowledged"))
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "operator-page.png"))

    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(url.startswith(gateway.http_url) for url in resources), resources
    assert OPERATOR_TOKEN not in browser.page_source and OPERATOR_TOKEN not in browser.current_url
    assert gateway.terminate() == 0
