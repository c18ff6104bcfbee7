"""Data-parallel `medsyn eval`: two ranks (torchrun, gloo, CPU) write the one-process results.

The ranks share out the model's requests and gather the results; a failure on one rank ends both
ranks with its message; concurrent ranks never interleave lines of the response cache.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from medsyn.cli import main
from medsyn.eval.backends.cache import ResponseCache
from medsyn.metrics.results_schema import validate_results

TASKS = "medsyn:fdx_en,medsyn:ddx_en,medsyn:es_en,medsyn:es_zh"
PER_RUN = {"created_at", "command", "world_size", "docs_per_rank"}
"""The keys of results.json that say how and when a run ran, not what it measured."""
FAILING_RANK = """
import sys
import torch.distributed as dist
from medsyn.cli import main
from medsyn.eval.backends.transformers_vlm import MedsynVLM

def fail_on_rank_1(self, docs):
    if dist.get_rank() == 1:
        raise RuntimeError("out of memory on the second GPU")
    return original(self, docs)

original, MedsynVLM._posterior_batch = MedsynVLM._posterior_batch, fail_on_rank_1
sys.exit(main(sys.argv[1:]))
"""


def _eval_args(model: Path, dataset: Path, out: Path, tasks: str = TASKS) -> list[str]:
    settings = f"response_cache_dir={out / 'cache'},batch_size=4,max_new_tokens=4"
    return ["eval", "--model", str(model), "--dataset", str(dataset), "--out", str(out), "--model-args", settings, "--tasks", tasks]


def _torchrun(script: list[str], args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MEDSYN_DIST_TIMEOUT": "120"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--tee", "3", *script, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def _cache_lines(out: Path) -> dict[str, dict]:
    lines = (out / "cache" / "model.jsonl").read_text(encoding="utf-8").splitlines()
    return {record["key"]: record["value"] for record in map(json.loads, lines)}


def test_two_ranks_write_the_one_process_results(tiny_model: Path, built_fixture: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(_eval_args(tiny_model, built_fixture, one)) == 0
    run = _torchrun(["-m", "medsyn.cli"], _eval_args(tiny_model, built_fixture, two), timeout=150)
    assert run.returncode == 0, run.stderr[-3000:]
    single, parallel = (json.loads((out / "results.json").read_text(encoding="utf-8")) for out in (one, two))
    assert validate_results(parallel) == []
    assert [line.split(":")[0] for line in validate_results({**parallel, "docs_per_rank": [19]})] == ["docs_per_rank"]
    assert {k: v for k, v in parallel.items() if k not in PER_RUN} == {k: v for k, v in single.items() if k not in PER_RUN}
    assert parallel["results"]["overall"]["es_gap"] is not None  # the figures compared are measured ones
    assert (single["world_size"], parallel["world_size"]) == (1, 2)
    assert len(parallel["docs_per_rank"]) == 2 and min(parallel["docs_per_rank"]) > 0
    assert sum(parallel["docs_per_rank"]) == sum(single["docs_per_rank"])
    assert _cache_lines(two) == _cache_lines(one)  # both ranks appended to one file: every line whole, every output equal


def test_a_failure_on_one_rank_ends_both_with_its_message(tiny_model: Path, built_fixture: Path, tmp_path: Path) -> None:
    script = tmp_path / "failing_rank.py"
    script.write_text(FAILING_RANK, encoding="utf-8")
    start = time.monotonic()
    run = _torchrun([str(script)], _eval_args(tiny_model, built_fixture, tmp_path / "run", "medsyn:es_en"), timeout=120)
    assert run.returncode != 0
    assert time.monotonic() - start < 120
    message = "medsyn eval: error: rank 1 of 2 failed: RuntimeError: out of memory on the second GPU"
    for rank in (0, 1):  # torchrun --tee prefixes each rank's lines with [default<rank>]; another rank's progress bar
        # (carriage returns, no newline) may precede it on the same line of the merged stream
        assert f"[default{rank}]:{message}" in run.stderr, run.stderr[-3000:]
    assert not (tmp_path / "run" / "results.json").exists()


def test_cache_writers_and_readers_wait_for_each_other(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path, "m")
    done = threading.Event()

    def put_from_another_rank() -> None:
        ResponseCache(tmp_path, "m").put("k", {"text": "A"})  # opening reads the file, putting appends to it
        done.set()

    with open(cache.path, "a+b") as held:  # another rank midway through a line
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write(b'{"key":"half","value":')
        held.flush()
        writer = threading.Thread(target=put_from_another_rank)
        writer.start()
        assert not done.wait(0.5)  # neither truncated the half-written line nor wrote into it
        held.write(b'{"text":"B"}}\n')
    writer.join(10)
    assert done.is_set()
    assert ResponseCache(tmp_path, "m").get("half") == {"text": "B"} and ResponseCache(tmp_path, "m").get("k") == {"text": "A"}
