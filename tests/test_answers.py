"""Table-driven tests of FDx answer extraction (DESIGN §5), English and Chinese."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medsyn.metrics.answers import extract_answer
from medsyn.metrics.scoring import score_fdx

EN_OPTIONS = [
    "Chronic subdural hematoma",
    "Epidural hematoma",
    "Subarachnoid hemorrhage",
    "Normal-pressure hydrocephalus",
    "Glioblastoma",
]
ZH_OPTIONS = ["慢性硬膜下血肿", "硬膜外血肿", "蛛网膜下腔出血", "正常压力脑积水", "胶质母细胞瘤"]

# (output, expected letter or None for a parse failure)
EN_CASES = [
    ("B", "B"),
    ("(B)", "B"),
    ("B.", "B"),
    ("**B**", "B"),
    ("  c  ", "C"),  # a lower-case bare letter is an answer (issue 18)
    ("[D]", "D"),
    ("Answer: B", "B"),
    ("Answer: (E)", "E"),
    ("answer:B", "B"),
    ("The answer is B", "B"),
    ("The answer is B.", "B"),
    ("The correct answer is option C.", "C"),
    ("The final answer is (A).", "A"),
    ("**Final Answer:** D", "D"),
    ("### Final answer\nE", "E"),
    ("Final answer: \\boxed{C}", "C"),
    ("$\\boxed{\\text{A}}$", "A"),
    ("The most likely diagnosis is B.", "B"),
    ("Diagnosis: option A", "A"),
    ("I choose D.", "D"),
    ("I would go with option B given the lucid interval.", "B"),
    ("I'll select (C).", "C"),
    ("B is correct.", "B"),
    ("Option D is the most likely diagnosis.", "D"),
    ("(A) is the best answer here.", "A"),
    ("B. Epidural hematoma", "B"),
    ("B) Epidural hematoma — lens-shaped collection that does not cross sutures.", "B"),
    ("A: Chronic subdural hematoma", "A"),
    ("(E) Glioblastoma\n\nThe ring-enhancing mass with central necrosis points to it.", "E"),
    ("A. The crescent-shaped hypodensity crossing suture lines in an elderly man on anticoagulants fits a chronic subdural.", "A"),
    # reasoning that names several letters before the final answer
    ("Option A is unlikely because there was trauma. Option C would show blood in the cisterns. "
     "D does not fit the acute course. The answer is B.", "B"),
    ("Let's consider each option.\nA. Chronic subdural hematoma: possible.\nB. Epidural hematoma: lucid interval fits.\n"
     "C. Subarachnoid hemorrhage: no.\nAnswer: B", "B"),
    ("A and C are both hemorrhages, but the lens shape excludes A. E is a tumour. Final answer: B", "B"),
    ("First I thought the answer is A, but the lens shape changes that. The answer is B.", "B"),
    ("Considering A, B, C, D and E in turn:\n- A is less likely\n- C lacks thunderclap headache\n\nB", "B"),
    ("The CT shows a biconvex collection.\n\nTherefore, the answer is (B).", "B"),
    ("Between B and D, the imaging favours B, so I choose B.", "B"),
    ("I would not choose A. The answer is D.", "D"),
    # after a cue, a letter followed by another option's text is contradictory, as it is without the cue
    ("Answer: B. Chronic subdural hematoma", None),
    ("Answer: B - Chronic subdural hematoma", None),
    ("Answer: B. Epidural hematoma", "B"),
    # the option's full text instead of its letter
    ("Epidural hematoma", "B"),
    ("epidural hematoma.", "B"),
    ("Glioblastoma. The ring enhancement and necrosis are typical.", "E"),
    ("The answer is Subarachnoid hemorrhage.", "C"),
    ("The most likely diagnosis is normal-pressure hydrocephalus, given the triad.", "D"),
    ("**Chronic subdural hematoma**", "A"),
    ("Ｃ", "C"),  # full-width letter
    ("Answer：Ｄ", "D"),
    # parse failures
    ("", None),
    ("I am not sure.", None),
    ("The answer is B or C.", None),
    ("Answer: B/C", None),
    ("Either A and D could be right.", None),
    ("A 78-year-old man with a fall has a subdural collection.", None),
    ("A. Chronic subdural hematoma\nB. Epidural hematoma\nC. Subarachnoid hemorrhage", None),
    ("Option A is unlikely. Option C is possible but atypical.", None),
    ("The answer is F.", None),  # out of range for five options
    ("J", None),
    ("B. Glioblastoma", None),  # letter and text disagree
    ("Epidural hematoma is unlikely here.", None),
    ("Based on the images I cannot determine the diagnosis.", None),
    ("The answer is not A.", None),
    ("I can't see the image.", None),
    ("The differential diagnosis: A, B and C.", None),
]

ZH_CASES = [
    ("B", "B"),
    ("选B", "B"),
    ("选 B。", "B"),
    ("答案：B", "B"),
    ("答案:C", "C"),
    ("答案是D。", "D"),
    ("正确答案为（A）", "A"),
    ("最终诊断：B", "B"),
    ("最终诊断为E。", "E"),
    ("故选C。", "C"),
    ("应选择D。", "D"),
    ("答案为选项B。", "B"),
    ("B项正确。", "B"),
    ("选项C是正确的。", "C"),
    ("【答案】A", "A"),
    ("**答案：E**", "E"),
    ("B. 硬膜外血肿", "B"),
    ("B、硬膜外血肿，因CT示双凸透镜形高密度影。", "B"),
    ("（D）正常压力脑积水", "D"),
    # reasoning naming several letters before the final answer
    ("选项A可能性较低，选项C缺乏雷击样头痛，选项D与急性病程不符。故选B。", "B"),
    ("A不符合外伤史；C无蛛网膜下腔积血；E为肿瘤。答案：B", "B"),
    ("分析：\nA. 慢性硬膜下血肿：可能\nB. 硬膜外血肿：最符合\n答案：B", "B"),
    ("我最初考虑A，但结合影像学表现，最终诊断为B。", "B"),
    ("结合病史和影像，B与D均需考虑，但影像更支持B，所以选B。", "B"),
    # the option's full text
    ("硬膜外血肿", "B"),
    ("最终诊断：胶质母细胞瘤", "E"),
    ("答案是蛛网膜下腔出血。", "C"),
    ("慢性硬膜下血肿。CT示新月形低密度影。", "A"),
    ("ＡＮＳＷＥＲ：Ｃ", "C"),
    # parse failures
    ("无法确定。", None),
    ("答案是B或C。", None),
    ("答案：B、C", None),
    ("A. 慢性硬膜下血肿\nB. 硬膜外血肿\nC. 蛛网膜下腔出血", None),
    ("鉴别诊断：A、B、C", None),
    ("选项A可能性较低，选项C也不典型。", None),
    ("答案：H", None),
    ("答案不是A。", None),
    ("B. 胶质母细胞瘤", None),
    ("根据图像无法判断。", None),
]


@pytest.mark.parametrize("text,expected", EN_CASES)
def test_english_outputs(text: str, expected: str | None) -> None:
    assert extract_answer(text, EN_OPTIONS) == expected


@pytest.mark.parametrize("text,expected", ZH_CASES)
def test_chinese_outputs(text: str, expected: str | None) -> None:
    assert extract_answer(text, ZH_OPTIONS) == expected


def test_table_size() -> None:
    assert len(EN_CASES) + len(ZH_CASES) >= 80
    assert sum(e is None for _, e in EN_CASES + ZH_CASES) >= 20


def test_without_options_any_letter_a_to_j() -> None:
    assert extract_answer("The answer is H.") == "H"
    assert extract_answer("The answer is K.") is None
    assert extract_answer("Epidural hematoma") is None  # no option texts to match


def test_range_follows_number_of_options() -> None:
    assert extract_answer("C", ["x", "y"]) is None
    assert extract_answer("B", ["x", "y"]) == "B"


def test_longest_option_text_wins() -> None:
    options = ["Hematoma", "Chronic subdural hematoma", "Subdural hematoma"]
    assert extract_answer("Subdural hematoma.", options) == "C"
    assert extract_answer("Hematoma", options) == "A"


@pytest.mark.parametrize(
    "text,options,expected",
    [
        ("Answer: B cell lymphoma", ["Hodgkin lymphoma", "T cell lymphoma", "B cell lymphoma"], "C"),
        ("最终诊断：B细胞淋巴瘤", ["霍奇金淋巴瘤", "T细胞淋巴瘤", "B细胞淋巴瘤"], "C"),
        ("诊断：A型主动脉夹层", ["x", "y", "A型主动脉夹层"], "C"),
        ("The answer is B cell lymphoma.", ["Hodgkin lymphoma", "B", "B cell lymphoma"], "C"),
    ],
)
def test_option_text_after_cue_beats_its_first_letter(text: str, options: list[str], expected: str) -> None:
    assert extract_answer(text, options) == expected


def test_pronoun_i_is_not_option_i() -> None:
    result = score_fdx(["My answer: I am not sure", "Answer: I cannot decide between A and B", "Answer: I'm unsure"],
                       ["A", "B", "A"])
    assert result["parse_failures"] == 3 and result["extracted"] == [None, None, None]
    assert extract_answer("Answer: I") == extract_answer("The answer is (I).") == "I"


RESP_EN = ["Pneumonia", "Pulmonary embolism", "Heart failure", "Pneumothorax", "Aortic dissection"]
RESP_ZH = ["肺炎", "肺栓塞", "心力衰竭", "气胸", "主动脉夹层"]


@pytest.mark.parametrize(
    "text,options,expected",
    [
        # a remark about another option after the answer (next line, next sentence, prose) is not its label
        ("The answer is C.\nPneumonia: unlikely given no fever.", RESP_EN, "C"),
        ("Answer: B. Pneumonia, by contrast, would show fever", RESP_EN, "B"),
        ("The answer is B\nPneumonia, Heart failure and GERD are less likely", RESP_EN, "B"),
        ("答案：C。肺炎，可能性小。", RESP_ZH, "C"),
        ("答案：C\n肺炎：不符合，无发热。", RESP_ZH, "C"),
        # the letter's own label naming another option is a contradiction
        ("Answer: B. Pneumonia", RESP_EN, None),
        ("Answer: B - Pneumonia (less likely)", RESP_EN, None),
        ("答案：B、肺炎", RESP_ZH, None),
        ("Answer: B. Pulmonary embolism", RESP_EN, "B"),
    ],
)
def test_remark_after_answer_is_not_its_label(text: str, options: list[str], expected: str | None) -> None:
    assert extract_answer(text, options) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Option I is correct", "I"),
        ("I is the best answer", "I"),
        ("Option I is the most likely diagnosis", "I"),
        ("The answer is I because of ST elevation", "I"),
        ("The answer is B, I think.", "B"),
        ("Answer: B, I'm fairly sure.", "B"),
    ],
)
def test_option_i_is_not_the_pronoun(text: str, expected: str) -> None:
    assert extract_answer(text, list("abcdefghij")) == expected


def test_non_string_raises() -> None:
    with pytest.raises(TypeError):
        extract_answer(None)  # type: ignore[arg-type]


REALISTIC = Path(__file__).parent / "data" / "fdx_extraction_realistic.jsonl"
CARD = Path(__file__).parents[1] / "metrics" / "medsyn_metric" / "README.md"


def test_realistic_outputs_no_wrong_answer() -> None:
    """Outputs in the styles of current instruction and reasoning VLMs: 0 wrong letters (issue 18)."""
    rows = [json.loads(line) for line in REALISTIC.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 150 and sum(r["gold"] is None for r in rows) >= 25
    assert sum(r["style"] == "reasoning" for r in rows) >= 40 and sum(r["language"] == "zh" for r in rows) >= 50
    got = [extract_answer(r["output"], r["options"]) for r in rows]
    wrong = [(r["note"], g) for r, g in zip(rows, got) if g is not None and g != r["gold"]]
    flagged = [r["note"] for r, g in zip(rows, got) if g is None and r["gold"] is not None]
    right = len(rows) - len(wrong) - len(flagged)
    summary = f"{len(rows)} outputs: {right} right, {len(wrong)} wrong, {len(flagged)} flagged"
    print(f"{summary} (parse failures on a gold answer: {flagged})")
    assert wrong == []
    assert summary in CARD.read_text(encoding="utf-8"), f"update the figures in the metric card: {summary}"
