"""Start-up time and resident memory of one worker: ``uv run python -m benchmarks.memory``.

Each figure comes from a fresh process. Prints where the memory goes (Python and the
libraries, then the bundle), the engine as served against the two ONNX Runtime sessions
an earlier version held and against not handing freed memory back, and the time from
``exec`` of ``tasador serve`` to its first ``/ready`` 200, with its resident memory then.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from app.config import EMBEDDED_MODEL_DIR
from tools.process import TASADOR_SERVE, ServerProcess

# Run in a child: resident memory (MB) after each step, as JSON on the last line.
PROBE = """
import ctypes, json, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
steps = {"python": rss()}
import app.main, uvicorn, onnxruntime
steps["imports"] = rss()
from pathlib import Path
from app.bundle.loader import load_bundle
variant, model_dir = sys.argv[1], Path(sys.argv[2])
if variant == "no-trim":
    import app.bundle.loader as loader
    loader.return_freed_memory = lambda: None
bundle = load_bundle(model_dir)
if variant == "two-sessions":  # what tasador held before: a 1-thread and a 2-thread session
    from app.engines.onnx import _options
    options = _options(onnxruntime)
    options.intra_op_num_threads = 2
    extra = onnxruntime.InferenceSession(str(model_dir / "forest.onnx"), options)
    ctypes.CDLL("libc.so.6").malloc_trim(0)
steps["bundle loaded"] = rss()
print(json.dumps(steps))
"""
VARIANTS = ("as served", "no-trim", "two-sessions")


def probe(variant: str, model_dir: Path) -> dict[str, float]:
    """Resident memory after each start-up step, in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, variant, str(model_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    steps: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return steps


def ready(model_dir: Path, runs: int) -> list[dict[str, float]]:
    """Seconds from exec to the first /ready 200, and memory then, for ``runs`` starts."""
    results = []
    for _ in range(runs):
        env = {"TASADOR_MODEL_DIR": str(model_dir), "TASADOR_LOG_LEVEL": "warning"}
        with ServerProcess(TASADOR_SERVE, env=env) as server:
            results.append({"ready_s": server.ready_s, **server.memory_mb()})
    return results


def main(argv: list[str] | None = None) -> int:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--model-dir", type=Path, default=EMBEDDED_MODEL_DIR)
    parser.add_argument("--runs", type=int, default=5, help="starts of tasador serve (5)")
    args = parser.parse_args(argv)

    rows = {variant: probe(variant, args.model_dir) for variant in VARIANTS}
    served = rows["as served"]["bundle loaded"]
    print("| resident memory (MB) | python | + imports | + bundle | vs as served |")
    print("|---|---|---|---|---|")
    for variant, steps in rows.items():
        print(
            f"| {variant} | {steps['python']:.0f} | {steps['imports']:.0f} | "
            f"{steps['bundle loaded']:.0f} | {steps['bundle loaded'] / served:.2f}× |"
        )
    starts = ready(args.model_dir, args.runs)
    print()
    print(
        f"tasador serve, {args.runs} starts: ready after "
        f"{statistics.median(s['ready_s'] for s in starts):.2f} s (median; "
        f"{min(s['ready_s'] for s in starts):.2f} to {max(s['ready_s'] for s in starts):.2f}), "
        f"resident {statistics.median(s['rss_mb'] for s in starts):.0f} MB "
        f"(peak {max(s['peak_rss_mb'] for s in starts):.0f} MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
