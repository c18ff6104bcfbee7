"""The disk cache of model outputs: keys, persistence, cut-off lines, threads and a killed writer."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

from medsyn.eval.backends import cache as cache_module
from medsyn.eval.backends.cache import ResponseCache, image_digest, request_key

BASE = dict(model={"model": "m", "revision": ""}, kind="logprobs", query="Q <x>", images=[b"one", b"two"],
            choices=["A", "B"], params={"temperature": 0.0, "max_tokens": 1})


def test_round_trip_survives_reopening(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path, "Qwen/Qwen2.5-VL-7B-Instruct")
    cache.put("k1", {"texts": ["B"]})
    cache.put("k2", {"texts": ["答案：C"]})
    cache.put("k1", {"texts": ["A"]})  # a later line wins
    again = ResponseCache(tmp_path, "Qwen/Qwen2.5-VL-7B-Instruct")
    assert again.get("k1") == {"texts": ["A"]}
    assert again.get("k2") == {"texts": ["答案：C"]}
    assert again.get("k3") is None and len(again) == 2 and "k2" in again
    assert again.path.parent == tmp_path and again.path.name == "Qwen_Qwen2.5-VL-7B-Instruct.jsonl"


def test_namespace_cannot_leave_the_directory(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c", "../../etc/passwd")
    assert cache.path.parent == tmp_path / "c"


def test_cut_off_last_line_is_dropped_and_appends_stay_readable(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path, "m")
    cache.put("done", {"texts": ["B"]})
    with open(cache.path, "ab") as f:
        f.write(b'{"key":"half","value":{"te')  # a write cut off by a kill
    reopened = ResponseCache(tmp_path, "m")
    assert reopened.get("done") == {"texts": ["B"]} and reopened.get("half") is None
    reopened.put("next", {"texts": ["C"]})
    assert ResponseCache(tmp_path, "m").get("next") == {"texts": ["C"]}


def test_threads_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path, "m")

    def writer(t: int) -> None:
        for i in range(50):
            cache.put(f"{t}-{i}", {"texts": ["x" * 500]})

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ResponseCache(tmp_path, "m")) == 400


def test_a_killed_run_keeps_every_finished_result(tmp_path: Path) -> None:
    script = (
        "import os, signal, sys\n"
        "from medsyn.eval.backends.cache import ResponseCache\n"
        "cache = ResponseCache(sys.argv[1], 'm')\n"
        "for i in range(3):\n"
        "    cache.put(f'k{i}', {'i': i})\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    cache = ResponseCache(tmp_path, "m")
    assert [cache.get(f"k{i}") for i in range(3)] == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_request_key_depends_on_everything_that_determines_the_output() -> None:
    key = request_key(**BASE)
    assert key == request_key(**{**BASE, "params": {"max_tokens": 1, "temperature": 0.0}})  # dict order is irrelevant
    changes = {
        "model": {"model": "m", "revision": "v2"},
        "kind": "samples",
        "query": "Q  <x>",
        "images": [b"one", b"twO"],
        "choices": ["A", "B", "C"],
        "params": {"temperature": 0.0, "max_tokens": 2},
    }
    keys = {name: request_key(**{**BASE, name: value}) for name, value in changes.items()}
    keys["image order"] = request_key(**{**BASE, "images": [b"two", b"one"]})
    assert key not in keys.values() and len(set(keys.values())) == len(keys)


def test_pil_image_digest_sees_one_pixel_and_the_mode() -> None:
    image = Image.new("RGB", (8, 8), (10, 20, 30))
    changed = image.copy()
    changed.putpixel((7, 7), (10, 20, 31))
    assert image_digest(image) == image_digest(image.copy())
    assert image_digest(image) != image_digest(changed)
    assert image_digest(image.convert("RGBA")) != image_digest(image)
    assert request_key(**{**BASE, "images": [image]}) != request_key(**{**BASE, "images": [changed]})


@pytest.mark.parametrize("name", ["__version__", "PROMPT_VERSION"])
def test_request_key_changes_with_the_medsyn_and_prompt_versions(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    key = request_key(**BASE)
    monkeypatch.setattr(cache_module, name, "9.9.9-test")
    assert request_key(**BASE) != key
