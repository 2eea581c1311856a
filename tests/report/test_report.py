"""`reproduce report`: the static results page lists every claim of every paper from the committed records (paper
vs ours, verdict, plots, config and record links, BibTeX), and renders in headless Chromium with every plot loaded.
The browser test keeps a full-page screenshot as an artifact (results/report/screenshot.png, gitignored). Without
Chromium, chromedriver or selenium it FAILS, saying how to install them: a silent skip would hide a broken page."""

from __future__ import annotations

import html
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from common.results.record import find_records, load_record
from reproduce.cli import main
from reproduce.registry import all_papers, repo_root

REFERENCE = repo_root() / "results" / "reference"
INSTALL = ("install them: apt-get install -y chromium chromium-driver (./bootstrap does this) and "
           "pip install selenium (the dev extra)")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a["src"])
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if "id" in a:
            self.ids.add(a["id"])


# Both tests read one rendered page: under pytest-xdist (--dist loadgroup) they run on one worker, which renders it
# once.
pytestmark = pytest.mark.xdist_group("report-page")


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    assert main(["report", "--out", str(out)]) == 0
    return out / "index.html"


def test_every_claim_of_every_paper_is_on_the_page(page):
    text = page.read_text()
    parsed = _Links()
    parsed.feed(text)
    plots = 0
    for paper in all_papers():
        assert paper.id in parsed.ids and paper.bibtex.strip().splitlines()[0] in text
        for path in find_records(REFERENCE / paper.id):
            rec = load_record(path)
            assert f"{paper.id}-{rec['claim']}" in parsed.ids
            claim = paper.claim(rec["claim"])
            assert html.escape(claim.headline(rec["summary"]))[:40] in text
            plots += len(rec.get("plots", {}))
    assert len(parsed.imgs) == plots > 0
    local = [h for h in parsed.hrefs + parsed.imgs if not re.match(r"^(https?:|#)", h)]
    missing = [h for h in local if not (page.parent / h).resolve().exists()]
    assert not missing, f"broken links: {missing}"


def _driver():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail(f"selenium is not installed; {INSTALL}")
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver_path = shutil.which("chromedriver") or (
        "/usr/lib/chromium/chromedriver" if Path("/usr/lib/chromium/chromedriver").exists() else None)
    if binary is None or driver_path is None:
        pytest.fail(f"headless Chromium is needed for the report test (chromium: {binary}, chromedriver: "
                    f"{driver_path}); {INSTALL}")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--allow-file-access-from-files", "--window-size=1280,1000"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=opts)


def test_the_page_renders_in_headless_chromium_with_every_plot_loaded(page, tmp_path):
    driver = _driver()
    try:
        driver.set_page_load_timeout(60)
        driver.get(page.as_uri())
        driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        state = driver.execute_script(
            "return [document.readyState, Array.from(document.images).map(i => [i.getAttribute('src'), "
            "i.complete, i.naturalWidth])]")
        assert state[0] == "complete"
        images = state[1]
        assert images, "no plots on the page"
        broken = [src for src, done, width in images if not done or width <= 0]
        assert not broken, f"plots that did not load: {broken}"
        assert driver.title == "optrepro: results"
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1280, min(int(height) + 100, 16000))
        shot = tmp_path / "screenshot.png"
        assert driver.save_screenshot(str(shot))
        artifact = repo_root() / "results" / "report"
        artifact.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, artifact / "screenshot.png")
        assert shot.stat().st_size > 10_000
    finally:
        driver.quit()
