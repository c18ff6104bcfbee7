"""The endpoint backend against a real OpenAI-compatible server: ``transformers serve`` on the tiny model,
started on 127.0.0.1 by the test and reached through the real ``openai`` client.

That server returns no log-probabilities, ignores ``n`` and (without ``do_sample`` in the model's generation
config) ignores the temperature: the backend samples, and its identical samples are warned about and recorded.
What it cannot do (top log-probabilities, refusals, faults) is tested with the hand-written server of
tests/test_endpoint_backend.py.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import openai
import pytest
from lighteval.tasks.requests import Doc
from PIL import Image
from support import stop_process
from transformers import AutoProcessor

from medsyn.cli import main
from medsyn.eval.backends.endpoint import EndpointModel, build_messages
from medsyn.eval.prompts import IMAGE_MARK

START_LIMIT_S = 180
COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255), (128, 128, 128)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of ``transformers serve TINY_MODEL`` on a free port; the server is always terminated."""
    port, log = _free_port(), tmp_path_factory.mktemp("serve") / "serve.log"
    command = [str(Path(sys.executable).with_name("transformers")), "serve", str(tiny_model),
               "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + START_LIMIT_S
        while True:
            assert proc.poll() is None, f"transformers serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            assert time.time() < deadline, f"transformers serve not up after {START_LIMIT_S} s:\n{log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as reply:
                    if str(tiny_model) in {m["id"] for m in json.load(reply)["data"]}:
                        break
            except OSError:
                pass
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_process(proc, timeout=30)


def _doc(images: int) -> Doc:
    query = "History: cough.\n" + "".join(f"Image {i}: {IMAGE_MARK}\n" for i in range(images)) + "Answer with the letter."
    pictures = [Image.new("RGB", (24, 24), COLORS[i % len(COLORS)]) for i in range(images)]
    specific = {"case_id": f"serve-{images}", "condition": "full", "language": "en", "task": "es", "options": ["x", "y"]}
    return Doc(query=query, choices=["A", "B"], gold_index=0, images=pictures, specific=specific)


def _local_prompt_tokens(model: Path, doc: Doc) -> int:
    """The prompt length the model's own processor gives ``doc`` (each image expanded into its image tokens)."""
    messages, _ = build_messages(doc)
    images = iter(doc.images)
    content = [{"type": "image", "image": next(images)} if p["type"] == "image_url" else p for p in messages[0]["content"]]
    processor = AutoProcessor.from_pretrained(model)
    batch = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                          tokenize=True, return_dict=True)  # fmt: skip
    return len(batch["input_ids"][0])


def test_seven_interleaved_images_all_reach_the_model(served: str, tiny_model: Path) -> None:
    """The server's prompt length equals the processor's with all 7 images expanded (a dropped image would
    shorten it by an image's tokens)."""
    client = openai.OpenAI(base_url=served, api_key="EMPTY")
    lengths = {}
    for n in (0, 7):
        messages, sent = build_messages(_doc(n))
        assert len(sent) == n
        reply = client.chat.completions.create(model=str(tiny_model), messages=messages, max_tokens=2, temperature=0)
        lengths[n] = reply.usage.prompt_tokens
        assert lengths[n] == _local_prompt_tokens(tiny_model, _doc(n))
    assert lengths[7] > lengths[0] + 7


def test_backend_generates_and_samples_and_flags_identical_samples(served: str, tiny_model: Path, tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    model = EndpointModel(f"model_name={tiny_model},base_url={served},samples=3,sample_max_tokens=4,cache_dir={tmp_path}")
    [generated] = model.greedy_until([_doc(7)])
    assert isinstance(generated.text[0], str) and generated.text[0]
    with caplog.at_level(logging.WARNING, logger="medsyn.eval.backends.endpoint"):
        [posterior] = model.loglikelihood([_doc(3)])
    assert posterior.posterior_method == "samples" and posterior.n_samples == 3 and posterior.temperature == 1.0
    assert posterior.identical_samples and len(set(posterior.text)) == 1
    assert "returned no log-probabilities" in caplog.text
    assert "all 3 samples at temperature 1 are the same text" in caplog.text


def test_medsyn_eval_records_the_sampled_posterior(served: str, tiny_model: Path, built_fixture: Path,
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("MEDSYN_CACHE", str(tmp_path / "cache"))
    code = main(["eval", "--backend", "endpoint", "--model", str(tiny_model), "--dataset", str(built_fixture),
                 "--model-args", f"base_url={served},samples=2,sample_max_tokens=4,max_new_tokens=4",
                 "--tasks", "medsyn:fdx_zh,medsyn:es_zh", "--out", str(tmp_path / "out")])  # fmt: skip
    assert code == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["posterior"]["method"] == "samples" and results["posterior"]["samples"] == 2
    assert results["posterior"]["temperature"] == 1.0 and results["posterior"]["identical_samples"] >= 1


def test_a_model_the_server_does_not_list_ends_in_one_line(served: str, built_fixture: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    code = main(["eval", "--backend", "endpoint", "--model", "WRONG", "--dataset", str(built_fixture),
                 "--model-args", f"base_url={served}", "--out", str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith(f"error: {served} does not serve model 'WRONG'; it serves: ")
    assert not any("Traceback" in line for line in err) and not (tmp_path / "out").exists()
