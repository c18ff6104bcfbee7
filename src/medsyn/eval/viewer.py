"""``medsyn view RUN_DIR``: every sample of a run, case by case, in one self-contained page (RUN_DIR/view.html).

The page is built from the run's ``results.json``, lighteval's details (``RUN_DIR/lighteval/details/*.parquet``)
and the run's dataset (for specialties and CE types; its revision must be the run's, and every stored prompt
must render again from it). Images are shown as the model saw them after the run's image budget, each distinct
image embedded once as a ``data:`` URI. Untrusted text (model outputs, results fields) is escaped with
:func:`html.escape` or travels as JSON in a ``<script type="application/json">`` block with every ``<`` escaped,
and the page's script writes it with ``textContent`` only: the page needs no network and no server.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from medsyn.data.schema import OPTION_LETTERS, parse_condition
from medsyn.eval.prompts import interleave, render
from medsyn.eval.report import (
    SUMMARY_COLUMNS, DdxJudgement, banner, image_budget, judge_ddx, judge_name, subset_counts, summary_cells,
)  # fmt: skip
from medsyn.eval.tasks import length_tokenizer

VIEW_FILE = "view.html"
_KNOWN_METRICS = {"fdx_accuracy", "parse_failures", "ddx_coverage", "ddx_best_score", "judge_failures",
                  "es_image", "es_text", "es_gap", "es_parse_failures"}  # fmt: skip


def write_view(run_dir: Path, dataset: str | Path | None = None) -> Path:
    """Write ``run_dir/view.html``; raise FileNotFoundError / ValueError naming what is missing or inconsistent."""
    run_dir = Path(run_dir)
    results_file = run_dir / "results.json"
    if not results_file.is_file():
        raise FileNotFoundError(f"{run_dir}: no results.json (the --out folder of medsyn eval or medsyn demo)")
    results = json.loads(results_file.read_text(encoding="utf-8"))
    details = load_details(run_dir)
    ddx = [d["doc"]["specific"] | {"text": _text(d["model_response"])} for d in details if d["doc"]["specific"]["task"] == "ddx"]
    cases = _dataset_cases(run_dir, dataset, results)
    data = view_data(results, details, cases, _judge_all(ddx, judge_name(results["judge"])))
    path = run_dir / VIEW_FILE
    path.write_text(render_page(results, data), encoding="utf-8")
    return path


def _judge_all(ddx: list[dict[str, Any]], judge: str) -> dict[tuple[str, str], DdxJudgement]:
    """Each DDx output's items and grades (:func:`medsyn.eval.report.judge_ddx`), by (language, case_id)."""
    return {(d["language"], d["case_id"]): judge_ddx(d["text"], d["final_diagnosis"], d["language"], judge) for d in ddx}


def _text(response: dict[str, Any]) -> str | None:
    return response["text"][0] if response.get("text") else None


def load_details(run_dir: Path) -> list[dict[str, Any]]:
    """lighteval's details of a run, one dict per sample (doc, metric, model_response)."""
    import pyarrow.parquet as pq

    files = sorted((run_dir / "lighteval" / "details").glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{run_dir}: no lighteval details in lighteval/details/*.parquet (a run of medsyn "
                                "eval or demo from this version writes them there)")  # fmt: skip
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def _dataset_cases(run_dir: Path, dataset: str | Path | None, results: dict[str, Any]) -> dict[tuple[str, str], dict]:
    """The run's dataset rows by (language, case_id), without images; the dataset must be the run's revision."""
    import datasets

    from medsyn.data.build import dataset_revision
    from medsyn.data.locations import resolve_dataset

    if dataset is None and (run_dir / "dataset" / "manifest.json").is_file():
        dataset = run_dir / "dataset"
    folder = resolve_dataset(dataset)
    revision, expected = dataset_revision(folder), results["dataset"]["revision"]
    if revision != expected:
        raise ValueError(f"dataset {folder} has revision {revision[:12]} but the run used {results['dataset']['name']} "
                         f"revision {expected[:12]}: pass the run's dataset with --dataset")  # fmt: skip
    rows = {}
    for lang in results["dataset"]["n_cases"]:
        split = datasets.load_dataset(str(folder), lang, split="test").remove_columns("images")
        rows |= {(lang, row["case_id"]): row for row in split}
    return rows


class _Images:
    """Distinct images as data: URIs, after the image budget (``max_pixels``), keyed by content."""

    def __init__(self, max_pixels: int | None) -> None:
        self.max_pixels, self.uris, self._ids = max_pixels, {}, {}

    def add(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if digest not in self._ids:
            from PIL import Image

            image = Image.open(io.BytesIO(data))
            if self.max_pixels is not None and image.width * image.height > self.max_pixels:
                from medsyn.eval.backends.transformers_vlm import fit_to_budget

                buffer = io.BytesIO()
                fit_to_budget(image, self.max_pixels).save(buffer, format="PNG")
                data, mime = buffer.getvalue(), "image/png"
            else:
                mime = Image.MIME[image.format]
            self._ids[digest] = f"i{len(self._ids)}"
            self.uris[self._ids[digest]] = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        return self._ids[digest]


def view_data(results: dict[str, Any], details: list[dict[str, Any]], cases: dict[tuple[str, str], dict],
              judgements: dict[tuple[str, str], DdxJudgement]) -> dict[str, Any]:  # fmt: skip
    """The page's data: its images and, per case, its facts and every sample (prompt, output, scores)."""
    images = _Images(results["image_budget"]["max_pixels"])
    tokenizer = length_tokenizer((results.get("random_history") or {}).get("tokenizer") or "")
    by_case: dict[tuple[str, str], dict[str, Any]] = {}
    for detail in details:
        spec = detail["doc"]["specific"]
        key = (spec["language"], spec["case_id"])
        if key not in cases:
            raise ValueError(f"{spec['case_id']}: in the run's details ({spec['language']}) but not in its dataset")
        row = cases[key]
        case = by_case.setdefault(key, _case_facts(row))
        case["samples"].append(_sample(detail, row, images, judgements, tokenizer))
    for case in by_case.values():
        case["samples"].sort(key=_sample_order)
        fdx = next((s for s in case["samples"] if s["task"] == "fdx" and s["condition"] == "full"), None)
        ddx = next((s for s in case["samples"] if s["task"] == "ddx"), None)
        case["outcome"] = "none" if fdx is None else fdx["outcome"]
        case["judge_failure"] = bool(ddx and ddx["judge_failure"])
    return {"images": images.uris, "cases": sorted(by_case.values(), key=lambda c: (c["language"], c["case_id"]))}


def _case_facts(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "case_id": row["case_id"], "language": row["language"], "specialty": row["specialty"],
        "ce_types": sorted(set(row["evidence_types"])), "final_diagnosis": row["final_diagnosis"],
        "options": list(row["options"]), "answer": row["answer"], "samples": [],
    }  # fmt: skip


def _sample_order(sample: dict[str, Any]) -> tuple:
    task_rank = {"fdx": 0, "ddx": 1, "es": 2}[sample["task"]]
    kind = parse_condition(sample["condition"])
    return task_rank, kind.ce_type or "", ["full", "text", "no_history", "random_history", "absent", "text_type"].index(kind.kind)


def _sample(detail: dict[str, Any], row: dict[str, Any], images: _Images,
            judgements: dict[tuple[str, str], DdxJudgement], tokenizer: Any = None) -> dict[str, Any]:  # fmt: skip
    """One sample of the page: the prompt as segments (text, or an image with its CE type and title), the output, scores."""
    doc, response, metric = detail["doc"], detail["model_response"], detail["metric"] or {}
    spec = doc["specific"]
    prompt = render(row, spec["condition"], spec["task"], length_tokenizer=tokenizer)  # random_history: the run's tokenizer
    where = f"{spec['case_id']} ({spec['task']}, {spec['condition']})"
    if prompt.query != doc["query"]:
        raise ValueError(f"{where}: the prompt in the run's details differs from the one rendered from the dataset")
    stored = doc["images"] or []
    if len(stored) != len(prompt.image_indices):
        raise ValueError(f"{where}: {len(stored)} images stored for {len(prompt.image_indices)} image positions")
    refs = []
    for image, index in zip(stored, prompt.image_indices):
        item = row["evidence"][row["image_evidence"][index]]
        refs.append({"image": images.add(image["bytes"]), "ce_type": item["type"], "title": item["title"]})
    text = _text(response)
    sample = {"task": spec["task"], "condition": spec["condition"], "prompt": interleave(doc["query"], refs), "output": text}
    sample["recorded"] = {k: _plain(v) for k, v in metric.items() if k not in _KNOWN_METRICS}
    if spec["task"] == "fdx":
        sample |= _fdx(text, spec)
    elif spec["task"] == "ddx":
        judged = judgements[(spec["language"], spec["case_id"])]
        failed = bool(metric.get("judge_failures"))
        sample |= {"items": judged.items, "grades": judged.grades, "judge_failure": failed,
                   "judge_message": judged.failure, "best_score": _plain(metric.get("ddx_best_score"))}  # fmt: skip
    else:
        sample |= _es(response, metric.get("es_image") or {}, spec)
    return sample


def _fdx(text: str | None, spec: dict[str, Any]) -> dict[str, Any]:
    from medsyn.metrics.scoring import score_fdx

    extracted = score_fdx([text or ""], [spec["answer"]], [spec["options"]])["extracted"][0]
    if extracted is not None:
        return {"extracted": extracted, "outcome": "correct" if extracted == spec["answer"] else "wrong", "reason": None}
    reason = ("the model wrote nothing" if not (text or "").strip() else
              "no unambiguous answer: no answer statement, bare letter or option text, or several letters")  # fmt: skip
    return {"extracted": None, "outcome": "parse_failure", "reason": reason}


def _es(response: dict[str, Any], record: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """The answer posterior over the option letters, whether it failed, and the letter mass where recorded."""
    from medsyn.metrics.sensitivity import posterior

    probs = posterior(response["logprobs"]) if response.get("logprobs") else None
    mass = {k: _plain(v) for source in (record, response) for k, v in source.items() if "mass" in k}
    return {"letters": list(OPTION_LETTERS[: len(spec["options"])]), "posterior": probs,
            "failed": bool(record.get("failed")), "letter_mass": mass}  # fmt: skip


def _plain(value: Any) -> Any:
    """A JSON value: NaN becomes None (a judge failure's score), bytes are left out."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return None if isinstance(value, bytes) else value


def _asset(name: str) -> str:
    return (resources.files("medsyn.eval") / "viewer_assets" / name).read_text(encoding="utf-8")


def render_page(results: dict[str, Any], data: dict[str, Any]) -> str:
    """The whole page: summary header (escaped), filters, the data as JSON and the script that draws the cases."""
    e = html.escape
    counts = subset_counts(_specifics(data))
    head = "".join(f"<th>{e(c)}</th>" for c in SUMMARY_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in summary_cells(subset, block, counts.get(subset, Counter()))) + "</tr>"
        for subset, block in results["results"].items()
    )
    warning = banner(results)
    model, dataset = results["model"], results["dataset"]
    payload = json.dumps(data, ensure_ascii=False, allow_nan=False).replace("<", "\\u003c")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>MEDSYN run: {e(model['name'])}</title>
<style>{_asset('view.css')}</style></head>
<body>
<header>
<h1>MEDSYN run: {e(model['name'])}</h1>
{f'<p class="banner">{e(warning)}</p>' if warning else ''}
<p>Dataset {e(dataset['name'])} (revision <code>{e(dataset['revision'][:12])}</code>), judge <code>{e(judge_name(results['judge']))}</code>,
{e(image_budget(results))}. Command: <code>{e(results['command'])}</code>. Created {e(results['created_at'])}.</p>
<table class="summary"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
</header>
<nav id="filters"></nav>
<main id="cases"></main>
<script type="application/json" id="medsyn-data">{payload}</script>
<script>{_asset('view.js')}</script>
</body></html>
"""


def _specifics(data: dict[str, Any]):
    """The (task, condition, language) of every sample, for :func:`medsyn.eval.report.subset_counts`."""
    for case in data["cases"]:
        for s in case["samples"]:
            yield {"task": s["task"], "condition": s["condition"], "language": case["language"]}
