"""The leaderboard's data side: load §7 results files, build tables and plots, take submissions.

The Gradio Space (``leaderboard/app.py``) is a thin UI over these functions. Results come from a
local folder (``MEDSYN_RESULTS_DIR``, a ``medsyn eval`` output folder included) or a Hub dataset repo
(``MEDSYN_RESULTS_REPO``); only results files written by medsyn are read (:func:`is_results_file`), every one
is checked with :func:`medsyn.metrics.results_schema.validate_results` and a file with problems is left
out of the tables and listed with its problems, never shown half-read: a file that is not JSON, nests
too deep for the parser, or holds a number the parser refuses is one such problem, so one bad file
never stops the Space. Each table comes with the Spearman correlation of ES gap and FDx accuracy
across the models it shows (:func:`correlation_line`). Submissions are checked here and queued for review
through :mod:`medsyn.publish.review`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
from matplotlib.figure import Figure

from medsyn.data.schema import GLOBAL_CONDITIONS, LANGUAGES
from medsyn.metrics.results_schema import OVERALL, RESULT_LANGUAGES, KnownDatasets, validate_results
from medsyn.metrics.stats import es_gap_accuracy_correlation
from medsyn.publish.hub import HubError, endpoint, hub_step, hub_timeout
from medsyn.publish.review import LocalStore, ReviewError, Store, add_submission

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
    "digits": 2,
}
"""The paper's published physician reference (English subset); shown as reported (77.13 %, 72.11 %: percentages
with ``digits`` decimals), never recomputed."""

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
COLUMN_GROUPS: dict[str, list[str]] = {
    "Dataset": ["Dataset", "n"],
    "Intervals": ["DDx CI (%)", "FDx CI (%)", "ES gap CI"],
    "Failures": ["Parse failures", "Judge failures", "ES parse failures"],
    "Provenance": ["Provenance"],
}
"""Columns shown or hidden together (the table's column selector); the rest are always shown."""
DEFAULT_GROUPS = ["Intervals", "Failures"]
"""The groups shown at first: with the scores, they fit a 1400 px window without horizontal scrolling."""
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
    """Read the results files among the ``*.json`` under ``folder`` (recursively; :func:`is_results_file`), so a
    ``medsyn eval`` output folder is a results folder; a missing or empty folder gives an empty board.
    A file that is not readable JSON cannot be told apart, so it is listed as a problem."""
    folder, board = Path(folder), Board()
    if not folder.is_dir():
        return board
    for path in sorted(folder.rglob("*.json")):
        name = path.relative_to(folder).as_posix()
        try:
            obj = parse_json(path.read_bytes())
        except (OSError, ValueError) as error:
            board.problems.append(f"{name}: {error}")
            continue
        if not is_results_file(name, obj):
            continue
        problems = validate_results(obj)
        if problems:
            board.problems += [f"{name}: {line}" for line in problems]
            continue
        board.entries.append(Entry(_unique_key(board, obj), name, obj))
    return board


def is_results_file(name: str, obj: Any) -> bool:
    """A file that medsyn wrote as a results file: named ``results.json``, or an object with ``medsyn_version``.
    Other JSON (a dataset's ``manifest.json``, lighteval's ``results_*.json``, request records) is not one."""
    return Path(name).name == "results.json" or (isinstance(obj, dict) and "medsyn_version" in obj)


def parse_json(raw: bytes) -> Any:
    """The JSON value of a file's bytes; ValueError with a one-line reason when a reader cannot take them:
    not UTF-8, not JSON, nested past the parser's recursion limit, an integer above Python's digit limit."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    except RecursionError:
        raise ValueError("not readable as JSON: nested too deep to parse") from None
    except ValueError as error:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        raise ValueError(f"not readable as JSON: {error}") from None


def _unique_key(board: Board, obj: dict) -> str:
    key = f"{obj['model']['name']} · {obj['dataset']['name']} @ {obj['dataset']['revision'][:8]}"
    taken = {e.key for e in board.entries}
    suffix, candidate = 2, key
    while candidate in taken:
        candidate, suffix = f"{key} ({suffix})", suffix + 1
    return candidate


def load_hub(repo_id: str, revision: str | None = None) -> Board:
    """Download the ``*.json`` files of a Hub dataset repo (or use the cache offline) and load them; when the
    Hub cannot be read, an empty board whose one problem says why (the Space still starts)."""
    from huggingface_hub import get_token, snapshot_download

    try:
        with hub_step(f"reading {repo_id}", get_token() or "", hub_timeout()):
            local = snapshot_download(repo_id, repo_type="dataset", revision=revision, endpoint=endpoint(),
                                      allow_patterns=["*.json", "**/*.json"])
    except HubError as error:
        return Board(problems=[f"the results dataset {repo_id} could not be read: {error}"])
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


def _pct(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(100 * value, digits)


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
    ref, digits = PHYSICIANS, PHYSICIANS["digits"]
    return {
        "Model": ref["name"], "Type": ref["type"], "Size (B)": None, "Dataset": ref["dataset"], "n": None,
        "DDx coverage (%)": _pct(ref["ddx_coverage"], digits), "DDx CI (%)": "",
        "FDx accuracy (%)": _pct(ref["fdx_accuracy"], digits), "FDx CI (%)": "",
        "DDx–FDx gap (pp)": _pct(ref["ddx_coverage"] - ref["fdx_accuracy"], digits),
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


def visible_columns(groups: list[str]) -> list[str]:
    """The table's columns with the chosen :data:`COLUMN_GROUPS` shown, in table order."""
    hidden = {c for group, columns in COLUMN_GROUPS.items() if group not in groups for c in columns}
    return [c for c in COLUMNS if c not in hidden]


def display_table(table: pd.DataFrame, groups: list[str] | None = None) -> pd.DataFrame:
    """The columns of ``groups`` (every column when None); missing numbers as empty cells (NaN would read as a value)."""
    table = table if groups is None else table[visible_columns(groups)]
    return table.astype(object).where(table.notna(), "")


def correlation(board: Board, language: str) -> dict[str, Any]:
    """Spearman's rho of ES gap and FDx accuracy across the board's models that have both (``n``), with its
    95 % interval and p-value (:func:`medsyn.metrics.stats.spearman`); rho is None below 3 models."""
    blocks = [block_of(entry, language) for entry in board.entries]
    return es_gap_accuracy_correlation([block for block in blocks if block is not None])


def correlation_line(board: Board, language: str) -> str:
    """The line under a table, over the models of ``board`` (pass the filtered board: the rows shown)."""
    r = correlation(board, language)
    what = "Spearman ρ of ES gap and FDx accuracy"
    if r["rho"] is None:
        return (f"{what}: n/a ({r['n']} model(s) shown with both; it needs at least 3, "
                "with differing values).")
    ci = "n/a at |ρ| = 1 or below 4 models" if r["ci"] is None else f"{r['ci'][0]:.2f} to {r['ci'][1]:.2f}"
    return f"{what} over the {r['n']} models shown with both: {r['rho']:.2f} (95 % CI {ci}; p = {r['p_value']:.2g})."


# --- one model in detail ----------------------------------------------------------------------


def _num(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def es_detail(entry: Entry, language: str) -> pd.DataFrame:
    """Evidence Sensitivity per CE type (as images, as text, the gap), then the macro mean with its interval
    (results files record the interval of the mean gap only)."""
    block = block_of(entry, language) or {}
    rows = [[ce, _num(v["image"]), _num(v["text"]), _num(v["gap"]), ""]
            for ce, v in (block.get("evidence_sensitivity") or {}).items()]
    if block.get("es_gap") is not None:
        rows.append(["macro mean", _num(block.get("es_image")), _num(block.get("es_text")), _num(block["es_gap"]),
                     _ci(block.get("es_gap_ci"), scale=1.0, digits=3)])
    return pd.DataFrame(rows, columns=["CE type", "ES as images", "ES as text", "ES gap (text − images)", "ES gap CI"])


def conditions_detail(entry: Entry, language: str) -> pd.DataFrame:
    """FDx accuracy (%) per condition: full, text, no_history, random_history ("not run" when absent)."""
    conditions = (block_of(entry, language) or {}).get("conditions") or {}
    names = [*GLOBAL_CONDITIONS, *(c for c in conditions if c not in GLOBAL_CONDITIONS)]
    values = [("not run" if conditions.get(c) is None else f"{100 * conditions[c]:.1f}") for c in names]
    return pd.DataFrame({"Condition": names, "FDx accuracy (%)": values})


def _judge_text(judge: Any) -> str:
    if isinstance(judge, str):
        return judge
    parts = [judge["name"]] + [f"{key} {judge[key]}" for key in ("model", "prompt_version") if judge.get(key)]
    return ", ".join(parts)


def run_detail(entry: Entry, language: str) -> pd.DataFrame:
    """The run behind a row: its failures for ``language``, then the command, judge, image budget and sources."""
    block, data = block_of(entry, language) or {}, entry.data
    count = lambda key: "not measured" if block.get(key) is None else str(block[key])  # noqa: E731
    pixels = (data.get("image_budget") or {}).get("max_pixels")
    rows = [
        ("Cases (n)", str(block.get("n", ""))),
        ("FDx parse failures", count("parse_failures")),
        ("DDx judge failures", count("judge_failures")),
        ("ES parse failures", count("es_parse_failures")),
        ("ES posterior failures", count("posterior_failures")),
        ("Command", data["command"]),
        ("Judge", _judge_text(data["judge"])),
        ("Image budget", "the model's default" if pixels is None else f"max_pixels {pixels:,}"),
        ("Intervals", ", ".join(f"{rate}: {spec['method']}" for rate, spec in (data.get("ci") or {}).items())
         or "not recorded"),
        ("Dataset", f"{data['dataset']['name']} @ {data['dataset']['revision']}"),
        ("Written", f"{data['created_at']} by medsyn {data['medsyn_version']}"),
        ("Results file", entry.source),
    ]
    return pd.DataFrame(rows, columns=["", "value"])


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


def submit(path: str | Path | None, requests: Store | str | Path, known: KnownDatasets, note: str = "",
           max_bytes: int = MAX_SUBMISSION_BYTES) -> tuple[bool, str]:
    """Check an uploaded results file; queue an accepted one as PENDING in ``requests`` (a store, or a local
    folder) with the submitter's ``note``. Returns (accepted, message).

    Nothing reaches the results from here: a maintainer accepts or rejects it (:func:`medsyn.publish.review.review`).
    When the store cannot be written the message says so, and nothing was stored.
    """
    if not path:
        return False, "Refused: no file was uploaded."
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        return False, f"Refused: the file is {size:,} bytes; the limit is {max_bytes:,} bytes."
    raw = path.read_bytes()
    try:
        obj = parse_json(raw)
    except ValueError as error:
        return False, f"Refused: {error}."
    problems = validate_results(obj, known)
    if problems:
        lines = "\n".join(f"- {line}" for line in problems)
        return False, f"Refused: {len(problems)} problem(s) in the results file:\n{lines}"
    store = LocalStore(Path(requests)) if isinstance(requests, (str, Path)) else requests
    try:
        record = add_submission(store, raw, obj, note)
    except ReviewError as error:
        return False, f"Refused: {error}."
    except (HubError, OSError) as error:
        return False, not_saved(error)
    return True, (f"Accepted for review: {record['model']} on {record['dataset']} was saved as submission "
                  f"{record['id']} (status PENDING) in {store.where}. It appears in the leaderboard once a "
                  "maintainer has accepted it; the Submissions tab shows its status.")


def not_saved(error: Exception) -> str:
    """The submitter's message when the requests dataset could not be written."""
    return f"Not saved: {error}. Nothing was stored; please submit the file again later."
