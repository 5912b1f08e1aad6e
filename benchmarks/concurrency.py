"""Where one tasador worker saturates: ``uv run python -m benchmarks.concurrency``.

Loads ``POST /predecir`` at rising concurrency and prints requests/s and latency. The
fly.toml concurrency limits come from this: the hard limit is the largest concurrency
whose p99 stays under the latency budget, the soft limit the smallest that reaches 90 %
of the peak throughput seen up to the hard limit (more only queues).
"""

import argparse
import json
import sys

from app.config import EMBEDDED_MODEL_DIR
from app.schemas import FORMULARIO_EJEMPLO
from benchmarks.load import run_load
from benchmarks.run import SERVERS, server_process

LEVELS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def main() -> int:
    """Sweep concurrency levels against one worker and suggest limits."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--p99-budget-ms", type=float, default=100)
    args = parser.parse_args()
    body = json.dumps(FORMULARIO_EJEMPLO).encode()
    rows = []
    with server_process(SERVERS["tasador"], EMBEDDED_MODEL_DIR) as server:
        url = f"{server.url}/predecir"
        run_load(url, body, 4, 2)
        for level in LEVELS:
            result = run_load(url, body, level, args.seconds)
            rows.append(result)
            print(
                f"c={level:4d}  {result.rps:8,.0f} req/s  p50 {result.p50_ms:7.2f} ms  "
                f"p99 {result.p99_ms:7.2f} ms  errors {result.errors}",
                file=sys.stderr,
            )
    hard = max(r.concurrency for r in rows if r.p99_ms <= args.p99_budget_ms)
    # The plateau is judged within the hard limit: beyond it one lucky run means nothing.
    peak = max(r.rps for r in rows if r.concurrency <= hard)
    soft = next(r.concurrency for r in rows if r.rps >= 0.9 * peak)
    print(f"peak {peak:,.0f} req/s; soft limit {soft} (90 % of peak); "
          f"hard limit {hard} (p99 <= {args.p99_budget_ms:g} ms)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
