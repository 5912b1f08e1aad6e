"""What observability costs a request: ``uv run python -m benchmarks.observability``.

1. In process, one ``POST /predecir`` through the whole ASGI app (middleware, gate, fast
   transport, service; no HTTP), median µs per call: as served by default, with the JSON
   request log (to /dev/null), with tracing on (spans batched to an exporter that drops
   them; every request, or one in ten sampled), and with prometheus-client's multiprocess mode (metrics in memory-mapped files,
   as with several workers); and ``span()`` alone while tracing is off. Each
   configuration runs in a process of its own (multiprocess mode is chosen when
   prometheus-client is imported), in interleaved rounds: the machine is shared.
2. Over HTTP with wrk at c=32, one worker: tasador with logs off (warning level), with
   uvicorn's access log (text format, info) and with the JSON request log (json, info),
   interleaved rounds; requests/s (median of the rounds) and the cost per request of each
   log beside the run without.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

from app.config import EMBEDDED_MODEL_DIR
from app.schemas import FORMULARIO_EJEMPLO
from benchmarks.load import run_load
from benchmarks.run import DOCS, update_docs
from tools.process import TASADOR_SERVE, ServerProcess

IN_PROCESS = (
    "default", "json request log", "tracing on", "tracing on, 1 in 10 sampled",
    "multiprocess metrics",
)  # fmt: skip
# The SDK's own variables: a sampler that records one trace in ten.
SAMPLED = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
PAGE = DOCS / "operations" / "monitoring.md"
MARKS = ("<!-- observability:start -->", "<!-- observability:end -->")
HTTP = {
    "logs off": {"TASADOR_LOG_LEVEL": "warning"},
    "uvicorn access log": {"TASADOR_LOG_LEVEL": "info", "TASADOR_LOG_FORMAT": "text"},
    "JSON request log": {"TASADOR_LOG_LEVEL": "info", "TASADOR_LOG_FORMAT": "json"},
}


def _scope(body: bytes) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/predecir", "raw_path": b"/predecir", "root_path": "",
        "query_string": b"", "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 80),
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    }  # fmt: skip


def one_call_us(config: str, model_dir: Path, calls: int) -> float:
    """Median µs of one /predecir through the ASGI app built for ``config`` (run in a
    process of its own: ``multiprocess metrics`` needs the variable set before import)."""
    from app.bundle.loader import load_bundle
    from app.config import Settings
    from app.main import create_app

    settings: dict[str, Any] = {"model_dir": model_dir, "log_level": "info"}
    exporter = None
    if config == "json request log":
        settings["log_format"] = "json"
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - put back below
    elif config.startswith("tracing on"):
        from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

        class Drop(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:  # noqa: ARG002
                return SpanExportResult.SUCCESS

        exporter = Drop()
    app = create_app(Settings(**settings), load_bundle(model_dir), span_exporter=exporter)
    body = json.dumps(FORMULARIO_EJEMPLO).encode()
    scope = _scope(body)
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def run() -> list[float]:
        times = []
        for i in range(calls + 500):  # the first 500 warm up
            start = time.perf_counter()
            await app(dict(scope), receive, send)
            await asyncio.sleep(0)  # a turn of the loop: the JSON lines are written
            if i >= 500:
                times.append(time.perf_counter() - start)
        return times

    times: list[float] = _event_loop_run(run())
    if app.state.tracing is not None:
        app.state.tracing.shutdown()
    if sys.stdout is not sys.__stdout__:
        sys.stdout.close()
        sys.stdout = sys.__stdout__
    assert set(statuses) == {200}, set(statuses)
    return statistics.median(times) * 1e6


def _event_loop_run(main: Any) -> Any:
    """``main`` run on uvloop, uvicorn's loop, when installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def span_off_ns(calls: int = 1_000_000) -> float:
    """ns of ``with span(...)`` while tracing is off."""
    from app.tracing import span

    start = time.perf_counter()
    for _ in range(calls):
        with span("tasador.engine"):
            pass
    return (time.perf_counter() - start) / calls * 1e9


def _in_subprocess(config: str, model_dir: Path, calls: int) -> float:
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with tempfile.TemporaryDirectory(prefix="tasador-bench-metrics-") as folder:
        if config == "multiprocess metrics":
            env["PROMETHEUS_MULTIPROC_DIR"] = folder
        if config.endswith("sampled"):
            env.update(SAMPLED)
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.observability", "--one", config,
             "--model-dir", str(model_dir), "--calls", str(calls)],
            env=env, capture_output=True, text=True, check=True, timeout=600,
        )  # fmt: skip
    return float(done.stdout.strip().splitlines()[-1])


def in_process(model_dir: Path, rounds: int, calls: int) -> dict[str, Any]:
    """Median over ``rounds`` of each configuration's median µs per call."""
    runs: dict[str, list[float]] = {config: [] for config in IN_PROCESS}
    for round_ in range(rounds):
        order = IN_PROCESS if round_ % 2 == 0 else IN_PROCESS[::-1]
        for config in order:
            runs[config].append(_in_subprocess(config, model_dir, calls))
            _say(f"in process, round {round_ + 1}: {config} {runs[config][-1]:.1f} µs")
    return {
        "calls": calls,
        "rounds": runs,
        "median_us": {config: statistics.median(values) for config, values in runs.items()},
        "span_off_ns": span_off_ns(),
    }


def http(model_dir: Path, rounds: int, seconds: float) -> dict[str, Any]:
    """/predecir at c=32 under each logging configuration, in interleaved rounds."""
    body = json.dumps(FORMULARIO_EJEMPLO).encode()
    runs: dict[str, list[float]] = {name: [] for name in HTTP}
    names = list(HTTP)
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            env = {"TASADOR_MODEL_DIR": str(model_dir), **HTTP[name]}
            with ServerProcess(TASADOR_SERVE, env=env) as server:
                url = f"{server.url}/predecir"
                run_load(url, body, 4, min(2.0, seconds))  # warm-up
                result = run_load(url, body, 32, seconds)
                assert result.errors == 0, result
                if name != "logs off":
                    assert server.output().count('"POST /predecir') > 0, name
            runs[name].append(result.rps)
            _say(f"HTTP c=32, round {round_ + 1}: {name} {result.rps:,.0f} req/s")
    rps = {name: statistics.median(values) for name, values in runs.items()}
    off = rps["logs off"]
    return {
        "seconds": seconds,
        "rounds": runs,
        "rps": rps,
        "cost_us": {name: 1e6 / value - 1e6 / off for name, value in rps.items()},
        "json_vs_access": rps["JSON request log"] / rps["uvicorn access log"],
    }


def render(report: dict[str, Any]) -> str:
    """The figures as Markdown tables."""
    lines = []
    if "in_process" in report:
        inner = report["in_process"]
        base = inner["median_us"]["default"]
        lines += [
            f"One /predecir through the ASGI app, in process (median of {len(inner['rounds']['default'])} "
            f"rounds of {inner['calls']:,} calls):",
            "",
            "| configuration | µs per call | beside default |",
            "|---|---|---|",
        ]
        lines += [
            f"| {config} | {us:.1f} | {us - base:+.1f} µs ({(us / base - 1) * 100:+.1f} %) |"
            for config, us in inner["median_us"].items()
        ]
        lines += ["", f"`span()` while tracing is off: {inner['span_off_ns']:.0f} ns a call.", ""]
    if "http" in report:
        outer = report["http"]
        off = outer["rps"]["logs off"]
        lines += [
            f"/predecir over HTTP, wrk c=32, one worker (median of {len(outer['rounds']['logs off'])} "
            f"rounds of {outer['seconds']:g} s):",
            "",
            "| tasador with | requests/s | ÷ logs off | cost per request |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {name} | {rps:,.0f} | {rps / off:.2f} | {outer['cost_us'][name]:+.1f} µs |"
            for name, rps in outer["rps"].items()
        ]
        lines += ["", f"JSON request log ÷ uvicorn access log: {outer['json_vs_access']:.2f}×"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the tables, and write them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--model-dir", type=Path, default=EMBEDDED_MODEL_DIR)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5000, help="in-process calls per run")
    parser.add_argument("--seconds", type=float, default=5, help="HTTP load per run")
    parser.add_argument("--only", choices=("in-process", "http"))
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    parser.add_argument(
        "--docs", action="store_true", help="also put the tables in their docs page's block"
    )
    parser.add_argument("--one", choices=IN_PROCESS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:  # one in-process run, in a process of its own
        print(one_call_us(args.one, args.model_dir, args.calls))
        return 0
    report: dict[str, Any] = {}
    if args.only != "http":
        report["in_process"] = in_process(args.model_dir, args.rounds, args.calls)
    if args.only != "in-process":
        report["http"] = http(args.model_dir, args.rounds, args.seconds)
    print(render(report))
    if args.docs:
        update_docs(render(report), PAGE, MARKS)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
