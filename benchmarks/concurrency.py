"""Where one tasador worker saturates: ``uv run python -m benchmarks.concurrency``.

Loads ``POST /predecir`` at rising concurrency against one ``tasador serve`` worker with
``fly.toml``'s environment (its request log included: one JSON line per request, as
deployed) and prints requests/s and latency. On a shared machine one sweep is noise, so it
sweeps ``--repeat`` times, each on a fresh server, and reports each level's median.

The fly.toml concurrency limits come from this: the hard limit is the largest concurrency
below the first whose median p99 breaks the latency budget, the soft limit the smallest that reaches
90 % of the peak throughput seen up to the hard limit (more only queues).
"""

import argparse
import json
import statistics
import sys

from app.config import EMBEDDED_MODEL_DIR
from app.schemas import FORMULARIO_EJEMPLO
from benchmarks.load import LoadResult, run_load
from benchmarks.reliability import fly_env
from benchmarks.run import SERVERS, server_process

LEVELS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def sweep(body: bytes, seconds: float, levels: tuple[int, ...]) -> list[LoadResult]:
    """One pass over ``levels`` against a fresh server, warmed up first."""
    rows = []
    with server_process(SERVERS["tasador"], EMBEDDED_MODEL_DIR, fly_env()) as server:
        url = f"{server.url}/predecir"
        run_load(url, body, 4, 2)
        for level in levels:
            result = run_load(url, body, level, seconds)
            rows.append(result)
            print(
                f"c={level:4d}  {result.rps:8,.0f} req/s  p50 {result.p50_ms:7.2f} ms  "
                f"p99 {result.p99_ms:7.2f} ms  errors {result.errors}",
                file=sys.stderr,
            )
    return rows


def main() -> int:
    """Sweep concurrency levels against one worker, several times, and suggest limits."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5, help="load time per level (5)")
    parser.add_argument("--repeat", type=int, default=3, help="sweeps, each a fresh server (3)")
    parser.add_argument("--p99-budget-ms", type=float, default=100)
    parser.add_argument("--levels", type=lambda text: tuple(map(int, text.split(","))),
                        default=LEVELS, help="concurrencies, comma-separated")  # fmt: skip
    args = parser.parse_args()
    body = json.dumps(FORMULARIO_EJEMPLO).encode()
    sweeps = []
    for number in range(1, args.repeat + 1):
        print(f"sweep {number} of {args.repeat}", file=sys.stderr)
        sweeps.append(sweep(body, args.seconds, args.levels))
    print("median of the sweeps:")
    medians = {}
    for index, level in enumerate(args.levels):
        runs = [rows[index] for rows in sweeps]
        rps = statistics.median(r.rps for r in runs)
        p50 = statistics.median(r.p50_ms for r in runs)
        p99 = statistics.median(r.p99_ms for r in runs)
        errors = sum(r.errors for r in runs)
        medians[level] = (rps, p99)
        print(f"c={level:4d}  {rps:8,.0f} req/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  "
              f"(p99 {min(r.p99_ms for r in runs):.2f}-{max(r.p99_ms for r in runs):.2f})  "
              f"errors {errors}")  # fmt: skip
    # The knee: the first level whose p99 breaks the budget; a lower p99 further up (one
    # run that queued differently) does not make more concurrency safe.
    within = [level for level, (_, p99) in medians.items() if p99 <= args.p99_budget_ms]
    breach = min(set(medians) - set(within), default=None)
    hard = max(level for level in within if breach is None or level < breach)
    # The plateau is judged within the hard limit: beyond it one lucky run means nothing.
    peak = max(rps for level, (rps, _) in medians.items() if level <= hard)
    soft = next(level for level, (rps, _) in medians.items() if rps >= 0.9 * peak)
    print(f"peak {peak:,.0f} req/s; soft limit {soft} (90 % of peak); "
          f"hard limit {hard} (p99 <= {args.p99_budget_ms:g} ms)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
