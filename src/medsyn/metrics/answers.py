"""FDx answer extraction: the option letter a free-text output commits to (DESIGN §5).

Before the rules: an output longer than :data:`MAX_OUTPUT_CHARS` is a parse failure; reasoning
blocks (``<think>…</think>``, ``<thinking>``, ``<reasoning>``, ``<thought>``, ``<reflection>``,
``◁think▷``; an unclosed one runs to the end, text before a lone closing tag is reasoning too) are
dropped and never supply the answer; where answer tags remain (``<answer>B</answer>``,
``<|begin_of_box|>B<|end_of_box|>``) only the last one's content is read.

Rules, in order (the first that decides wins):

1. Explicit answer statements — ``Answer: B``, ``Answer - b``, ``The answer is (B)``, ``The correct
   option is C``, ``I choose B``, ``\\boxed{B}``, ``B is correct``, ``答案：B``, ``答：B``, ``正确选项：C``,
   ``选B``, ``最终诊断：B``, ``B项正确``, ``B选项正确`` — or the same cues followed by an option's full text,
   which wins over its first letter (``Answer: B cell lymphoma`` names that option, not B). When there are
   several, the **last** one is the final answer (models revise: "... so A? No — the answer is C").
2. A reply that *is* a letter (``B``, ``b``, ``(B)``, ``B.``, ``**B**``, ``Option B``, ``B选项``), or whose
   first line starts with one (``B. Chronic subdural hematoma ...``, ``选项B：…``), or a last line that is a
   bare letter after some reasoning.
3. A reply that starts with an option's full text (``Chronic subdural hematoma. The CT ...``).

A lower-case letter, or ``A`` / ``I`` without brackets, may be a word: after a cue it is a letter only where
nothing after it contradicts that reading (the end, punctuation, or "is", "because", ...); otherwise
(``Answer: A subarachnoid hemorrhage``, ``Answer: I am not sure``) an option's text after the article
names the answer, and a statement naming none is not an answer. A letter followed by ``. `` and a
lower-case word (``E. coli``, ``H. pylori``) is an abbreviation unless that text is the letter's option.

Anything else — no answer, two letters in one statement (``B or C``), a letter
outside the options, a letter whose own label names another option (``Answer: B. <text of
option A>`` on that line; a remark on a later line or sentence, or prose after the letter, is
not its label), a copied option list — is a parse failure (``None``): counted wrong and reported,
never guessed.

Every step runs in time linear in the output's length: whitespace runs are collapsed first, and no
pattern nests quantifiers that can match the same text in more than one way.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from medsyn.data.schema import OPTION_LETTERS

MAX_OUTPUT_CHARS = 200_000
"""Longest output read (characters, about 50k tokens); a longer one is a parse failure, never truncated."""

_REASONING_TAG = re.compile(r"<(/?)(?:think|thinking|thought|thoughts|reasoning|reflection)>|◁(/?)think▷", re.I)
_ANSWER_TAG = re.compile(r"<(/?)answer>|<\|(begin|end)_of_box\|>", re.I)
_OPEN_CHARS, _CLOSE_CHARS = "([（【{", ")]）】}"
_LETTER = r"(?<![A-Za-z0-9])(?P<L>[A-J])"
_OPEN = r"[\(\[（【]?"
_CLOSE = r"[\)\]）】]?"
_AFTER = r"(?![A-Za-z0-9\-])"
_ANSWER = rf"{_OPEN}{_LETTER}{_CLOSE}{_AFTER}"
# a second letter right after the first: "B or C", "B/C", "B、C" -> ambiguous (unless it reads as a word)
_SECOND = re.compile(r"[ \t]?(?:,|/|or|and|&|、|，|或|或者|和|与|及)[ \t]?[\(\[（]?(?P<L>[A-J])(?![A-Za-z0-9])", re.I)
# after an article-like letter ("a", "A", "I"), what keeps the letter reading: the end, punctuation, a verb
_LETTER_GOES_ON = re.compile(
    r"$|[ \t]?[^\w\s'’]|\n|[ \t](?:is|was|would|will|seems|appears|fits|because|since|as|given|based|due|being|"
    r"then|here|therefore|it|which|for|option|choice)\b",
    re.I,
)
_ABBREVIATION = re.compile(r"\.[ \t]?[a-z]")  # "E. coli", "H. pylori"
_ANSWER_VERBS = r"(?:is|was|would be|will be|should be|must be)"

_ADV = r"(?:[ \t]+(?:therefore|thus|then|here|clearly|likely|most likely|probably|option|choice|letter))"
_VERB = rf"(?:[ \t]*(?:[:=：>\-–—→]|\n)|[ \t]+{_ANSWER_VERBS})"
_FILL_EN = rf"{_ADV}*{_VERB}+{_ADV}*[ \t]*"
_FILL_ZH = r"\s*(?:(?:[:：】\]）)]|是|为|应为|应是|应该是|应选|选|选择|即|项|的)\s*)*"
_CUE_EN = r"(?:answer|diagnosis|dx|conclusion|(?:correct|right|best|final|appropriate)[ \t]+(?:option|choice))"
_TEXT_CUE_ZH = r"(?:答案|答(?=\s*[:：])|(?<!鉴别)诊断|(?:正确|最佳|最终)(?:的)?选项|选择)"
_CUE_ZH = rf"(?:{_TEXT_CUE_ZH}|选(?!项))"

# Each cue is a regex and the keywords it contains: the text is scanned for the keywords (one regex of
# literals, fast), and the regex is tried only there - anchored at a forward cue's keyword, or in a short window
# ending at a backward cue's keyword (the letter comes first: "B is correct").
_FORWARD_CUES = [
    # "Answer: B", "The final answer is (B)", "most likely diagnosis is B", "Correct option - C"
    (("answer", "diagnos", "dx", "conclusion", "correct", "right", "best", "final", "appropriate"),
     rf"(?<!differential )\b{_CUE_EN}\b{_FILL_EN}{_ANSWER}"),
    (("choos", "chose", "select", "pick", "go with", "going with", "opt for"),
     rf"\b(?:choose|chose|choosing|select|selected|selecting|pick|picked|go with|going with|opt for)\b[ \t]*"
     rf"(?:(?:option|choice|answer)[ \t]*)?{_ANSWER}"),
    (("\\boxed",), r"\\boxed\{[ \t]*(?:\\text(?:bf)?\{[ \t]*)?(?P<L>[A-J])[ \t]*\}"),
    # 答案：B / 答：B / 正确选项：C / 最终诊断：B / 诊断为B / 故选B / 应选择C / 选B
    (("答", "诊断", "选", "正确", "最佳", "最终"), rf"{_CUE_ZH}{_FILL_ZH}{_ANSWER}"),
]
_BACKWARD_CUES = [
    # "B is correct", "Option B is the most likely diagnosis", "(C) is the answer"
    (("correct", "right", "best", "most likely", "final", "answer"),
     rf"(?:\b(?:option|choice)[ \t]*)?{_OPEN}{_LETTER}{_CLOSE}{_AFTER}[ \t]*(?:is|would be|seems)[ \t]+(?:the[ \t]+)?"
     r"(?:correct|right|best|most likely|final|answer)"),
    # B项正确 / 选项B是正确的 / B选项最符合 / B为最佳答案
    (("正确", "最佳", "最可能", "最终", "最符合"),
     rf"(?:选项)?{_OPEN}{_LETTER}{_CLOSE}(?![A-Za-z0-9])\s*(?:选项|项)?\s*(?:是|为)?\s*(?:正确|最佳|最可能|最终|最符合)"),
]
_FORWARD = [(keys, re.compile(p, re.I)) for keys, p in _FORWARD_CUES]
_BACKWARD = [(keys, re.compile(p, re.I)) for keys, p in _BACKWARD_CUES]
_TEXT_CUE = (("answer", "diagnos", "答", "诊断", "选"), re.compile(
    rf"(?:(?<!differential )\b(?:answer|diagnosis)\b{_FILL_EN}|{_TEXT_CUE_ZH}{_FILL_ZH})", re.I
))
_BACKWARD_WINDOW = 40
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_PREFIX = r"(?:(?:option|choice)[ \t]*|选项)?"
_BARE = re.compile(rf"^\W*{_PREFIX}{_OPEN}[ \t]*(?P<L>[A-J])[ \t]*{_CLOSE}(?:[ \t]*选项|项)?\W*$", re.I)
_LEADING = re.compile(
    rf"^\W*?{_PREFIX}[\(\[（【]?(?P<L>[A-J])(?:[\)\]）】]|[.．:：、](?![\dA-Za-z])|[ \t][-–—](?=[ \t]))[ \t]*(?P<rest>.*)$", re.I
)
_NEGATED = re.compile(r"\b(?:not|isn't|is not)\s*$|不是\s*$|排除\s*$", re.I)
_TRIM = " \t\r\n.。,，;；:：!！*_`\"'“”‘’()（）[]【】"
_ARTICLES = ("a ", "an ", "the ")
_DASHES = " \t-–—"
_SENTENCE_END = re.compile(r"[ \t]?[。!！?？]")
_GLOSS_END = re.compile(r"[ \t]?(?:$|[.。;；!！?？(（\[【]|[-–—])")


def _normalize(text: str) -> str:
    """NFKC (full-width letters and colons become ASCII), markdown emphasis removed."""
    text = unicodedata.normalize("NFKC", text)
    return text.replace("**", "").replace("__", "")


def _squeeze(text: str) -> str:
    """Every whitespace run made one character: lines stripped, blank lines dropped, runs of spaces one space."""
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _strip_reasoning(text: str) -> str:
    """``text`` without its reasoning blocks (see the module docstring)."""
    if "<" not in text and "◁" not in text:
        return text
    kept: list[str] = []
    depth, start = 0, 0
    for m in _REASONING_TAG.finditer(text):
        if m[1] or m[2]:  # a closing tag
            if depth == 0:
                kept = []  # the block was opened in the prompt: all before it is reasoning
            depth = max(0, depth - 1)
            if depth == 0:
                start = m.end()
        else:
            if depth == 0:
                kept.append(text[start : m.start()])
            depth += 1
    if depth == 0:
        kept.append(text[start:])
    return "".join(kept)


def _answer_tag_content(text: str) -> str | None:
    """The content of the last answer tag (to its closing tag or the end), or None without one."""
    if "<" not in text:
        return None
    content = None
    for m in _ANSWER_TAG.finditer(text):
        if not m[1] and (m[2] or "").lower() != "end":  # an opening tag
            close = _ANSWER_TAG.search(text, m.end())
            content = text[m.end() : close.start() if close else len(text)]
    return content


def _fold(text: str) -> str:
    return " ".join(_normalize(text).casefold().split()).strip(_TRIM)


@lru_cache(maxsize=4096)
def _folded(options: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_fold(option) for option in options)


@lru_cache(maxsize=4096)
def _by_first_char(options: tuple[str, ...]) -> tuple[dict[str, list[tuple[int, str]]], int]:
    """The folded options by first character, longest first, and the length of text to read for them."""
    index: dict[str, list[tuple[int, str]]] = {}
    for i, opt in sorted(enumerate(_folded(options)), key=lambda o: -len(o[1])):
        if opt:
            index.setdefault(opt[0], []).append((i, opt))
    return index, 2 * max(map(len, options)) + 64


def _option_at(text: str, pos: int, options: list[str] | None, article: bool = False) -> int | None:
    """Index of the longest option whose text starts at ``text[pos:]`` and ends at a boundary."""
    found = _option_and_tail(text, pos, options, article)
    return found[0] if found else None


def _option_and_tail(text: str, pos: int, options: list[str] | None, article: bool = False) -> tuple[int, str] | None:
    """:func:`_option_at` and the (folded) text after the option; ``article`` also skips "a", "an", "the".

    Only a window as long as the longest option (and some leading punctuation) is read, so that calls at
    many positions stay linear in total.
    """
    if not options:
        return None
    index, window = _by_first_char(tuple(options))
    first = text[pos : pos + 8].casefold().lstrip(_TRIM)[:1]
    if first and first not in index and not (article and first in "at"):
        return None  # the common case, decided without reading further
    folded = text[pos : pos + window].casefold().lstrip(_TRIM).split("\n", 1)[0]  # an option ends at its line's end
    heads = [folded]
    if article:
        heads += [folded[len(a):] for a in _ARTICLES if folded.startswith(a)]
    best, best_len = None, 0
    for head in heads:
        for i, opt in index.get(head[:1], ()):
            tail = head[len(opt):]
            if len(opt) > best_len and head.startswith(opt) and (
                not tail.strip() or tail.lstrip()[0] in ".。,，;；:：(（!！" or tail.startswith((" -", " —", " –"))
            ):
                best, best_len = (i, tail), len(opt)
                break
    return best


def _reads_as_letter(text: str, start: int, end: int) -> bool:
    """Whether the letter ``text[start:end]`` is an option letter, not a word ("a", "I")."""
    letter = text[start]
    if (start and text[start - 1] in _OPEN_CHARS) or text[start + 1 : start + 2] in tuple(_CLOSE_CHARS):
        return True
    if _ABBREVIATION.match(text, start + 1):
        return False
    return not (letter.islower() or letter in "AI") or _LETTER_GOES_ON.match(text, end) is not None


def _positions(low: str, keywords: tuple[str, ...]) -> list[int]:
    """Start of every occurrence of any keyword in ``low`` (keywords of one cue never overlap)."""
    return [m.start() for m in _keyword_regex(keywords).finditer(low)]


@lru_cache(maxsize=16)
def _keyword_regex(keywords: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, keywords)))


_NOT_AN_ANSWER = "not an answer"


def _cue_letter(text: str, m: re.Match[str], options: list[str] | None) -> str | None:
    """The letter of a cue match: an option's full text where one starts at the letter ("Answer: B cell
    lymphoma"), None where the text after the letter names another option ("Answer: B. <option A>"),
    :data:`_NOT_AN_ANSWER` where the letter is a word that names no option ("Answer: I am not sure")."""
    start = m.start("L")
    here = _option_at(text, start, options)
    if here is not None and len(_folded(tuple(options or ()))[here]) > 1:
        return OPTION_LETTERS[here]
    letter, end = m["L"].upper(), m.end("L")
    if not _reads_as_letter(text, start, end):
        named = _gloss(text, m.end(), options) if _ABBREVIATION.match(text, start + 1) else None
        if named is not None:
            return letter if OPTION_LETTERS[named] == letter else None  # "B. epidural hematoma"
        after = _option_at(text, end, options)  # the article's noun: "Answer: A subarachnoid hemorrhage"
        if after is None:
            return _NOT_AN_ANSWER
        capital = text[end + 1 : end + 2].isupper()
        return OPTION_LETTERS[after] if OPTION_LETTERS[after] == letter or not capital else None
    named = _gloss(text, m.end(), options)
    return None if named is not None and OPTION_LETTERS[named] != letter else letter


def _gloss(text: str, pos: int, options: list[str] | None) -> int | None:
    """The option whose full text labels a cue letter on its own line ("Answer: B. <text>" ending there or
    at a sentence end, bracket or dash), or None: prose after the letter ("B. Pneumonia, by contrast, ...")
    and anything past a newline or a sentence end right after the letter ("答案：C。肺炎...") is not a label."""
    if not options:
        return None
    line = text[pos : pos + _by_first_char(tuple(options))[1]].split("\n", 1)[0]
    if _SENTENCE_END.match(line):
        return None
    found = _option_and_tail(line.lstrip(_DASHES + "、"), 0, options)
    return found[0] if found and _GLOSS_END.match(found[1]) else None


def _abbreviation(m: re.Match[str], options: list[str] | None) -> bool:
    """Whether a leading letter is an abbreviation ("E. coli sepsis ..."): ". " and a lower-case word that is
    not the letter's own option."""
    if not _ABBREVIATION.match(m.string, m.end("L")):
        return False
    named = _gloss(m["rest"], 0, options)
    return named is None or OPTION_LETTERS[named] != m["L"].upper()


def _second_letter(text: str, pos: int) -> bool:
    """Whether a second option letter follows at ``pos`` ("B or C")."""
    m = _SECOND.match(text, pos)
    return m is not None and _reads_as_letter(text, m.start("L"), m.end())


def _windows(positions: list[int]) -> list[tuple[int, int]]:
    """The spans a backward cue's letter may occupy before its keywords, overlapping ones merged."""
    spans: list[tuple[int, int]] = []
    for pos in sorted(positions):
        start, end = max(0, pos - _BACKWARD_WINDOW), pos + 12
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def _statements(text: str, options: list[str] | None) -> list[tuple[int, re.Match[str], bool]]:
    """Every explicit answer statement, as (position of its end, match, names option text)."""
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
        for start, end in _windows(_positions(low, keywords)):
            for m in regex.finditer(text, start, end):
                matches[m.span()] = m
    found = [(m.end(), m, False) for m in matches.values()]
    if options:
        keywords, regex = _TEXT_CUE
        found += [(m.end() + 1, m, True) for m in (regex.match(text, pos) for pos in _positions(low, keywords)) if m]
    return found


def _last_answer(text: str, options: list[str] | None) -> tuple[bool, str | None]:
    """(whether there is an explicit answer statement, the letter of the last one or None if ambiguous).

    Statements are read from the last backwards; the first that is an answer decides, so a long output
    with many statements costs one regex match per statement, not one reading.
    """
    for _, m, names_text in sorted(_statements(text, options), key=lambda s: s[0], reverse=True):
        if names_text:
            index = _option_at(text, m.end(), options, article=True)
            if index is not None:
                return True, OPTION_LETTERS[index]
            continue
        if _NEGATED.search(text, max(0, m.start() - 12), m.start()):
            continue
        letter = _cue_letter(text, m, options)
        if letter != _NOT_AN_ANSWER:
            return True, None if _second_letter(text, m.end()) else letter
    return False, None


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
    >>> extract_answer("<think>It could be A.</think>") is None
    True
    """
    if not isinstance(text, str):
        raise TypeError(f"expected a string, got {type(text).__name__}")
    if len(text) > MAX_OUTPUT_CHARS:
        return None
    text = _strip_reasoning(_normalize(text))
    tagged = _answer_tag_content(text)
    text = _squeeze(text if tagged is None else tagged)
    if not text:
        return None
    letters = OPTION_LETTERS[: len(options)] if options else OPTION_LETTERS

    def valid(letter: str | None) -> str | None:
        return letter.upper() if letter and letter.upper() in letters else None

    bare = _BARE.match(text)
    if bare:
        return valid(bare["L"])
    stated, letter = _last_answer(text, options)
    if stated:
        return valid(letter)
    lines = text.split("\n")
    led = [m for m in (_LEADING.match(line) for line in lines) if m and not _abbreviation(m, options)]
    if led and led[0].string == lines[0]:
        if len({m["L"].upper() for m in led}) > 1:
            return None  # an option list, not an answer
        letter = valid(led[0]["L"])
        named = _gloss(led[0]["rest"], 0, options)
        if letter and named is not None and OPTION_LETTERS[named] != letter:
            return None  # "B. <text of option C>": contradictory
        return letter
    if len(lines) > 1:
        last = _BARE.match(lines[-1])
        if last:
            return valid(last["L"])
    named = _option_at(text, 0, options)
    return OPTION_LETTERS[named] if named is not None else None
