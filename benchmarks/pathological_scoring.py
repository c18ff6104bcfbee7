"""Scoring time on pathological model outputs: 10,000 of them through FDx extraction and DDx parsing.

Run: ``python benchmarks/pathological_scoring.py``. Each output is a realistic answer with a degenerate
part of 100 to 5,000 characters (log-uniform) — runs of blank lines, spaces or tabs, nested brackets,
repeated letters, punctuation or answer cues, unclosed reasoning tags, mixed Chinese and English — and one
in 500 is a 1 MB input (over the length limits, refused at once). All go through
``medsyn.metrics.scoring.score_fdx`` and ``medsyn.metrics.ddx.parse_ddx``; the script prints the wall-clock
and CPU seconds, the counts (parse failures, DDx refusals) and the time per kind. The target is under 10 s
in all on a 2-core machine; the code before issue 17 did not finish (a run of 40 blank lines after a cue
took over a minute).
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections import defaultdict

from medsyn.metrics.ddx import DDxInputError, parse_ddx
from medsyn.metrics.scoring import score_fdx

N = 10_000
OPTIONS = ["Chronic subdural hematoma", "Epidural hematoma", "Subarachnoid hemorrhage",
           "Normal-pressure hydrocephalus", "Glioblastoma"]
# each kind: the degenerate unit, repeated to the drawn length, and where the answer goes around it
KINDS = {
    "blank_lines": lambda n: "Final diagnosis:" + "\n" * n + "B",
    "space_runs": lambda n: "1. Epidural hematoma" + " " * n + "2. Subdural hematoma\nAnswer: B",
    "tab_runs": lambda n: "Answer" + "\t" * n + ":\t" * 3 + "B",
    "nested_brackets": lambda n: "Answer: " + "(" * (n // 2) + "B" + ")" * (n // 2),
    "letter_runs": lambda n: "A" * n + " The answer is B.",
    "punctuation_runs": lambda n: "B. Epidural hematoma " + ".-:*" * (n // 4),
    "repeated_cues": lambda n: "The answer is " * (n // 14) + "B",
    "pronoun_loops": lambda n: "Answer: I am not sure.\n" * (n // 23),
    "unclosed_think": lambda n: "<think>" + "Maybe A, maybe C. " * (n // 18),
    "cjk_mixed": lambda n: "答案是选项 answer is a " * (n // 20) + "\n答案：B",
    "ddx_bullets": lambda n: "Differential diagnosis:\n" + "- Pneumonia due to Streptococcus pneumoniae\n" * (n // 44),
}
HUGE = 1_000_000


def outputs(rng: random.Random) -> list[tuple[str, str]]:
    """N (kind, output) pairs; one in 500 a 1 MB input."""
    names = list(KINDS)
    rows = []
    for i in range(N):
        if i % 500 == 0:
            rows.append(("1MB_input", "Answer: B " + "x" * HUGE))
            continue
        kind = names[i % len(names)]
        rows.append((kind, KINDS[kind](int(10 ** rng.uniform(2, 3.7)))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = outputs(random.Random(args.seed))
    per_kind: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    failures: dict[str, int] = defaultdict(int)
    refused = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for kind, text in rows:
        start = time.perf_counter()
        failures[kind] += score_fdx([text], ["B"], [OPTIONS])["parse_failures"]
        try:
            parse_ddx(text)
        except DDxInputError:
            refused += 1
        per_kind[kind] += time.perf_counter() - start
        counts[kind] += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{N} pathological outputs ({sum(map(len, (t for _, t in rows))) / 1e6:.1f} M characters): "
          f"{wall:.2f} s wall, {cpu:.2f} s CPU (load average {os.getloadavg()[0]:.2f}); target < 10 s")
    print(f"FDx parse failures {sum(failures.values())}/{N}; DDx inputs refused as over-long {refused}/{N}")
    for kind in sorted(per_kind, key=per_kind.get, reverse=True):
        print(f"  {kind:18s} {counts[kind]:5d} outputs  {per_kind[kind]:6.2f} s  "
              f"{1000 * per_kind[kind] / counts[kind]:7.2f} ms each  FDx parse failures {failures[kind]}")


if __name__ == "__main__":
    main()
