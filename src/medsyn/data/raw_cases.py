"""Validation of raw case folders (DESIGN §3).

Every problem of a folder is collected, never only the first one, and reported as
``<case_id>: <field>: <problem>``, where the case id is the folder's name (the folder holding
the files at fault, whatever id its case.json claims). Nothing is skipped silently.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from medsyn.data.images import ImageError, check_image
from medsyn.data.schema import LANGUAGES, MAX_OPTIONS, MIN_OPTIONS, OPTION_LETTERS, VISUAL_CE_TYPES

CASE_FILE = "case.json"
CASE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
CASE_KEYS = (
    "case_id", "language", "source", "specialty", "text_evidence",
    "visual_evidence", "final_diagnosis", "options", "answer",
)  # fmt: skip
REQUIRED_KEYS = ("case_id", "language", "text_evidence", "visual_evidence", "final_diagnosis", "options", "answer")
TEXT_KEYS = ("history", "physical_exam")
EVIDENCE_KEYS = ("type", "title", "timepoint", "images", "findings")
MAX_JSON_DEPTH = 16
"""A case.json nests 4 levels (case, visual_evidence, item, images); deeper input is refused before it is walked."""
ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
"""Zero-width space, non-joiner, joiner, word joiner and BOM: invisible, so dropped when comparing texts."""


@dataclass(frozen=True)
class Problem:
    case_id: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.case_id}: {self.field}: {self.message}"


@dataclass
class RawDataset:
    """The result of validating a raw folder: the valid cases and every problem found."""

    root: Path
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class InvalidDatasetError(ValueError):
    """A raw folder with problems; ``problems`` holds every one."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


def fold(text: str) -> str:
    """The folding used to compare options and diagnoses: Unicode compatibility forms (NFKC: full-width
    letters, ``（）``), zero-width characters, case and whitespace.

    >>> fold("Ｌｕｎｇ\u200b  Cancer（T1）") == fold("lung cancer(t1)")
    True
    """
    return " ".join(unicodedata.normalize("NFKC", text).translate(ZERO_WIDTH).split()).casefold()


def validate_raw(root: str | Path) -> RawDataset:
    """Validate every case folder under ``root`` and return the cases and all problems."""
    root = Path(root)
    result = RawDataset(root)
    if not root.is_dir():
        result.problems.append(Problem(str(root), "folder", "does not exist or is not a folder"))
        return result
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for hidden in sorted(p for p in root.iterdir() if p.name.startswith(".") and (p / CASE_FILE).is_file()):
        message = "in a hidden folder, which is never built (rename the folder)"
        result.problems.append(Problem(hidden.name, CASE_FILE, message))
    if not folders:
        result.problems.append(Problem(root.name, "folder", "holds no case folders"))
    seen: dict[str, str] = {}
    for folder in folders:
        case, problems = validate_case(folder)
        result.problems += problems
        if case is None:
            continue
        case_id = case.get("case_id")
        if isinstance(case_id, str):
            key = case_id.casefold()
            if key in seen:
                result.problems.append(
                    Problem(folder.name, "case_id", f"duplicate: {case_id!r} is also used by folder {seen[key]!r}")
                )
                continue
            seen[key] = folder.name
        if not problems:
            result.cases[case_id] = case
    return result


def load_raw(root: str | Path) -> dict[str, dict[str, Any]]:
    """The valid cases of ``root`` by id; raise InvalidDatasetError listing every problem."""
    raw = validate_raw(root)
    if raw.problems:
        raise InvalidDatasetError(raw.problems)
    return raw.cases


def validate_case(folder: Path) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Validate one case folder; returns the parsed case (None if unreadable) and its problems."""
    name = folder.name
    path = folder / CASE_FILE
    if not path.is_file():
        return None, [Problem(name, CASE_FILE, "missing")]
    try:
        case = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_JSONObject.from_pairs)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, [Problem(name, CASE_FILE, f"malformed JSON ({exc})")]
    except RecursionError:
        message = f"nested too deeply to parse (a case nests at most {MAX_JSON_DEPTH} levels)"
        return None, [Problem(name, CASE_FILE, message)]
    if not isinstance(case, dict):
        return None, [Problem(name, CASE_FILE, "must hold a JSON object")]
    if _depth(case) > MAX_JSON_DEPTH:
        return None, [Problem(name, CASE_FILE, f"nested more than {MAX_JSON_DEPTH} levels deep")]
    checker = _CaseChecker(folder)
    for field_name, key in _duplicate_keys(case, ""):
        checker.add(field_name, f"duplicate key {key!r} (JSON keeps only the last value)")
    checker.check(case)
    return case, checker.problems


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (iterative: any depth is measured without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            stack += [(child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)]
    return deepest


class _JSONObject(dict):
    """A parsed JSON object that remembers the keys it held more than once."""

    duplicates: tuple[str, ...] = ()

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, Any]]) -> _JSONObject:
        obj = cls(pairs)
        keys = [key for key, _ in pairs]
        obj.duplicates = tuple(dict.fromkeys(key for i, key in enumerate(keys) if key in keys[:i]))
        return obj


def _duplicate_keys(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """(field, key) of every repeated key in a parsed case, in document order."""
    if isinstance(value, dict):
        prefix = f"{where}." if where else ""
        for key in getattr(value, "duplicates", ()):
            yield f"{prefix}{key}", key
        for key, item in value.items():
            yield from _duplicate_keys(item, f"{prefix}{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _duplicate_keys(item, f"{where}[{i}]")


class _CaseChecker:
    """Collects the problems of one case, each labelled with its folder's name (where the files are)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.problems: list[Problem] = []

    def add(self, field_name: str, message: str) -> None:
        self.problems.append(Problem(self.folder.name, field_name, message))

    def check(self, case: dict[str, Any]) -> None:
        self._keys(case, CASE_KEYS, REQUIRED_KEYS, "")
        self._case_id(case.get("case_id"))
        language = case.get("language")
        if "language" in case and language not in LANGUAGES:
            self.add("language", f"unsupported language {language!r} (expected one of {', '.join(LANGUAGES)})")
        for key in ("source", "specialty"):
            if key in case and not isinstance(case[key], str):
                self.add(key, "must be a string")
        self._text_evidence(case.get("text_evidence"))
        self._visual_evidence(case.get("visual_evidence"))
        self._options(case)

    def _keys(self, obj: dict, allowed: tuple[str, ...], required: tuple[str, ...], prefix: str) -> None:
        for key in obj:
            if key not in allowed:
                self.add(f"{prefix}{key}", f"unknown key (allowed: {', '.join(allowed)})")
        for key in required:
            if key not in obj:
                self.add(f"{prefix}{key}", "missing")

    def _string(self, value: Any, field_name: str, *, required: bool) -> str | None:
        if not isinstance(value, str):
            self.add(field_name, "must be a string")
            return None
        if required and not value.strip():
            self.add(field_name, "must not be empty")
            return None
        return value

    def _case_id(self, case_id: Any) -> None:
        if case_id is None:
            return
        if not isinstance(case_id, str) or not CASE_ID_RE.fullmatch(case_id):
            self.add("case_id", f"{case_id!r} must match {CASE_ID_RE.pattern}")
        elif case_id != self.folder.name:
            self.add("case_id", f"{case_id!r} does not match its folder name {self.folder.name!r}")

    def _text_evidence(self, text: Any) -> None:
        if text is None:
            return
        if not isinstance(text, dict):
            self.add("text_evidence", "must be an object with history and physical_exam")
            return
        self._keys(text, TEXT_KEYS, ("history",), "text_evidence.")
        if "history" in text:
            self._string(text["history"], "text_evidence.history", required=True)
        if "physical_exam" in text:
            self._string(text["physical_exam"], "text_evidence.physical_exam", required=False)

    def _visual_evidence(self, items: Any) -> None:
        if items is None:
            return
        if not isinstance(items, list) or not items:
            self.add("visual_evidence", "must be a list with at least one item")
            return
        for i, item in enumerate(items):
            where = f"visual_evidence[{i}]"
            if not isinstance(item, dict):
                self.add(where, "must be an object")
                continue
            self._keys(item, EVIDENCE_KEYS, ("type", "title", "images", "findings"), f"{where}.")
            if "type" in item and item["type"] not in VISUAL_CE_TYPES:
                self.add(f"{where}.type", f"unknown CE type {item['type']!r} (expected one of {', '.join(VISUAL_CE_TYPES)})")
            for key in ("title", "findings"):
                if key in item:
                    self._string(item[key], f"{where}.{key}", required=True)
            if "timepoint" in item:
                self._string(item["timepoint"], f"{where}.timepoint", required=False)
            if "images" in item:
                self._images(item["images"], f"{where}.images")

    def _images(self, images: Any, where: str) -> None:
        if not isinstance(images, list) or not images:
            self.add(where, "must be a non-empty list of file names")
            return
        for j, name in enumerate(images):
            field_name = f"{where}[{j}]"
            if not isinstance(name, str) or not name:
                self.add(field_name, "must be a file name")
                continue
            rel = PurePosixPath(name)
            if rel.is_absolute() or ".." in rel.parts or "\\" in name:
                self.add(field_name, f"{name!r} escapes the case folder (no absolute paths, no '..')")
                continue
            path = self.folder / rel
            if not path.is_file():
                self.add(field_name, f"{name!r} does not exist")
                continue
            if not path.resolve().is_relative_to(self.folder.resolve()):
                self.add(field_name, f"{name!r} is a symbolic link that leaves the case folder")
                continue
            try:
                check_image(path)
            except ImageError as exc:
                self.add(field_name, f"{name!r} {exc}")

    def _options(self, case: dict[str, Any]) -> None:
        options = case.get("options")
        diagnosis = case.get("final_diagnosis")
        if "final_diagnosis" in case:
            diagnosis = self._string(diagnosis, "final_diagnosis", required=True)
        if options is None:
            return
        if not isinstance(options, list) or not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
            self.add("options", f"must be a list of {MIN_OPTIONS} to {MAX_OPTIONS} strings")
            return
        folded: dict[str, int] = {}
        valid = True
        for i, option in enumerate(options):
            if self._string(option, f"options[{i}]", required=True) is None:
                valid = False
                continue
            key = fold(option)
            if key in folded:
                self.add(
                    f"options[{i}]",
                    f"duplicate of options[{folded[key]}] after case and whitespace folding "
                    "(NFKC, zero-width characters dropped)",
                )
                valid = False
            folded.setdefault(key, i)
        answer = case.get("answer")
        if "answer" not in case:
            return
        letters = OPTION_LETTERS[: len(options)]
        if not isinstance(answer, str) or len(answer) != 1 or answer not in letters:
            self.add("answer", f"{answer!r} must be a single letter in {letters[0]}..{letters[-1]}")
            return
        chosen = options[letters.index(answer)]
        if valid and diagnosis is not None and fold(chosen) != fold(diagnosis):
            self.add("answer", f"options[{answer}] is {chosen!r}, not the final_diagnosis {diagnosis!r}")
