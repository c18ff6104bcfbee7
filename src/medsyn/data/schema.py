"""The MEDSYN vocabulary and the built dataset's features (DESIGN §3-§5).

Everything that names a clinical-evidence (CE) type, a dataset column or an
evaluation condition imports it from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import datasets

LANGUAGES: tuple[str, ...] = ("en", "zh")

VISUAL_CE_TYPES: tuple[str, ...] = (
    "laboratory",
    "radiography",
    "ct",
    "mri",
    "ultrasound",
    "nuclear_medicine",
    "pathology",
    "electrophysiology",
    "endoscopy",
    "clinical_photo",
    "other",
)
TEXT_CE_TYPES: tuple[str, ...] = ("history", "physical_exam")

OPTION_LETTERS = "ABCDEFGHIJ"
MIN_OPTIONS, MAX_OPTIONS = 2, 10

EVIDENCE_FEATURE = {
    "type": datasets.Value("string"),
    "title": datasets.Value("string"),
    "timepoint": datasets.Value("string"),
    "findings": datasets.Value("string"),
}

FEATURES = datasets.Features(
    {
        "case_id": datasets.Value("string"),
        "language": datasets.Value("string"),
        "source": datasets.Value("string"),
        "specialty": datasets.Value("string"),
        "history": datasets.Value("string"),
        "physical_exam": datasets.Value("string"),
        "images": datasets.List(datasets.Image()),
        "image_evidence": datasets.List(datasets.Value("int32")),
        "evidence": datasets.List(EVIDENCE_FEATURE),
        "evidence_types": datasets.List(datasets.Value("string")),
        "final_diagnosis": datasets.Value("string"),
        "options": datasets.List(datasets.Value("string")),
        "answer": datasets.Value("string"),
    }
)
"""Features of one row of the built dataset, in contract order (DESIGN §4)."""


# --- evaluation conditions (DESIGN §5) -------------------------------------

FULL, TEXT, NO_HISTORY, RANDOM_HISTORY = "full", "text", "no_history", "random_history"
GLOBAL_CONDITIONS: tuple[str, ...] = (FULL, TEXT, NO_HISTORY, RANDOM_HISTORY)


@dataclass(frozen=True)
class Condition:
    """A parsed condition name: ``kind`` is full/text/no_history/random_history/absent/text_type.

    ``text_type`` shows one or more CE types as text findings: ``ce_type`` is ``t1`` or ``t1+t2+…``.
    """

    kind: str
    ce_type: str | None = None

    @property
    def ce_types(self) -> tuple[str, ...]:
        """The CE types the condition names (several only for ``text:<t1>+<t2>+…``)."""
        return tuple(self.ce_type.split("+")) if self.ce_type else ()

    @property
    def name(self) -> str:
        if self.kind == "absent":
            return f"absent:{self.ce_type}"
        if self.kind == "text_type":
            return f"text:{self.ce_type}"
        return self.kind


def parse_condition(name: str) -> Condition:
    """Parse a condition name such as ``full`` or ``absent:ct``; raise ValueError if unknown.

    >>> parse_condition("absent:ct")
    Condition(kind='absent', ce_type='ct')
    >>> parse_condition("text:mri").name
    'text:mri'
    >>> parse_condition("text:ct+mri").ce_types
    ('ct', 'mri')
    """
    if name in GLOBAL_CONDITIONS:
        return Condition(name)
    prefix, sep, ce_type = name.partition(":")
    if sep and prefix in ("absent", "text") and ce_type in VISUAL_CE_TYPES:
        return Condition("absent" if prefix == "absent" else "text_type", ce_type)
    types = ce_type.split("+")
    if sep and prefix == "text" and len(types) > 1 and set(types) <= set(VISUAL_CE_TYPES):
        if len(set(types)) < len(types):
            raise ValueError(f"condition {name!r}: a CE type is named twice")
        return Condition("text_type", ce_type)
    raise ValueError(
        f"unknown condition {name!r}: expected one of {', '.join(GLOBAL_CONDITIONS)}, "
        f"'absent:<type>', 'text:<type>' or 'text:<type>+<type>+…' with <type> in {', '.join(VISUAL_CE_TYPES)}"
    )


def es_conditions(evidence_types: list[str]) -> list[str]:
    """The 1 + 2·|types| conditions of a case's Evidence Sensitivity sweep, in a fixed order.

    >>> es_conditions(["ct", "laboratory"])
    ['full', 'absent:ct', 'text:ct', 'absent:laboratory', 'text:laboratory']
    """
    names = [FULL]
    for ce_type in evidence_types:
        names += [f"absent:{ce_type}", f"text:{ce_type}"]
    return names
