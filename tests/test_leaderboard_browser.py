"""The leaderboard app in a real browser: Debian's chromium, headless, driven by Playwright.

The app runs as the Space runs it (``python leaderboard/app.py``), on 127.0.0.1, with
``MEDSYN_RESULTS_DIR`` pointing at a folder of example results. Every request that is not to
127.0.0.1 is blocked (Gradio pages ask for web fonts). Screenshots go to ``MEDSYN_SCREENSHOTS``
(default ``build/screenshots/``).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support import stop_process

from medsyn.publish import leaderboard as lb

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = Path(__file__).parent / "data" / "results"
CHROMIUM = os.environ.get("MEDSYN_CHROMIUM", "/usr/bin/chromium")  # Debian's; never a downloaded browser
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
XSS = "<script>alert(1)</script>"
BAD_MESSAGE = "results.en.fdx_accuracy: 43.75 is out of range, expected a fraction in [0, 1]"

pytestmark = pytest.mark.slow

FIT_JS = """scope => {
  const root = document.querySelector(scope);
  const heads = [...root.querySelectorAll('thead th')].filter(th => th.offsetParent !== null);
  const overflow = [...root.querySelectorAll('*')].filter(el => el.scrollWidth > el.clientWidth + 1
      && ['auto', 'scroll'].includes(getComputedStyle(el).overflowX)).map(el => `${el.className} ${el.scrollWidth}>${el.clientWidth}`);
  const outside = heads.filter(th => th.getBoundingClientRect().right > window.innerWidth).map(th => th.innerText);
  const broken = [];
  for (const th of heads) {
    const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of node.textContent.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (tops.size > 1) broken.push(match[0]);
      }
    }
  }
  const headers = heads.map(th => th.innerText.replace(/\\s+/g, ' ').trim()).filter(t => t);
  return {headers, overflow, outside, broken};
}"""
"""The English table's visible headers; its elements that scroll sideways (the table's viewport when it is
too wide); headers past the window's right edge; words of a header drawn on two lines."""


def _require_browser():
    """Playwright's sync API; a missing browser or package fails under CI=true and skips elsewhere."""
    missing = None if Path(CHROMIUM).exists() else f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver"
    try:
        from playwright import sync_api
    except ImportError:
        sync_api, missing = None, missing or "the playwright package is missing: pip install playwright (never 'playwright install')"
    if missing:
        pytest.fail(missing) if os.environ.get("CI", "").lower() in ("1", "true") else pytest.skip(missing)
    return sync_api


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, app: subprocess.Popen, log: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if app.poll() is not None:
            pytest.fail(f"the app exited with {app.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the app did not answer 200 at {url} within {seconds} s:\n{log.read_text()}")


@pytest.fixture
def app(tmp_path):
    """Start leaderboard/app.py on a free loopback port (once the browser is known to be there); always stop it."""
    sync_api = _require_browser()
    results, pending = tmp_path / "results", tmp_path / "pending"
    shutil.copytree(EXAMPLES, results)
    example = json.loads((EXAMPLES / "example-open-7b.json").read_text())
    xss = json.loads(json.dumps(example))
    xss["model"]["name"] = XSS
    (results / "xss.json").write_text(json.dumps(xss))
    dataset = example["dataset"]
    datasets_file = tmp_path / "datasets.json"
    datasets_file.write_text(json.dumps({dataset["revision"]: {"name": dataset["name"], "n_cases": dataset["n_cases"]}}))
    port = _free_port()
    env = {**os.environ, "MEDSYN_RESULTS_DIR": str(results), "MEDSYN_PENDING_DIR": str(pending),
           "MEDSYN_DATASETS": str(datasets_file), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    env.pop("MEDSYN_RESULTS_REPO", None)
    log = tmp_path / "app.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT / "leaderboard", env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_for(url, process, log)
        yield {"url": url, "pending": pending, "example": example, "tmp": tmp_path, "sync_api": sync_api, "env": env}
    finally:
        stop_process(process, timeout=10)


def _loopback_only(route):
    url = route.request.url
    if url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
        route.continue_()
    else:
        route.abort()


def _visible_text(page, scope: str, text: str):
    """A visible element of ``scope`` whose text is exactly ``text`` (Gradio adds hidden measuring cells)."""
    return page.locator(scope).get_by_text(text, exact=True).filter(visible=True).first


def _y(page, text: str) -> float:
    return _visible_text(page, "#table-en", text).bounding_box()["y"]


def _submit(page, file: Path) -> str:
    page.get_by_role("tab", name="Submit").click()
    page.locator("#submission-file input[type=file]").set_input_files(str(file))
    page.get_by_text(file.name).first.wait_for()
    page.get_by_role("button", name="Submit for review").click()
    verdict = page.locator("#verdict textarea")
    page.wait_for_function("el => el.value.length > 0", arg=verdict.element_handle(), timeout=30_000)
    return verdict.input_value()


def test_leaderboard_in_chromium(app):
    sync_api = app["sync_api"]
    shots = Path(os.environ.get("MEDSYN_SCREENSHOTS", ROOT / "build" / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    bad = app["tmp"] / "bad_results.json"
    bad_obj = json.loads(json.dumps(app["example"]))
    bad_obj["results"]["en"]["fdx_accuracy"] = 43.75
    bad.write_text(json.dumps(bad_obj))
    xss_submission = app["tmp"] / "xss_submission.json"
    xss_obj = json.loads(json.dumps(app["example"]))
    xss_obj["model"]["name"] = XSS
    xss_submission.write_text(json.dumps(xss_obj))
    dialogs: list[str] = []

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(30_000)
            page.route("**/*", _loopback_only)
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(app["url"])

            # the English table: a demo result, the reported physicians' row, the <script> name as text
            for text in ("example-proprietary", "Senior physicians (reported)", XSS):
                _visible_text(page, "#table-en", text).wait_for()
            cell = _visible_text(page, "#table-en", XSS)
            assert "&lt;script&gt;" in cell.evaluate("el => el.innerHTML")

            # at 1400 x 900 every default column shows without horizontal scrolling, no header broken mid-word,
            # and the physicians' figures at the precision the paper reports
            page.locator("#table-en").scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "01_table_en_1400x900.png"))
            fit = page.evaluate(FIT_JS, "#table-en")
            assert fit["headers"] == lb.visible_columns(lb.DEFAULT_GROUPS), fit
            assert fit["overflow"] == [] and fit["outside"] == [] and fit["broken"] == [], fit
            for text in ("77.13", "72.11", "5.02"):
                _visible_text(page, "#table-en", text).wait_for()
            page.locator("#columns").get_by_label("Provenance").check()  # a column group shown on demand
            _visible_text(page, "#table-en", "reported in the paper (not reproduced)").wait_for()
            page.locator("#columns").get_by_label("Provenance").uncheck()

            # header menu sorting: FDx accuracy ascending puts the medical model above the proprietary one
            header = page.locator("#table-en th").filter(has_text="FDx accuracy").filter(visible=True).first
            header.hover()
            header.get_by_role("button", name="Open cell menu").click()
            page.get_by_role("menuitem").filter(has_text="Sort ascending").first.click()
            page.wait_for_timeout(300)
            assert _y(page, "example-medical-8b") < _y(page, "example-open-7b") < _y(page, "example-proprietary")

            # search keeps matching rows only
            page.locator("#table-en").get_by_placeholder("Search").fill("proprietary")
            _visible_text(page, "#table-en", "example-open-7b").wait_for(state="detached")
            _visible_text(page, "#table-en", "example-proprietary").wait_for()
            page.locator("#table-en").get_by_placeholder("Search").fill("")
            _visible_text(page, "#table-en", "example-open-7b").wait_for()

            # a type filter removes rows; the reference row stays
            page.get_by_label("medical", exact=True).uncheck()
            _visible_text(page, "#table-en", "example-medical-8b").wait_for(state="detached")
            _visible_text(page, "#table-en", "Senior physicians (reported)").wait_for()

            # plots render as images
            page.get_by_role("tab", name="Plots").click()
            for plot in ("#plot-ddx-fdx", "#plot-es-gap"):
                image = page.locator(f"{plot} img").first
                image.wait_for()
                assert image.evaluate("img => img.complete && img.naturalWidth > 0"), plot
            page.screenshot(path=str(shots / "02_plots.png"), full_page=True)

            # one model in detail: ES per CE type with the interval of the mean, FDx per condition, the run
            page.get_by_role("tab", name="Model detail").click()
            page.locator("#detail-model input").click()
            page.get_by_role("option", name="example-open-7b · MEDSYN-mini").click()
            for scope, text in (("#detail-es", "pathology"), ("#detail-es", "0.000 – 0.067"),
                                ("#detail-conditions", "random_history"), ("#detail-run", "FDx parse failures"),
                                ("#detail-run", "max_pixels 1,003,520")):
                _visible_text(page, scope, text).wait_for()
            page.locator("#plot-es-type img").first.wait_for()
            page.screenshot(path=str(shots / "05_model_detail.png"), full_page=True)

            # a bad submission is refused with its message; nothing goes to pending
            verdict = _submit(page, bad)
            assert verdict.startswith("Refused"), verdict
            assert BAD_MESSAGE in verdict
            assert not app["pending"].exists() or not any(app["pending"].iterdir())
            page.screenshot(path=str(shots / "03_refused.png"), full_page=True)

            # a valid submission named <script>... is accepted for review and shown as text
            page.goto(app["url"])
            verdict = _submit(page, xss_submission)
            assert verdict.startswith(f"Accepted for review: {XSS}"), verdict
            [queued] = app["pending"].glob("*/results.json")
            page.screenshot(path=str(shots / "04_accepted_script_name.png"), full_page=True)

            # a maintainer rejects it with a reason; after Reload the Submissions tab shows both
            sid = queued.parent.name
            rejected = subprocess.run([sys.executable, "-m", "medsyn.cli", "leaderboard", "reject", sid, "--reason",
                                       "the judge is not disclosed", "--requests-dir", str(app["pending"])],
                                      capture_output=True, text=True, env=app["env"], timeout=120)
            assert rejected.returncode == 0, rejected.stderr
            page.get_by_role("button", name="Reload results").click()
            page.get_by_role("tab", name="Submissions").click()
            for text in (sid, "REJECTED", "the judge is not disclosed", XSS):
                _visible_text(page, "#status-table", text).wait_for()
            page.screenshot(path=str(shots / "06_submissions_rejected.png"), full_page=True)

            # no injected <script> element (the page's config embeds the name as JSON data, which is fine)
            scripts = page.evaluate("[...document.querySelectorAll('script')].map(s => s.textContent.trim())")
            assert "alert(1)" not in scripts
        finally:
            browser.close()
    assert dialogs == [], f"a dialog fired: {dialogs}"
