"""view.html without a browser: untrusted text is escaped, the data round-trips, a run without details is refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support import load_module

from medsyn.eval.viewer import render_page, write_view

_report_tests = load_module("report_tests", Path(__file__).with_name("test_report.py"))  # its small results dict

XSS = "</script><script>alert(1)</script>"


def _data() -> dict:
    sample = {"task": "fdx", "condition": "full", "prompt": ["Question <b>", {"image": "i0", "ce_type": "ct", "title": XSS}],
              "output": XSS, "recorded": {}, "extracted": None, "outcome": "parse_failure", "reason": "no answer"}  # fmt: skip
    case = {"case_id": "en-0001", "language": "en", "specialty": XSS, "ce_types": ["ct"], "final_diagnosis": "x",
            "options": ["a", "b"], "answer": "A", "samples": [sample], "outcome": "parse_failure", "judge_failure": False}  # fmt: skip
    return {"images": {"i0": "data:image/png;base64,AAAA"}, "cases": [case]}


def test_untrusted_text_is_escaped_and_the_data_round_trips() -> None:
    results = _report_tests._results(XSS, "MEDSYN")
    page = render_page(results, _data())
    assert "<script>alert(1)" not in page and page.count("<script") == 2  # the data block and the page's script
    assert f"<h1>MEDSYN run: {'&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;'}</h1>" in page
    block = re.search(r'<script type="application/json" id="medsyn-data">(.*?)</script>', page, re.S).group(1)
    assert json.loads(block) == _data()
    assert "http://" not in page and "https://" not in page  # nothing to fetch: it opens from disk


def test_a_run_without_details_is_refused(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps(_report_tests._results("m", "MEDSYN")))
    with pytest.raises(FileNotFoundError, match="lighteval/details"):
        write_view(tmp_path)
    with pytest.raises(FileNotFoundError, match="no results.json"):
        write_view(tmp_path / "missing")
