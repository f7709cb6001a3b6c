"""The residents' map in a real browser: Debian's chromium, driven by Playwright, against `bosai web` on the
session's broker with the real 2023-09-04 heavy rain written to its topics.

The tests of this module share one web process, in file order: the screenshot first (the map at 13:00 JST),
then what changes the picture. ``BOSAI_WRITE_SCREENSHOT=1`` writes the screenshot to docs/web-map.png
(the README's and docs/map.md's); otherwise it goes to the test's temporary folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from streams.kernel.times import parse_jst
from tests.support.web_data import heavy_rain, internal_alert
from tests.support.web_hub import INTERNAL_STATION, WebHub, internal_reading, tochigi_with_an_internal_gauge

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


def _need_browser() -> None:
    missing = []
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        missing.append("Debian's chromium (apt-get install chromium fonts-noto-cjk)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("playwright (pip install -e '.[test]')")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"missing {', '.join(missing)}: .ci/run installs them")
        pytest.skip(f"missing {', '.join(missing)}")


@pytest.fixture(scope="module")
def hub(kafka_bootstrap, project_root, tmp_path_factory):
    from uuid import uuid4

    pack_dir = tochigi_with_an_internal_gauge(project_root, tmp_path_factory.mktemp("browser") / "tochigi")
    hub = WebHub(kafka_bootstrap, pack_dir, f"browser{uuid4().hex[:8]}", tmp_path_factory.mktemp("logs"))
    records, _enriched, _alerts = heavy_rain(project_root, hub.pack, hub.topics, "2023-09-03T14:00", "2023-09-04T13:01")
    hub.write(records)
    hub.process.start()
    yield hub
    hub.process.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh user-data dir
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            locale="ja-JP",
            timezone_id="Asia/Tokyo",
            viewport={"width": 1280, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()


class Visit:
    """A page of the map with everything it logged and requested."""

    def __init__(self, browser, url: str, viewport: dict | None = None):
        self.page = browser.new_page()
        if viewport:
            self.page.set_viewport_size(viewport)
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url + "?lang=ja")  # the profile remembers the last language chosen: start from Japanese
        self.page.wait_for_selector("body[data-live='true']", timeout=15_000)
        self.page.wait_for_selector("#alert-list li", timeout=15_000)

    def close(self) -> None:
        self.page.close()

    def coloured(self, code: str) -> str:
        return self.page.get_attribute(f"path[data-code='{code}']", "data-tone") or ""


@pytest.fixture()
def visit(hub, browser):
    opened = []

    def open_page(**kwargs) -> Visit:
        opened.append(Visit(browser, hub.url, **kwargs))
        return opened[-1]

    yield open_page
    for page in opened:
        page.close()


def test_a_screenshot_during_the_heavy_rain_shows_coloured_municipalities_gauges_and_the_list(visit, tmp_path):
    view = visit()
    view.page.wait_for_timeout(500)  # tooltips and markers settle
    target = Path("docs/web-map.png") if os.environ.get("BOSAI_WRITE_SCREENSHOT") else tmp_path / "web-map.png"

    view.page.screenshot(path=str(target))

    assert {view.coloured(c) for c in ("09201", "09209", "09386")} == {"severe"}  # 宇都宮市, 真岡市, 高根沢町
    assert view.page.locator(".station-pill").count() == 19
    assert view.page.locator("#alert-list li").count() >= 3
    assert target.stat().st_size > 50_000


def test_the_page_loads_with_no_console_errors_and_no_request_leaving_loopback(visit):
    view = visit()
    view.page.wait_for_timeout(1000)

    assert view.errors == []
    assert view.requests and {urlsplit(u).hostname for u in view.requests} <= LOOPBACK, view.requests
    assert "データ時刻" in view.page.inner_text("#updated")
    assert view.page.inner_text("#live") == "ライブ配信中"


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_axe_reports_no_serious_or_critical_violations(visit, lang):
    view = visit()
    if lang == "en":
        view.page.click("#lang-toggle")
    view.page.evaluate(AXE.read_text(encoding="utf-8"))

    result = view.page.evaluate("axe.run(document, {resultTypes: ['violations']})")

    serious = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []
    assert view.page.get_attribute("html", "lang") == lang


def test_on_a_phone_nothing_scrolls_sideways(visit):
    view = visit(viewport={"width": 375, "height": 667})

    widths = view.page.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]")

    assert max(widths[:2]) <= widths[2], widths


def test_the_keyboard_reaches_the_language_the_map_and_a_gauge(visit):
    view = visit()
    page = view.page

    def tab_to(selector: str, limit: int = 40) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(f"document.activeElement.matches({selector!r})"):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("#lang-toggle")
    page.keyboard.press("Enter")
    english = page.inner_text("#alerts-heading")
    tab_to("#map")
    before = page.evaluate("getComputedStyle(document.querySelector('.leaflet-map-pane')).transform")
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(400)
    after = page.evaluate("getComputedStyle(document.querySelector('.leaflet-map-pane')).transform")
    tab_to("[data-station]")
    page.keyboard.press("Enter")

    assert english.startswith("Current alerts") and page.get_attribute("html", "lang") == "en"
    assert before != after  # the arrow key moved the map
    page.wait_for_selector(".leaflet-popup-content", timeout=2000)
    assert "mm" in page.inner_text(".leaflet-popup-content")


def test_a_replayed_alert_colours_its_municipality_and_is_listed_within_two_seconds_and_a_cancel_clears_it(
    visit, hub, project_root
):
    _records, _enriched, alerts = heavy_rain(project_root, hub.pack, hub.topics, "2023-09-05T12:00", "2023-09-06T06:00")
    kuzuu = [
        a for a in alerts if a["station_id"] == "41311" and a["rule"] == "rain_1h"
    ]  # 葛生, 佐野市: 61.0 mm at 21:00
    raised, cancel = kuzuu[0], next(a for a in kuzuu if a["msg_type"] == "CANCEL")
    view = visit()
    assert view.coloured("09204") == ""

    hub.write(hub.alert_records(raised))
    on_kafka = time.monotonic()
    view.page.wait_for_selector(f"#alert-list li[data-alert-id='{raised['alert_id']}']", timeout=2000)
    view.page.wait_for_function("document.querySelector(\"path[data-code='09204']\").dataset.tone !== ''", timeout=2000)
    shown_after = time.monotonic() - on_kafka
    listed = view.page.inner_text(f"#alert-list li[data-alert-id='{raised['alert_id']}']")
    hub.write(hub.alert_records(cancel))
    view.page.wait_for_selector(f"#alert-list li[data-alert-id='{raised['alert_id']}']", state="detached", timeout=2000)

    assert shown_after < 2.0
    assert (
        "佐野市" in listed
        and "非常に激しい雨" in listed
        and "観測値に基づく情報（気象庁の警報ではありません）" in listed
    )
    assert view.coloured("09204") == ""


def test_an_internal_alert_or_gauge_never_appears(visit, hub):
    view = visit()
    internal = internal_alert(alert_id="tochigi-river_rise-41247-20230905T2200JST", municipality_codes=["09215"])
    later = parse_jst("2023-09-05T22:00", option="t")

    hub.write(hub.alert_records(internal, topics=[hub.topics.alerts, hub.topics.public]))
    hub.write([hub.enriched_record(internal_reading(later, 150.0))])
    view.page.wait_for_timeout(3000)  # more than a heartbeat: a change would have arrived

    text = view.page.inner_text("body")
    assert "急激な水位上昇" not in text and "市独自雨量計" not in text
    assert view.page.locator(f"[data-station='{INTERNAL_STATION}']").count() == 0
    assert view.page.locator(f"#alert-list li[data-alert-id='{internal['alert_id']}']").count() == 0
    assert view.errors == []
