"""DDx list parsing: a model's free-text differential becomes a ranked list of diagnoses.

Accepted shapes: numbered (``1.``, ``2)``, ``(3)``, ``4、``, ``①``), bulleted (``-``, ``*``,
``•``), inline numbering (``1. X 2. Y``), one item per line, or one line separated by
``;`` / ``；`` / ``、`` / ``，`` / ``,``. When a list has markers, unmarked lines
(preambles such as "Differential diagnosis:" and closing remarks) are dropped. The
reason after an item — following `` - ``, `` – ``, `` — ``, ``:`` or ``：`` — is cut,
as are markdown emphasis and a trailing likelihood note in brackets.
"""

from __future__ import annotations

import re
import unicodedata

_MARKER = re.compile(
    r"^\s*(?:\d{1,2}\s*[.)．、:：]|[(（]\d{1,2}[)）]|[-*•·●▪◦+]|#{1,6})\s*(?=\S)"
)
_CIRCLED = re.compile(r"[①-⑳]")
_INLINE_NUMBER = re.compile(r"(?:^|(?<=\s))\d{1,2}[.)．、](?!\d)\s*")
_REASON = re.compile(r"\s+[-–—]+\s+.*$|\s*[–—]+.*$|\s*[:：].*$|\s*(?:because|due to|given|as evidenced by)\b.*$|(?:，|,)\s*(?:因为|由于|考虑|支持).*$", re.I)
_LIKELIHOOD = re.compile(r"\s*[(（\[](?:[^)）\]]*(?:likely|probable|possible|less|most|least|unlikely|可能|首先|其次)[^)）\]]*)[)）\]]\s*$", re.I)
_HEADER = re.compile(r"^(?:differential(?: diagnos[ie]s)?|ddx|鉴别诊断|诊断)\s*[:：]?\s*", re.I)


def _clean(item: str) -> str:
    item = item.replace("**", "").replace("__", "").replace("`", "")
    item = _REASON.sub("", item.strip())
    item = _LIKELIHOOD.sub("", item)
    return item.strip(" \t.。;；,，、*_\"'“”")


def _split_inline(line: str) -> list[str]:
    """"1. X 2. Y 3. Z" on one line becomes one line per number."""
    if len(_INLINE_NUMBER.findall(line)) < 2:
        return [line]
    return re.split(r"(?<=\S)\s+(?=\d{1,2}[.)．、](?!\d))", line)


def _split_line(line: str) -> list[str]:
    line = _HEADER.sub("", line.strip())
    if not re.search(r"[;；、，]", line):
        return line.split(",")
    return [part for piece in re.split(r"[;；]", line) for part in re.split(r"[、，]", piece)]


def parse_ddx(text: str | list[str], top_k: int = 10) -> list[str]:
    """The first ``top_k`` distinct diagnoses in ``text`` (a free-text list or a list of strings).

    >>> parse_ddx("1. Epidural hematoma - lens shaped\\n2. **Subdural hematoma**: crescent")
    ['Epidural hematoma', 'Subdural hematoma']
    >>> parse_ddx("心肌梗死、主动脉夹层；肺栓塞", top_k=2)
    ['心肌梗死', '主动脉夹层']
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if isinstance(text, str):
        text = _CIRCLED.sub(lambda m: f"\n{ord(m[0]) - 0x245F}. ", text)
        text = unicodedata.normalize("NFKC", text).replace("\r", "")
        text = text.replace("**", "").replace("__", "")
        lines = [part for line in text.split("\n") for part in _split_inline(line) if part.strip()]
        marked = [line for line in lines if _MARKER.match(line)]
        if marked:
            raw = [_MARKER.sub("", line, count=1) for line in marked]
        elif len(lines) == 1:
            raw = _split_line(lines[0])
        else:
            raw = [_HEADER.sub("", line.strip()) for line in lines]
            raw = [item for item in raw if item]
    elif isinstance(text, (list, tuple)):
        if not all(isinstance(item, str) for item in text):
            raise TypeError("a DDx list must hold strings")
        raw = list(text)
    else:
        raise TypeError(f"expected a string or a list of strings, got {type(text).__name__}")
    items: list[str] = []
    seen: set[str] = set()
    for item in raw:
        cleaned = _clean(item)
        key = cleaned.casefold()
        if cleaned and key not in seen:
            seen.add(key)
            items.append(cleaned)
    return items[:top_k]
