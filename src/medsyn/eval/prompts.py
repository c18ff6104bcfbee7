"""Prompt rendering: a case under a condition becomes text with images interleaved (DESIGN §5).

Textual CE comes first, then each visual CE in case order under its title: an image CE
puts its images at that place (``IMAGE_MARK`` in the query), a text CE its findings.
English and Chinese templates are separate and fully localized. ``PROMPT_VERSION``
changes with any change of wording; the snapshot tests pin the rendered text, and
``PROMPT_SNAPSHOT_DIGESTS`` ties each version to its snapshots.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from typing import Any, Sequence, TypeVar

from medsyn.data.schema import NO_HISTORY, OPTION_LETTERS, RANDOM_HISTORY, TEXT, parse_condition

PROMPT_VERSION = 1
PROMPT_SNAPSHOT_DIGESTS = {
    1: "1235a31a8abc982a62fa68b3d453bba05ce3f1c96354a726f16425359f1a579f",
}
"""For each PROMPT_VERSION, the digest of its prompt snapshots: ``LC_ALL=C sha256sum *.txt | sha256sum`` in
tests/snapshots/prompts/. tests/test_prompts.py fails when the snapshots change while PROMPT_VERSION does
not: a prompt change bumps PROMPT_VERSION and records the new digest here (the test prints it)."""
IMAGE_MARK = "<medsyn_image>"
"""Stands in a rendered query where one image goes; backends split on it to interleave images."""

TASKS = ("fdx", "ddx", "es")

TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "intro": "You are an experienced physician. Read the clinical case below, including every piece of clinical evidence, and answer the question.",
        "history": "History",
        "physical_exam": "Physical examination",
        "timepoint": "{title} ({timepoint})",
        "findings": "Findings: {findings}",
        "question_fdx": "Question: What is the most likely final diagnosis?",
        "answer_fdx": "Reason briefly if you wish, then give your final answer on the last line in the form \"Answer: <letter>\".",
        "answer_es": "Answer with the letter of the correct option only.",
        "question_ddx": "Question: Give your differential diagnosis for this patient: up to 10 diagnoses, most likely first, one per line, numbered.",
    },
    "zh": {
        "intro": "你是一名经验丰富的临床医师。请阅读以下病例及其全部临床证据，并回答问题。",
        "history": "病史",
        "physical_exam": "体格检查",
        "timepoint": "{title}（{timepoint}）",
        "findings": "检查所见：{findings}",
        "question_fdx": "问题：该患者最可能的最终诊断是什么？",
        "answer_fdx": "可以先简要分析，最后一行请按“答案：<字母>”的格式给出答案。",
        "answer_es": "请只回答正确选项的字母。",
        "question_ddx": "问题：请给出该患者的鉴别诊断：最多10个，按可能性从高到低排列，每行一个并编号。",
    },
}


@dataclass(frozen=True)
class RenderedPrompt:
    """A rendered query (with IMAGE_MARK at each image position) and the dataset images it shows.

    ``spans``: each block's (start, end, label) in ``query``; the label is ``intro``, ``history``,
    ``physical_exam``, a visual CE type (one block per CE item) or ``question``.
    """

    query: str
    image_indices: list[int]
    spans: tuple[tuple[int, int, str], ...] = ()
    length_ratio: float | None = None
    """``random_history`` only: the replacement's token length over the textual CE's (None when that is empty)."""

    def images(self, row: dict[str, Any]) -> list[Any]:
        return [row["images"][i] for i in self.image_indices]


def render(
    row: dict[str, Any], condition: str = "full", task: str = "fdx", seed: int = 0, length_tokenizer: Any = None
) -> RenderedPrompt:
    """Render a dataset row (DESIGN §4) for ``task`` (fdx/ddx/es) under ``condition`` (DESIGN §5).

    ``length_tokenizer``: the evaluated model's tokenizer, in whose tokens ``random_history`` matches the
    length of the textual CE (without one, the model-independent :func:`token_length`).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    parsed = parse_condition(condition)
    lang = row["language"]
    if lang not in TEMPLATES:
        raise ValueError(f"{row['case_id']}: language: no template for {lang!r}")
    t = TEMPLATES[lang]
    blocks, labels = [t["intro"]], ["intro"]
    history, exam, length_ratio = row["history"], row["physical_exam"], None
    if parsed.kind == RANDOM_HISTORY:
        history = random_tokens_like(history, lang, f"{seed}:{row['case_id']}:history", length_tokenizer)
        exam = random_tokens_like(exam, lang, f"{seed}:{row['case_id']}:physical_exam", length_tokenizer)
        count = token_length if length_tokenizer is None else lambda text: model_token_length(text, length_tokenizer)
        before = count(row["history"]) + count(row["physical_exam"])
        length_ratio = (count(history) + count(exam)) / before if before else None
    if parsed.kind != NO_HISTORY:
        blocks.append(f"## {t['history']}\n{history}")
        labels.append("history")
        if exam.strip():
            blocks.append(f"## {t['physical_exam']}\n{exam}")
            labels.append("physical_exam")
    image_indices: list[int] = []
    images_of = _images_by_evidence(row)
    for index, item in enumerate(row["evidence"]):
        if parsed.kind == "absent" and item["type"] == parsed.ce_type:
            continue
        as_text = parsed.kind == TEXT or (parsed.kind == "text_type" and item["type"] in parsed.ce_types)
        title = t["timepoint"].format(**item) if item["timepoint"] else item["title"]
        if as_text:
            body = t["findings"].format(findings=item["findings"])
        else:
            body = "\n".join([IMAGE_MARK] * len(images_of[index]))
            image_indices += images_of[index]
        blocks.append(f"## {title}\n{body}")
        labels.append(item["type"])
    if task == "ddx":
        blocks.append(t["question_ddx"])
    else:
        options = "\n".join(f"{OPTION_LETTERS[i]}. {opt}" for i, opt in enumerate(row["options"]))
        blocks.append(f"{t['question_fdx']}\n{options}\n\n" + (t["answer_fdx"] if task == "fdx" else t["answer_es"]))
    labels.append("question")
    spans, start = [], 0
    for block, label in zip(blocks, labels):
        spans.append((start, start + len(block), label))
        start += len(block) + 2
    return RenderedPrompt("\n\n".join(blocks), image_indices, tuple(spans), length_ratio)


def _images_by_evidence(row: dict[str, Any]) -> list[list[int]]:
    """For each evidence item, the indices of its images in ``row["images"]``."""
    by_item: list[list[int]] = [[] for _ in row["evidence"]]
    for image_index, evidence_index in enumerate(row["image_evidence"]):
        by_item[evidence_index].append(image_index)
    return by_item


_TOKEN_RE = re.compile(r"[\u3400-\u9fff]|\w+|[^\w\s]")


def token_length(text: str) -> int:
    """Model-independent token count: each CJK character, word or punctuation mark is one token.

    >>> token_length("BP 120/80 mm Hg."), token_length("血压120/80")
    (7, 5)
    """
    return len(_TOKEN_RE.findall(text))


def random_tokens_like(text: str, lang: str, key: str, tokenizer: Any = None) -> str:
    """A random token string with the token length of ``text``, seeded by ``key`` (DESIGN §5).

    English: lowercase pseudo-words of 2-8 letters joined by spaces; Chinese: CJK characters. The length is
    counted by :func:`token_length`, or, given a ``tokenizer`` (a transformers tokenizer), in its tokens: the
    longest prefix of a seeded sequence whose token count does not exceed the text's (binary search, so
    O(log n) tokenizations), then as much of the next pseudo-word as still fits.
    """
    rng = random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
    n = token_length(text) if tokenizer is None else model_token_length(text, tokenizer)
    if lang == "zh":
        units, sep = [chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(n)], ""
    else:
        letters = "abcdefghijklmnopqrstuvwxyz"
        units, sep = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 8))) for _ in range(n)], " "
    if tokenizer is None:
        return sep.join(units)
    low, high = 0, len(units)  # every unit costs at least one token, so n units are never too few
    while low < high:
        mid = (low + high + 1) // 2
        if model_token_length(sep.join(units[:mid]), tokenizer) <= n:
            low = mid
        else:
            high = mid - 1
    best = sep.join(units[:low])
    for end in range(1, len(units[low]) + 1 if low < len(units) else 0):  # part of the next pseudo-word, a letter at a time
        longer = f"{best}{sep if best else ''}{units[low][:end]}"
        if model_token_length(longer, tokenizer) > n:
            break
        best = longer
    return best


def model_token_length(text: str, tokenizer: Any) -> int:
    """The number of tokens ``tokenizer`` makes of ``text`` (no special tokens)."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


T = TypeVar("T")


def interleave(query: str, images: Sequence[T]) -> list[str | T]:
    """Split ``query`` on IMAGE_MARK and put ``images`` in the gaps, in order.

    Raises ValueError when the number of marks differs from the number of images.

    >>> interleave("a<medsyn_image>b<medsyn_image>", ["I1", "I2"])
    ['a', 'I1', 'b', 'I2']
    """
    texts = query.split(IMAGE_MARK)
    if len(texts) - 1 != len(images):
        raise ValueError(f"prompt has {len(texts) - 1} image positions but {len(images)} images were given")
    parts: list[str | T] = []
    for i, text in enumerate(texts):
        if text:
            parts.append(text)
        if i < len(images):
            parts.append(images[i])
    return parts
