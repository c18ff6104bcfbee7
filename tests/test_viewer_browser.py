"""view.html of a demo run in a real browser: Debian's chromium, headless, opened from disk (file://).

One crafted FDx output is ``<script>alert(1)</script>``: it must show as text and fire no dialog.
Screenshots go to the test's tmp dir (their paths are printed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support import load_module

from medsyn.eval.viewer import write_view

# the browser, its flags and the <script> text the leaderboard test uses
_browser = load_module("leaderboard_browser", Path(__file__).with_name("test_leaderboard_browser.py"))
CHROMIUM, CHROMIUM_ARGS, XSS = _browser.CHROMIUM, _browser.CHROMIUM_ARGS, _browser.XSS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("viewer_demo")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "MEDSYN_CACHE": str(tmp / "cache")}
    proc = subprocess.run([sys.executable, "-m", "medsyn.cli", "demo", "--out", str(tmp / "out")],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1].endswith(str(tmp / "out" / "view.html"))
    return tmp / "out"


def _craft_output(run: Path, text: str) -> str:
    """Replace the first English FDx output of the run's details with ``text``; return its case id."""
    path = run / "lighteval" / "details" / "fdx_en.parquet"
    rows = pq.read_table(path).to_pylist()
    rows[0]["model_response"]["text"] = [text]
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(path)), path)
    return rows[0]["doc"]["specific"]["case_id"]


def test_view_html_in_chromium(demo_run: Path, tmp_path: Path) -> None:
    sync_api = _browser._require_browser()
    case_id = _craft_output(demo_run, XSS)
    page_file = write_view(demo_run)
    assert page_file.stat().st_size < 30e6
    dialogs: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(page_file.as_uri())
            case = page.locator(f"section.case[data-case='{case_id}']")
            images = case.locator(".gallery img")
            assert images.count() > 0
            images.first.scroll_into_view_if_needed()
            page.wait_for_function("[...document.querySelectorAll('.gallery img')].slice(0, 4).every(i => i.complete)")
            assert images.evaluate_all("imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")
            assert "Not a finding" in page.locator(".banner").inner_text()

            # the crafted output is text in a <pre>, not an element; no dialog fired
            output = case.locator("pre.output").filter(has_text=XSS).first
            assert output.inner_text() == XSS
            assert "&lt;script&gt;" in output.evaluate("el => el.innerHTML")
            shot = tmp_path / "view_case.png"
            case.screenshot(path=str(shot))
            print(f"screenshot: {shot}")

            # a filter changes the visible cases
            total = page.locator("section.case").count()
            page.select_option("#filter-language", "zh")
            visible = page.locator("section.case:visible")
            assert 0 < visible.count() < total
            assert all(t.split(" · ")[1] == "zh" for t in page.locator("section.case:visible h2").all_inner_texts())
            assert page.locator("#shown").inner_text() == f"{visible.count()} of {total} cases shown"
            shot = tmp_path / "view_filtered.png"
            page.screenshot(path=str(shot))
            print(f"screenshot: {shot}")
        finally:
            browser.close()
    assert dialogs == []
