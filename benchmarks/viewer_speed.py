"""Size of view.html of a demo run and the time `medsyn view` takes to write it (limits: 30 MB, 10 s).

    python benchmarks/viewer_speed.py [RUN_DIR]

Without RUN_DIR it runs `medsyn demo` into a temporary folder first. The time is that of
:func:`medsyn.eval.viewer.write_view` in a fresh process (module imports not counted, the lexical
judge's ICD-10 index load counted); it exits with status 1 over a limit.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAX_MB, MAX_S = 30, 10


def main() -> int:
    if len(sys.argv) > 1:
        run = Path(sys.argv[1])
    else:
        run = Path(tempfile.mkdtemp(prefix="medsyn-viewer-")) / "demo"
        subprocess.run([sys.executable, "-m", "medsyn.cli", "demo", "--out", str(run)], check=True, capture_output=True)
    from medsyn.eval.viewer import write_view

    start = time.perf_counter()
    path = write_view(run)
    seconds = time.perf_counter() - start
    mb = path.stat().st_size / 1e6
    print(f"{path}: {mb:.1f} MB, written in {seconds:.1f} s (limits {MAX_MB} MB, {MAX_S} s)")
    return 0 if mb < MAX_MB and seconds < MAX_S else 1


if __name__ == "__main__":
    sys.exit(main())
