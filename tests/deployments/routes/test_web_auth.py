"""The web page where the service asks for an API key (the gateway's own keys, `auth: required`): the 401 asks
the user, the key then goes with every call (the event stream and images included), kept for the tab or on the
device as the user chose. Through a recording proxy in front of the gateway, a dropped event stream resumes with
Last-Event-ID and the page misses and repeats nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ray import serve

from cascade.access_config import AccessConfig
from cascade.config import JobArgs, Route, StorageArgs
from cascade.index import Index
from deployments.progress import ProgressBoard
from tests.fakes.backends import Stepper, run_gateway
from tests.fakes.recording_proxy import RecordingProxy
from tests.services.browser import Browser
from tests.services.keys import make_key

APP = "webauth"
CUT_AFTER = 3  # events of a job's first stream before the proxy drops it


@pytest.fixture(scope="module")
def proxied(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RecordingProxy, str]]:
    tmp: Path = tmp_path_factory.mktemp("webauth")
    database = f"sqlite:///{tmp / 'index.sqlite3'}"
    Index(database).migrate()  # so that the key can be made before the gateway starts
    jobs = JobArgs(events_heartbeat_s=1.0)
    board = ProgressBoard.options(name="progress").bind(jobs)
    stepper = Stepper.options(name="stepper").bind(board, 6, 0.3)
    run_gateway(
        APP,
        {"stepper": Route(30)},
        {"stepper": stepper},
        tmp / "images",
        board=board,
        jobs=jobs,
        storage=StorageArgs(database_url=database),
        access=AccessConfig.model_validate({"auth": "required"}),
    )
    key = make_key(database, "web page test")
    proxy = RecordingProxy(serve_url, cut_streams_after=CUT_AFTER)
    url = proxy.start()
    try:
        yield f"{url}/{APP}", proxy, key
    finally:
        proxy.stop()
        serve.delete(APP)


def _wait_for_dialog(page: Browser, contains: str) -> str:
    return str(
        page.until(
            """const d = document.getElementById('key-dialog');
            const text = document.getElementById('key-message').textContent;
            return d.open && text.includes(arguments[0]) && text;""",
            30,
            f"the key dialog saying {contains!r}",
            contains,
        )
    )


def _enter_key(page: Browser, key: str, remember: bool) -> None:
    from selenium.webdriver.common.by import By

    field = page.driver.find_element(By.ID, "key-input")
    field.clear()
    field.send_keys(key)
    box = page.driver.find_element(By.ID, "key-remember")
    if box.is_selected() != remember:
        box.click()
    page.driver.find_element(By.ID, "key-save").click()


def test_a_401_asks_for_a_key_that_then_goes_with_every_call(browser: Browser, proxied) -> None:
    url, proxy, key = proxied
    browser.open(f"{url}/")
    assert "an API key is required" in _wait_for_dialog(browser, "needs an API key")
    _enter_key(browser, "csk_0123456789ab_" + "x" * 43, remember=False)
    assert "invalid API key" in _wait_for_dialog(browser, "The key was refused")
    _enter_key(browser, key, remember=False)
    browser.until("return !document.getElementById('key-dialog').open", 10, "the dialog closed")
    browser.until("return document.getElementById('gallery-status').textContent.includes('No saved images')", 30)
    stored = browser.js("return [sessionStorage.getItem('cascade.apiKey'), localStorage.getItem('cascade.apiKey')]")
    assert stored == [key, None]  # this tab only, as chosen
    assert browser.js("return document.getElementById('key-button').textContent") == "API key: set"

    seen_from = len(proxy.seen)
    browser.js(
        """document.getElementById('prompt').value = 'a keyed lighthouse';
        document.getElementById('size').value = '256x256';
        document.getElementById('generate').click();"""
    )
    status = browser.until(
        """const s = document.getElementById('result').dataset.status;
        return ['done', 'failed', 'cancelled', 'lost', 'error'].includes(s) && s;""",
        60,
    )
    assert status == "done", browser.js("return document.getElementById('error').textContent")
    # The image is served by its unguessable name without a key (README: what stays open), straight into <img>.
    image = browser.until(
        "const i = document.getElementById('image'); return i.complete && i.naturalWidth && [i.src, i.naturalWidth]"
    )
    assert f"/{APP}/generated/" in image[0] and image[1] == 256
    calls = [s for s in proxy.seen[seen_from:] if not s.path.startswith(f"/{APP}/web/")]
    assert {s.path.split("/")[2] for s in calls} >= {"api", "generated"}
    api = [s for s in calls if s.path.startswith(f"/{APP}/api/")]
    assert api and all(s.authorization == f"Bearer {key}" for s in api)
    assert browser.violations() == []


def test_a_dropped_event_stream_resumes_from_the_last_event(browser: Browser, proxied) -> None:
    url, proxy, key = proxied
    job_id = browser.js("return document.getElementById('result').dataset.jobId")
    streams = [s for s in proxy.seen if s.path == f"/{APP}/api/jobs/{job_id}/events"]
    # The proxy dropped the first stream after its third event; the page came back for the rest, with the key.
    assert [s.last_event_id for s in streams] == [None, str(CUT_AFTER)]
    assert {s.authorization for s in streams} == {f"Bearer {key}"}
    ids = browser.js(
        "return [...document.querySelectorAll('#events li[data-id]')].map((li) => li.dataset.id).filter(Boolean)"
    )
    assert [int(i) for i in ids] == list(range(1, len(ids) + 1))  # every event once, in order
    assert browser.js("return document.querySelectorAll('#events li[data-event=reconnecting]').length") == 1
    job = httpx.get(f"{url}/api/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"}, timeout=10).json()
    rows = browser.js(
        "return [...document.querySelectorAll('#timeline .tl-row')].map((r) => [r.dataset.backend, r.dataset.outcome])"
    )
    assert rows == [[a["backend"], a["outcome"]] for a in job["attempts"]] == [["stepper", "ok"]]


def test_a_key_kept_on_the_device_survives_a_reload_until_forgotten(browser: Browser, proxied) -> None:
    url, _, key = proxied
    browser.js("document.getElementById('key-button').click()")
    _wait_for_dialog(browser, "Every call")
    _enter_key(browser, key, remember=True)
    browser.until("return !document.getElementById('key-dialog').open")
    assert browser.js("return localStorage.getItem('cascade.apiKey')") == key
    assert browser.js("return sessionStorage.getItem('cascade.apiKey')") is None
    browser.js("sessionStorage.clear()")
    browser.open(f"{url}/")
    browser.until("return document.querySelectorAll('#gallery .tile').length === 1", 30, "the gallery, with the key")
    assert browser.js("return document.getElementById('key-dialog').open") is False
    browser.js("document.getElementById('key-button').click()")
    browser.until("return document.getElementById('key-dialog').open")
    browser.js("document.getElementById('key-forget').click()")
    assert browser.js("return localStorage.getItem('cascade.apiKey')") is None
    browser.js("const q = document.getElementById('gallery-q'); q.value = 'x'; q.dispatchEvent(new Event('input'));")
    _wait_for_dialog(browser, "needs an API key")
