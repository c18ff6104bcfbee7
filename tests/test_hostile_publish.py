"""Hostile input to the publishing side: the evaluate module, the leaderboard and upload.py (issue 17, item 6).

Each test reproduces a defect of the code before the fix: a crash or a silent acceptance that is now a
ValueError / a refusal naming the row, argument or field, and a hang that is now a bounded one-line error.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from support import load_module

from medsyn.metrics.results_schema import MAX_DEPTH, validate_results
from medsyn.publish import leaderboard as lb

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "tests" / "data" / "results"
METRIC = ROOT / "src" / "medsyn" / "metrics" / "medsyn_metric"
DEEP = 10_000


def _load(config: str):
    import evaluate

    return evaluate.load(str(METRIC), config)


def _example() -> dict:
    return json.loads((EXAMPLES / "example-open-7b.json").read_text(encoding="utf-8"))


def _known() -> dict:
    dataset = _example()["dataset"]
    return {dataset["revision"]: {"name": dataset["name"], "n_cases": dataset["n_cases"]}}


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- the evaluate module ------------------------------------------------------------------------


@pytest.mark.parametrize(("config", "references"), [("fdx", ["A"]), ("ddx", ["Gout"]), ("evidence_sensitivity", [0])])
def test_predictions_none_is_a_value_error_naming_the_argument(config, references) -> None:
    # was: TypeError "object of type 'NoneType' has no len()" from inside evaluate
    with pytest.raises(ValueError, match="^predictions is None"):
        _load(config).compute(predictions=None, references=references)
    with pytest.raises(ValueError, match="^references is None"):
        _load(config).compute(predictions=["A"], references=None)


@pytest.mark.parametrize(
    ("config", "kwargs", "message"),
    [
        # was: True cast to option index 1 and to probability 1.0, and scored
        ("evidence_sensitivity", {"predictions": [[1.0, 0.0], [0.5, 0.5]], "references": [0, True]},
         r"^row 1: references: True is not a valid entry"),
        ("evidence_sensitivity", {"predictions": [[1.0, 0.0], [True, False]], "references": [0, 0]},
         r"^row 1: predictions: \[True, False\] is not a valid entry"),
        ("fdx", {"predictions": ["A", True], "references": ["A", "B"]}, r"^row 1: predictions: True"),
        ("fdx", {"predictions": ["A", None], "references": ["A", "B"]}, r"^row 1: predictions: None"),
    ],
)
def test_boolean_or_missing_rows_are_refused_naming_the_row(config, kwargs, message) -> None:
    extra = {"case_ids": ["c", "c"], "conditions": ["full", "absent:ct"]} if config == "evidence_sensitivity" else {}
    with pytest.raises(ValueError, match=message):
        _load(config).compute(**kwargs, **extra)


@pytest.mark.parametrize(
    ("config", "kwargs", "message"),
    [
        ("ddx", {"threshold": True}, "threshold must be an integer 0..5, got True"),  # was: threshold 1
        ("ddx", {"top_k": True}, "top_k must be a positive integer, got True"),  # was: top_k 1
        ("fdx", {"seed": False}, "seed must be an integer >= 0, got False"),
        ("fdx", {"confidence_interval": "no"}, "confidence_interval must be True or False, got 'no'"),  # was: intervals
    ],
)
def test_boolean_and_mistyped_arguments_are_refused_naming_the_argument(config, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        _load(config).compute(predictions=["Gout"] if config == "ddx" else ["A"],
                              references=["Gout"] if config == "ddx" else ["A"], **kwargs)


# --- the leaderboard ----------------------------------------------------------------------------


def test_a_file_nested_10000_deep_is_refused_by_submit(tmp_path) -> None:
    # was: RecursionError out of submit()
    path = tmp_path / "deep.json"
    text = json.dumps(_example())
    path.write_text(text.replace('{"max_pixels"', f'{{"deep": {_nested(DEEP)}, "max_pixels"', 1))
    accepted, message = lb.submit(path, tmp_path / "pending", _known(), max_bytes=10**6)
    assert not accepted and message == "Refused: not readable as JSON: nested too deep to parse."
    assert not (tmp_path / "pending").exists()


def test_nesting_the_parser_takes_is_still_refused_before_any_reader_recurses() -> None:
    obj = _example()
    obj["image_budget"] = json.loads('{"max_pixels": ' + _nested(500) + "}")
    problems = validate_results(obj)
    assert problems == [f"<file>.image_budget.max_pixels{'[0]' * (MAX_DEPTH - 1)}: nested deeper than {MAX_DEPTH} "
                        "levels (a results file needs 5)"]


@pytest.mark.parametrize(
    ("budget", "problem"),
    [
        ('{"max_pixels": NaN}', "image_budget.max_pixels: must be a positive integer or null, got nan"),
        ('{"max_pixels": -5}', "image_budget.max_pixels: must be a positive integer or null, got -5"),
        ('{"max_pixels": [[1]]}', "image_budget.max_pixels: must be a positive integer or null, got [[1]]"),
        ('{"max_pixel": 1003520}', "image_budget.max_pixel: unknown key (expected one of max_pixels)"),
    ],
)
def test_image_budget_is_validated(budget, problem) -> None:
    # was: any object was stored, NaN included
    obj = _example()
    obj["image_budget"] = json.loads(budget)
    assert problem in validate_results(obj)


def test_numbers_too_large_for_a_float_are_problems_not_crashes(tmp_path) -> None:
    obj = _example()
    obj["model"]["params_b"] = 10**400  # was: OverflowError from math.isfinite
    assert validate_results(obj) == [f"model.params_b: must be a positive number (billions of parameters) or null, "
                                      f"got {10**400!r}"]
    path = tmp_path / "digits.json"
    path.write_text(json.dumps(_example()).replace('"params_b": 7.6', '"params_b": ' + "9" * 5000, 1))
    accepted, message = lb.submit(path, tmp_path / "pending", _known(), max_bytes=10**6)
    assert not accepted and message.startswith("Refused: not readable as JSON: Exceeds the limit")  # was: ValueError


def test_one_bad_file_in_the_results_folder_is_listed_and_skipped_and_the_space_starts(tmp_path, monkeypatch) -> None:
    # was: RecursionError from load_folder, so app.py (the Space) did not start
    results = tmp_path / "results"
    results.mkdir()
    (results / "good.json").write_text((EXAMPLES / "example-open-7b.json").read_text(encoding="utf-8"))
    (results / "deep.json").write_text(_nested(DEEP))
    (results / "huge.json").write_text("9" * 5000)
    board = lb.load_folder(results)
    assert [e.source for e in board.entries] == ["good.json"]
    assert board.problems[0] == "deep.json: not readable as JSON: nested too deep to parse"
    assert board.problems[1].startswith("huge.json: not readable as JSON: Exceeds the limit")
    monkeypatch.setenv("MEDSYN_RESULTS_DIR", str(results))
    monkeypatch.setenv("MEDSYN_PENDING_DIR", str(tmp_path / "pending"))
    app = load_module("leaderboard_app_hostile", ROOT / "leaderboard" / "app.py")
    [problems] = [b for b in app.demo.blocks.values() if getattr(b, "label", None) == "Results files left out"]
    assert "deep.json: not readable as JSON: nested too deep to parse" in problems.value


# --- upload.py ----------------------------------------------------------------------------------


class SilentServer:
    """Accepts connections on 127.0.0.1 and never answers (keeps them open until closed)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.accepted.append(self.sock.accept()[0])
            except OSError:  # closed
                return

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def test_upload_to_a_server_that_never_answers_times_out_with_one_line(tmp_path) -> None:
    # was: upload.py waited forever (huggingface_hub's client has no timeout)
    space = tmp_path / "space"
    space.mkdir()
    (space / "README.md").write_text("---\ntitle: x\nsdk: gradio\n---\n")
    (space / "app.py").write_text("print('hi')\n")
    server = SilentServer()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_") and k != "TRANSFORMERS_OFFLINE"}
    env |= {"PYTHONPATH": str(ROOT / "src"), "HF_ENDPOINT": server.url, "HF_TOKEN": "hf_medsynDummyToken0123456789",
            "HF_HUB_DOWNLOAD_TIMEOUT": "1", "HF_HOME": str(Path(tempfile.gettempdir()) / "medsyn-tests-hf-home")}
    start = time.monotonic()
    try:
        result = subprocess.run([sys.executable, str(ROOT / "upload.py"), "metric", "me/m", "--folder", str(space)],
                                capture_output=True, text=True, env=env, timeout=90)
    finally:
        server.close()
    assert time.monotonic() - start < 60
    assert result.returncode == 1 and server.accepted
    assert result.stderr.strip().splitlines() == [
        f"upload.py: error: the Hub at {server.url} did not answer within 1 s while creating the repo "
        "(HF_HUB_DOWNLOAD_TIMEOUT sets the limit)"]
