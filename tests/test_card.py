"""render_card: the dataset card's YAML and counts come from the build's statistics."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard

from medsyn.data.card import BLOCKS, card_revision, render_card, size_category
from medsyn.data.citation import CITATION
from medsyn.data.schema import FEATURES, VISUAL_CE_TYPES
from medsyn.publish.hub import card_problems

TEMPLATE = (Path(__file__).resolve().parents[1] / "dataset_card.md").read_text(encoding="utf-8")
REVISION = "0123456789abcdef" * 4


def _example(case_id: str, n_images: int) -> dict:
    return {
        "case_id": case_id,
        "language": case_id[:2],
        "source": "synthetic (MEDSYN-mini)",
        "specialty": "neurology",
        "history": "A 78-year-old man with two weeks of headache. " * 20,
        "physical_exam": "",
        "images": f"<{n_images} images>",
        "image_evidence": [0, 0, 1],
        "evidence": [{"type": "ct", "title": "CT of the head", "timepoint": "", "findings": "Subdural collection."}],
        "evidence_types": ["ct", "laboratory"],
        "final_diagnosis": "Chronic subdural hematoma",
        "options": ["Chronic subdural hematoma", "Epidural hematoma"],
        "answer": "A",
    }


STATS = {
    "en": {
        "n_cases": 3,
        "n_images": 7,
        "ce_types": {"ct": 2, "laboratory": 3, "electrophysiology": 1},
        "images_per_type": {"ct": 4, "laboratory": 2, "electrophysiology": 1},
        "specialties": {"neurology": 2, "cardiology": 1},
        "n_bytes": 123_456,
        "example": _example("en-0001", 3),
    },
    "zh": {
        "n_cases": 1,
        "n_images": 2,
        "ce_types": {"mri": 1},
        "images_per_type": {"mri": 2},
        "specialties": {"神经内科": 1},
        "n_bytes": 5_000,
        "example": _example("zh-0001", 2),
    },
}


def _block(text: str, name: str) -> str:
    return text.split(f"<!-- medsyn:{name} -->", 1)[1].split(f"<!-- /medsyn:{name} -->", 1)[0]


def test_yaml_configs_features_and_sizes_come_from_stats():
    card = DatasetCard(render_card(TEMPLATE, STATS, REVISION))
    configs = MetadataConfigs.from_dataset_card_data(card.data)
    assert list(configs) == ["en", "zh"]
    assert configs["en"]["data_files"] == [{"split": "test", "path": "en/test-*.parquet"}]
    assert configs.get_default_config_name() == "en"
    infos = DatasetInfosDict.from_dataset_card_data(card.data)
    assert infos["en"].features == FEATURES and infos["zh"].features == FEATURES
    assert infos["en"].splits["test"].num_examples == 3
    assert infos["zh"].splits["test"].num_bytes == 5_000
    assert card.data.size_categories == ["n<1K"]
    assert card_problems(str(card)) == []


def test_every_config_names_the_revision():
    text = render_card(TEMPLATE, STATS, REVISION)
    assert card_revision(text, "en") == card_revision(text, "zh") == REVISION
    assert card_revision(render_card(text, STATS, "f" * 64), "en") == "f" * 64  # a rebuild's card names its own
    assert card_revision(text, "fr") is None and card_revision(TEMPLATE, "en") is None


def test_body_tables_hold_the_counts():
    text = render_card(TEMPLATE, STATS, REVISION)
    assert "4 cases (3 en, 1 zh) with 9 images" in _block(text, "headline")
    stats = _block(text, "stats")
    assert "| `en` | 3 | 7 | 2.33 | 2.00 | 123.5 kB |" in stats  # 6 type occurrences over 3 cases
    assert "| all | 4 | 9 | 2.25 | 1.75 | 128.5 kB |" in stats
    ce_rows = [line for line in _block(text, "ce_types").splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in ce_rows] == list(VISUAL_CE_TYPES)  # the whole vocabulary, in order
    assert "| `ct` | 2 | 4 | 0 | 0 |" in ce_rows and "| `mri` | 0 | 0 | 1 | 2 |" in ce_rows
    specialties = _block(text, "specialties")
    assert specialties.index("neurology") < specialties.index("cardiology")  # by count, descending
    assert "| 神经内科 | 0 | 1 | 1 |" in specialties
    example = _block(text, "example")
    assert '"case_id": "en-0001"' in example and '"images": "<3 images>"' in example
    assert " …" in example  # the long history is shortened on the card


def test_rendering_is_deterministic_and_idempotent():
    first = render_card(TEMPLATE, STATS, REVISION)
    assert render_card(TEMPLATE, copy.deepcopy(STATS), REVISION) == first
    assert render_card(first, STATS, REVISION) == first  # a rendered card renders to itself
    reordered = {"zh": STATS["zh"], "en": STATS["en"]}
    assert render_card(TEMPLATE, reordered, REVISION) == first


def test_an_absent_config_is_left_out_everywhere():
    text = render_card(render_card(TEMPLATE, STATS, REVISION), {"en": STATS["en"]}, REVISION)  # a stale zh must go too
    card = DatasetCard(text)
    assert list(MetadataConfigs.from_dataset_card_data(card.data)) == ["en"]
    assert list(DatasetInfosDict.from_dataset_card_data(card.data)) == ["en"]
    assert card.data.language == ["en"]
    assert "(zh)" not in _block(text, "ce_types")
    assert "`zh`" not in _block(text, "configs")


def test_the_configs_line_and_languages_follow_the_build():
    both = render_card(TEMPLATE, STATS, REVISION)
    assert _block(both, "configs").strip() == "Configs: `en` (default) and `zh`, one `test` split each."
    assert DatasetCard(both).data.language == ["en", "zh"]
    zh_only = render_card(TEMPLATE, {"zh": STATS["zh"]}, REVISION)
    assert _block(zh_only, "configs").strip() == "Config: `zh`, one `test` split."
    assert DatasetCard(zh_only).data.language == ["zh"]


def test_the_citation_is_the_builders():
    assert _block(render_card(TEMPLATE, STATS, REVISION), "citation").strip() == f"```bibtex\n{CITATION}\n```"


def test_template_keeps_gating_and_licence_and_every_block():
    data = DatasetCard(TEMPLATE).data.to_dict()
    assert data["license"] == "other" and data["license_name"] and data["license_link"]
    assert sorted(data["language"]) == ["en", "zh"]
    assert len([kind for kind in data["extra_gated_fields"].values() if kind == "checkbox"]) == 2
    for name in BLOCKS:
        assert f"<!-- medsyn:{name} -->" in TEMPLATE
    assert "not for\n  ranking" in TEMPLATE and "do not depict the patients" in TEMPLATE


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s["en"]["ce_types"].update(xray=1), "unknown CE type(s) xray"),
        (lambda s: s["en"].pop("n_bytes"), "missing n_bytes"),
        (lambda s: s["en"].update(n_cases=0), "leave empty configs out"),
        (lambda s: s.update(fr=s["en"]), "unknown config 'fr'"),
    ],
)
def test_bad_stats_are_refused(change, message):
    stats = copy.deepcopy(STATS)
    change(stats)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        render_card(TEMPLATE, stats, REVISION)


def test_a_template_without_a_block_is_refused():
    broken = TEMPLATE.replace("<!-- medsyn:stats -->", "")
    with pytest.raises(ValueError, match="block 'stats' missing"):
        render_card(broken, STATS, REVISION)


@pytest.mark.parametrize("n, category", [(0, "n<1K"), (452, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (10**7, "n>10M")])
def test_size_categories(n, category):
    assert size_category(n) == category
