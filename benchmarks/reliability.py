"""What hostile and heavy requests cost one worker: ``uv run python -m benchmarks.reliability``.

Every figure comes from a real ``tasador serve`` on 127.0.0.1, one worker serving the
embedded model with ``fly.toml``'s environment (as it deploys it), started afresh for each
row and sent one valid request first. While a row's requests run, one thread samples the
server's resident memory (``/proc/PID/status``, its peak reset through ``clear_refs``)
and a process of its own polls ``GET /health`` every ~5 ms on a connection of its own.
Three tables:

1. attacks: each hostile body or socket pattern of the hardening review, and the largest
   valid requests, with the status and answer size each gets, the rise of the server's
   peak resident memory and the worst ``/health`` latency meanwhile; the same bytes
   against the code the review examined (``--baseline``, a git revision: its findings,
   measured again);
2. the worst load the service admits: N largest valid batches at once, how many are served
   (200) and how many told to come back (503), and clients sending them back to back; the
   peak here is what the VM in ``fly.toml`` is sized on;
3. resident memory across model reloads (SIGHUP), then under load, by allocator: glibc as
   it is, ``MALLOC_ARENA_MAX=2`` and ``=1``, and jemalloc where the system has it.

Writes ``benchmarks/reliability.json``; ``--markdown`` prints the tables as
docs/operations/reliability.md shows them and ``--docs`` also puts them there. Every socket has a timeout, every wait
a bound and every server a memory cap (it is killed past it), so a run ends by itself:
~8 minutes, ``--quick`` ~3 (no baseline, fewer rows and reloads). Timing figures are
worst-of on a shared machine: they move from run to run.
"""

import argparse
import contextlib
import glob
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.config import ENV_PREFIX, Settings
from app.schemas import FORMULARIO_EJEMPLO
from app.server import TasadorProtocol
from app.training.synthetic import generate
from benchmarks.load import run_load
from benchmarks.run import DOCS, _machine, update_docs
from tools.process import TASADOR_SERVE, ServerProcess

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "reliability.json"
PAGE = DOCS / "operations" / "reliability.md"
MARKS = ("<!-- reliability:start -->", "<!-- reliability:end -->")
# The code the hardening review tried these requests on: before the header deadlines
# (b58f73f) and the bounded body costs (b27a69d) that answered its findings.
BASELINE = "ec4dc40"
HOME = FORMULARIO_EJEMPLO
JSON_HEADERS = {"content-type": "application/json"}
FLY_TOML = ROOT / "fly.toml"
ALLOCATOR_VARIABLES = ("MALLOC_ARENA_MAX", "LD_PRELOAD")


def fly_env() -> dict[str, str]:
    """The environment ``fly.toml`` deploys with (but its port: each server gets its own)."""
    env = tomllib.loads(FLY_TOML.read_text()).get("env", {})
    return {name: str(value) for name, value in env.items() if name != "PORT"}


def deployed(name: str) -> Any:
    """A setting as fly.toml deploys it: its [env] value, else the default (whatever this
    shell's TASADOR_* variables say)."""
    default = Settings.model_fields[name].default
    value = fly_env().get(ENV_PREFIX + name.upper())
    return default if value is None else type(default)(value)


SLOW_SOCKETS = 400
MEMORY_CAP_MB = 4096  # a server past this is killed: the row says so
ANSWER_TIMEOUT_S = 120
POLL_S = 0.005
SETTLE_S = 0.3


# --- sending ----------------------------------------------------------------------------
@dataclass
class Answer:
    """What came back for one request: its status (0: none), its body size, and why none."""

    status: int = 0
    body_bytes: int = 0
    failure: str = ""
    retry_after: str | None = None

    @property
    def label(self) -> str:
        """The status as the tables show it."""
        return str(self.status) if self.status else self.failure or "no answer"


def _head(method: str, path: str, headers: Mapping[str, str], length: int | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1", "connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if length is not None:
        lines.append(f"content-length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def exchange(port: int, request: bytes, timeout: float = ANSWER_TIMEOUT_S) -> Answer:
    """Send ``request`` (in a thread, so that an early answer is read while it is still
    being sent) and read the answer; its body is counted, never kept."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError as exc:
        return Answer(failure=f"connect: {type(exc).__name__}")

    def send() -> None:
        with contextlib.suppress(OSError):
            sock.sendall(request)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        return _read_answer(sock)
    except TimeoutError:
        return Answer(failure=f"none in {timeout:g} s")
    except OSError as exc:
        return Answer(failure=type(exc).__name__)
    finally:
        sock.close()
        sender.join(timeout=5)


def _read_answer(sock: socket.socket) -> Answer:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return Answer(failure="closed unanswered")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    answer = Answer(status=int(lines[0].split()[1]))
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:])
    }
    answer.retry_after = headers.get("retry-after")
    length = int(headers["content-length"]) if "content-length" in headers else None
    received = len(body)
    while length is None or received < length:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        received += len(chunk)
    answer.body_bytes = received
    return answer


def post(port: int, path: str, body: bytes, headers: Mapping[str, str] = JSON_HEADERS) -> Answer:
    """One POST with ``body`` and ``Content-Length``."""
    return exchange(port, _head("POST", path, headers, len(body)) + body)


# --- watching the server ----------------------------------------------------------------
# What a row does to a server: the answers it got.
Action = Callable[[ServerProcess], list[Answer]]


def _status_mb(pid: int) -> dict[str, float]:
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return fields


class MemoryWatch(threading.Thread):
    """The server's resident memory, sampled every ~2 ms from a reset peak; kills it
    (SIGKILL, by its pid) past ``cap_mb``."""

    def __init__(self, pid: int, cap_mb: float) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.cap_mb = cap_mb
        self.before = _status_mb(pid)["VmRSS"]
        # Writing 5 resets VmHWM to the current RSS (Linux 4.0+): the peak is this row's.
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            self.peak_resettable = True
        except OSError:
            self.peak_resettable = False
        self.peak = self.before
        self.after = self.before
        self.killed = False
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                rss = _status_mb(self.pid)["VmRSS"]
            except (OSError, KeyError):  # gone
                return
            self.peak = max(self.peak, rss)
            if rss > self.cap_mb and not self.killed:
                self.killed = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
            time.sleep(0.002)

    def finish(self) -> None:
        """Stop sampling; read the peak the kernel kept and the memory now."""
        self._done.set()
        self.join()
        with contextlib.suppress(OSError, KeyError):
            figures = _status_mb(self.pid)
            self.after = figures["VmRSS"]
            if self.peak_resettable:
                self.peak = max(self.peak, figures["VmHWM"])


# Polls /health from a process of its own, so that this one's work (building and sending
# bodies of many MB) does not hold the poller back. Stops when its stdin closes.
HEALTH_PROBE = """
import http.client, json, sys, threading, time
port, timeout, interval = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
worst, polls, failures, times = 0.0, 0, 0, []
def connect():
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
connection = connect()
connection.request("GET", "/health")
connection.getresponse().read()
print("ready", flush=True)
while not done.is_set():
    started = time.perf_counter()
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        failures += response.status != 200
    except (OSError, http.client.HTTPException):
        failures += 1
        connection.close()
        connection = connect()
        done.wait(0.05)
    took = time.perf_counter() - started
    worst = max(worst, took)
    times.append(took)
    polls += 1
    done.wait(interval)
times.sort()
def at(q):
    return times[min(len(times) - 1, int(q * len(times)))] * 1000 if times else 0.0
print(json.dumps({"worst_ms": worst * 1000, "polls": polls, "failures": failures,
                  "p50_ms": at(0.5), "p99_ms": at(0.99),
                  "over_50ms": sum(t > 0.05 for t in times)}))
"""


class HealthWatch:
    """Polls ``GET /health`` every ~5 ms on one keep-alive connection, from a process of
    its own; keeps the worst latency (a failed poll counts with the time it took)."""

    def __init__(self, port: int, timeout: float = ANSWER_TIMEOUT_S) -> None:
        self.args = [sys.executable, "-c", HEALTH_PROBE, str(port), str(timeout), str(POLL_S)]
        self.timeout = timeout
        self.worst_ms = 0.0
        self.p50_ms = 0.0
        self.p99_ms = 0.0
        self.over_50ms = 0
        self.polls = 0
        self.failures = 0
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start polling; return once the first poll was answered."""
        self._process = subprocess.Popen(
            self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        self._process.stdout.readline()

    def finish(self) -> None:
        """Stop polling (after the poll in flight) and read the figures."""
        assert self._process is not None
        try:
            out, _ = self._process.communicate(input="", timeout=self.timeout + 10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            self.failures += 1
            return
        figures = json.loads(out.strip().splitlines()[-1])
        self.worst_ms, self.polls, self.failures = (
            figures["worst_ms"],
            figures["polls"],
            figures["failures"],
        )
        self.p50_ms, self.p99_ms = figures["p50_ms"], figures["p99_ms"]
        self.over_50ms = figures["over_50ms"]


@dataclass
class Row:
    """One measured row: what was sent, what came back, and what it cost the server."""

    name: str
    server: str
    status: str
    answer_bytes: int
    rss_before_mb: float
    peak_rise_mb: float
    rss_after_mb: float
    peak_rss_mb: float
    health_worst_ms: float
    health_failures: int
    seconds: float
    killed: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


def measure(name: str, label: str, server: ServerProcess, action: Action) -> Row:
    """Run ``action`` against ``server`` while its memory and /health are watched."""
    time.sleep(SETTLE_S)
    memory = MemoryWatch(server.pid, MEMORY_CAP_MB)
    health = HealthWatch(server.port)
    memory.start()
    health.start()
    started = time.perf_counter()
    answers = action(server)
    seconds = time.perf_counter() - started
    time.sleep(SETTLE_S)  # what the server does right after answering counts too
    health.finish()
    memory.finish()
    statuses = Counter(answer.label for answer in answers)
    if memory.killed:
        status = f"killed past {MEMORY_CAP_MB} MB"
    elif not answers:
        status = "nothing sent"
    elif len(answers) == 1:
        status = answers[0].label
    else:
        status = ", ".join(f"{label_} ×{n}" for label_, n in sorted(statuses.items()))
    return Row(
        name=name,
        server=label,
        status=status,
        answer_bytes=max((a.body_bytes for a in answers), default=0),
        rss_before_mb=memory.before,
        peak_rise_mb=memory.peak - memory.before,
        rss_after_mb=memory.after,
        peak_rss_mb=memory.peak,
        health_worst_ms=health.worst_ms,
        health_failures=health.failures,
        seconds=seconds,
        killed=memory.killed,
        detail={
            "statuses": dict(statuses),
            "health_p50_ms": health.p50_ms,
            "health_p99_ms": health.p99_ms,
            "health_polls": health.polls,
            "health_over_50ms": health.over_50ms,
        },
    )


# --- the servers ------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """A tasador to start: its label, the folder it runs from and its environment."""

    label: str
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def started(target: Target, env: Mapping[str, str] | None = None) -> Iterator[ServerProcess]:
    """A fresh server with fly.toml's environment (and ``env``), warmed up by one valid
    request, as fly's /ready check and first client would."""
    settings = {**fly_env(), **target.env, **(env or {})}
    # A baseline runs from its own folder: ``python -m app.cli`` imports its app package.
    with ServerProcess(TASADOR_SERVE, env=settings, cwd=target.cwd) as server:
        post(server.port, "/predecir", json.dumps(HOME).encode())
        yield server


@contextlib.contextmanager
def baseline_tree(revision: str) -> Iterator[Path | None]:
    """The app and model of ``revision``, from this repository's history, in a temporary
    folder (None, said on stderr, when there is no such revision here)."""
    with tempfile.TemporaryDirectory(prefix="tasador-baseline-") as folder:
        try:
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", revision, "app", "models"],
                capture_output=True,
                check=True,
                timeout=60,
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            _say(f"baseline {revision} not available ({exc}): skipped")
            yield None
            return
        with tempfile.TemporaryFile() as tar:
            tar.write(archive)
            tar.seek(0)
            with tarfile.open(fileobj=tar) as files:
                files.extractall(folder, filter="data")
        yield Path(folder)


# --- the requests -----------------------------------------------------------------------
def _empties(key: str, n: int) -> bytes:
    return json.dumps({key: [{}] * n}).encode()


def _fill(key: str) -> bytes:
    """As many empty objects as fit in the body limit."""
    wrapper = len(_empties(key, 0))
    return _empties(key, (deployed("max_body_bytes") - wrapper + 2) // 4)  # ``{}, `` is four bytes


def _homes(n: int) -> list[dict[str, Any]]:
    return [home.model_dump(mode="json") for home in generate(n, 99).formularios]


def _max_batch() -> bytes:
    return json.dumps({"formularios": _homes(deployed("max_batch_rows"))}).encode()


def _max_samples() -> bytes:
    data = generate(deployed("max_batch_rows"), 99)
    rows = [
        {**home.model_dump(mode="json"), "precio": float(precio)}
        for home, precio in zip(data.formularios, data.precios, strict=True)
    ]
    return json.dumps({"muestras": rows}).encode()


def _single(path: str, body: bytes, headers: Mapping[str, str] = JSON_HEADERS) -> Action:
    def run(server: ServerProcess) -> list[Answer]:
        return [post(server.port, path, body, headers)]

    return run


def _idle(server: ServerProcess) -> list[Answer]:  # noqa: ARG001 - sends nothing
    time.sleep(2)
    return []


def _huge_headers(size: int) -> Action:
    body = json.dumps(HOME).encode()
    head = _head("POST", "/predecir", {**JSON_HEADERS, "x-relleno": "a" * size}, len(body))

    def run(server: ServerProcess) -> list[Answer]:
        return [exchange(server.port, head + body)]

    return run


def _many_headers(count: int) -> Action:
    body = json.dumps(HOME).encode()
    extra = {f"x-h{i}": "a" for i in range(count)}
    head = _head("POST", "/predecir", {**JSON_HEADERS, **extra}, len(body))

    def run(server: ServerProcess) -> list[Answer]:
        return [exchange(server.port, head + body)]

    return run


def _slow_sockets(kind: str, n: int) -> Action:
    """``n`` connections that send part of a request: headers one byte a second
    (``headers``), or whole headers and the start of a body, then nothing (``body``).
    Watched for the header deadline or the body's idle time, plus the lingering close and
    a margin; a socket the server has not answered by then is reported as held open."""
    if kind == "headers":
        start = b"POST /predecir HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        window = deployed("header_timeout")
    else:
        start = _head("POST", "/predecir", JSON_HEADERS, 1000) + b'{"latitud": 40.4'
        window = TasadorProtocol.body_idle_timeout
    window += TasadorProtocol.linger + 4

    def run(server: ServerProcess) -> list[Answer]:
        selector = selectors.DefaultSelector()
        received: dict[socket.socket, bytes] = {}
        answers: list[Answer] = []
        for _ in range(n):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(start)
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, sock)
            received[sock] = b""
        deadline = time.monotonic() + window
        next_byte = time.monotonic() + 1
        while received and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.05):
                sock = key.data
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    chunk, received[sock] = b"", received[sock] or type(exc).__name__.encode()
                if chunk:
                    received[sock] += chunk
                    continue
                answers.append(_parse_raw(received.pop(sock)))
                selector.unregister(sock)
                sock.close()
            if kind == "headers" and time.monotonic() >= next_byte:
                next_byte += 1
                for sock in received:
                    with contextlib.suppress(OSError):
                        sock.send(b"x")
        for sock in received:
            selector.unregister(sock)
            sock.close()
        answers += [Answer(failure=f"held open {window:g} s") for _ in received]
        selector.close()
        return answers

    return run


def _parse_raw(data: bytes) -> Answer:
    if not data.startswith(b"HTTP/"):
        return Answer(failure=data.decode("latin-1")[:40] or "closed unanswered")
    head, _, body = data.partition(b"\r\n\r\n")
    return Answer(status=int(head.split()[1]), body_bytes=len(body))


@dataclass(frozen=True)
class Attack:
    """One row of the attack table: what it sends, whether a quick run has it, whether
    it is one request of at most the body limit (what the targets judge)."""

    action: Action
    quick: bool = True
    judged: bool = True
    new: bool = False  # what the baseline did not have (detalle, explicar): not sent to it
    warm: Action | None = None  # sent first, unmeasured


def attacks(quick: bool) -> dict[str, Attack]:
    """Each attack by name (a quick run's only)."""
    counts = (10_000, 20_000, 100_000)
    rows = deployed("max_batch_rows")
    # The noise floor: what the /health column shows when nothing is sent.
    table: dict[str, Attack] = {"nothing, for 2 s (an idle server)": Attack(_idle, judged=False)}
    for route, key in (("/predecir/lote", "formularios"), ("/evaluar", "muestras")):
        for n in counts:
            table[f"{route}: {n // 1000}k empty objects"] = Attack(
                _single(route, _empties(key, n)), route == "/predecir/lote" or n == counts[0]
            )
        fill = _fill(key)
        objects = fill.count(b"{") - 1
        name = f"{route}: {objects // 1000}k empty objects ({len(fill) / 2**20:.0f} MiB)"
        table[name] = Attack(_single(route, fill))
    unknown = json.dumps({**HOME, "x" * 1_000_000: 1}).encode()
    table["/predecir: 1 MB unknown key"] = Attack(_single("/predecir", unknown))
    batch = _max_batch()
    table[f"/predecir/lote: {rows:,} valid rows (largest batch)"] = Attack(
        _single("/predecir/lote", batch)
    )
    explained = _single("/predecir/lote?detalle=true&explicar=true", batch)
    table[f"/predecir/lote?detalle&explicar: {rows:,} valid rows"] = Attack(explained, new=True)
    table["the same, again (the explanation engine built by the first)"] = Attack(
        explained, quick=False, new=True, warm=explained
    )
    table[f"/evaluar: {rows:,} valid samples"] = Attack(
        _single("/evaluar", _max_samples()), quick=False
    )
    not_json = b"no es JSON " * (deployed("max_body_bytes") // 11)
    table[f"/predecir: {len(not_json) / 2**20:.0f} MiB not JSON, sent as JSON"] = Attack(
        _single("/predecir", not_json)
    )
    table["/predecir: JSON sent as text/plain"] = Attack(
        _single("/predecir", json.dumps(HOME).encode(), {"content-type": "text/plain"}),
        quick=False,
    )
    over = _fill("formularios") + b" " * 1024
    table[f"/predecir/lote: {len(over) / 2**20:.0f} MiB + 1 KiB (over the limit)"] = Attack(
        _single("/predecir/lote", over), quick=False, judged=False
    )
    table["headers: one 64 MiB field"] = Attack(_huge_headers(64 * 2**20), judged=False)
    table["headers: 1,000 fields"] = Attack(_many_headers(1000), quick=False, judged=False)
    table[f"{SLOW_SOCKETS} sockets sending headers 1 byte/s"] = Attack(
        _slow_sockets("headers", SLOW_SOCKETS), judged=False
    )
    table[f"{SLOW_SOCKETS} sockets stalling mid-body"] = Attack(
        _slow_sockets("body", SLOW_SOCKETS), judged=False
    )
    return {name: attack for name, attack in table.items() if attack.quick or not quick}


def batches_at_once(n: int, path: str, body: bytes) -> Action:
    """``n`` clients posting ``body`` at the same instant."""

    def run(server: ServerProcess) -> list[Answer]:
        answers: list[Answer] = []
        barrier = threading.Barrier(n)

        def client() -> None:
            barrier.wait(timeout=30)
            answers.append(post(server.port, path, body))

        threads = [threading.Thread(target=client, daemon=True) for _ in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=ANSWER_TIMEOUT_S * 2)
        return answers

    return run


# --- the three tables -------------------------------------------------------------------
def attack_rows(targets: list[Target], quick: bool) -> list[Row]:
    """Each attack on a fresh server of each target."""
    rows = []
    for name, attack in attacks(quick).items():
        for target in targets:
            if attack.new and target.cwd is not None:
                continue
            _say(f"attack: {name} ({target.label})…")
            with started(target) as server:
                if attack.warm is not None:
                    attack.warm(server)
                row = measure(name, target.label, server, attack.action)
            row.detail["judged"] = attack.judged
            rows.append(row)
    return rows


def load_rows(targets: list[Target], quick: bool) -> list[Row]:
    """N largest valid batches at once, plain and (current code only) with the whole
    appraisal and its explanation per home; then 8 clients sending the latter back to back
    for a while, each waiting Retry-After when told to."""
    rows = []
    batch = _max_batch()
    paths = ["/predecir/lote", "/predecir/lote?detalle=true&explicar=true"]
    n_rows = deployed("max_batch_rows")
    for n in (8,) if quick else (8, 32):
        for path in paths:
            for target in targets:
                if target.cwd is not None and path != paths[0]:
                    continue  # the baseline had no detalle nor explicar
                name = f"{n} × {n_rows:,}-row batch {path}"
                _say(f"load: {name} ({target.label})…")
                with started(target) as server:
                    action = batches_at_once(n, path, batch)
                    rows.append(measure(name, target.label, server, action))
    seconds = 10 if quick else 30
    default = Settings.model_fields["max_bodies_in_flight_bytes"].default
    budgets = {deployed("max_bodies_in_flight_bytes"), default}
    for budget in sorted(budgets, reverse=True):
        name = (
            f"8 clients × {n_rows:,}-row batches {paths[1]}, back to back for {seconds} s, "
            f"{budget / 2**20:g} MiB in flight"
        )
        if budget == default:
            name += " (the default)"
        _say(f"load: {name}…")
        env = {ENV_PREFIX + "MAX_BODIES_IN_FLIGHT_BYTES": str(budget)}
        with started(targets[0], env) as server:
            action = clients_for(8, seconds, paths[1], batch)
            row = measure(name, targets[0].label, server, action)
        # Not what fly.toml deploys (unless it is): shown, but not what the VM is sized on.
        row.detail["deployed"] = budget == deployed("max_bodies_in_flight_bytes")
        rows.append(row)
    return rows


def clients_for(n: int, seconds: float, path: str, body: bytes) -> Action:
    """``n`` clients posting ``body`` one after another for ``seconds``; after a 503 each
    waits what Retry-After says, as a well-behaved client does."""

    def run(server: ServerProcess) -> list[Answer]:
        answers: list[Answer] = []
        deadline = time.monotonic() + seconds

        def client() -> None:
            while time.monotonic() < deadline:
                answer = post(server.port, path, body)
                answers.append(answer)
                if answer.status == 503:
                    time.sleep(float(answer.retry_after or 1))

        threads = [threading.Thread(target=client, daemon=True) for _ in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=seconds + ANSWER_TIMEOUT_S)
        return answers

    return run


EXPLAINED = "/predecir/lote?detalle=true&explicar=true"


def burst(
    env: Mapping[str, str], clients: int = 8, seconds: float = 20, settle: float = 2.0
) -> dict[str, Any]:
    """The review's finding 4: ``clients`` clients sending the largest batch with
    ``detalle`` and ``explicar`` back to back for ``seconds`` to one fresh server (warmed
    by one explained home, so the explanation engine it keeps is built, and nothing of a
    batch is in the memory measured before), with ``/health``
    polled meanwhile; resident memory before, at its peak and ``settle`` s after."""
    batch = _max_batch()
    with started(Target("current"), env) as server:
        post(server.port, EXPLAINED, json.dumps({"formularios": _homes(1)}).encode())
        time.sleep(settle)
        name = f"{clients} clients × explained batches for {seconds:g} s"
        row = measure(name, "current", server, clients_for(clients, seconds, EXPLAINED, batch))
        time.sleep(settle)
        after = server.memory_mb()["rss_mb"]
    return {
        "env": dict(env),
        "status": row.status,
        "health_p50_ms": row.detail["health_p50_ms"],
        "health_p99_ms": row.detail["health_p99_ms"],
        "health_worst_ms": row.health_worst_ms,
        "health_polls": row.detail["health_polls"],
        "health_over_50ms": row.detail["health_over_50ms"],
        "health_failures": row.health_failures,
        "rss_before_mb": row.rss_before_mb,
        "peak_rss_mb": row.peak_rss_mb,
        "rss_after_mb": after,
        "after_over_before": after / row.rss_before_mb,
    }


def allocators() -> dict[str, dict[str, str]]:
    """The allocator settings compared, jemalloc where the system has it; each replaces
    whatever fly.toml sets."""
    variants = {
        "glibc (default)": {},
        "MALLOC_ARENA_MAX=2": {"MALLOC_ARENA_MAX": "2"},
        "MALLOC_ARENA_MAX=1": {"MALLOC_ARENA_MAX": "1"},
    }
    found = sorted(
        glob.glob("/usr/lib/*/libjemalloc.so.2") + glob.glob("/usr/lib/libjemalloc.so.2")
    )
    if found:
        variants["jemalloc (LD_PRELOAD)"] = {"LD_PRELOAD": found[0]}
    return variants


def _reload(server: ServerProcess, done: int) -> None:
    """SIGHUP, then wait (at most a minute) for the ``done``-th "model reloaded" line."""
    server.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    while server.output().count("model reloaded") < done and time.monotonic() < deadline:
        time.sleep(0.05)


def reload_growth(targets: list[Target], quick: bool, seconds: float) -> list[dict[str, Any]]:
    """Per allocator: resident memory after 0..N reloads, then the peak of 8 largest
    batches at once with the whole appraisal and what stays after them, and /predecir's
    throughput at c=32; the baseline with glibc as it is, reloads only."""
    results = []
    reloads = 2 if quick else 5
    batch = _max_batch()
    runs = [(target, label, env) for label, env in allocators().items() for target in targets[:1]]
    runs += [(target, "glibc (default)", {}) for target in targets[1:]]
    for target, label, variant in runs:
        _say(f"reloads: {label} ({target.label})…")
        env = {name: value for name, value in fly_env().items() if name not in ALLOCATOR_VARIABLES}
        # Info: the "model reloaded" lines are how a reload is seen to be done.
        env |= {"TASADOR_LOG_LEVEL": "info", "TASADOR_LOG_FORMAT": "text", **variant}
        with started(replace(target, env={**target.env, **env})) as server:
            time.sleep(SETTLE_S)
            rss = [server.memory_mb()["rss_mb"]]
            for done in range(1, reloads + 1):
                _reload(server, done)
                time.sleep(SETTLE_S)
                rss.append(server.memory_mb()["rss_mb"])
            result: dict[str, Any] = {
                "allocator": label,
                "server": target.label,
                "env": variant,
                "rss_after_reloads_mb": rss,
            }
            if target.cwd is None:
                action = batches_at_once(8, "/predecir/lote?detalle=true&explicar=true", batch)
                loaded = measure("8 batches", label, server, action)
                load = run_load(f"{server.url}/predecir", json.dumps(HOME).encode(), 32, seconds)
                result |= {
                    "load_peak_mb": loaded.peak_rss_mb,
                    "after_load_mb": loaded.rss_after_mb,
                    "load_status": loaded.status,
                    "rps_c32": load.rps,
                    "p99_ms_c32": load.p99_ms,
                }
            results.append(result)
    return results


# --- the report -------------------------------------------------------------------------
def render(report: dict[str, Any]) -> str:
    """The report as Markdown tables, as docs/operations/reliability.md shows them."""
    machine = report["machine"]
    lines = [
        f"Run {report['date']} on {machine['cores']} cores ({machine['cpu']}), Python "
        f"{machine['python']}, uvicorn {machine['uvicorn']}, pydantic {machine['pydantic']}; "
        f"fly.toml's environment: body limit {deployed('max_body_bytes'):,} bytes, "
        f"{deployed('max_batch_rows'):,} rows per batch, "
        f"{deployed('max_bodies_in_flight_bytes'):,} bytes of bodies in flight. "
        "Peak rise: the server's "
        "resident memory at its peak during the row, over its start; /health: the slowest "
        "of polls every ~5 ms meanwhile (worst-of, on a shared machine: it moves from run "
        "to run).",
        "",
    ]
    lines += _table(report["attacks"], "request (each on a fresh server)")
    lines += ["", *_targets(report), ""]
    lines += _table(report["load"], "admitted load (sent at once)", peak=True)
    lines += ["", _sizing(report), ""]
    lines += [
        "| allocator | server | resident MB after 0…N reloads | 8 × detalle&explicar batches: peak MB | after MB | /predecir c=32 req/s |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["reloads"]:
        growth = " → ".join(f"{mb:.0f}" for mb in row["rss_after_reloads_mb"])
        loaded = (
            f"{row['load_peak_mb']:,.0f} | {row['after_load_mb']:,.0f} | {row['rps_c32']:,.0f}"
            if "load_peak_mb" in row
            else " | | "
        )
        lines.append(f"| {row['allocator']} | {row['server']} | {growth} | {loaded} |")
    return "\n".join(lines)


def _current(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for row in rows if row["server"] == "current"]


def _targets(report: dict[str, Any]) -> list[str]:
    """The issue's targets for one request of at most the body limit: resident memory up
    by at most ~50 MB, /health held up at most 50 ms."""
    rows = [r for r in _current(report["attacks"]) if r["detail"]["judged"]]
    worst_rise = max(rows, key=lambda r: r["peak_rise_mb"])
    worst_health = max(rows, key=lambda r: r["health_worst_ms"])
    return [
        f"Targets, one request at most the body limit: peak rise ≤ ~50 MB, worst "
        f"{worst_rise['peak_rise_mb']:+,.0f} MB ({worst_rise['name']}); /health ≤ 50 ms, "
        f"worst {worst_health['health_worst_ms']:,.0f} ms ({worst_health['name']})."
    ]


def _sizing(report: dict[str, Any]) -> str:
    """The worst admitted load's peak beside fly.toml's VM memory."""
    rows = _current(report["load"]) + _current(report["attacks"])
    worst = max(
        (r for r in rows if r["detail"].get("deployed", True)), key=lambda r: r["peak_rss_mb"]
    )
    vm = tomllib.loads(FLY_TOML.read_text())["vm"][0]["memory"]
    return (
        f"Worst admitted load: {worst['peak_rss_mb']:,.0f} MB resident at its peak "
        f"({worst['name']}); fly.toml's VM: {vm}."
    )


def _table(rows: list[dict[str, Any]], title: str, peak: bool = False) -> list[str]:
    servers = list(dict.fromkeys(row["server"] for row in rows))
    baseline = [s for s in servers if s != "current"]
    memory = "peak (rise)" if peak else "peak rise"
    header = f"| {title} | status | answer | {memory} | /health worst |"
    rule = "|---|---|---|---|---|"
    if baseline:
        header += f" {baseline[0]}: status | answer | {memory} | /health worst |"
        rule += "---|---|---|---|"
    lines = [header, rule]
    by_name: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_name.setdefault(row["name"], {})[row["server"]] = row
    for name, cells in by_name.items():
        line = f"| {name} |"
        for server in ["current", *baseline]:
            cell = cells.get(server)
            line += _cells(cell, peak) if cell else " | | | |"
        lines.append(line)
    return lines


def _cells(row: dict[str, Any], peak: bool) -> str:
    health = f"{row['health_worst_ms']:,.0f} ms"
    if row["health_failures"]:
        health += f" ({row['health_failures']} failed)"
    memory = f"{row['peak_rise_mb']:+,.0f} MB"
    if peak:
        memory = f"{row['peak_rss_mb']:,.0f} MB ({memory})"
    return f" {row['status']} | {_size(row['answer_bytes'])} | {memory} | {health} |"


def _size(n: int) -> str:
    if n >= 2**20:
        return f"{n / 2**20:,.1f} MiB"
    if n >= 10_000:
        return f"{n / 1024:,.0f} KiB"
    return f"{n:,} B"


def main(argv: list[str] | None = None) -> int:
    """Run the three tables, print them, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="fewer rows, no baseline (~2 min)")
    parser.add_argument(
        "--baseline", default=BASELINE, help=f"git revision to compare with ({BASELINE}); '' none"
    )
    parser.add_argument("--seconds", type=float, default=5, help="load time per allocator (5)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--markdown", action="store_true", help="print the docs' tables")
    parser.add_argument("--docs", action="store_true", help="also put them in their docs page")
    parser.add_argument(
        "--burst",
        action="store_true",
        help="only the review's finding 4: 8 clients sending explained 10,000-row batches "
        "for --seconds (20 is a good figure), /health and memory meanwhile",
    )
    args = parser.parse_args(argv)
    if args.burst:
        # The default budget of bodies in flight: it admits the most at once.
        default = Settings.model_fields["max_bodies_in_flight_bytes"].default
        result = burst(
            {ENV_PREFIX + "MAX_BODIES_IN_FLIGHT_BYTES": str(default)}, seconds=args.seconds
        )
        print(json.dumps(result, indent=2))
        return 0

    revision = "" if args.quick else args.baseline
    with baseline_tree(revision) if revision else contextlib.nullcontext() as tree:
        targets = [Target("current")]
        if tree is not None:
            targets.append(Target(f"before ({revision})", cwd=tree))
        report: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": _machine(),
            "quick": args.quick,
            "baseline": revision if tree is not None else None,
            "attacks": [asdict(row) for row in attack_rows(targets, args.quick)],
            "load": [asdict(row) for row in load_rows(targets, args.quick)],
            "reloads": reload_growth(targets, args.quick, args.seconds),
        }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    tables = render(report)
    print(tables if args.markdown or args.docs else _plain(report))
    if args.docs:
        update_docs(tables, PAGE, MARKS)
    print(f"\nWritten to {args.out}")
    return 0


def _plain(report: dict[str, Any]) -> str:
    lines = []
    for section in ("attacks", "load"):
        for row in report[section]:
            lines.append(
                f"{row['name'][:58]:58} {row['server'][:16]:16} {row['status'][:28]:28} "
                f"{_size(row['answer_bytes']):>10} peak {row['peak_rss_mb']:6,.0f} MB "
                f"({row['peak_rise_mb']:+6,.0f}) /health {row['health_worst_ms']:7,.0f} ms"
            )
        lines.append("")
    lines += [*_targets(report), _sizing(report), ""]
    for row in report["reloads"]:
        growth = " → ".join(f"{mb:.0f}" for mb in row["rss_after_reloads_mb"])
        line = f"{row['allocator']:22} {row['server'][:16]:16} reloads {growth} MB"
        if "load_peak_mb" in row:
            line += (
                f"; 8 batches peak {row['load_peak_mb']:,.0f} MB, after "
                f"{row['after_load_mb']:,.0f} MB; {row['rps_c32']:,.0f} req/s at c=32"
            )
        lines.append(line)
    return "\n".join(lines)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
