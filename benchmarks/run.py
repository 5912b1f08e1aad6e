"""The benchmark harness: ``uv run python -m benchmarks.run``.

Prints one table and writes it as JSON (``benchmarks/results.json``):
1. in process: each engine's single-row latency and rows/s by batch size, its agreement
   with scikit-learn, and where one /predecir request's time goes;
2. over HTTP, every server started here on 127.0.0.1 with one worker and loaded for a
   bounded time at concurrency 1 and 32: (a) the ceiling, the same validation returning a
   constant, (b) the tutorial's server that loads the pickle on every request,
   (c) scikit-learn loaded once, (d) tasador with its defaults, and the cost of a log
   line per request, and, with the mlflow-train extra installed, (e) ``mlflow models
   serve`` of the same forest; with each one's ratio to tasador, in requests/s and in
   the server's CPU time per request (which other load on the machine disturbs less);
3. /predecir/lote with 10,000 rows end to end, and where its time goes in process;
   tasador's start-up to /ready and memory.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from app.bundle import MANIFEST_FILE, SIGNATURE_FILE
from app.config import EMBEDDED_MODEL_DIR
from app.schemas import FORMULARIO_EJEMPLO
from app.training.synthetic import generate
from app.valuation.testigos import TESTIGOS_FILE
from benchmarks import inprocess
from benchmarks.load import run_load
from benchmarks.servers import mlflow_serve
from tools.process import TASADOR_SERVE, ServerProcess

RESULTS = Path(__file__).parent / "results.json"
DOCS = Path(__file__).parent.parent / "docs"
PAGE = DOCS / "benchmarks.md"
MARK_START, MARK_END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"
CONCURRENCIES = (1, 32)
LOTE_ROWS = 10_000
UVICORN = (sys.executable, "-m", "uvicorn", "--log-level", "warning", "--port", "{port}")
SERVERS = {
    "ceiling": [*UVICORN, "benchmarks.servers.ceiling:app"],
    "seed (pickle per request)": [*UVICORN, "benchmarks.servers.seed:app"],
    "sklearn loaded once": [*UVICORN, "benchmarks.servers.sklearn_once:app"],
    "tasador": list(TASADOR_SERVE),
    # What a log line per request costs, at c=32 (tasador's defaults write none).
    "tasador, uvicorn's access log": [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "app.main:create_app",
        "--port",
        "{port}",
    ],
    "tasador, JSON request log": list(TASADOR_SERVE),
}
# Settings of a server beside server_process's, and the concurrencies it is loaded at.
SERVER_ENV = {
    "tasador, uvicorn's access log": {},  # uvicorn's command line logs every request
    "tasador, JSON request log": {"TASADOR_LOG_FORMAT": "json"},
}
SERVER_CONCURRENCIES = {name: (32,) for name in SERVER_ENV}
# tasador with each home's testigos searched once, then remembered (paired rounds only).
KNOWN_TESTIGOS = [sys.executable, "-m", "benchmarks.servers.known_testigos", "serve"]
# Rounds of the ceiling and tasador loaded in turn, for the ratio the target is about.
PAIRED_ROUNDS = 3


def server_process(
    command: list[str], model_dir: Path, env: dict[str, str] | None = None
) -> ServerProcess:
    """One server on 127.0.0.1 serving ``model_dir`` with tasador's defaults (unless ``env``
    says otherwise), and room for the big batch."""
    settings = {
        "TASADOR_MODEL_DIR": str(model_dir),
        "TASADOR_MAX_BODY_BYTES": str(64 * 1024 * 1024),
        **(env or {}),
    }
    return ServerProcess(command, env=settings)


def _cpu_seconds(pid: int) -> float:
    """CPU time (user and system) the process ``pid`` has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _loaded(
    server: ServerProcess, url: str, body: bytes, concurrency: int, seconds: float
) -> dict[str, Any]:
    """One load run, with the server's CPU time per request answered."""
    before = _cpu_seconds(server.pid)
    result = run_load(url, body, concurrency, seconds)
    cpu = (_cpu_seconds(server.pid) - before) / max(result.requests, 1)
    return {**asdict(result), "cpu_us_per_request": cpu * 1e6}


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    packages = ("scikit-learn", "numpy", "onnxruntime", "fastapi", "pydantic", "uvicorn")
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        **{name: version(name) for name in packages},
    }


def _post(url: str, body: bytes) -> tuple[float, Any]:
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = json.loads(response.read())
    return time.perf_counter() - start, answer


def _lote(url: str) -> dict[str, float]:
    homes = [f.model_dump(mode="json") for f in generate(LOTE_ROWS, 99).formularios]
    body = json.dumps({"formularios": homes}).encode()
    _post(url, body)  # warm
    times = []
    for _ in range(5):
        elapsed, answer = _post(url, body)
        assert len(answer.get("precios") or answer["resultados"]) == LOTE_ROWS
        times.append(elapsed)
    median = sorted(times)[len(times) // 2]
    return {"rows": LOTE_ROWS, "body_mb": len(body) / 1e6, "seconds": median,
            "rows_per_s": LOTE_ROWS / median}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run everything, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--seconds", type=float, default=10, help="load time per run (10)")
    parser.add_argument("--model-dir", type=Path, default=EMBEDDED_MODEL_DIR)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--replicas", type=int, default=2, help="replicas behind HAProxy (2)")
    parser.add_argument(
        "--docs", action="store_true", help="also put the tables in docs/benchmarks.md's block"
    )
    args = parser.parse_args(argv)

    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "load_seconds": args.seconds,
    }
    _say("In process: engines…")
    report["engines"] = inprocess.engines(args.model_dir, min(args.seconds / 5, 2))
    report["request_path_us"] = inprocess.request_path(args.model_dir)
    report["lote_path_ms"] = inprocess.lote_path(args.model_dir, LOTE_ROWS)

    body = json.dumps(FORMULARIO_EJEMPLO).encode()
    http: list[dict[str, Any]] = []
    for name, command in SERVERS.items():
        with server_process(command, args.model_dir, SERVER_ENV.get(name)) as server:
            ready_memory = server.memory_mb()
            _say(f"HTTP: {name} (ready in {server.ready_s:.2f} s)…")
            url = f"{server.url}/predecir"
            run_load(url, body, 4, min(2.0, args.seconds))  # warm-up
            for concurrency in SERVER_CONCURRENCIES.get(name, CONCURRENCIES):
                result = _loaded(server, url, body, concurrency, args.seconds)
                http.append({"server": name, "ready_s": server.ready_s, **result})
            if name == "tasador":
                report["tasador_ready_s"] = server.ready_s
                report["tasador_memory_ready"] = ready_memory
                _say("HTTP: /predecir?explicar=true…")
                explained = _loaded(server, f"{url}?explicar=true", body, 32, args.seconds)
                http.append({"server": "tasador ?explicar=true", **explained})
                _say("HTTP: /predecir/lote…")
                report["lote"] = _lote(f"{server.url}/predecir/lote")
                report["lote_detalle"] = _lote(f"{server.url}/predecir/lote?detalle=true")
                report["tasador_memory"] = server.memory_mb()
    if mlflow_serve.available():
        with mlflow_serve.server(args.model_dir) as (server, invocation):
            name = "mlflow models serve"
            _say(f"HTTP: {name} (ready in {server.ready_s:.2f} s)…")
            url = f"{server.url}/invocations"
            run_load(url, invocation, 4, min(2.0, args.seconds))  # warm-up
            for concurrency in CONCURRENCIES:
                mlflow = run_load(url, invocation, concurrency, args.seconds)
                http.append({"server": name, "ready_s": server.ready_s, **asdict(mlflow)})
    else:
        _say("MLflow not installed (uv sync --extra mlflow-train): skipping mlflow models serve")
    report["http"] = http
    _say(f"HTTP: ceiling and tasador in turn, {PAIRED_ROUNDS} rounds…")
    report["paired"] = _paired(args.model_dir, body, args.seconds)
    if shutil.which("haproxy"):
        report["scaleout"] = _scaleout(args.model_dir, body, args.seconds, args.replicas)
    else:
        _say("haproxy not installed: skipping the scale-out figures")
    report["targets"] = _targets(report)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(render(report))
    if args.docs:
        update_docs(render(report), PAGE)
    print(f"\nWritten to {args.out}")
    return 0


def _paired(model_dir: Path, body: bytes, seconds: float) -> dict[str, Any]:
    """tasador ÷ the ceiling at c=32, both serving all along and loaded in turn: each
    round's runs are seconds apart, so other load on the machine weighs on all alike (the
    table's runs are minutes apart); beside them, tasador serving the same bundle without
    its testigos table, and tasador remembering each home's testigos once searched, to show
    what the testigos cost and how much of it is the search. The medians of the rounds, and
    the rounds."""
    with (
        tempfile.TemporaryDirectory() as scratch,
        server_process(SERVERS["ceiling"], model_dir) as ceiling,
        server_process(SERVERS["tasador"], model_dir) as tasador,
        server_process(SERVERS["tasador"], _without_testigos(model_dir, Path(scratch))) as sin,
        server_process(KNOWN_TESTIGOS, model_dir) as known,
    ):
        for server in (ceiling, tasador, sin, known):
            run_load(f"{server.url}/predecir", body, 4, min(2.0, seconds))  # warm-up
        rounds = []
        for _ in range(PAIRED_ROUNDS):
            base = _loaded(ceiling, f"{ceiling.url}/predecir", body, 32, seconds)
            ours = _loaded(tasador, f"{tasador.url}/predecir", body, 32, seconds)
            without = _loaded(sin, f"{sin.url}/predecir", body, 32, seconds)
            searched = _loaded(known, f"{known.url}/predecir", body, 32, seconds)
            rounds.append({
                "rps": ours["rps"] / base["rps"],
                "cpu": base["cpu_us_per_request"] / ours["cpu_us_per_request"],
                "rps_sin_testigos": without["rps"] / base["rps"],
                "rps_testigos_known": searched["rps"] / base["rps"],
                "cpu_us_search": ours["cpu_us_per_request"] - searched["cpu_us_per_request"],
            })  # fmt: skip
    return {
        "rounds": rounds,
        **{key: statistics.median(r[key] for r in rounds) for key in rounds[0]},
    }


def _without_testigos(model_dir: Path, scratch: Path) -> Path:
    """A copy of the bundle in ``model_dir`` without its testigos table, as
    ``tasador train --sin-testigos`` would have made it (and unsigned)."""
    copy = scratch / "sin-testigos"
    shutil.copytree(model_dir, copy)
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    manifest["artefacts"].pop(TESTIGOS_FILE, None)
    manifest.pop("testigos", None)
    (copy / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    (copy / TESTIGOS_FILE).unlink(missing_ok=True)
    (copy / SIGNATURE_FILE).unlink(missing_ok=True)
    return copy


def _scaleout(model_dir: Path, body: bytes, seconds: float, replicas: int) -> list[dict[str, Any]]:
    """/predecir through HAProxy with one replica, then with ``replicas``."""
    from scaleout.cluster import Cluster

    results = []
    for n in sorted({1, replicas}):
        with Cluster(n, model_dir) as cluster:
            _say(f"HTTP: {n} replica(s) behind HAProxy…")
            url = f"{cluster.url}/predecir"
            run_load(url, body, 8, min(2.0, seconds))
            results.append({"replicas": n, **asdict(run_load(url, body, 32, seconds))})
    return results


def _rps(report: dict[str, Any], server: str, concurrency: int) -> float:
    return float(next(r["rps"] for r in report["http"]
                      if r["server"] == server and r["concurrency"] == concurrency))  # fmt: skip


def _floor_rps(report: dict[str, Any], server: str, concurrency: int) -> float:
    """Requests/s, or one request per run when none finished: a ratio's lower bound."""
    run = next(
        r for r in report["http"] if r["server"] == server and r["concurrency"] == concurrency
    )
    return max(float(run["rps"]), 1 / float(run["seconds"]))


def _targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    ours = _rps(report, "tasador", 32)
    paired = report["paired"]
    onnx = next(e for e in report["engines"] if e["engine"] == "onnxruntime")
    path = report["request_path_us"]
    checks = [
        ("/predecir c=32 vs ceiling, in turn (median)", paired["rps"], ">=", 0.95),
        ("/predecir c=32 vs ceiling, server CPU per request, in turn (median)", paired["cpu"], ">=", 0.95),
        ("  the same, bundle without testigos (requests/s)", paired["rps_sin_testigos"], ">=", 0.95),
        ("  the same, each home's testigos searched once (requests/s)", paired["rps_testigos_known"], ">=", 0.95),
        ("/predecir c=32 vs sklearn loaded once", ours / _rps(report, "sklearn loaded once", 32), ">=", 20),
        ("/predecir c=32 vs pickle per request", ours / _floor_rps(report, "seed (pickle per request)", 32), ">=", 500),
        ("/predecir c=32, JSON request log vs uvicorn's access log", _rps(report, "tasador, JSON request log", 32) / _rps(report, "tasador, uvicorn's access log", 32), ">=", 1.0),
        ("in-process single-row p50 (µs)", onnx["p50_us"], "<=", 50),
        ("interval, zone, warnings and grade in process (µs)", path["interval, €/m², zone, warnings and grade"], "<=", 10),
        ("explanation in process (µs)", path["explanation (?explicar=true)"], "<=", 100),
        ("/predecir/lote 10k rows (rows/s)", report["lote"]["rows_per_s"], ">=", 100_000),
        ("start-up to /ready (s)", report["tasador_ready_s"], "<=", 0.7),
        ("resident memory when ready (MB)", report["tasador_memory_ready"]["rss_mb"], "<=", 150),
        ("resident memory after the load (MB)", report["tasador_memory"]["peak_rss_mb"], "<=", 400),
    ]  # fmt: skip
    return [
        {"target": name, "value": value, "goal": f"{op} {goal:g}",
         "met": value >= goal if op == ">=" else value <= goal}
        for name, value, op, goal in checks
    ]  # fmt: skip


def render(report: dict[str, Any]) -> str:
    """The report as a Markdown table set, as docs/benchmarks.md shows it."""
    m = report["machine"]
    lines = [
        f"Run {report['date']} on {m['cores']} cores ({m['cpu']}), Python {m['python']}, "
        f"scikit-learn {m['scikit-learn']}, onnxruntime {m['onnxruntime']}, "
        f"FastAPI {m['fastapi']}, uvicorn {m['uvicorn']}; "
        f"load by {report['http'][0]['tool']} for {report['load_seconds']:g} s per run.",
        "",
        "| engine (in process) | 1 row p50 | 1 row p99 | rows/s @1 | @16 | @256 | @4096 | max rel. diff vs sklearn |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for e in report["engines"]:
        r = e["rows_per_s"]
        lines.append(
            f"| {e['engine']} | {e['p50_us']:,.0f} µs | {e['p99_us']:,.0f} µs | "
            + " | ".join(f"{r[k]:,.0f}" for k in r)
            + f" | {e['max_rel_diff_vs_sklearn']:.1e} |"
        )
    lines += ["", "| one /predecir, in process | median |", "|---|---|"]
    lines += [f"| {step} | {us:.1f} µs |" for step, us in report["request_path_us"].items()]
    lines += ["", f"| one /predecir/lote of {LOTE_ROWS:,} rows, in process | median |", "|---|---|"]
    lines += [f"| {step} | {ms:.1f} ms |" for step, ms in report["lote_path_ms"].items()]
    lines += [
        "",
        "| server (1 worker) | conc. | requests/s | p50 | p99 | errors | tasador ÷ this | CPU/request |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["http"]:
        ours = _rps(report, "tasador", r["concurrency"])
        # When none finished in time there was at most one per run: a lower bound.
        ratio = f"{ours / r['rps']:,.2f}×" if r["requests"] else f"> {ours * r['seconds']:,.0f}×"
        lines.append(
            f"| {r['server']} | {r['concurrency']} | {r['rps']:,.1f} | {r['p50_ms']:.2f} ms | "
            f"{r['p99_ms']:.2f} ms | {r['errors']} | {ratio} | {_cpu_text(r)} |"
        )
    lote, detalle = report["lote"], report["lote_detalle"]
    lines += [
        "",
        f"/predecir/lote, {lote['rows']:,} rows ({lote['body_mb']:.1f} MB of JSON): "
        f"{lote['seconds'] * 1000:.0f} ms end to end, {lote['rows_per_s']:,.0f} rows/s; "
        f"with ?detalle=true {detalle['seconds'] * 1000:.0f} ms, {detalle['rows_per_s']:,.0f} rows/s. "
        f"tasador ready {report['tasador_ready_s']:.2f} s after start, resident memory then "
        f"{report['tasador_memory_ready']['rss_mb']:.0f} MB; after all the load "
        f"{report['tasador_memory']['rss_mb']:.0f} MB (peak {report['tasador_memory']['peak_rss_mb']:.0f} MB).",
        "",
        _paired_line(report["paired"]),
        "",
        *_scaleout_lines(report),
        "| target | measured | goal | met |",
        "|---|---|---|---|",
    ]  # fmt: skip
    lines += [
        f"| {t['target']} | {t['value']:,.2f} | {t['goal']} | {'yes' if t['met'] else 'NO'} |"
        for t in report["targets"]
    ]
    return "\n".join(lines)


def _paired_line(paired: dict[str, Any]) -> str:
    rounds = paired["rounds"]
    rps = ", ".join(f"{r['rps']:.2f}" for r in rounds)
    cpu = ", ".join(f"{r['cpu']:.2f}" for r in rounds)
    line = (
        f"tasador ÷ ceiling at c=32, loaded in turn ({len(rounds)} rounds): requests/s "
        f"{paired['rps']:.2f}× ({rps}); the ceiling's CPU per request ÷ tasador's "
        f"{paired['cpu']:.2f}× ({cpu})."
    )
    if "rps_sin_testigos" in paired:  # reports from before it was measured lack it
        sin = ", ".join(f"{r['rps_sin_testigos']:.2f}" for r in rounds)
        line += (
            f" The same bundle without its testigos table, in the same rounds: requests/s "
            f"{paired['rps_sin_testigos']:.2f}× ({sin})."
        )
    if "rps_testigos_known" in paired:
        known = ", ".join(f"{r['rps_testigos_known']:.2f}" for r in rounds)
        search = ", ".join(f"{r['cpu_us_search']:.0f}" for r in rounds)
        line += (
            f" The same bundle, each home's testigos searched once and then remembered: "
            f"requests/s {paired['rps_testigos_known']:.2f}× ({known}); the search's share "
            f"of tasador's CPU per request {paired['cpu_us_search']:.0f} µs ({search})."
        )
    return line


def _cpu_text(run: dict[str, Any]) -> str:
    cpu = run.get("cpu_us_per_request")
    return "" if cpu is None else f"{cpu:,.0f} µs"


def _scaleout_lines(report: dict[str, Any]) -> list[str]:
    runs = report.get("scaleout")
    if not runs:
        return []
    one = runs[0]["rps"]
    lines = [
        "| replicas behind HAProxy (c=32) | requests/s | p50 | p99 | errors | vs 1 replica |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['replicas']} | {r['rps']:,.1f} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | "
        f"{r['errors']} | {r['rps'] / one:.2f}× |"
        for r in runs
    ]
    return [*lines, ""]


def update_docs(tables: str, page: Path, marks: tuple[str, str] = (MARK_START, MARK_END)) -> None:
    """Replace what stands between the markers of a docs page (written atomically)."""
    text = page.read_text()
    start, end = text.index(marks[0]) + len(marks[0]), text.index(marks[1])
    updated = f"{text[:start]}\n{tables}\n{text[end:]}"
    temporary = page.with_suffix(".md.tmp")
    temporary.write_text(updated)
    temporary.replace(page)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
