"""The leaderboard's data side: load §7 results files, build tables and plots, take submissions.

The Gradio Space (``leaderboard/app.py``) is a thin UI over these functions. Results come from a
local folder (``MEDSYN_RESULTS_DIR``) or a Hub dataset repo (``MEDSYN_RESULTS_REPO``); every file
is checked with :func:`medsyn.metrics.results_schema.validate_results` and a file with problems is left
out of the tables and listed with its problems, never shown half-read.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
from matplotlib.figure import Figure

from medsyn.data.schema import LANGUAGES
from medsyn.metrics.results_schema import OVERALL, RESULT_LANGUAGES, KnownDatasets, validate_results

MAX_SUBMISSION_BYTES = 1_000_000
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese", OVERALL: "Overall"}
REPORTED = "reported in the paper (not reproduced)"

PHYSICIANS: dict[str, Any] = {
    "name": "Senior physicians (reported)",
    "type": "reference",
    "language": "en",
    "dataset": "MEDSYN (paper), English subset",
    "ddx_coverage": 0.7713,
    "fdx_accuracy": 0.7211,
}
"""The paper's published physician reference (English subset); shown as reported, never recomputed."""

SIZE_BUCKETS: dict[str, tuple[float, float] | None] = {
    "< 4B": (0.0, 4.0),
    "4–20B": (4.0, 20.0),
    "20–100B": (20.0, 100.0),
    "≥ 100B": (100.0, math.inf),
    "size not reported": None,
}

COLUMNS = [
    "Model", "Type", "Size (B)", "Dataset", "n",
    "DDx coverage (%)", "DDx CI (%)", "FDx accuracy (%)", "FDx CI (%)", "DDx–FDx gap (pp)",
    "Parse failures", "Judge failures", "ES gap", "ES gap CI", "ES parse failures", "Provenance",
]
COUNT_COLUMNS = {"n", "Parse failures", "Judge failures", "ES parse failures"}
NUMBER_COLUMNS = {"Size (B)", "DDx coverage (%)", "FDx accuracy (%)", "DDx–FDx gap (pp)", "ES gap"} | COUNT_COLUMNS
TYPE_COLOURS = {"open": "tab:blue", "proprietary": "tab:orange", "medical": "tab:green", "reference": "tab:grey"}


@dataclass
class Entry:
    """One valid results file: ``key`` is a unique label for menus, ``source`` its file name."""

    key: str
    source: str
    data: dict


@dataclass
class Board:
    """Every valid results file, plus one line per problem of the files that were left out."""

    entries: list[Entry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def entry(self, key: str) -> Entry | None:
        return next((e for e in self.entries if e.key == key), None)


def block_of(entry: Entry, language: str) -> dict | None:
    """The entry's results for ``language``; for Overall only when it reports every language (a
    one-language run's overall block is that language's, so it is not ranked against whole runs)."""
    results = entry.data["results"]
    if language == OVERALL and not all(lang in results for lang in LANGUAGES):
        return None
    return results.get(language)


# --- loading -----------------------------------------------------------------------------------


def load_folder(folder: str | Path) -> Board:
    """Read every ``*.json`` under ``folder`` (recursively); a missing or empty folder gives an empty board."""
    folder, board = Path(folder), Board()
    if not folder.is_dir():
        return board
    for path in sorted(folder.rglob("*.json")):
        name = path.relative_to(folder).as_posix()
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            board.problems.append(f"{name}: not readable as JSON: {error}")
            continue
        problems = validate_results(obj)
        if problems:
            board.problems += [f"{name}: {line}" for line in problems]
            continue
        board.entries.append(Entry(_unique_key(board, obj), name, obj))
    return board


def _unique_key(board: Board, obj: dict) -> str:
    key = f"{obj['model']['name']} · {obj['dataset']['name']} @ {obj['dataset']['revision'][:8]}"
    taken = {e.key for e in board.entries}
    suffix, candidate = 2, key
    while candidate in taken:
        candidate, suffix = f"{key} ({suffix})", suffix + 1
    return candidate


def load_hub(repo_id: str, revision: str | None = None) -> Board:
    """Download the ``*.json`` files of a Hub dataset repo (or use the cache offline) and load them."""
    from huggingface_hub import snapshot_download

    local = snapshot_download(repo_id, repo_type="dataset", revision=revision, allow_patterns=["*.json", "**/*.json"])
    return load_folder(local)


def load_board(env: Mapping[str, str] = os.environ, default_dir: str | Path = "results") -> Board:
    """The board from ``MEDSYN_RESULTS_DIR``, else ``MEDSYN_RESULTS_REPO`` (a Hub dataset), else ``default_dir``."""
    if env.get("MEDSYN_RESULTS_DIR"):
        return load_folder(env["MEDSYN_RESULTS_DIR"])
    if env.get("MEDSYN_RESULTS_REPO"):
        return load_hub(env["MEDSYN_RESULTS_REPO"], env.get("MEDSYN_RESULTS_REVISION") or None)
    return load_folder(default_dir)


def load_known_datasets(path: str | Path) -> KnownDatasets:
    """Read the revision -> {name, n_cases} mapping; raise ValueError naming the entry that is malformed."""
    mapping = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(mapping, dict):
        raise ValueError(f"{path}: must be an object {{revision: {{name, n_cases}}}}")
    for revision, entry in mapping.items():
        ok = isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get("n_cases"), dict)
        if not ok or not all(isinstance(n, int) and n >= 0 for n in entry["n_cases"].values()):
            raise ValueError(f"{path}: {revision}: must be {{\"name\": str, \"n_cases\": {{language: count}}}}")
    return mapping


# --- tables ------------------------------------------------------------------------------------


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def _ci(ci: list[float] | None, scale: float = 100.0, digits: int = 1) -> str:
    return "" if ci is None else f"{ci[0] * scale:.{digits}f} – {ci[1] * scale:.{digits}f}"


def _row(entry: Entry, language: str) -> dict[str, Any]:
    block, model = block_of(entry, language), entry.data["model"]
    gap = block.get("ddx_fdx_gap")
    return {
        "Model": model["name"],
        "Type": model["type"],
        "Size (B)": model.get("params_b"),
        "Dataset": entry.data["dataset"]["name"],
        "n": block["n"],
        "DDx coverage (%)": _pct(block.get("ddx_coverage")),
        "DDx CI (%)": _ci(block.get("ddx_coverage_ci")),
        "FDx accuracy (%)": _pct(block.get("fdx_accuracy")),
        "FDx CI (%)": _ci(block.get("fdx_accuracy_ci")),
        "DDx–FDx gap (pp)": _pct(gap),
        "Parse failures": block.get("parse_failures"),
        "Judge failures": block.get("judge_failures"),
        "ES gap": None if block.get("es_gap") is None else round(block["es_gap"], 3),
        "ES gap CI": _ci(block.get("es_gap_ci"), scale=1.0, digits=3),
        "ES parse failures": block.get("es_parse_failures"),
        "Provenance": f"results file {entry.source}",
    }


def _physicians_row() -> dict[str, Any]:
    ref = PHYSICIANS
    return {
        "Model": ref["name"], "Type": ref["type"], "Size (B)": None, "Dataset": ref["dataset"], "n": None,
        "DDx coverage (%)": _pct(ref["ddx_coverage"]), "DDx CI (%)": "",
        "FDx accuracy (%)": _pct(ref["fdx_accuracy"]), "FDx CI (%)": "",
        "DDx–FDx gap (pp)": round(100 * (ref["ddx_coverage"] - ref["fdx_accuracy"]), 1),
        "Parse failures": None, "Judge failures": None, "ES gap": None, "ES gap CI": "",
        "ES parse failures": None, "Provenance": REPORTED,
    }


def build_table(board: Board, language: str) -> pd.DataFrame:
    """One row per results file that has ``language`` (plus the physicians' reported row for English).

    Rates are percentages; rows are sorted by FDx accuracy, best first.
    """
    if language not in RESULT_LANGUAGES:
        raise ValueError(f"unknown language {language!r}: expected one of {', '.join(RESULT_LANGUAGES)}")
    rows = [_row(e, language) for e in board.entries if block_of(e, language) is not None]
    if language == PHYSICIANS["language"]:
        rows.append(_physicians_row())
    table = pd.DataFrame(rows, columns=COLUMNS)
    for column in NUMBER_COLUMNS:
        table[column] = pd.to_numeric(table[column]).astype("Int64" if column in COUNT_COLUMNS else "Float64")
    return table.sort_values("FDx accuracy (%)", ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def size_bucket(params_b: float | None) -> str:
    """The size filter's bucket for a parameter count in billions."""
    if params_b is None or pd.isna(params_b):
        return "size not reported"
    return next(name for name, span in SIZE_BUCKETS.items() if span and span[0] <= params_b < span[1])


def filter_table(table: pd.DataFrame, types: list[str], sizes: list[str]) -> pd.DataFrame:
    """Keep rows whose model type is in ``types`` and whose size bucket is in ``sizes``."""
    keep = table["Type"].isin(types) & table["Size (B)"].map(size_bucket).isin(sizes)
    return table[keep].reset_index(drop=True)


def filter_board(board: Board, types: list[str], sizes: list[str]) -> Board:
    """The same filter as :func:`filter_table`, on results files (for the plots)."""
    kept = [e for e in board.entries
            if e.data["model"]["type"] in types and size_bucket(e.data["model"].get("params_b")) in sizes]
    return Board(kept, board.problems)


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """Missing numbers as empty cells for display (NaN would read as a value)."""
    return table.astype(object).where(table.notna(), "")


# --- plots -------------------------------------------------------------------------------------


def _figure(title: str) -> tuple[Figure, Any]:
    fig = Figure(figsize=(7, 5), dpi=100)  # not through pyplot: nothing global keeps it alive
    ax = fig.subplots()
    ax.set_title(title, parse_math=False)
    return fig, ax


def _label(ax: Any, x: float, y: float, text: str) -> None:
    """A model name as literal text (no mathtext: '$' in a name stays a '$')."""
    ax.annotate(text, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8, parse_math=False)


def _empty(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, parse_math=False)


def _errors(value: float, ci: list[float] | None, scale: float) -> list[list[float]] | None:
    """Error-bar lengths below and above ``value``, clipped at 0: a percentile bootstrap interval
    may exclude its point (an ES gap; a rate within the schema's rounding tolerance)."""
    return None if ci is None else [[max(0.0, value - ci[0]) * scale], [max(0.0, ci[1] - value) * scale]]


def plot_ddx_vs_fdx(board: Board, language: str) -> Figure:
    """DDx coverage against FDx accuracy, one point per model, with the diagonal and the physicians."""
    fig, ax = _figure(f"DDx coverage vs FDx accuracy ({LANGUAGE_NAMES[language]})")
    ax.plot([0, 100], [0, 100], ls="--", color="0.6", lw=1, label="DDx coverage = FDx accuracy")
    typed: set[str] = set()
    for entry in board.entries:
        block = block_of(entry, language)
        if not block or block.get("ddx_coverage") is None or block.get("fdx_accuracy") is None:
            continue
        x, y, kind = 100 * block["fdx_accuracy"], 100 * block["ddx_coverage"], entry.data["model"]["type"]
        ax.errorbar(x, y, xerr=_errors(block["fdx_accuracy"], block.get("fdx_accuracy_ci"), 100),
                    yerr=_errors(block["ddx_coverage"], block.get("ddx_coverage_ci"), 100),
                    fmt="o", color=TYPE_COLOURS[kind], capsize=3, alpha=0.85, label=None if kind in typed else kind)
        typed.add(kind)
        _label(ax, x, y, entry.data["model"]["name"])
    ref = PHYSICIANS
    ax.plot(100 * ref["fdx_accuracy"], 100 * ref["ddx_coverage"], marker="*", ms=14, color="crimson", ls="",
            label=f"{ref['name']}, {ref['dataset']}")
    ax.set(xlim=(0, 100), ylim=(0, 100), xlabel="FDx accuracy (%)", ylabel="DDx coverage (%)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_es_by_type(board: Board, key: str | None, language: str) -> Figure:
    """Evidence Sensitivity per CE type for one model: each CE shown as images vs as text findings."""
    entry = board.entry(key) if key else None
    name = entry.data["model"]["name"] if entry else "no model chosen"
    fig, ax = _figure(f"Evidence Sensitivity by CE type: {name} ({LANGUAGE_NAMES[language]})")
    block = block_of(entry, language) if entry else None
    per_type = (block or {}).get("evidence_sensitivity") or {}
    if not per_type:
        _empty(ax, "No Evidence Sensitivity measured for this model and language")
        return fig
    types = list(per_type)
    positions = range(len(types))
    for offset, part, colour in ((-0.2, "image", "tab:purple"), (0.2, "text", "tab:cyan")):
        values = [per_type[t][part] if per_type[t][part] is not None else math.nan for t in types]
        ax.bar([p + offset for p in positions], values, width=0.4, color=colour, label=f"ES as {part}")
    ax.set_xticks(list(positions), types, rotation=30, ha="right")
    ax.set_ylabel("Evidence Sensitivity (divergence)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_es_gap_vs_fdx(board: Board, language: str) -> Figure:
    """ES gap (text − image) against FDx accuracy across models."""
    fig, ax = _figure(f"ES gap vs FDx accuracy ({LANGUAGE_NAMES[language]})")
    shown = 0
    for entry in board.entries:
        block = block_of(entry, language)
        if not block or block.get("es_gap") is None or block.get("fdx_accuracy") is None:
            continue
        x, y = block["es_gap"], 100 * block["fdx_accuracy"]
        ax.errorbar(x, y, xerr=_errors(x, block.get("es_gap_ci"), 1.0),
                    yerr=_errors(block["fdx_accuracy"], block.get("fdx_accuracy_ci"), 100),
                    fmt="o", color=TYPE_COLOURS[entry.data["model"]["type"]], capsize=3, alpha=0.85)
        _label(ax, x, y, entry.data["model"]["name"])
        shown += 1
    if not shown:
        _empty(ax, "No model with both ES gap and FDx accuracy")
    ax.set(xlabel="ES gap = ES text − ES image", ylabel="FDx accuracy (%)")
    fig.tight_layout()
    return fig


# --- submissions -------------------------------------------------------------------------------


def submit(path: str | Path | None, pending_dir: str | Path, known: KnownDatasets,
           max_bytes: int = MAX_SUBMISSION_BYTES) -> tuple[bool, str]:
    """Check an uploaded results file; save an accepted one to ``pending_dir`` for review.

    Returns (accepted, message). Nothing reaches the results folder from here: a maintainer
    reviews the pending file and moves it.
    """
    if not path:
        return False, "Refused: no file was uploaded."
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        return False, f"Refused: the file is {size:,} bytes; the limit is {max_bytes:,} bytes."
    raw = path.read_bytes()
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return False, "Refused: the file is not UTF-8 text."
    except json.JSONDecodeError as error:
        return False, f"Refused: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})."
    problems = validate_results(obj, known)
    if problems:
        lines = "\n".join(f"- {line}" for line in problems)
        return False, f"Refused: {len(problems)} problem(s) in the results file:\n{lines}"
    digest = hashlib.sha256(raw).hexdigest()
    pending = Path(pending_dir)
    pending.mkdir(parents=True, exist_ok=True)
    if any(pending.glob(f"*-{digest[:16]}.json")):
        return False, "Refused: this exact file is already pending review."
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = pending / f"{stamp}-{digest[:16]}.json"
    target.write_bytes(raw)
    model = obj["model"]["name"]
    return True, (f"Accepted for review: {model} on {obj['dataset']['name']} was saved as {target.name}. "
                  "It appears in the leaderboard once a maintainer has reviewed it.")

