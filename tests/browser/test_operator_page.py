"""The operator page in a real headless browser (Debian's chromium + chromedriver).

The browser may reach the gateway only: every other host resolves to nothing and every
other address goes to a dead proxy, and the page's own resource list is checked. It signs
in, sees an alert that opens while it watches, acknowledges it with a click, and sees the
task list update after a task decision; the sign-in names the token's role and refuses the
ingest token; on a tablet the page fits the screen, lists page with "Show more", and the
complete dialog sends note, fault found, parts and labour. Screenshots are saved as
artifacts; `UPDATE_README_SCREENSHOT=1` copies the desktop one to the README's
docs/operator-page.png.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as visible
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.gateway import TEST_TOKEN, GatewayProcess
from tests.support.publish import publish_all
from tests.support.services import REPO_ROOT, Broker, free_port

OPERATOR_TOKEN = "operator-token-0123456789"
READ_TOKEN = "read-token-0123456789abcdef"
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
README_SCREENSHOT = REPO_ROOT / "docs" / "operator-page.png"


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
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console: failed loads
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
    wait = _waiting(browser)
    browser.get(gateway.http_url + "/")
    _sign_in(browser, "Jane (shift B)", OPERATOR_TOKEN)
    wait.until(visible.text_to_be_present_in_element((By.ID, "alerts"), "No open alert"))
    assert "operator token" in browser.find_element(By.ID, "who").text

    publish_all(broker.port, [("factory/s1/pump-1/temp", json.dumps(
        {"ts": time.time(), "value": 97.5}).encode())])  # the fault, while the page watches
    card_text = _text(wait, "article.alert")
    assert "pump-1/temp" in card_text and "critical" in card_text
    wait.until(visible.presence_of_element_located((By.CSS_SELECTOR, "article.alert svg path.line")))
    _click(wait, "article.alert button[data-action=acknowledge]")
    wait.until(visible.text_to_be_present_in_element((By.CSS_SELECTOR, "article.alert"),
                                                      "acknowledged by Jane (shift B)"))

    assert "open" in _text(wait, "#tasks tbody tr .state")
    _click(wait, "#tasks tbody tr button[data-action=acknowledge]")
    wait.until(visible.text_to_be_present_in_element((By.CSS_SELECTOR, "#tasks tbody tr .state"),
                                                      "acknowledged"))
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "operator-page.png"))
    if os.environ.get("UPDATE_README_SCREENSHOT"):  # opt in: the README's picture
        shutil.copyfile(ARTIFACTS / "operator-page.png", README_SCREENSHOT)
    failed = [e["message"] for e in browser.get_log("browser") if "Failed to load" in e["message"]]
    assert failed == [], failed  # nothing the page (or the browser, e.g. the favicon) asked is refused

    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(url.startswith(gateway.http_url) for url in resources), resources
    assert OPERATOR_TOKEN not in browser.page_source and OPERATOR_TOKEN not in browser.current_url
    assert gateway.terminate() == 0


def _waiting(browser: WebDriver) -> WebDriverWait[WebDriver]:
    # The page re-renders a list whenever it changes, so an element found a moment ago may be
    # gone: the helpers below find it again instead of failing on a stale reference.
    return WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,))


def _text(wait: WebDriverWait[WebDriver], css: str) -> str:
    """The text of the element `css` finds, read in one go from a fresh lookup."""
    text: str = wait.until(lambda b: b.find_element(By.CSS_SELECTOR, css).text)
    return text


def _click(wait: WebDriverWait[WebDriver], css: str) -> None:
    """Click the element `css` finds, found again if the page re-rendered it meanwhile."""
    def click(browser: WebDriver) -> bool:
        browser.find_element(By.CSS_SELECTOR, css).click()
        return True
    wait.until(click)


def _sign_in(browser: WebDriver, actor: str, token: str) -> None:
    browser.find_element(By.ID, "actor").clear()
    browser.find_element(By.ID, "actor").send_keys(actor)
    browser.find_element(By.ID, "token").clear()
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "#sign-in-form button").click()


def _gateway(make_gateway: Callable[..., GatewayProcess], sensors: list[str]) -> GatewayProcess:
    gateway = make_gateway(
        sensors={f"{asset}/temp": {"asset": asset, "limits": {"max": 90.0}} for asset in sensors},
        assets={asset: {"criticality": "high"} for asset in sensors},
        http={"port": free_port(), "token": TEST_TOKEN, "operator_token": OPERATOR_TOKEN,
              "read_token": READ_TOKEN})
    gateway.start()
    return gateway


def test_sign_in_names_the_tokens_role_and_refuses_the_ingest_token(
    broker: Broker, make_gateway: Callable[..., GatewayProcess], browser: WebDriver,
) -> None:
    gateway = _gateway(make_gateway, ["pump-1"])
    publish_all(broker.port, [("factory/s1/pump-1/temp", json.dumps(
        {"ts": time.time() - 10 + k, "value": 50.0 if k < 5 else 97.0}).encode()) for k in range(8)])
    wait = _waiting(browser)
    browser.get(gateway.http_url + "/")
    _sign_in(browser, "Sensor Sam", TEST_TOKEN)  # the ingest token: refused, and said why
    wait.until(visible.text_to_be_present_in_element((By.ID, "sign-in-error"), "ingest token"))
    assert browser.find_element(By.ID, "board").get_attribute("hidden") is not None
    assert "operator token" in browser.find_element(By.ID, "sign-in-error").text
    _sign_in(browser, "Dashboard Dee", READ_TOKEN)  # read-only: sees, cannot decide
    wait.until(visible.text_to_be_present_in_element((By.ID, "who"), "read-only token"))
    assert wait.until(lambda b: b.find_element(
        By.CSS_SELECTOR, "article.alert button[data-action=acknowledge]").get_attribute(
        "disabled")) is not None
    assert browser.find_element(By.ID, "read-only").is_displayed()
    browser.find_element(By.ID, "sign-out").click()
    _sign_in(browser, "Jane", OPERATOR_TOKEN)
    wait.until(visible.text_to_be_present_in_element((By.ID, "who"), "signed in as Jane · operator token"))
    assert gateway.terminate() == 0


def test_on_a_tablet_the_page_fits_pages_its_lists_and_the_complete_dialog_sends_the_work(
    broker: Broker, make_gateway: Callable[..., GatewayProcess], browser: WebDriver,
) -> None:
    gateway = _gateway(make_gateway, ["pump-1", "fan-2"])
    now = time.time()
    publish_all(broker.port, [(f"factory/s1/{asset}/temp", json.dumps(
        {"ts": now - 20 + k, "value": 50.0 if k < 5 else 97.0}).encode())
        for asset in ("pump-1", "fan-2") for k in range(8)])
    # A quarantined message with long unbroken text (topic, detail) must not widen the page.
    publish_all(broker.port, [("factory/s1/pump-1/" + "vibration_rms_x" * 8,
                               b"{not json:" + b"0123456789" * 30)])
    browser.set_window_size(800, 1200)  # a tablet, portrait
    wait = _waiting(browser)
    browser.get(gateway.http_url + "/?page_size=1")  # one item a page: "Show more" is needed
    _sign_in(browser, "Jane", OPERATOR_TOKEN)
    wait.until(visible.presence_of_element_located((By.CSS_SELECTOR, "article.alert")))
    more_alerts = wait.until(visible.element_to_be_clickable((By.ID, "more-alerts")))
    assert len(browser.find_elements(By.CSS_SELECTOR, "article.alert")) == 1
    more_alerts.click()
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "article.alert")) == 2)
    wait.until(visible.element_to_be_clickable((By.ID, "more-tasks"))).click()
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#tasks tbody tr")) == 2)
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#quarantine tbody tr"))
    for width, height in ((800, 1200), (1180, 820)):  # portrait, landscape
        browser.set_window_size(width, height)
        time.sleep(0.3)
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"at {width} px the page is {overflow} px wider than the screen"
    browser.set_window_size(800, 1200)

    task_id = wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "#tasks tbody tr")
                         .get_attribute("data-task-id"))
    _click(wait, f"#tasks tr[data-task-id='{task_id}'] button[data-action=complete]")
    dialog = wait.until(visible.visibility_of_element_located((By.ID, "complete-dialog")))
    dialog.find_element(By.ID, "complete-note").send_keys("bearing replaced")
    dialog.find_element(By.CSS_SELECTOR, "input[name=fault_found][value=yes]").click()
    dialog.find_element(By.ID, "complete-parts").send_keys("6204-2RS,  shaft seal ,")
    dialog.find_element(By.ID, "complete-labour").send_keys("1.5")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "operator-page-tablet-complete.png"))
    dialog.find_element(By.ID, "complete-submit").click()
    wait.until(visible.invisibility_of_element_located((By.ID, "complete-dialog")))
    wait.until(visible.text_to_be_present_in_element(
        (By.CSS_SELECTOR, f"#tasks tr[data-task-id='{task_id}'] .state"), "done (fault_found)"))
    assert "parts: 6204-2RS, shaft seal; 1.5 h" in _text(wait, f"#tasks tr[data-task-id='{task_id}']")
    task = httpx.get(f"{gateway.http_url}/api/v1/tasks/{task_id}", timeout=10,
                     headers={"authorization": f"Bearer {READ_TOKEN}"}).json()["task"]
    assert task["details"]["history"][-1]["work"] == {
        "parts": ["6204-2RS", "shaft seal"], "labour_h": 1.5, "fault_found": True}
    assert task["details"]["history"][-1]["note"] == "bearing replaced"
    browser.save_screenshot(str(ARTIFACTS / "operator-page-tablet.png"))
    assert gateway.terminate() == 0
