"""DDx list parsing: a model's free-text differential becomes a ranked list of diagnoses.

Accepted shapes: numbered (``1.``, ``2)``, ``(3)``, ``4、``, ``①``), bulleted (``-``, ``*``,
``•``), inline numbering (``1. X 2. Y``), one item per line, or one line separated by
``;`` / ``；`` / ``、`` / ``，`` / ``,``. A header ("Differential diagnosis:", "DDx include",
"鉴别诊断："; a bare "Diagnosis" or "诊断" only before ``:`` or at the end of its line) is cut from
the start of its line, so an item on the same line is kept. When a list has
markers, unmarked lines (preambles and closing remarks) are dropped. The reason after an
item — following `` - ``, `` – ``, `` — ``, ``:`` or ``：``, or "because", "given", "as evidenced by" — is cut,
as are markdown emphasis and a trailing likelihood note in brackets; a qualifier that is part of the
diagnosis ("Pneumonia due to Streptococcus pneumoniae", "Heart failure with reduced ejection fraction",
"X secondary to Y") is kept. A rank label before ``:`` ("Most likely: X", "其他：X") is cut instead, and the
text after it kept.

Parsing runs in time linear in the input's length (whitespace runs are collapsed first); an input longer
than :data:`MAX_DDX_CHARS` raises :class:`DDxInputError` rather than being truncated.
"""

from __future__ import annotations

import re
import unicodedata

MAX_DDX_CHARS = 200_000
"""Longest DDx output parsed (characters); a longer one raises :class:`DDxInputError`."""


class DDxInputError(ValueError):
    """A DDx output the parser refuses (longer than :data:`MAX_DDX_CHARS`): the case cannot be judged."""

_MARKER = re.compile(
    r"^\s*(?:\d{1,2}\s*[.)．、:：]|[(（]\d{1,2}[)）]|[-*•·●▪◦+]|#{1,6})\s*(?=\S)"
)
_CIRCLED = re.compile(r"[①-⑳]")
_NUMBER = r"\d{1,2}[.)．、](?!\d)"
_INLINE_NUMBER = re.compile(rf"(?:^|(?<=[\s:：])){_NUMBER}\s*")
_INLINE_SPLIT = re.compile(rf"(?<=\S)\s+(?={_NUMBER})|(?<=[:：])\s*(?={_NUMBER})")
_REASON = re.compile(
    r" [-–—]+ .*$| ?[–—]+.*$| ?[:：].*$|(?:, ?| )(?:because|given|as evidenced by)\b.*$|(?:，|,) ?(?:因为|由于|考虑|支持).*$", re.I
)
_LIKELY = re.compile(r"likely|probable|possible|less|most|least|unlikely|可能|首先|其次", re.I)
_CLOSING = {")": "(", "）": "（", "]": "["}
_DIFFERENTIAL = r"(?:differential(?:\s+diagnos[ie]s)?|ddx)"
# a header needs ':' or the end of its line ("Diagnosis is pneumonia" is no header), except "DDx include X"
_HEADER = re.compile(
    rf"^(?:{_DIFFERENTIAL}(?:\s+(?:of|for|in)\b[^:：\n]*)?(?:\s+(?:includes?|are))?\s*(?:[:：]\s*|$)"
    rf"|{_DIFFERENTIAL}\s+(?:includes?|are)\s+|(?:diagnos[ie]s|鉴别诊断|诊断)\s*(?:[:：]\s*|$))",
    re.I,
)
_LABEL = re.compile(
    r"^(?:(?:most|more|less|least)\s+likely|likely|alternatives?|differentials?|others?|consider|"
    r"leading|top|working|first|second|third|最可能|最有可能|可能性较小|可能|其他|其它|其次|次要|首先考虑|诊断考虑|考虑|初步|鉴别|需排除|排除)"
    r"(?:\s+(?:diagnos[ie]s|dx|choice))?(?:诊断)?\s*[:：]\s*(?=\S)",
    re.I,
)


def _clean(item: str) -> str:
    item = item.replace("**", "").replace("__", "").replace("`", "")
    item = _REASON.sub("", _LABEL.sub("", item.strip()))
    return _drop_likelihood(item).strip(" \t.。;；,，、*_\"'“”")


def _drop_likelihood(item: str) -> str:
    """``item`` without a trailing likelihood note in brackets ("(less likely)", "（可能性大）")."""
    item = item.rstrip()
    opening = _CLOSING.get(item[-1:])
    if opening is None:
        return item
    start = item.rfind(opening)
    note = item[start + 1 : -1]
    if start < 0 or any(c in note for c in "()（）[]") or not _LIKELY.search(note):
        return item
    return item[:start].rstrip()


def _split_inline(line: str) -> list[str]:
    """"1. X 2. Y 3. Z" on one line becomes one line per number."""
    if len(_INLINE_NUMBER.findall(line)) < 2:
        return [line]
    return [part for part in _INLINE_SPLIT.split(line) if part.strip()]


def _split_line(line: str) -> list[str]:
    if not re.search(r"[;；、，]", line):
        return line.split(",")
    return [part for piece in re.split(r"[;；]", line) for part in re.split(r"[、，]", piece)]


def _squeeze(text: str) -> str:
    """Each line's whitespace runs made one space and blank lines dropped (no pattern meets a long run)."""
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _check_length(text: object) -> None:
    if isinstance(text, str):
        size = len(text)
    elif isinstance(text, (list, tuple)):
        size = sum(len(item) for item in text if isinstance(item, str))
    else:
        return
    if size > MAX_DDX_CHARS:
        raise DDxInputError(f"DDx output of {size:,} characters is longer than MAX_DDX_CHARS ({MAX_DDX_CHARS:,}); not parsed")


def parse_ddx(text: str | list[str], top_k: int = 10) -> list[str]:
    """The first ``top_k`` distinct diagnoses in ``text`` (a free-text list or a list of strings).

    Raises DDxInputError for an input longer than :data:`MAX_DDX_CHARS`.

    >>> parse_ddx("1. Epidural hematoma - lens shaped\\n2. **Subdural hematoma**: crescent")
    ['Epidural hematoma', 'Subdural hematoma']
    >>> parse_ddx("心肌梗死、主动脉夹层；肺栓塞", top_k=2)
    ['心肌梗死', '主动脉夹层']
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    _check_length(text)
    if isinstance(text, str):
        text = _CIRCLED.sub(lambda m: f"\n{ord(m[0]) - 0x245F}. ", text)
        text = _squeeze(unicodedata.normalize("NFKC", text).replace("\r", ""))
        text = text.replace("**", "").replace("__", "")
        lines = [part for line in text.split("\n") for part in _split_inline(_HEADER.sub("", line.strip())) if part.strip()]
        marked = [line for line in lines if _MARKER.match(line)]
        if marked:
            raw = [_MARKER.sub("", line, count=1) for line in marked]
        elif len(lines) == 1:
            raw = _split_line(lines[0])
        else:  # one item per line; "鉴别：肺结核、肺癌" lists several
            raw = [part for line in lines for part in re.split(r"[;；、]", line)]
    elif isinstance(text, (list, tuple)):
        if not all(isinstance(item, str) for item in text):
            raise TypeError("a DDx list must hold strings")
        raw = [_squeeze(item) for item in text]
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
