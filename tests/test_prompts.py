"""Prompt snapshots: the exact rendered prompt of one English and one Chinese case under every
condition and task, so any change of wording shows in review. Regenerate after a deliberate
change with ``MEDSYN_UPDATE_SNAPSHOTS=1 pytest tests/test_prompts.py``; the run then fails until
PROMPT_VERSION is bumped and the new snapshots' digest recorded in PROMPT_SNAPSHOT_DIGESTS.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import datasets
import pytest

from medsyn.data.schema import GLOBAL_CONDITIONS, es_conditions
from medsyn.eval.prompts import (
    IMAGE_MARK,
    PROMPT_SNAPSHOT_DIGESTS,
    PROMPT_VERSION,
    interleave,
    random_tokens_like,
    render,
    token_length,
)

SNAPSHOTS = Path(__file__).parent / "snapshots" / "prompts"
CASES = {"en": "en-0002", "zh": "zh-0001"}


@pytest.fixture(scope="module")
def rows(built_fixture: Path) -> dict[str, dict]:
    out = {}
    for lang, case_id in CASES.items():
        ds = datasets.load_dataset(str(built_fixture), lang, split="test")
        out[lang] = ds[ds["case_id"].index(case_id)]
    return out


def _variants(row: dict) -> list[tuple[str, str]]:
    conditions = list(dict.fromkeys([*GLOBAL_CONDITIONS, *es_conditions(row["evidence_types"])]))
    return [("fdx", c) for c in conditions] + [("es", "full"), ("ddx", "full")]


def _snapshot_path(row: dict, task: str, condition: str) -> Path:
    return SNAPSHOTS / f"{row['case_id']}__{task}__{condition.replace(':', '-')}.txt"


def snapshot_digest(folder: Path) -> str:
    """``LC_ALL=C sha256sum *.txt | sha256sum`` in ``folder``: one digest of every snapshot's name and text."""
    listing = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in sorted(folder.glob("*.txt")))
    return hashlib.sha256(listing.encode()).hexdigest()


@pytest.mark.parametrize("lang", list(CASES))
def test_prompt_snapshots(rows: dict, lang: str) -> None:
    row = rows[lang]
    for task, condition in _variants(row):
        prompt = render(row, condition, task)
        text = f"# images shown: {prompt.image_indices}\n{prompt.query}\n"
        path = _snapshot_path(row, task, condition)
        if os.environ.get("MEDSYN_UPDATE_SNAPSHOTS"):
            path.write_text(text, encoding="utf-8")
        assert path.exists(), f"missing snapshot {path.name}; run with MEDSYN_UPDATE_SNAPSHOTS=1"
        assert text == path.read_text(encoding="utf-8"), f"prompt changed: {path.name}"


def test_prompt_version_changes_with_the_snapshots(rows: dict) -> None:
    """Runs after the snapshot tests, so a ``MEDSYN_UPDATE_SNAPSHOTS=1`` run that changed them fails here."""
    expected = {_snapshot_path(row, *variant).name for row in rows.values() for variant in _variants(row)}
    found = {p.name for p in SNAPSHOTS.glob("*.txt")}
    assert found == expected, f"snapshots no prompt renders any more (delete them): {sorted(found - expected)}"
    assert PROMPT_VERSION == max(PROMPT_SNAPSHOT_DIGESTS), "PROMPT_VERSION must be the latest version recorded"
    assert len(set(PROMPT_SNAPSHOT_DIGESTS.values())) == len(PROMPT_SNAPSHOT_DIGESTS), "two versions, one digest"
    digest, new = snapshot_digest(SNAPSHOTS), PROMPT_VERSION + 1
    assert PROMPT_SNAPSHOT_DIGESTS[PROMPT_VERSION] == digest, (
        f"the prompt snapshots changed but PROMPT_VERSION is still {PROMPT_VERSION}: in src/medsyn/eval/prompts.py set "
        f"PROMPT_VERSION = {new} and add {new}: \"{digest}\" to PROMPT_SNAPSHOT_DIGESTS (and a changelog line to "
        "lighteval_tasks/README.md)"
    )


def test_images_are_interleaved_at_their_evidence(rows: dict) -> None:
    row = rows["en"]  # fundus (clinical_photo), smear (pathology), fundus again (clinical_photo)
    prompt = render(row, "full")
    assert prompt.image_indices == [0, 1, 2]
    parts = interleave(prompt.query, prompt.images(row))
    titles = [e["title"] for e in row["evidence"]]
    positions = [i for i, p in enumerate(parts) if not isinstance(p, str)]
    # each image directly follows the heading of its own evidence item
    for k, pos in enumerate(positions):
        heading = parts[pos - 1].rsplit("## ", 1)[-1]
        assert heading.startswith(titles[row["image_evidence"][k]])


def test_conditions_change_what_is_shown(rows: dict) -> None:
    row = rows["en"]
    full, text = render(row, "full"), render(row, "text")
    assert text.image_indices == [] and IMAGE_MARK not in text.query
    assert all(e["findings"] in text.query for e in row["evidence"])
    assert all(e["findings"] not in full.query for e in row["evidence"])
    absent = render(row, "absent:clinical_photo")
    assert absent.image_indices == [1] and "Fundus" not in absent.query
    as_text = render(row, "text:clinical_photo")
    assert as_text.image_indices == [1] and row["evidence"][0]["findings"] in as_text.query
    no_history = render(row, "no_history")
    assert row["history"] not in no_history.query and no_history.image_indices == full.image_indices


def test_random_history_keeps_token_length_and_seed(rows: dict) -> None:
    for row in rows.values():
        a = render(row, "random_history", seed=0)
        assert row["history"] not in a.query
        assert a.query == render(row, "random_history", seed=0).query
        assert a.query != render(row, "random_history", seed=1).query
        noise = random_tokens_like(row["history"], row["language"], "k")
        assert token_length(noise) == token_length(row["history"])


def test_chinese_template_is_localized(rows: dict) -> None:
    query = render(rows["zh"], "text").query
    for english in ("History", "Findings", "Question", "Answer"):
        assert english not in query
    assert "答案" in query and "病史" in query


def test_unknown_condition_and_task_are_refused(rows: dict) -> None:
    with pytest.raises(ValueError, match="unknown condition"):
        render(rows["en"], "absent:xray")
    with pytest.raises(ValueError, match="unknown task"):
        render(rows["en"], "full", "vqa")


def test_random_history_matches_the_length_in_the_models_tokens(rows: dict, tiny_model) -> None:
    """With the evaluated model's tokenizer, random_history has the textual CE's length in that tokenizer's tokens
    (within one token, from below), and the render records the ratio; without one, the model-independent count."""
    from transformers import AutoTokenizer

    from medsyn.eval.prompts import model_token_length, random_tokens_like, token_length

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    for lang, text in (("en", "A 64-year-old woman presented with cough, fever and weight loss."), ("zh", "患者男，58岁，因发热、咳嗽、胸痛入院。")):
        target = model_token_length(text, tokenizer)
        made = random_tokens_like(text, lang, "0:case:history", tokenizer)
        assert target - 1 <= model_token_length(made, tokenizer) <= target, (lang, made)
        assert made == random_tokens_like(text, lang, "0:case:history", tokenizer)  # seeded
        assert token_length(random_tokens_like(text, lang, "0:case:history")) == token_length(text)
    row = rows["en"]
    ratio = render(row, "random_history", "fdx", length_tokenizer=tokenizer).length_ratio
    assert 0.9 <= ratio <= 1.0 and render(row, "full", "fdx").length_ratio is None
