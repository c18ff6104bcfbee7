"""DDx list parsing from free text."""

from __future__ import annotations

import pytest

from medsyn.metrics.ddx import parse_ddx
from medsyn.metrics.scoring import score_ddx

CASES = [
    ("Differential diagnosis:\n1. Acute myocardial infarction (most likely) - ST elevation\n2. Aortic dissection: tearing pain\n"
     "3) Pulmonary embolism\n\nThe most likely is MI.", ["Acute myocardial infarction", "Aortic dissection", "Pulmonary embolism"]),
    ("- Lymphoma, diffuse large B-cell\n- Sarcoidosis\n* Tuberculosis", ["Lymphoma, diffuse large B-cell", "Sarcoidosis", "Tuberculosis"]),
    ("• Pneumonia — lobar consolidation\n• Lung abscess", ["Pneumonia", "Lung abscess"]),
    ("Pneumonia; Lung abscess; Empyema", ["Pneumonia", "Lung abscess", "Empyema"]),
    ("Sarcoidosis, tuberculosis, lymphoma", ["Sarcoidosis", "tuberculosis", "lymphoma"]),
    ("1. SLE 2. Rheumatoid arthritis 3. Sjogren syndrome", ["SLE", "Rheumatoid arthritis", "Sjogren syndrome"]),
    ("**1. Tuberculosis** — cavitation\n**2. Lung cancer**", ["Tuberculosis", "Lung cancer"]),
    ("Pneumonia\nLung abscess", ["Pneumonia", "Lung abscess"]),
    ("Non-Hodgkin lymphoma - B-cell type", ["Non-Hodgkin lymphoma"]),
    ("Type 2 diabetes mellitus", ["Type 2 diabetes mellitus"]),
    ("1. Type 1 diabetes 2. MODY", ["Type 1 diabetes", "MODY"]),
    ("Kawasaki disease (less likely)", ["Kawasaki disease"]),
    ("1. Pneumonia\n2. pneumonia\n3. Empyema", ["Pneumonia", "Empyema"]),  # duplicates dropped
    ("鉴别诊断：\n1、系统性红斑狼疮：多系统受累\n2、类风湿关节炎\n（3）干燥综合征", ["系统性红斑狼疮", "类风湿关节炎", "干燥综合征"]),
    ("①肺结核 ②肺癌 ③结节病", ["肺结核", "肺癌", "结节病"]),
    ("心肌梗死、主动脉夹层；肺栓塞", ["心肌梗死", "主动脉夹层", "肺栓塞"]),
    ("肺炎，肺脓肿，脓胸", ["肺炎", "肺脓肿", "脓胸"]),
    ("1．肺栓塞——D-二聚体升高\n2．气胸", ["肺栓塞", "气胸"]),
    # a header on the same line as item 1 keeps item 1 (the top-ranked diagnosis)
    ("Differential diagnosis: 1. Acute MI\n2. Aortic dissection\n3. PE", ["Acute MI", "Aortic dissection", "PE"]),
    ("鉴别诊断：1. 急性心肌梗死 2. 主动脉夹层 3. 肺栓塞", ["急性心肌梗死", "主动脉夹层", "肺栓塞"]),
    ("考虑:1. 肺炎 2. 肺脓肿", ["肺炎", "肺脓肿"]),  # inline numbering right after a colon
    ("Diagnosis: pneumonia, empyema", ["pneumonia", "empyema"]),
    # a rank label before ':' is cut, the diagnosis after it kept
    ("1. Most likely: Acute myocardial infarction\n2. Alternative: Aortic dissection",
     ["Acute myocardial infarction", "Aortic dissection"]),
    ("最可能诊断：急性心梗\n其他：主动脉夹层", ["急性心梗", "主动脉夹层"]),
    # a bare "Diagnosis"/"诊断" is a header only before ':' or at the end of its line
    ("Diagnosis is pneumonia", ["Diagnosis is pneumonia"]),
    ("Diagnosis pending further workup. Pneumonia, PE", ["Diagnosis pending further workup. Pneumonia", "PE"]),
    ("诊断考虑：肺炎\n鉴别：肺结核、肺癌", ["肺炎", "肺结核", "肺癌"]),
    ("初步诊断：肺炎\n鉴别诊断：肺结核、肺癌", ["肺炎", "肺结核", "肺癌"]),
    ("Diagnosis: pneumonia", ["pneumonia"]),
    ("Differential diagnoses include: pneumonia, PE", ["pneumonia", "PE"]),
    ("Differential diagnoses include:\n1. Pneumonia\n2. PE", ["Pneumonia", "PE"]),
    ("DDx: pneumonia, PE", ["pneumonia", "PE"]),
    ("", []),
    (["  Pneumonia ", "", "Empyema"], ["Pneumonia", "Empyema"]),
    # qualifiers are part of the diagnosis (issue 18); a reason after "because" / "given" is not
    ("1. Pneumonia due to Streptococcus pneumoniae\n2. Heart failure with reduced ejection fraction",
     ["Pneumonia due to Streptococcus pneumoniae", "Heart failure with reduced ejection fraction"]),
    ("Hypercalcemia secondary to sarcoidosis; Lupus given the rash; PE because of the D-dimer",
     ["Hypercalcemia secondary to sarcoidosis", "Lupus", "PE"]),
    ("- Kawasaki disease (less likely (no rash))", ["Kawasaki disease (less likely (no rash))"]),  # nested: not a note
    ("1.   Acute   MI\n\n\n\n2.\tPE", ["Acute MI", "PE"]),  # whitespace runs collapsed
]


@pytest.mark.parametrize("text,expected", CASES)
def test_parse(text, expected) -> None:
    assert parse_ddx(text) == expected


def test_top_ranked_item_is_covered() -> None:
    texts = ["Differential diagnosis: 1. Acute MI\n2. Aortic dissection\n3. PE", "鉴别诊断：1. 急性心肌梗死 2. 主动脉夹层 3. 肺栓塞",
             "1. Most likely: Acute myocardial infarction\n2. Alternative: Aortic dissection"]
    result = score_ddx(texts, ["Acute myocardial infarction", "急性心肌梗死", "Acute myocardial infarction"],
                       languages=["en", "zh", "en"])
    assert result["best_score"] == [5, 5, 5] and result["ddx_coverage"] == 1.0


def test_top_k() -> None:
    text = "\n".join(f"{i}. Diagnosis {i}" for i in range(1, 16))
    assert parse_ddx(text) == [f"Diagnosis {i}" for i in range(1, 11)]
    assert parse_ddx(text, top_k=3) == ["Diagnosis 1", "Diagnosis 2", "Diagnosis 3"]
    with pytest.raises(ValueError):
        parse_ddx(text, top_k=0)


def test_bad_types() -> None:
    with pytest.raises(TypeError):
        parse_ddx(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        parse_ddx(["ok", 3])  # type: ignore[list-item]
