"""FDx answer extraction: the option letter a free-text output commits to (DESIGN §5).

Rules, in order (the first that decides wins):

1. Explicit answer statements — ``Answer: B``, ``The answer is (B)``, ``I choose B``,
   ``\\boxed{B}``, ``B is correct``, ``答案：B``, ``选B``, ``最终诊断：B``, ``B项正确`` —
   or the same cues followed by an option's full text, which wins over its first letter
   (``Answer: B cell lymphoma`` names that option, not B). When there are several, the
   **last** one is the final answer (models revise: "... so A? No — the answer is C").
2. A reply that *is* a letter (``B``, ``(B)``, ``B.``, ``**B**``), or whose first line
   starts with one (``B. Chronic subdural hematoma ...``), or a last line that is a
   bare letter after some reasoning.
3. A reply that starts with an option's full text (``Chronic subdural hematoma. The CT ...``).

Anything else — no answer, two letters in one statement (``B or C``), a letter
outside the options, a letter whose own label names another option (``Answer: B. <text of
option A>`` on that line; a remark on a later line or sentence, or prose after the letter, is
not its label), a copied option list, the pronoun ``I`` after a cue (``Answer: I am not sure``,
``B, I think``) — is a parse failure (``None``): counted wrong and reported, never guessed.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from medsyn.data.schema import OPTION_LETTERS

_LETTER = r"(?-i:(?P<L>[A-J]))"
# after a forward cue the pronoun "I" ("Answer: I am not sure", "I'm", "B, I think") is not option I
_PRONOUN_I = (
    r"I(?=['’]|[ \t]+(?i:am|was|have|had|think|thought|believe|guess|feel|suspect|cannot|can|can't|could|"
    r"would|will|won't|shall|should|must|might|may|do|don't|did|didn't|need|lean|prefer|agree|doubt|"
    r"hope|say|see|want|choose|chose|pick|select|go|opt)\b)"
)
_CUE_LETTER = rf"(?-i:(?!{_PRONOUN_I})(?P<L>[A-J]))"
_LOWER_IN_PARENS = r"\((?-i:(?P<l>[a-j]))\)"
_OPEN = r"[\(\[（【]?"
_CLOSE = r"[\)\]）】]?"
_AFTER = r"(?![A-Za-z0-9\-])"
_ANSWER = rf"(?:{_OPEN}{_CUE_LETTER}{_CLOSE}|{_LOWER_IN_PARENS}){_AFTER}"
# a second letter right after the first: "B or C", "B/C", "B、C" -> ambiguous
_SECOND = re.compile(
    rf"\s*(?:,|/|or|and|&|、|，|或|或者|和|与|及)\s*[\(\[（]?(?-i:(?!{_PRONOUN_I})[A-J])(?![A-Za-z0-9])", re.I
)

_ADV = r"(?:\s+(?:therefore|thus|then|here|clearly|likely|most likely|probably|option|choice|letter))"
_VERB = r"(?:\s*[:=：]|\s*\n|\s+(?:is|was|would be|will be|should be|must be))"
_FILL_EN = rf"{_ADV}*{_VERB}+{_ADV}*\s*"
_FILL_ZH = r"\s*(?:\s*(?:[:：】\]）)]|是|为|应为|应是|应该是|应选|选|选择|即|选项|项|为选项)\s*)*"

# Each cue is a regex and the keywords it contains: the text is scanned for the keywords with str.find
# (fast), and the regex is tried only there - anchored at a forward cue's keyword, or in a short window
# ending at a backward cue's keyword (the letter comes first: "B is correct").
_FORWARD_CUES = [
    # "Answer: B", "The final answer is (B)", "most likely diagnosis is B", "Diagnosis: option C"
    (("answer", "diagnos", "dx"), rf"(?<!differential )\b(?:answer|diagnosis|dx)\b{_FILL_EN}{_ANSWER}"),
    (("choos", "chose", "select", "pick", "go with", "going with", "opt for"),
     rf"\b(?:choose|chose|choosing|select|selected|selecting|pick|picked|go with|going with|opt for)\b\s*(?:option|choice|answer)?\s*{_ANSWER}"),
    (("\\boxed",), r"\\boxed\{\s*(?:\\text\{)?\s*(?-i:(?P<L>[A-J]))\s*\}?\s*\}"),
    # 答案：B / 正确答案是B / 最终诊断：B / 诊断为B / 故选B / 应选择C / 选B
    (("答案", "诊断", "选"), rf"(?:答案|(?<!鉴别)诊断|选择|选(?!项)){_FILL_ZH}{_ANSWER}"),
]
_BACKWARD_CUES = [
    # "B is correct", "Option B is the most likely diagnosis", "(C) is the answer"
    (("correct", "right", "best", "most likely", "final", "answer"),
     rf"(?:\b(?:option|choice)\s*)?{_OPEN}{_LETTER}{_CLOSE}{_AFTER}\s*(?:is|would be|seems)\s+(?:the\s+)?"
     r"(?:correct|right|best|most likely|final|answer)"),
    # B项正确 / 选项B是正确的 / B为最佳答案
    (("正确", "最佳", "最可能", "最终"),
     rf"(?:选项)?{_OPEN}{_LETTER}{_CLOSE}(?![A-Za-z0-9])\s*(?:项)?\s*(?:是|为)?\s*(?:正确|最佳|最可能|最终)"),
]
_FORWARD = [(keys, re.compile(p, re.I)) for keys, p in _FORWARD_CUES]
_BACKWARD = [(keys, re.compile(p, re.I)) for keys, p in _BACKWARD_CUES]
_TEXT_CUE = (("answer", "diagnos", "答案", "诊断", "选择"), re.compile(
    rf"(?:(?<!differential )\b(?:answer|diagnosis)\b{_FILL_EN}|(?:答案|(?<!鉴别)诊断|选择){_FILL_ZH})", re.I
))
_BACKWARD_WINDOW = 40
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_BARE = re.compile(rf"^\W*{_OPEN}\s*(?-i:(?P<L>[A-J]))\s*{_CLOSE}\W*$")
_LEADING = re.compile(r"^\W*?[\(\[（【]?(?-i:(?P<L>[A-J]))(?:[\)\]）】]|[.．:：、](?!\d))\s*(?P<rest>.*)$")
_NEGATED = re.compile(r"\b(?:not|isn't|is not)\s*$|不是\s*$|排除\s*$", re.I)
_TRIM = " \t\r\n.。,，;；:：!！*_`\"'“”‘’()（）[]【】"
_DASHES = " \t-–—"
_SENTENCE_END = re.compile(r"\s*[。!！?？]")
_GLOSS_END = re.compile(r"\s*(?:$|[.。;；!！?？(（\[【]|[-–—])")


def _normalize(text: str) -> str:
    """NFKC (full-width letters and colons become ASCII), markdown emphasis removed."""
    text = unicodedata.normalize("NFKC", text)
    return text.replace("**", "").replace("__", "")


def _fold(text: str) -> str:
    return " ".join(_normalize(text).casefold().split()).strip(_TRIM)


@lru_cache(maxsize=4096)
def _folded(options: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_fold(option) for option in options)


def _option_at(text: str, options: list[str] | None) -> int | None:
    """Index of the longest option whose text starts ``text`` and ends at a boundary."""
    found = _option_and_tail(text, options)
    return found[0] if found else None


def _option_and_tail(text: str, options: list[str] | None) -> tuple[int, str] | None:
    """:func:`_option_at` and the (folded) text after the option."""
    if not options:
        return None
    folded = " ".join(text.casefold().split()).lstrip(_TRIM)
    best, best_len = None, 0
    for i, opt in enumerate(_folded(tuple(options))):
        if opt and folded.startswith(opt) and len(opt) > best_len:
            tail = folded[len(opt):]
            if not tail.strip() or tail.lstrip()[0] in ".。,，;；:：(（!！" or tail.startswith((" -", " —", " –")):
                best, best_len = (i, tail), len(opt)
    return best


def _letter(match: re.Match[str]) -> str:
    groups = match.groupdict()
    return (groups.get("L") or groups.get("l") or "").upper()


def _positions(low: str, keywords: tuple[str, ...]) -> list[int]:
    """Start of every occurrence of any keyword in ``low``."""
    found = []
    for keyword in keywords:
        i = low.find(keyword)
        while i >= 0:
            found.append(i)
            i = low.find(keyword, i + 1)
    return found


def _cue_letter(text: str, m: re.Match[str], options: list[str] | None) -> str | None:
    """The letter of a cue match: an option's full text where one starts at the letter ("Answer: B cell
    lymphoma"), None where the text after the letter names another option ("Answer: B. <option A>")."""
    start = m.start("L") if m.groupdict().get("L") else m.start("l")
    here = _option_at(text[start:], options)
    if here is not None and len(_folded(tuple(options))[here]) > 1:
        return OPTION_LETTERS[here]
    letter = _letter(m)
    named = _gloss(text[m.end():], options)
    return None if named is not None and OPTION_LETTERS[named] != letter else letter


def _gloss(after: str, options: list[str] | None) -> int | None:
    """The option whose full text labels a cue letter on its own line ("Answer: B. <text>" ending there or
    at a sentence end, bracket or dash), or None: prose after the letter ("B. Pneumonia, by contrast, ...")
    and anything past a newline or a sentence end right after the letter ("答案：C。肺炎...") is not a label."""
    line = after.split("\n", 1)[0]
    if _SENTENCE_END.match(line):
        return None
    found = _option_and_tail(line.lstrip(_DASHES + "、"), options)
    return found[0] if found and _GLOSS_END.match(found[1]) else None


def _cue_answers(text: str, options: list[str] | None) -> list[tuple[int, str | None]]:
    """(position, letter or None for ambiguous) for every explicit answer statement."""
    low = text.translate(_ASCII_LOWER)
    ascii_only = text.isascii()
    matches: dict[tuple[int, int], re.Match[str]] = {}
    for keywords, regex in _FORWARD:
        if ascii_only and not keywords[0].isascii():
            continue
        for pos in _positions(low, keywords):
            m = regex.match(text, pos)
            if m:
                matches[m.span()] = m
    for keywords, regex in _BACKWARD:
        if ascii_only and not keywords[0].isascii():
            continue
        for pos in _positions(low, keywords):
            for m in regex.finditer(text, max(0, pos - _BACKWARD_WINDOW), pos + 12):
                matches[m.span()] = m
    found: list[tuple[int, str | None]] = []
    for m in matches.values():
        if _NEGATED.search(text, max(0, m.start() - 12), m.start()):
            continue
        ambiguous = _SECOND.match(text, m.end()) is not None
        found.append((m.end(), None if ambiguous else _cue_letter(text, m, options)))
    if options:
        keywords, regex = _TEXT_CUE
        for pos in _positions(low, keywords):
            m = regex.match(text, pos)
            index = _option_at(text[m.end():], options) if m else None
            if index is not None:
                found.append((m.end() + 1, OPTION_LETTERS[index]))
    return found


def extract_answer(text: str, options: list[str] | None = None) -> str | None:
    """The option letter ``text`` commits to, or None for a parse failure.

    ``options`` (the case's option texts) sets the number of letters and lets a reply
    name an option by its text; without it letters A-J are accepted.

    >>> extract_answer("After weighing A and C, the answer is (C).")
    'C'
    >>> extract_answer("答案：B")
    'B'
    >>> extract_answer("Epidural hematoma", ["Subdural hematoma", "Epidural hematoma"])
    'B'
    >>> extract_answer("B or C") is None
    True
    """
    if not isinstance(text, str):
        raise TypeError(f"expected a string, got {type(text).__name__}")
    letters = OPTION_LETTERS[: len(options)] if options else OPTION_LETTERS
    text = _normalize(text).strip()
    if not text:
        return None

    def valid(letter: str | None) -> str | None:
        return letter if letter and letter in letters else None

    bare = _BARE.match(text)
    if bare:
        return valid(bare["L"])
    cues = _cue_answers(text, options)
    if cues:
        return valid(max(cues, key=lambda c: c[0])[1])
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    led = [m for m in (_LEADING.match(line) for line in lines) if m]
    if led and led[0].string == lines[0]:
        if len({m["L"] for m in led}) > 1:
            return None  # an option list, not an answer
        letter = valid(led[0]["L"])
        named = _gloss(led[0]["rest"], options)
        if letter and named is not None and OPTION_LETTERS[named] != letter:
            return None  # "B. <text of option C>": contradictory
        return letter
    if len(lines) > 1:
        last = _BARE.match(lines[-1])
        if last:
            return valid(last["L"])
    named = _option_at(text, options)
    return OPTION_LETTERS[named] if named is not None else None
