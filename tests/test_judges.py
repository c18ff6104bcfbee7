"""The lexical DDx judge: normalization, grades, and agreement with a hand-labelled set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medsyn.metrics.ddx import parse_ddx
from medsyn.metrics.judges import Judge, JudgeError, get_judge
from medsyn.metrics.judges.lexical import LexicalJudge, grade_en, grade_zh, normalize_zh, tokens_en
from medsyn.metrics.scoring import score_ddx

LABELLED = Path(__file__).parent / "data" / "ddx_labelled.jsonl"
CARD = Path(__file__).parents[1] / "metrics" / "medsyn_metric" / "README.md"


def test_get_judge_default_is_lexical() -> None:
    judge = get_judge(None)
    assert isinstance(judge, LexicalJudge) and isinstance(judge, Judge)
    assert get_judge(judge) is judge


@pytest.mark.parametrize(
    "a,b",
    [
        ("Haemorrhagic oesophagitis", "hemorrhagic esophagitis"),  # British / American
        ("ＳＬＥ", "systemic lupus erythematosus"),  # full-width abbreviation
        ("Sjögren’s syndrome", "sjogren syndrome"),  # accent, curly possessive
        ("Lymphoma, diffuse large B-cell", "diffuse large b cell lymphoma"),  # word order, hyphen
        ("Metastases", "metastase"),  # plural
        ("pulmonary embolism", "lung embolism"),  # adjective / organ
    ],
)
def test_english_normalization(a: str, b: str) -> None:
    assert tokens_en(a) == tokens_en(b)


def test_non_prefix_is_kept() -> None:
    assert tokens_en("Non-Hodgkin lymphoma") != tokens_en("Hodgkin lymphoma")


@pytest.mark.parametrize(
    "gold,candidate,grade",
    [
        ("Chronic subdural hematoma", "Chronic subdural hematoma", 5),
        ("Acute myocardial infarction", "MI", 5),  # abbreviation -> ICD-10-CM I21.9 inclusion term
        ("Graves disease", "Toxic diffuse goiter", 5),  # ICD-10-CM E05.0 inclusion terms
        ("Sarcoidosis", "Sarcoidsis", 5),  # typo of a word ICD-10-CM does not know
        ("Chronic subdural hematoma", "Subdural hematoma", 4),  # less specific, keeps the specific words
        ("Subdural hematoma", "Chronic subdural hematoma", 4),  # more specific
        ("Hashimoto thyroiditis", "Chronic lymphocytic thyroiditis", 4),  # same code after dropping "chronic"
        ("Acute myeloid leukemia", "Leukemia", 3),  # too unspecific
        ("Acute pancreatitis", "Chronic pancreatitis", 3),
        ("Chronic subdural hematoma", "Epidural hematoma", 2),
        ("Hyperthyroidism", "Hypothyroidism", 2),  # same ICD-10-CM block only
        ("Glioblastoma", "Meningioma", 0),
        ("Giant cell arteritis", "Rheumatoid arthritis", 0),  # a near spelling is not a typo of a known word
    ],
)
def test_english_grades(gold: str, candidate: str, grade: int) -> None:
    assert grade_en(gold, candidate) == grade


@pytest.mark.parametrize(
    "gold,candidate,grade",
    [
        ("急性心肌梗死", "急性心梗", 5),
        ("弥漫大B细胞淋巴瘤", "弥漫性大B细胞淋巴瘤", 5),
        ("心房颤动", "房颤", 5),
        ("慢性硬膜下血肿", "硬膜下血肿", 4),
        ("白血病", "急性髓系白血病", 3),
        ("慢性硬膜下血肿", "硬膜外血肿", 2),
        ("肺结核", "脑膜瘤", 0),
    ],
)
def test_chinese_grades(gold: str, candidate: str, grade: int) -> None:
    assert grade_zh(gold, candidate) == grade


def test_subtypes_and_negations_are_not_matches() -> None:
    """A different subtype letter, type or primary/secondary qualifier, or a negating prefix, is not covered."""
    wrong = ["1. Protein S deficiency", "1. Hepatitis B", "1. Type B aortic dissection", "1. Secondary hyperparathyroidism",
             "1. 非霍奇金淋巴瘤", "1. 非小细胞肺癌"]
    golds = ["Protein C deficiency", "Hepatitis A", "Type A aortic dissection", "Primary hyperparathyroidism",
             "霍奇金淋巴瘤", "小细胞肺癌"]
    result = score_ddx(wrong, golds, languages=["en"] * 4 + ["zh"] * 2)
    assert result["best_score"] == [3, 2, 3, 3, 2, 2] and result["ddx_coverage"] == 0.0
    assert [grade_en("Hepatitis A", "Hepatitis"), grade_en("Hemophilia A", "Hemophilia B"),
            grade_en("Influenza A", "Influenza B")] == [3, 2, 2]
    assert grade_zh("肺结核", "排除肺结核") == grade_zh("肺结核", "已排除肺结核") == 0
    # 无 names another disease (painless / aseptic), graded like 非; only 排除 denies
    assert grade_zh("无痛性甲状腺炎", "痛性甲状腺炎") == grade_zh("无菌性脑膜炎", "菌性脑膜炎") == 2
    assert grade_zh("肺结核", "无肺结核") == grade_zh("霍奇金淋巴瘤", "非霍奇金淋巴瘤") == 2
    assert grade_zh("肺结核", "待排除肺结核") == 5  # a hedge, not a negation


@pytest.mark.parametrize(
    "gold,candidate,grade",
    [
        ("Type 1 diabetes mellitus", "Type I diabetes mellitus", 5),  # roman numeral
        ("Primary hyperparathyroidism", "Hyperparathyroidism, primary", 5),
        ("Hemophilia A", "Factor VIII deficiency", 5),  # ICD-10-CM D66
        ("Type A aortic dissection", "Stanford type A aortic dissection", 4),
        ("Type A aortic dissection", "Aortic dissection", 4),  # less specific, not contradicting
        ("Acute miliary tuberculosis of a single site", "Acute miliary tuberculosis of single site", 5),  # the article
    ],
)
def test_subtype_near_synonyms_still_match(gold: str, candidate: str, grade: int) -> None:
    assert grade_en(gold, candidate) == grade


@pytest.mark.parametrize(
    "gold,candidate,grade",
    [
        # "secondary to" names a cause, not the qualifier; "a" is the article unless it follows a subtype head
        ("Hemophilia A", "Bleeding secondary to hemophilia", 4),
        ("Acute pancreatitis", "Pancreatitis, likely a gallstone pancreatitis", 4),
        ("Aspiration pneumonia", "Pneumonia secondary to aspiration", 5),
        ("Pulmonary embolism", "Likely a pulmonary embolism", 5),
        ("Secondary hyperparathyroidism", "Hyperparathyroidism secondary to CKD", 4),
        ("Primary hyperparathyroidism", "Hyperparathyroidism secondary to CKD", 3),
        ("Group A streptococcal pharyngitis", "Group B streptococcal pharyngitis", 3),
        ("Hepatitis A", "Likely a hepatitis B", 2),
    ],
)
def test_causes_and_articles_are_not_subtypes(gold: str, candidate: str, grade: int) -> None:
    assert grade_en(gold, candidate) == grade


def test_likely_a_prefix_keeps_covered_items_covered() -> None:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r["language"] == "en" and r["covered"]]
    golds = [r["gold"] for r in rows]
    plain = score_ddx([r["ddx"] for r in rows], golds)["covered"]
    prefixed = score_ddx([["Likely a " + item for item in parse_ddx(r["ddx"])] for r in rows], golds)["covered"]
    assert len(rows) >= 50 and sum(plain) >= 45
    assert [r["gold"] for r, a, b in zip(rows, plain, prefixed) if a and not b] == []


def test_chinese_hedges_stripped() -> None:
    assert normalize_zh("考虑肺结核可能") == "肺结核"


def test_mixed_languages_through_glossary() -> None:
    judge = LexicalJudge()
    assert judge.score("结节病", ["Sarcoidosis", "肺结核", "Lymphoma"]) == [5, 0, 0]
    assert judge.score("Sarcoidosis", ["结节病"]) == [5]
    with pytest.raises(JudgeError, match="different languages"):
        judge.score("某种罕见病", ["Lofgren syndrome"])
    assert judge.score("某种罕见病", ["Sarcoidosis"]) == [0]  # bridged to 结节病 and compared in Chinese
    assert judge.score("Sarcoidosis", []) == []


def test_uncomparable_item_is_a_judge_failure_not_a_miss() -> None:
    gold, english = "急性冠脉综合征伴心源性休克", "Acute coronary syndrome with cardiogenic shock"
    with pytest.raises(JudgeError, match="1 of 2 candidates") as raised:
        LexicalJudge().score(gold, ["肺栓塞", english])
    assert raised.value.partial == [0, None]
    result = score_ddx([["肺栓塞", english], [english], ["急性冠脉综合征伴心源性休克", english]], [gold] * 3, languages="zh")
    # an uncomparable item makes the case a judge failure, hit or miss; the partial grades stay for inspection
    assert result["best_score"] == [None, None, None] and result["judge_failures"] == 3
    assert result["ddx_coverage"] is None and result["scores"] == [[0, None], None, [5, None]]


def test_uncomparable_item_fails_the_case_whether_another_hits_or_misses() -> None:
    # a hit beside an uncomparable item must not count where a miss beside one is not counted
    result = score_ddx(["1. 败血症\n2. GERD\n3. 嗜铬细胞瘤", "1. 甲状腺危象\n2. GERD", "1. 败血症\n2. 嗜铬细胞瘤"],
                       ["甲状腺危象"] * 3, languages="zh")
    assert result["best_score"] == [None, None, 0] and result["judge_failures"] == 2
    assert result["ddx_coverage"] == 0.0 and result["n_judged"] == 1
    assert result["scores"][:2] == [[0, None, 0], [5, None]]


def test_english_abbreviation_in_chinese_list_bridged_through_glossary() -> None:
    result = score_ddx(["1. 败血症\n2. DKA\n3. 嗜铬细胞瘤", "1. 甲状腺危象\n2. DKA", "1. 败血症\n2. 嗜铬细胞瘤"],
                       ["甲状腺危象"] * 3, languages="zh")
    assert result["judge_failures"] == 0 and result["best_score"] == [0, 5, 0]
    assert LexicalJudge().score("糖尿病酮症酸中毒", ["diabetic ketoacidosis"]) == [5]
    assert LexicalJudge().score("酮症酸中毒", ["DKA"]) == [4]  # gold outside the glossary, compared in Chinese


def test_lexical_is_deterministic() -> None:
    judge = LexicalJudge()
    a = judge.score("Pulmonary embolism", ["Pneumonia", "Acute PE", "Pneumothorax"])
    assert a == judge.score("Pulmonary embolism", ["Pneumonia", "Acute PE", "Pneumothorax"]) == [0, 5, 0]


def test_agreement_with_labelled_set() -> None:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 60 and {r["language"] for r in rows} == {"en", "zh"}
    result = score_ddx([r["ddx"] for r in rows], [r["gold"] for r in rows], languages=[r["language"] for r in rows])
    assert result["judge_failures"] == 0
    pairs = [(r["covered"], c) for r, c in zip(rows, result["covered"])]
    agree = sum(label == got for label, got in pairs)
    tp = sum(label and got for label, got in pairs)
    fp = sum(got and not label for label, got in pairs)
    fn = sum(label and not got for label, got in pairs)
    lines = [f"lexical judge vs labels: agreement {agree}/{len(rows)} = {agree / len(rows):.1%}; "
             f"covered precision {tp / (tp + fp):.1%}, recall {tp / (tp + fn):.1%}"]
    for language in ("en", "zh"):
        sub = [(label, got) for r, (label, got) in zip(rows, pairs) if r["language"] == language]
        lines.append(f"  {language}: {sum(a == b for a, b in sub)}/{len(sub)}")
    held = [(label, got) for r, (label, got) in zip(rows, pairs) if r["note"].startswith("held-out")]
    lines.append(f"  held-out (written after the rules were fixed): {sum(a == b for a, b in held)}/{len(held)}")
    print("\n".join(lines))
    assert agree / len(rows) >= 0.85
    card = CARD.read_text(encoding="utf-8")
    figures = [f"{agree}/{len(rows)} ({agree / len(rows):.1%}", f"precision {tp / (tp + fp):.0%}",
               f"recall {tp / (tp + fn):.1%}", f"{sum(a == b for a, b in held)}/{len(held)}"]
    for figure in figures:
        assert figure.replace("%", " %") in card, f"update the figures in the metric card: {figure}"


def test_unreadable_item_is_a_judge_failure_not_a_miss() -> None:
    """An item of symbols only, or in a script the judge cannot read, fails the case (issue 18)."""
    result = score_ddx(["1. Pneumonia\n2. ???", "1. пневмония", "1. Pneumonia\n2. Unspecified"], ["Pneumonia"] * 3)
    assert result["best_score"] == [None, None, 5] and result["judge_failures"] == 2
    assert result["scores"][0] == [5, None] and result["scores"][2] == [5, 0]
