"""The family matrix: one tiny random model per family the backend runs, built offline from the family's own
classes and loaded from its folder as a user would (on this CPU machine, without torchvision).

Per family: FDx and DDx generation run; the ES posterior sums to 1; a case scored alone and inside a batch
gets the same posterior; every fast path the family allows is on and equals the plain path (and prefix sharing
really shares a prefix); the rendered prompt puts each image after its CE title; blanking the images changes the
posterior; ``medsyn eval --model FOLDER`` runs and records the family, template and fast paths. The README's support
table is this registry.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image
from tiny_vlms import BUILDERS

from medsyn.eval.backends.families import FAMILIES, FAST_PATHS, support_table
from medsyn.eval.backends.transformers_vlm import MedsynVLM, VLMConfig
from medsyn.eval.synthetic import synthetic_rows
from medsyn.eval.tasks import make_doc

RUNNABLE = [family for family in FAMILIES if not family.refusal]
TOL = 1e-4


def test_every_family_has_a_tiny_model_and_every_tiny_model_a_family() -> None:
    assert {family.model_types[0] for family in FAMILIES} == set(BUILDERS)


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    rows = synthetic_rows(2, 4, 96, 30)
    rows[1]["images"][1] = rows[1]["images"][1].resize((120, 72))  # not square: tiles, grids and sizes differ
    return rows


@pytest.fixture(scope="module", params=[family.model_types[0] for family in RUNNABLE])
def folder(request, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


def _backend(folder: Path, **settings) -> MedsynVLM:
    config = dict(model_name=str(folder), device="cpu", dtype="float32", use_response_cache=False, max_new_tokens=6)
    return MedsynVLM(VLMConfig(**config, **settings))


def _plain(folder: Path, **settings) -> MedsynVLM:
    return _backend(folder, **{name: False for name in FAST_PATHS}, **settings)


def _es(rows) -> list:
    """The ES sweep of the case with the non-square image (9 prompts, one batch)."""
    from medsyn.data.schema import es_conditions

    return [make_doc(rows[1], c, "es", "t:es") for c in es_conditions(rows[1]["evidence_types"])]


def _posteriors(backend: MedsynVLM, docs) -> torch.Tensor:
    return torch.tensor([r.logprobs for r in backend.loglikelihood(docs)], dtype=torch.float64)


def test_fdx_and_ddx_generation_run(folder: Path, rows) -> None:
    backend = _backend(folder, batch_size=4)
    docs = [make_doc(r, "full", task, f"t:{task}") for r in rows for task in ("fdx", "ddx")]
    texts = [r.text[0] for r in backend.greedy_until(docs)]
    assert len(texts) == len(docs) and all(isinstance(t, str) for t in texts)


def test_posterior_sums_to_one_and_a_case_alone_equals_it_in_a_batch(folder: Path, rows) -> None:
    docs = _es(rows)
    batched = _posteriors(_plain(folder, batch_size=9), docs)
    assert torch.allclose(batched.exp().sum(-1), torch.ones(len(docs), dtype=torch.float64), atol=1e-9)
    alone = _posteriors(_plain(folder, batch_size=1), docs)
    torch.testing.assert_close(batched, alone, atol=TOL, rtol=0)


def test_every_allowed_fast_path_is_on_and_equals_the_plain_path(folder: Path, rows) -> None:
    fast = _backend(folder, batch_size=9)
    family = fast.family
    assert {name for name, state in fast.fast_paths.items() if state == "on"} == set(family.fast_paths), fast.fast_paths
    if not family.fast_paths:  # every fast path off (asserted above): the plain path is the only one
        return
    docs = _es(rows)
    torch.testing.assert_close(_posteriors(fast, docs), _posteriors(_plain(folder, batch_size=9), docs), atol=TOL, rtol=0)
    if "share_prefix" in family.fast_paths:  # the conditions of a case really ran their shared prefix once
        assert fast.stats["lm_tokens_shared"] > 0, fast.stats


def test_the_rendered_prompt_puts_each_image_after_its_ce_title(folder: Path, rows) -> None:
    backend = _plain(folder)
    row = rows[1]
    doc = make_doc(row, "full", "fdx", "t:fdx")
    prompt, slot = backend.rendered(doc), backend.prompter.slot
    titles = [f"## {item['title']}" for item in row["evidence"]]
    starts = [prompt.index(title) for title in titles]
    question = prompt.index("Question:")
    for k, item in enumerate(row["evidence"]):
        section = prompt[starts[k] : starts[k + 1] if k + 1 < len(titles) else question]
        assert section.count(slot) == row["image_evidence"].count(k), (item["title"], section)
    assert prompt[: starts[0]].count(slot) == 0 and prompt[question:].count(slot) == 0


def test_the_prompt_starts_with_one_bos_at_most(folder: Path, rows) -> None:
    backend = _plain(folder)
    inputs = backend.encode([make_doc(rows[0], "full", "fdx", "t:fdx"), make_doc(rows[0], "text", "fdx", "t:fdx")])
    bos = backend.processor.tokenizer.bos_token_id
    for ids, mask in zip(inputs["input_ids"], inputs["attention_mask"]):
        real = ids[mask.bool()].tolist()
        assert real[:2] != [bos, bos], "the template's BOS and the tokenizer's both reach the model"


def test_blanking_the_images_changes_the_posterior(folder: Path, rows) -> None:
    backend = _plain(folder)
    doc = make_doc(rows[0], "full", "es", "t:es")
    blank = make_doc({**rows[0], "images": [Image.new("RGB", img.size) for img in rows[0]["images"]]}, "full", "es", "t:es")
    shown, blanked = _posteriors(backend, [doc]), _posteriors(backend, [blank])
    assert (shown - blanked).abs().max() > 1e-3, "the images do not reach the model"


def test_medsyn_eval_runs_from_the_saved_folder(folder: Path, tmp_path: Path, monkeypatch) -> None:
    from medsyn.cli import main

    monkeypatch.setenv("MEDSYN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["eval", "--model", str(folder), "--model-args", "max_new_tokens=8", "--tasks", "medsyn:fdx_en,medsyn:es_en", "--max-samples", "1", "--out", str(out)]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    setup = results["model"]["setup"]
    assert setup["family"] in {family.name for family in FAMILIES} and set(setup["fast_paths"]) == set(FAST_PATHS)
    assert results["results"]["en"]["n"] == 1 and results["results"]["en"]["es_parse_failures"] == 0
    details = pd.read_parquet(out / "lighteval" / "details" / "es_en.parquet")
    assert all(setup["image_slot"] in response["input"] for response in details["model_response"])


def test_the_readme_support_table_is_generated_from_the_registry() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- support-table:start -->\n(.*?)<!-- support-table:end -->", readme, re.S)
    assert block, "README lacks the support table markers"
    assert block.group(1) == support_table(), "regenerate it with `medsyn families`"
