"""The page's files: only its own names are served, each with its type and a CSP that allows no inline code, and
the files themselves keep to what that CSP and a route prefix need (the browser tests see the same in Chromium)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources

import pytest

from cascade.web import CSP, Asset, asset

STATIC = resources.files("cascade.web").joinpath("static")
FILES = sorted(p.name for p in STATIC.iterdir() if p.is_file())


def test_every_file_of_the_page_is_served_with_its_type_and_headers() -> None:
    assert "index.html" in FILES and "app.js" in FILES and "app.css" in FILES
    for name in FILES:
        found = asset(name)
        assert found is not None, name
        assert found.body == STATIC.joinpath(name).read_bytes()
        headers = found.headers()
        assert headers["content-type"].split(";")[0] in {"text/html", "text/javascript", "text/css"}
        assert headers["content-security-policy"] == CSP and headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "name", ["", "../__init__.py", "..%2f__init__.py", "__init__.py", "APP.JS", "app.js.map", "nope.js", ".app.js"]
)
def test_anything_but_the_page_s_own_files_is_not_found(name: str) -> None:
    assert asset(name) is None


def test_the_policy_allows_no_inline_code_and_nothing_from_elsewhere() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe" not in CSP and "*" not in CSP and "http" not in CSP
    assert directives["frame-ancestors"] == "'none'"


def test_an_etag_matches_its_own_file_only() -> None:
    js = asset("app.js")
    assert isinstance(js, Asset)
    assert js.fresh_for(js.etag) and js.fresh_for(f"W/{js.etag}") and js.fresh_for(f'"x", {js.etag}')
    assert js.fresh_for("*")
    assert not js.fresh_for(None) and not js.fresh_for("") and not js.fresh_for('"other"')
    css = asset("app.css")
    assert css is not None and css.etag != js.etag


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for key in ("src", "href"):
            if found.get(key) is not None:
                self.urls.append(str(found[key]))
        if tag == "script" and "src" not in found:
            self.inline.append("<script> without src")
        if tag == "style" or "style" in found:
            self.inline.append(f"style on <{tag}>")
        self.inline.extend(f"{k} on <{tag}>" for k in found if k.startswith("on"))


def test_the_page_has_no_inline_code_and_only_relative_urls() -> None:
    scan = _Scan()
    scan.feed(STATIC.joinpath("index.html").read_text())
    assert scan.inline == []
    assert scan.urls and all(not re.match(r"^(/|[a-z]+:)", url) or url == "data:," for url in scan.urls), scan.urls
    for name in FILES:
        if name.endswith(".js"):
            text = STATIC.joinpath(name).read_text()
            # Imports are relative, and fetches go to relative paths (under the page's address, any route prefix).
            assert all(m.startswith("./") for m in re.findall(r"from '([^']+)'", text)), name
            assert not re.search(r"\b(api|apiFetch)\(\s*['`]/", text), name


def test_no_script_builds_html_from_text() -> None:
    """Text from the server goes into the page as text: no HTML parsing sinks, no eval."""
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(|setHTML")
    for name in FILES:
        if name.endswith(".js"):
            code = "\n".join(
                line for line in STATIC.joinpath(name).read_text().splitlines() if not line.lstrip().startswith("//")
            )
            assert sinks.findall(code) == [], name
