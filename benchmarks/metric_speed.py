"""Speed of the scoring core: 100,000 FDx rows and Evidence Sensitivity over 100,000 rows.

Run: ``python benchmarks/metric_speed.py`` (add ``--module`` to time the evaluate module as well,
which adds its Arrow round trip). Inputs are synthetic but shaped like real outputs: bare letters,
short answer statements in English and Chinese, reasoning paragraphs that name several letters before
the final answer, and parse failures; ES rows are 20,000 cases x (full + 2 CE types x absent/text).
Prints one line per measurement, wall-clock and CPU seconds (they differ when other processes share the
machine); the target is under 5 s each on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from medsyn.metrics.scoring import score_fdx
from medsyn.metrics.sensitivity import evidence_sensitivity

N = 100_000
LETTERS = "ABCDE"
REASONING = (
    "The patient is an elderly man on anticoagulation with a subacute decline. Option {x} is unlikely because there "
    "was no lucid interval, and {y} would show blood in the basal cisterns. The crescentic collection crossing suture "
    "lines favours a subdural process. Therefore, the answer is {a}."
)
ZH_REASONING = "选项{x}可能性较低，{y}与影像不符。结合病史与CT表现，故选{a}。"


def fdx_rows(rng: np.random.Generator) -> tuple[list[str], list[str], list[list[str]]]:
    """N (prediction, gold letter, options) rows in a realistic mix of output shapes."""
    options = ["Chronic subdural hematoma", "Epidural hematoma", "Subarachnoid hemorrhage",
               "Normal-pressure hydrocephalus", "Glioblastoma"]
    kinds = rng.choice(6, size=N, p=[0.25, 0.15, 0.1, 0.3, 0.1, 0.1])
    answers = rng.integers(0, 5, size=N)
    others = rng.integers(0, 5, size=(N, 2))
    predictions = []
    for kind, a, (x, y) in zip(kinds.tolist(), answers.tolist(), others.tolist()):
        a, x, y = LETTERS[a], LETTERS[x], LETTERS[y]
        predictions.append(
            [a, f"The answer is ({a}).", f"答案：{a}", REASONING.format(a=a, x=x, y=y),
             ZH_REASONING.format(a=a, x=x, y=y), "I cannot determine the diagnosis from the images."][kind]
        )
    references = [LETTERS[i] for i in rng.integers(0, 5, size=N)]
    return predictions, references, [options] * N


def es_rows(rng: np.random.Generator) -> tuple[list[list[float]], list[int], list[str], list[str]]:
    """N rows: 20,000 cases, each full + absent/text of two CE types, over 5 options."""
    types = ["laboratory", "radiography", "ct", "mri", "pathology"]
    conditions, case_ids = [], []
    for case in range(N // 5):
        t1, t2 = types[case % 5], types[(case + 2) % 5]
        conditions += ["full", f"absent:{t1}", f"text:{t1}", f"absent:{t2}", f"text:{t2}"]
        case_ids += [f"case-{case:05d}"] * 5
    probabilities = rng.dirichlet(np.ones(5), size=N).tolist()
    golds = np.repeat(rng.integers(0, 5, size=N // 5), 5).tolist()
    return probabilities, golds, case_ids, conditions


def timed(label: str, fn, *args, **kwargs):
    start, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    print(f"{label}: {time.perf_counter() - start:.2f} s wall, {time.process_time() - cpu:.2f} s CPU")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="store_true", help="also time the evaluate module")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}, numpy {np.__version__}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    rng = np.random.default_rng(0)
    predictions, references, options = fdx_rows(rng)
    fdx = timed(f"score_fdx, {N:,} rows", score_fdx, predictions, references, options=options)
    print(f"  fdx_accuracy {fdx['fdx_accuracy']:.4f}, parse_failures {fdx['parse_failures']:,}")
    probabilities, golds, case_ids, conditions = es_rows(rng)
    es = timed(f"evidence_sensitivity (js), {N:,} rows", evidence_sensitivity, probabilities, golds, case_ids, conditions)
    print(f"  n_cases {es['n_cases']:,}, es_gap {es['es_gap']:.5f}")
    if args.module:
        from pathlib import Path

        import evaluate

        module_dir = str(Path(__file__).resolve().parents[1] / "metrics" / "medsyn_metric")
        timed(f"evaluate module fdx, {N:,} rows", evaluate.load(module_dir, "fdx").compute,
              predictions=predictions, references=references)
        timed(f"evaluate module evidence_sensitivity, {N:,} rows", evaluate.load(module_dir, "evidence_sensitivity").compute,
              predictions=probabilities, references=golds, case_ids=case_ids, conditions=conditions)


if __name__ == "__main__":
    main()
