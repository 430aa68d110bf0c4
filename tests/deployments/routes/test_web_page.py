"""The web page in a real browser (headless Chromium) against the real gateway, deployed under a route prefix.

The chain is built so that one generation shows every outcome on its timeline: a backend left out (skipped), one
whose queue is full (busy), one too slow for its timeout, one that fails, one that declines, then one that steps
like a diffusion model (posting its steps to the progress board) and serves.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ray import serve

from cascade.config import CircuitArgs, JobArgs, Route
from deployments.pillow import PillowArgs, PillowBackend
from deployments.progress import ProgressBoard
from tests.fakes.backends import Fake, Stepper, run_gateway
from tests.services.browser import Browser

APP = "webpage"
STEPS, STEP_S = 8, 0.3
CHAIN = [  # (backend, outcome) of a generation through the whole chain
    ("gpu", "skipped"),
    ("busy", "busy"),
    ("slow", "timeout"),
    ("broken", "error"),
    ("declines", "declined"),
    ("stepper", "ok"),
]


@pytest.fixture(scope="module")
def app(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("webpage")
    journal = tmp / "calls.log"
    journal.touch()
    jobs = JobArgs(events_heartbeat_s=1.0)
    board = ProgressBoard.options(name="progress").bind(jobs)
    backends = {
        "busy": Fake.options(name="busy").bind("busy", str(journal)),
        "slow": Fake.options(name="slow").bind("hang", str(journal)),
        "broken": Fake.options(name="broken").bind("raise", str(journal)),
        "declines": Fake.options(name="declines").bind("decline", str(journal)),
        "stepper": Stepper.options(name="stepper").bind(board, STEPS, STEP_S),
        "hanger": Fake.options(name="hanger").bind("hang", str(journal)),
        # The real CPU generator, reached by name (the stepper serves the whole chain first).
        "pillow": PillowBackend.options(name="pillow", num_replicas=1, ray_actor_options={"num_cpus": 0.5}).bind(
            PillowArgs()
        ),
    }
    routes = {
        "gpu": Route(10),
        "busy": Route(10),
        "slow": Route(0.6),
        "broken": Route(10),
        "declines": Route(10),
        "stepper": Route(30),
        "hanger": Route(300, remote=True),  # only reached when asked for by name; `local` rules it out
        "pillow": Route(10),
    }
    run_gateway(
        APP,
        routes,
        backends,
        tmp / "images",
        left_out={"gpu": "needs 1 GPU, the cluster has 0"},
        board=board,
        jobs=jobs,
        # Every generation here fails on purpose four times: the breakers must not start skipping those backends.
        circuit=CircuitArgs(failure_threshold=10_000),
    )
    yield f"{serve_url}/{APP}", journal
    serve.delete(APP)


@pytest.fixture
def page(browser: Browser, app: tuple[str, Path]) -> Iterator[Browser]:
    browser.viewport(1280, 900, mobile=False)
    browser.open(f"{app[0]}/")
    browser.until("return document.getElementById('backend').options.length > 1", 30, "the backends, from /healthz")
    browser.errors()  # start each test with an empty console
    yield browser
    assert browser.violations() == []


def _fill(page: Browser, prompt: str, size: str = "256x256", seed: int | None = None, backend: str = "") -> None:
    page.js(
        """const [prompt, size, seed, backend] = arguments;
        document.getElementById('prompt').value = prompt;
        document.getElementById('size').value = size;
        document.getElementById('size').dispatchEvent(new Event('change'));
        document.getElementById('seed').value = seed === null ? '' : String(seed);
        document.getElementById('backend').value = backend;""",
        prompt,
        size,
        seed,
        backend,
    )


def _click(page: Browser, selector: str) -> None:
    from selenium.webdriver.common.by import By

    page.driver.find_element(By.CSS_SELECTOR, selector).click()


def _rows(page: Browser, container: str) -> list[dict[str, Any]]:
    return list(
        page.js(
            """return [...document.querySelectorAll(arguments[0] + ' .tl-row')].map((row) => {
                const bar = row.querySelector('.tl-bar');
                return {backend: row.dataset.backend, outcome: row.dataset.outcome, title: bar.title,
                        left: parseFloat(bar.style.left), width: parseFloat(bar.style.width),
                        label: bar.getAttribute('aria-label'), colour: getComputedStyle(bar).backgroundColor};
            });""",
            container,
        )
    )


def _ended(page: Browser, timeout_s: float = 60) -> str:
    """How the job the page runs ended: its status, and the error the page shows if any."""
    return str(
        page.until(
            """const s = document.getElementById('result').dataset.status;
            const error = document.getElementById('error');
            return ['done', 'failed', 'cancelled', 'lost', 'error'].includes(s)
                && (error.hidden ? s : `${s}: ${error.textContent}`);""",
            timeout_s,
            "the job's end",
        )
    )


def _job(url: str, page: Browser) -> dict[str, Any]:
    job_id = page.js("return document.getElementById('result').dataset.jobId")
    r = httpx.get(f"{url}/api/jobs/{job_id}", timeout=10)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_generate_shows_live_steps_then_the_image_and_every_attempt_on_a_timeline(page: Browser, app) -> None:
    url, _ = app
    _fill(page, "a lighthouse at dusk", size="256x256", seed=7)
    _click(page, "#generate")
    # Steps arrive while the job runs, not all at once at the end.
    seen = page.until(
        """const box = document.getElementById('progress-box');
        const running = document.getElementById('result').dataset.status === 'running';
        return running && !box.hidden && document.getElementById('progress').value >= 2
            && document.getElementById('progress-text').textContent;""",
        60,
        "a step shown while the job runs",
    )
    assert seen.startswith("stepper: step ") and seen.endswith(f" of {STEPS}")
    assert _ended(page) == "done"

    job = _job(url, page)
    assert [(a["backend"], a["outcome"]) for a in job["attempts"]] == CHAIN
    rows = _rows(page, "#timeline")
    assert [(r["backend"], r["outcome"]) for r in rows] == CHAIN
    # On one time axis (from the job's start), in the order they ran; the slow one took its 0.6 s timeout, the
    # stepper its steps, the failing one a moment.
    lefts = [r["left"] for r in rows]
    assert lefts == sorted(lefts) and 0 <= lefts[0] < lefts[-1]
    slow, stepper = rows[2], rows[5]
    assert stepper["width"] > slow["width"] > rows[3]["width"]
    assert len({r["colour"] for r in rows}) == len(CHAIN)  # each outcome its own colour
    # Each bar's error is there on hover (title), for screen readers (its name), and on a tap.
    assert "weights exploded" in rows[3]["title"] and "weights exploded" in rows[3]["label"]
    assert "needs 1 GPU" in rows[0]["title"]
    _click(page, "#timeline .tl-row:nth-child(5) .tl-bar")
    assert "measured speed" in page.js("return document.querySelector('#timeline .tl-detail').textContent")

    image = page.until(
        "const i = document.getElementById('image'); return i.complete && i.naturalWidth && [i.src, i.naturalWidth]"
    )
    assert image[0] == f"{url}{job['result']['saved']}" and image[1] == 256
    caption = page.js("return document.getElementById('caption').textContent")
    assert "stepper" in caption and "seed 7" in caption and "256×256" in caption
    steps = page.js(
        """return [...document.querySelectorAll('#events li[data-event="progress"]')]
            .map((li) => li.textContent)"""
    )
    assert len(steps) >= 2 and all(f"of {STEPS}" in s for s in steps)
    kinds = page.js("return [...document.querySelectorAll('#events li')].map((li) => li.dataset.event)")
    assert kinds[0] == "queued" and kinds[-1] == "done" and kinds.count("attempt_ended") == len(CHAIN)
    assert page.errors() == []


def test_the_pillow_backend_through_the_page_then_the_gallery_gives_its_settings_back(page: Browser, app) -> None:
    url, _ = app
    _fill(page, "a harbour in fog, pillow", size="512x768", seed=99, backend="pillow")
    _click(page, "#generate")
    assert _ended(page) == "done"
    job = _job(url, page)
    assert job["result"]["backend"] == "pillow"
    image = page.until(
        """const i = document.getElementById('image');
        return i.complete && i.naturalWidth && [i.src, i.naturalWidth, i.naturalHeight];"""
    )
    assert image == [f"{url}{job['result']['saved']}", 512, 768]
    assert [(r["backend"], r["outcome"]) for r in _rows(page, "#timeline")] == [("pillow", "ok")]

    # A finished job refreshes the history: it is the newest tile; its detail has what made it.
    tile = page.until(
        """const t = document.querySelector('#gallery .tile');
        return t && t.querySelector('.tile-prompt').textContent === arguments[0] && t.dataset.id;""",
        30,
        "the new image first in the gallery",
        "a harbour in fog, pillow",
    )
    assert tile == job["result"]["image_id"]
    _click(page, "#gallery .tile:first-child .tile-open")
    page.until("return document.getElementById('detail').open")
    facts = page.js(
        """return Object.fromEntries([...document.querySelectorAll('#detail-facts dd')]
            .map((d) => [d.dataset.fact, d.textContent]))"""
    )
    assert (facts["prompt"], facts["seed"], facts["size"], facts["backend"]) == (
        "a harbour in fog, pillow",
        "99",
        "512x768",
        "pillow",
    )
    assert [(r["backend"], r["outcome"]) for r in _rows(page, "#detail-timeline")] == [("pillow", "ok")]
    assert page.until("const i = document.getElementById('detail-image'); return i.complete && i.naturalHeight") == 768

    _fill(page, "something else", size="256x256", seed=1, backend="")
    _click(page, "#detail-use")
    form = page.js(
        """const v = (id) => document.getElementById(id).value;
        return [v('prompt'), v('size'), v('seed'), v('backend'), document.getElementById('detail').open];"""
    )
    assert form == ["a harbour in fog, pillow", "512x768", "99", "pillow", False]
    assert page.errors() == []


def test_cancel_stops_a_running_job_and_the_timeline_shows_it_stopped(page: Browser, app) -> None:
    url, journal = app
    _fill(page, "a job that never ends", backend="hanger")
    _click(page, "#generate")
    page.until("return document.getElementById('status').textContent.includes('Trying hanger')", 30)
    page.until("return document.querySelector('#timeline .tl-row[data-outcome=\"running\"]')", 10, "a running bar")
    _click(page, "#cancel")
    assert _ended(page) == "cancelled"
    job = _job(url, page)
    assert job["status"] == "cancelled"
    rows = _rows(page, "#timeline")
    assert [(r["backend"], r["outcome"]) for r in rows] == [("hanger", "cancelled")]
    assert "cancelled" in journal.read_text().splitlines()  # the backend call itself was stopped
    assert page.js("return document.getElementById('cancel').disabled") is True


def test_local_rules_out_remote_backends_and_a_refused_field_is_marked(page: Browser) -> None:
    options = page.until(
        """const o = [...document.getElementById('backend').options];
        return o.length > 1 && o.map((x) => [x.value, x.disabled, x.title]);"""
    )
    assert [o[0] for o in options] == [
        "",
        "gpu",
        "busy",
        "slow",
        "broken",
        "declines",
        "stepper",
        "hanger",
        "pillow",
        "svg",
    ]
    assert options[1][1] is True and "needs 1 GPU" in options[1][2]  # not deployed: offered, not choosable
    assert options[7][1] is False
    _click(page, "#local")
    assert page.js("return document.querySelector('#backend option[value=hanger]').disabled") is True
    _fill(page, "too big", size="custom")
    page.js("document.getElementById('width').value = '5000'; document.getElementById('height').value = '64';")
    _click(page, "#generate")
    text = page.until("const e = document.getElementById('error'); return !e.hidden && e.textContent")
    assert text.startswith("size: ")  # the service's own words
    assert page.js("return document.getElementById('width').getAttribute('aria-invalid')") == "true"


def _generate(url: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{url}/api/generate/image", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_gallery_pages_searches_filters_and_its_detail_fills_the_form(page: Browser, app) -> None:
    url, _ = app
    made = _generate(url, {"prompt": "a violet heron, wide", "size": "1664x928", "seed": 4242, "backend": "svg"})
    for n in range(30):  # more than a page (24)
        _generate(url, {"prompt": f"filler {n}", "size": "64x64", "backend": "svg"})
    page.open(f"{url}/")
    page.until("return document.querySelectorAll('#gallery .tile').length >= 24", 30, "the first page")
    page.js("document.getElementById('gallery-sentinel').scrollIntoView()")
    page.until("return document.querySelectorAll('#gallery .tile').length >= 31", 30, "the next page, on scroll")
    ids = page.js("return [...document.querySelectorAll('#gallery .tile')].map((t) => t.dataset.id)")
    assert len(ids) == len(set(ids))

    page.js(
        "const q = document.getElementById('gallery-q'); q.value = 'violet heron'; q.dispatchEvent(new Event('input'));"
    )
    page.until("return document.querySelectorAll('#gallery .tile').length === 1", 10, "one match")
    assert page.js("return document.querySelector('#gallery .tile').dataset.id") == made["image_id"]
    _click(page, "#gallery .tile-open")
    page.until("return document.getElementById('detail').open")
    facts = page.js(
        """return Object.fromEntries([...document.querySelectorAll('#detail-facts dd')]
            .map((d) => [d.dataset.fact, d.textContent]))"""
    )
    assert facts["prompt"] == "a violet heron, wide" and facts["seed"] == "4242" and facts["size"] == "1664x928"
    assert facts["backend"] == "svg" and facts["provider"] == made["provider"]
    record = httpx.get(f"{url}/api/images/{made['image_id']}", timeout=10).json()
    assert [(r["backend"], r["outcome"]) for r in _rows(page, "#detail-timeline")] == [
        (a["backend"], a["outcome"]) for a in record["attempts"]
    ]
    _click(page, "#detail-use")
    form = page.js(
        """const v = (id) => document.getElementById(id).value;
        return {prompt: v('prompt'), size: v('size'), seed: v('seed'), backend: v('backend'),
                open: document.getElementById('detail').open};"""
    )
    assert form == {
        "prompt": "a violet heron, wide",
        "size": "1664x928",
        "seed": "4242",
        "backend": "svg",
        "open": False,
    }

    page.js("const q = document.getElementById('gallery-q'); q.value = ''; q.dispatchEvent(new Event('input'));")
    page.js(
        """const b = document.getElementById('gallery-backend');
        b.value = 'stepper'; b.dispatchEvent(new Event('change'));"""
    )
    page.until(
        """const t = [...document.querySelectorAll('#gallery .tile-meta')];
        return t.length > 0 && t.every((m) => m.textContent.startsWith('stepper'));""",
        10,
        "only stepper's images",
    )


def test_a_prompt_with_html_in_it_shows_as_text(page: Browser, app) -> None:
    hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b> & "quotes"'
    _fill(page, hostile, size="256x256", backend="svg")
    _click(page, "#generate")
    assert _ended(page) == "done"
    page.until("return document.querySelector('#gallery .tile-prompt')?.textContent === arguments[0]", 30, "", hostile)
    _click(page, "#gallery .tile-open")
    page.until("return document.getElementById('detail').open")
    shown = page.js("return document.querySelector('#detail-facts dd[data-fact=prompt]').textContent")
    assert shown == hostile
    injected = page.js(
        """return [...document.querySelectorAll('b')].filter((b) => b.textContent === 'bold').length
            + document.querySelectorAll('body script, img[src="x"]').length;"""
    )
    assert injected == 0
    assert page.js("return window.__pwned") is None
    assert page.js("return document.getElementById('image').alt") == hostile


def test_at_phone_width_the_form_and_gallery_fit_without_sideways_scrolling(browser: Browser, app) -> None:
    url, _ = app
    _generate(
        url, {"prompt": "a very long prompt " + "without-any-breaks-" * 12, "size": "1584x1056", "backend": "svg"}
    )
    browser.viewport(390, 844, mobile=True)
    try:
        browser.open(f"{url}/")
        browser.until("return document.querySelectorAll('#gallery .tile').length > 0", 30, "the gallery")
        fits = "return document.documentElement.scrollWidth <= window.innerWidth && window.innerWidth"
        assert browser.js(fits) == 390
        widest = browser.js(
            """return Math.max(...[...document.querySelectorAll('#generate-form *, #gallery .tile')]
                .map((e) => e.getBoundingClientRect().right));"""
        )
        assert widest <= 390
        _click(browser, "#gallery .tile-open")
        browser.until("return document.getElementById('detail').open")
        box = browser.js(
            "const r = document.getElementById('detail').getBoundingClientRect(); return [r.left, r.right];"
        )
        assert box[0] >= 0 and box[1] <= 390
        assert browser.js(fits) == 390
        _click(browser, "#detail-close")

        # A generation through the whole chain: the image, its caption and six timeline rows fit too.
        _fill(browser, "a lighthouse on a phone", size="1664x928", seed=3)
        browser.js("window.scrollTo(0, 0)")
        assert browser.js("return document.getElementById('result').getBoundingClientRect().top") > 844 / 2
        _click(browser, "#generate")
        # The result, below the form on a phone, is brought into view so its progress is seen.
        top = browser.js("return document.getElementById('result').getBoundingClientRect().top")
        assert 0 <= top < 844 / 2
        assert _ended(browser) == "done"
        browser.until("const i = document.getElementById('image'); return i.complete && i.naturalWidth > 0")
        assert len(_rows(browser, "#timeline")) == len(CHAIN)
        assert browser.js(fits) == 390
        widest = browser.js(
            """return Math.max(...[...document.querySelectorAll('#result *')]
                .map((e) => e.getBoundingClientRect().right));"""
        )
        assert widest <= 390
        assert browser.violations() == []
    finally:
        browser.viewport(1280, 900, mobile=False)


def test_delete_in_the_detail_view_removes_the_image_and_its_tile(page: Browser, app) -> None:
    url, _ = app
    made = _generate(url, {"prompt": "a short-lived sketch", "size": "64x64", "backend": "svg"})
    page.open(f"{url}/")
    selector = f'#gallery .tile[data-id="{made["image_id"]}"] .tile-open'
    page.until("return document.querySelector(arguments[0])", 30, "its tile", selector)
    _click(page, selector)
    page.until("return document.getElementById('detail').open")
    _click(page, "#detail-delete")
    page.driver.switch_to.alert.accept()  # "Delete this image and its record?"
    page.until(
        "return !document.querySelector(arguments[0]) && !document.getElementById('detail').open", 10, "", selector
    )
    assert httpx.get(f"{url}/api/images/{made['image_id']}", timeout=10).status_code == 404


def test_the_page_and_its_files_over_http_under_the_route_prefix(app) -> None:
    url, _ = app
    page = httpx.get(f"{url}/", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'src="web/app.js"' in page.text
    # Without its trailing slash, the prefix is sent to the page's own address, where relative URLs resolve.
    bare = httpx.get(url, timeout=10)
    assert bare.status_code in (307, 308) and httpx.URL(url).join(bare.headers["location"]) == httpx.URL(f"{url}/")
    js = httpx.get(f"{url}/web/app.js", timeout=10)
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    again = httpx.get(f"{url}/web/app.js", headers={"if-none-match": js.headers["etag"]}, timeout=10)
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == js.headers["etag"]
    head = httpx.head(f"{url}/web/app.css", timeout=10)
    assert head.status_code == 200 and int(head.headers["content-length"]) > 100 and head.content == b""
    for missing in ("web/index.html", "web/nope.js", "web/..%2F__init__.py", "web/__init__.py"):
        r = httpx.get(f"{url}/{missing}", timeout=10)
        assert r.status_code == 404, missing
    # The page is not part of the API, so not in its schema.
    assert not any(p in ("/", "/web/{name}") for p in httpx.get(f"{url}/openapi.json", timeout=10).json()["paths"])
