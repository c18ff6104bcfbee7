"""The lexical DDx judge: offline, deterministic, no model.

English terms are normalized (Unicode NFKC, accents, case, punctuation, British to
American spelling, clinical abbreviations, possessives, plurals), then compared as token
sets and through ICD-10-CM (``simple-icd-10-cm``): two terms that name the same code
(description or inclusion term) are synonyms, and the code hierarchy grades near
misses. Tokens that are not ICD-10-CM words are matched fuzzily (typos). Chinese terms
are normalized with an abbreviation table and compared as strings and character
bigrams; a small glossary maps common Chinese diagnoses to English so mixed-language
lists can be compared. Tables: ``medsyn/metrics/judges/lexicon.json``.

Grades: 5 same term / synonym / same ICD-10-CM code; 4 one term contains the other and
keeps most of its specific words, or one code is an ancestor of the other, or the same
code is reached only after dropping generic modifiers ("chronic", "induced"); 3 closely
related (half the specific words shared, or a shorter term missing much of the
specificity, or sibling codes in one ICD-10-CM category); 2 a shared specific word or the
same ICD-10-CM block; 0 otherwise. Two terms naming different subtypes (a letter or number:
hepatitis A / B, type 1 / 2; primary / secondary) grade at most 3 ("a" is the article except after a
subtype head noun: hepatitis, type, ...); "X secondary to / due to Y" may also reach 4 through Y or
"secondary X"; a Chinese term that differs only by a prefix 非 or 无 (a different disease:
无菌性脑膜炎) grades 2, by 排除 / 已排除 (a denial) 0.
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import simple_icd_10_cm as icd

from medsyn.metrics.judges import JudgeError

_CJK = re.compile(r"[\u3400-\u9fff]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_WORD = re.compile(r"[a-z0-9]+")
_SECONDARY_TO = re.compile(r"\bsecondary[ \t]+to\b")
_CAUSE = re.compile(r"(?P<effect>.*?)\b(?:secondary|due)\s+to\s+(?P<cause>\S.*)$", re.I | re.S)
_ARTICLE = re.compile(r"(?P<before>\b(?P<head>[a-z0-9]+)[ \t]+)?\ba[ \t]+(?=[a-z])")
_PLURAL = re.compile(r"\b([a-z0-9]{3,}[b-hj-np-rtv-z0-9])s\b")


@lru_cache(maxsize=1)
def _lexicon() -> dict[str, Any]:
    text = resources.files("medsyn.metrics.judges").joinpath("lexicon.json").read_text(encoding="utf-8")
    lexicon = json.loads(text)
    keys = sorted(lexicon["abbreviations_en"], key=len, reverse=True)
    lexicon["abbr_en_re"] = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, keys)) + r")(?![\w-])")
    zh_keys = sorted(lexicon["abbreviations_zh"], key=len, reverse=True)
    lexicon["abbr_zh_re"] = re.compile("|".join(map(re.escape, zh_keys)))
    lexicon["stop_en"] = frozenset(lexicon["stopwords_en"])
    lexicon["subtype_heads_en_set"] = frozenset(lexicon["subtype_heads_en"])
    lexicon["qualifiers_en_set"] = frozenset(lexicon["qualifiers_en"])
    lexicon["generic_en_set"] = frozenset(lexicon["generic_en"])
    lexicon["en_zh"] = {en: zh for zh, en in reversed(lexicon["zh_en"].items())}
    return lexicon


def _strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def tokens_en(text: str) -> frozenset[str]:
    """The normalized content tokens of an English term.

    >>> sorted(tokens_en("Haemorrhagic MI, unspecified"))
    ['hemorrhagic', 'infarction', 'myocardial']
    """
    return _tokens_many([text])[0]


def _tokens_many(texts: list[str]) -> list[frozenset[str]]:
    """:func:`tokens_en` of many single-line terms, normalized in one pass over their join."""
    lexicon = _lexicon()
    text = unicodedata.normalize("NFKC", "\n".join(t.replace("\n", " ") for t in texts))
    text = _NON_ASCII.sub(lambda m: _strip_accents(m[0]), text)
    text = lexicon["abbr_en_re"].sub(lambda m: " " + lexicon["abbreviations_en"][m[1]] + " ", text)
    text = text.casefold()
    for british, american in lexicon["spelling"]:
        text = text.replace(british, american)
    text = re.sub(r"['’]s\b|(?<=\w)\(s\)", "", text)
    text = _SECONDARY_TO.sub(" ", text)  # a cause, not the qualifier "secondary"
    text = _ARTICLE.sub(lambda m: _article(m, lexicon["subtype_heads_en_set"]), text)
    text = re.sub(r"\bnon[ \t-]+(?=[a-z])", "non", text)
    text = _PLURAL.sub(r"\1", text)
    stop, synonyms = lexicon["stop_en"], lexicon["synonyms_en"]
    result = []
    for line in text.split("\n"):
        words = set(_WORD.findall(line))
        if not words.isdisjoint(synonyms):
            words = {synonyms.get(w, w) for w in words}
        result.append(frozenset(words - stop))
    return result


def _article(m: re.Match[str], heads: frozenset[str]) -> str:
    """``a`` dropped as the article ("likely a pneumonia"), kept after a subtype head ("hepatitis a virus")."""
    return m[0] if m["head"] in heads else m["before"] or ""


def _expand_zh(match: re.Match[str], table: dict[str, str]) -> str:
    """The expansion of a Chinese abbreviation, unless the match already sits inside it (房颤 in 心房颤动)."""
    short, full = match[0], table[match[0]]
    offset = full.find(short)
    start = match.start() - offset
    if offset >= 0 and start >= 0 and match.string[start : start + len(full)] == full:
        return short
    return full


def normalize_zh(text: str) -> str:
    """A Chinese term folded to its canonical form (abbreviations expanded, hedges stripped)."""
    lexicon = _lexicon()
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[\s\W_]+", "", text)
    text = lexicon["abbr_zh_re"].sub(lambda m: _expand_zh(m, lexicon["abbreviations_zh"]), text)
    for hedge in lexicon["stopwords_zh"]:
        text = text.removeprefix(hedge).removesuffix(hedge)
    return text


@lru_cache(maxsize=1)
def _icd_index() -> tuple[dict[frozenset[str], frozenset[str]], dict[frozenset[str], frozenset[str]], frozenset[str]]:
    """ICD-10-CM codes by the token set of their terms (descriptions and inclusion terms), the
    same keyed by specific tokens only (generic modifiers dropped), and every ICD-10-CM word."""
    codes, terms = [], []
    for code in icd.get_all_codes(True):
        if icd.is_chapter_or_block(code) or icd.is_extended_subcategory(code):
            continue
        for term in [icd.get_description(code), *icd.get_inclusion_term(code)]:
            codes.append(code)
            terms.append(term)
            if "(" in term or "[" in term:  # "(Idiopathic) normal pressure hydrocephalus"
                codes.append(code)
                terms.append(_BRACKETED.sub(" ", term))
    exact: dict[frozenset[str], set[str]] = {}
    near: dict[frozenset[str], set[str]] = {}
    generic = _lexicon()["generic_en_set"]
    for code, key in zip(codes, _tokens_many(terms)):
        if key:
            exact.setdefault(key, set()).add(code)
            if key - generic:
                near.setdefault(key - generic, set()).add(code)
    vocabulary = frozenset().union(*exact)
    return ({k: frozenset(v) for k, v in exact.items()}, {k: frozenset(v) for k, v in near.items()}, vocabulary)


@dataclass(frozen=True)
class _Term:
    tokens: frozenset[str]
    codes: frozenset[str]
    near: bool  # codes found only after dropping generic modifiers

    @property
    def specific(self) -> frozenset[str]:
        return self.tokens - _lexicon()["generic_en_set"] or self.tokens


def _term_en(text: str, fix_typos_towards: frozenset[str] = frozenset()) -> _Term:
    tokens = tokens_en(text)
    exact, near, vocabulary = _icd_index()
    if fix_typos_towards:
        fixed = set()
        for token in tokens:
            if token not in vocabulary and token not in fix_typos_towards and len(token) >= 5:
                close = difflib.get_close_matches(token, sorted(fix_typos_towards), n=1, cutoff=0.85)
                token = close[0] if close else token
            fixed.add(token)
        tokens = frozenset(fixed)
    if tokens in exact:
        return _Term(tokens, exact[tokens], False)
    key = tokens - _lexicon()["generic_en_set"]
    return _Term(tokens, near.get(key, frozenset()), True)


def _icd_grade(gold: frozenset[str], cand: frozenset[str]) -> int:
    if gold & cand:
        return 5
    grade = 0
    for g in gold:
        for c in cand:
            if icd.is_ancestor(g, c) or icd.is_ancestor(c, g):
                return 4
            common = icd.get_nearest_common_ancestor(g, c)
            if common and icd.is_category_or_subcategory(common):
                grade = max(grade, 3)
            elif common and icd.is_block(common):
                grade = max(grade, 2)
    return grade


def grade_en(gold: str, candidate: str) -> int:
    """The 0-5 grade of an English candidate against an English gold diagnosis.

    >>> grade_en("Chronic subdural haematoma", "chronic SDH")
    5
    >>> grade_en("Chronic subdural hematoma", "Epidural hematoma")
    2
    """
    g = _term_en(gold)
    c = _term_en(candidate, fix_typos_towards=g.tokens)
    if not g.tokens or not c.tokens:
        return 0
    if g.tokens == c.tokens:
        return 5
    if _contradicts(g.tokens, c.tokens):
        return min(3, _grade_en_terms(g, c))
    grade = _grade_en_terms(g, c)
    cause = _CAUSE.match(candidate)
    if cause and grade < 4:  # "Bleeding secondary to hemophilia": hemophilia, and a secondary bleeding
        parts = [cause["cause"], "secondary " + cause["effect"]]
        grade = max(grade, min(4, max(grade_en(gold, part) for part in parts)))
    return grade


def _grade_en_terms(g: _Term, c: _Term) -> int:
    """The grade of two different English terms by ICD-10-CM codes and shared specific words."""
    grade = _icd_grade(g.codes, c.codes) if g.codes and c.codes else 0
    if grade == 5 and not (g.near or c.near):
        return 5
    grade = min(grade, 4)  # a match that needed generic modifiers dropped is close, not exact
    gs, cs = g.specific, c.specific
    if g.tokens < c.tokens:
        grade = max(grade, 4)
    elif c.tokens < g.tokens and cs & gs:
        grade = max(grade, 4 if len(cs & gs) / len(gs) >= 0.6 else 3)
    elif len(gs & cs) / len(gs | cs) >= 0.5:
        grade = max(grade, 3)
    elif gs & cs:
        grade = max(grade, 2)
    return grade


def _qualifiers(tokens: frozenset[str]) -> frozenset[str]:
    """Subtype tokens: single letters and numbers (hepatitis B, type 2), primary / secondary."""
    return frozenset(t for t in tokens if len(t) == 1 or t.isdigit() or t in _lexicon()["qualifiers_en_set"])


def _contradicts(a: frozenset[str], b: frozenset[str]) -> bool:
    """Both terms name a subtype and neither's subtypes include the other's (type A / type B)."""
    qa, qb = _qualifiers(a), _qualifiers(b)
    return bool(qa and qb) and not (qa <= qb or qb <= qa)


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} or {text}


def grade_zh(gold: str, candidate: str) -> int:
    """The 0-5 grade of a Chinese candidate against a Chinese gold diagnosis.

    >>> grade_zh("急性心肌梗死", "急性心梗")
    5
    >>> grade_zh("慢性硬膜下血肿", "硬膜下血肿")
    4
    """
    g, c = normalize_zh(gold), normalize_zh(candidate)
    if not g or not c:
        return 0
    for prefix, grade in _lexicon()["negations_zh"].items():
        if g == prefix + c or c == prefix + g:  # 非霍奇金淋巴瘤, 无痛性甲状腺炎: another disease; 排除肺结核 denies it
            return grade
    glossary = _lexicon()["zh_en"]
    if g in glossary and c in glossary and g != c:
        return grade_en(glossary[g], glossary[c])
    g, c = g.replace("性", ""), c.replace("性", "")  # the adjectival 性 is optional: 弥漫(性)大B细胞淋巴瘤
    if g == c:
        return 5
    if g in c or c in g:
        return 4 if min(len(g), len(c)) / max(len(g), len(c)) >= 0.6 else 3
    gb, cb = _bigrams(g), _bigrams(c)
    if 2 * len(gb & cb) / (len(gb) + len(cb)) >= 0.5:
        return 3
    return 2 if (gb & cb) - set(_lexicon()["generic_zh"]) else 0


def _has_words_en(text: str) -> bool:
    """Whether ``text`` holds a Latin letter or a digit once accents are stripped (else nothing to compare)."""
    return _WORD.search(_strip_accents(unicodedata.normalize("NFKC", text)).casefold()) is not None


def _to_english(text: str) -> str | None:
    """An English rendering of a Chinese term from the glossary, or None."""
    return _lexicon()["zh_en"].get(normalize_zh(text))


def _to_chinese(text: str) -> str | None:
    """A Chinese rendering of an English term or abbreviation ("DKA") from the glossary, or None."""
    lexicon = _lexicon()
    term = lexicon["abbreviations_en"].get(text.strip(), text)
    return lexicon["en_zh"].get(" ".join(term.casefold().split()))


class LexicalJudge:
    """Offline deterministic judge (see the module docstring for its grades and limits)."""

    name = "lexical"

    def score(self, gold: str, candidates: list[str], language: str = "en") -> list[int]:
        """One grade in 0..5 per candidate.

        Raises JudgeError when a candidate cannot be compared: it is in another script than the gold and
        the glossary does not bridge them, or it has no word the judge can read (only symbols, or a script
        it does not know, such as Cyrillic against an English gold); its ``partial`` holds the grades of the
        candidates it could compare, None for the others. An English term or abbreviation ("DKA") in a
        Chinese list is bridged to Chinese when the glossary has its expansion.
        """
        gold_zh = bool(_CJK.search(gold))
        gold_en = _to_english(gold) if gold_zh else gold
        scores: list[int | None] = []
        for candidate in candidates:
            cand_zh = bool(_CJK.search(candidate))
            if cand_zh == gold_zh:
                if not (cand_zh or _has_words_en(candidate)):
                    scores.append(None)  # only symbols, or a script the judge does not read
                else:
                    scores.append(grade_zh(gold, candidate) if gold_zh else grade_en(gold, candidate))
                continue
            cand_en = _to_english(candidate) if cand_zh else candidate
            if gold_en is not None and cand_en is not None and _has_words_en(cand_en):
                scores.append(grade_en(gold_en, cand_en))
                continue
            cand_in_zh = _to_chinese(candidate) if gold_zh else None  # DKA in a Chinese list
            scores.append(None if cand_in_zh is None else grade_zh(gold, cand_in_zh))
        missing = [c for c, s in zip(candidates, scores) if s is None]
        if missing:
            raise JudgeError(
                f"lexical judge: gold {gold!r} and {len(missing)} of {len(candidates)} candidates (first {missing[0]!r}) "
                "are in different languages and not in its glossary, or have no words it can read; use an LLM judge",
                partial=scores if len(missing) < len(candidates) else None,
            )
        return [s for s in scores if s is not None]  # every candidate was graded
