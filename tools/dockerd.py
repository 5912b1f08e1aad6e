"""A private Docker engine: Debian's ``dockerd``, with everything it keeps under one folder.

The CI machines cannot pull from Docker Hub or ghcr.io, but Debian's ``docker.io`` runs
on them when started by hand. ``Engine`` installs it if needed (as root), starts dockerd
with its data root, exec root, socket, pid file and log under one folder, and stops it.
dockerd also changes the host's network (the ``docker0`` bridge, iptables rules,
``ip_forward``, the FORWARD policy), and those changes outlive it: ``stop`` undoes them
and checks the host is as it was found. One engine runs on a machine at a time, because
engines would share ``docker0`` and the iptables chains: ``start`` refuses when another
dockerd runs.

    sudo uv run python -m tools.dockerd start /tmp/tasador-engine   # prints the exports
    sudo uv run python -m tools.dockerd stop /tmp/tasador-engine    # --purge also deletes it
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

DOCKERD = Path("/usr/sbin/dockerd")
# Debian's CLI (20.10): it drives BuildKit itself. A newer ``docker`` earlier on PATH
# may be one that needs the buildx plugin for BuildKit builds, and not have it.
DOCKER = Path("/usr/bin/docker")
START_TIMEOUT_S = 60
# dockerd gives running containers 15 s to stop, then stops its own containerd.
STOP_TIMEOUT_S = 60
COMMAND_TIMEOUT_S = 120
APT_TIMEOUT_S = 900
# Unix socket paths hold at most 107 bytes; containerd's socket sits deeper than ours.
MAX_SOCKET_PATH = 90
# Compose v2 is not packaged for bookworm; trixie's plugin is one static binary.
COMPOSE_SUITE = "trixie"
COMPOSE_PACKAGE = "docker-compose"
COMPOSE_PLUGIN = "usr/libexec/docker/cli-plugins/docker-compose"


class EngineError(RuntimeError):
    """The engine cannot be installed, started or stopped; the message says why."""


def cache_dir() -> Path:
    """Where downloads and stand-in images are kept between runs on one machine:
    ``$TASADOR_DOCKER_CACHE``, else ``$XDG_CACHE_HOME/tasador/docker`` (``~/.cache``)."""
    if folder := os.environ.get("TASADOR_DOCKER_CACHE"):
        return Path(folder)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "tasador" / "docker"


def run(
    args: Sequence[str | Path],
    *,
    timeout: float = COMMAND_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; ``EngineError`` with its output when it fails."""
    try:
        done = subprocess.run(
            [str(a) for a in args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=None if env is None else {**os.environ, **env},
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise EngineError(f"{' '.join(map(str, args))} took more than {timeout} s") from None
    except FileNotFoundError as exc:
        raise EngineError(f"{args[0]} is not installed ({exc.strerror})") from None
    if check and done.returncode != 0:
        output = (done.stderr or done.stdout).strip()[-2000:]
        raise EngineError(f"{' '.join(map(str, args))} exited with {done.returncode}: {output}")
    return done


def apt_install(packages: Sequence[str]) -> None:
    """Install Debian packages (root only: else say which command would)."""
    if os.geteuid() != 0:
        raise EngineError(f"needs {' '.join(packages)}: sudo apt-get install {' '.join(packages)}")
    # No systemd on these machines: the packages' scripts cannot start services, which
    # is what we want (policy-rc.d refuses, and says so).
    quiet = {"DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], env=quiet, timeout=APT_TIMEOUT_S)
    run(["apt-get", "install", "-y", "-qq", *packages], env=quiet, timeout=APT_TIMEOUT_S)


def install() -> None:
    """Debian's docker.io, if dockerd or its CLI is missing."""
    if not (DOCKERD.exists() and DOCKER.exists()):
        apt_install(["docker.io"])


def other_dockerds(exclude: int | None = None) -> dict[int, str]:
    """Running dockerd processes (pid → command line), except ``exclude``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == exclude:
            continue
        try:
            if (entry / "comm").read_text().strip() == "dockerd" and _alive(int(entry.name)):
                found[int(entry.name)] = (entry / "cmdline").read_text().replace("\0", " ")
        except OSError:  # the process ended meanwhile
            continue
    return found


# The interfaces dockerd creates: its default bridge, and one bridge per user network
# (docker compose makes one per project).
BRIDGES = re.compile(r"docker0|br-[0-9a-f]{12}")
TABLES = ("filter", "nat")


@dataclass(frozen=True)
class HostNetwork:
    """What dockerd changes on the host and leaves changed when it exits."""

    interfaces: list[str]
    ip_forward: str
    rules: dict[str, list[str]]  # iptables table → chains (with policies) and rules

    @classmethod
    def capture(cls) -> "HostNetwork":
        """The host's state now."""
        return cls(
            interfaces=sorted(p.name for p in Path("/sys/class/net").iterdir()),
            ip_forward=Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
            rules={table: _iptables(table) for table in TABLES},
        )

    def differences(self, other: "HostNetwork") -> list[str]:
        """How ``other`` differs from this state, one line per difference."""
        found = [f"interface {name} appeared" for name in other.new_interfaces(self)]
        if self.ip_forward != other.ip_forward:
            found.append(f"ip_forward is {other.ip_forward}, was {self.ip_forward}")
        for table, before in self.rules.items():
            now = other.rules.get(table, [])
            found += [f"iptables -t {table}: {r} added" for r in now if r not in before]
            found += [f"iptables -t {table}: {r} removed" for r in before if r not in now]
        return found

    def new_interfaces(self, before: "HostNetwork") -> list[str]:
        """Interfaces here that were not in ``before``."""
        return [name for name in self.interfaces if name not in before.interfaces]


def _iptables(table: str) -> list[str]:
    """``iptables-save`` of one table without comments and counters: what
    ``iptables-restore`` needs to put it back."""
    saved = run(["iptables-save", "-t", table]).stdout
    return [
        re.sub(r" \[\d+:\d+\]$", "", line)
        for line in saved.splitlines()
        if line and not line.startswith("#")
    ]


def restore_network(before: HostNetwork) -> None:
    """Put the host network back as ``before``: delete the bridges dockerd added, restore
    the iptables tables it changed (chains, rules, policies) and ``ip_forward``."""
    now = HostNetwork.capture()
    for name in now.new_interfaces(before):
        if BRIDGES.fullmatch(name):
            run(["ip", "link", "delete", name])
    for table, rules in before.rules.items():
        if now.rules.get(table) != rules:
            run(["iptables-restore", f"--table={table}"], stdin="\n".join(rules) + "\n")
    Path("/proc/sys/net/ipv4/ip_forward").write_text(before.ip_forward + "\n")


class Engine:
    """dockerd with its data root, exec root, socket, pid file and log under ``folder``.

    A context manager: starts on entry; on exit stops and, when ``purge``, deletes the
    folder (images, build cache). ``env`` is what a ``docker`` command needs to use it.
    """

    def __init__(self, folder: Path, *, purge: bool = False) -> None:
        self.folder = folder.resolve()
        self.socket = self.folder / "docker.sock"
        self.pidfile = self.folder / "dockerd.pid"
        self.log = self.folder / "dockerd.log"
        self.config = self.folder / "config"  # DOCKER_CONFIG: the CLI's, with its plugins
        self.snapshot = self.folder / "host-network.json"
        self.purge = purge
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        """The variables that point ``docker`` (and compose) at this engine."""
        return {
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_BUILDKIT": "1",
            "DOCKER_CONFIG": str(self.config),
        }

    def docker(
        self,
        *args: str | Path,
        timeout: float = COMMAND_TIMEOUT_S,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker ARGS`` against this engine (``env``: more variables)."""
        return run(
            [DOCKER, *args],
            timeout=timeout,
            check=check,
            env={**self.env, **(env or {})},
            stdin=stdin,
        )

    def answers(self) -> bool:
        """Whether the engine answers on its socket."""
        if not self.socket.exists():
            return False
        return self.docker("version", timeout=10, check=False).returncode == 0

    def start(self) -> "Engine":
        """Install docker.io if needed, start dockerd and wait until it answers."""
        if os.geteuid() != 0:
            raise EngineError("dockerd runs as root only: run this as root (sudo)")
        install()
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            raise EngineError(f"{self.folder} is too long a path for the engine's sockets")
        if self.answers():
            return self
        if others := other_dockerds():
            pid, command = next(iter(others.items()))
            raise EngineError(
                f"another dockerd runs (pid {pid}: {command.strip()}); engines on one machine "
                "share docker0 and the iptables chains, so stop it first "
                "(one started by this tool: python -m tools.dockerd stop FOLDER)"
            )
        if Path("/run/containerd/containerd.sock").exists():
            raise EngineError("a system containerd runs; dockerd would share its state")
        for sub in ("data", "exec", "config"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        if not self.snapshot.exists():  # after a crash, keep the state found before it
            self.snapshot.write_text(json.dumps(asdict(HostNetwork.capture())))
        # An empty configuration: a host /etc/docker/daemon.json must not apply here.
        (self.folder / "daemon.json").write_text("{}\n")
        self.pidfile.unlink(missing_ok=True)
        with self.log.open("ab") as log:
            # A session of its own: terminal signals meant for the caller do not reach it.
            self._process = subprocess.Popen(
                [
                    DOCKERD,
                    f"--config-file={self.folder / 'daemon.json'}",
                    f"--data-root={self.folder / 'data'}",
                    f"--exec-root={self.folder / 'exec'}",
                    f"--pidfile={self.pidfile}",
                    f"--host=unix://{self.socket}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.answers():
            if self._process.poll() is not None:
                raise EngineError(f"dockerd exited with {self._process.returncode}: {self._tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise EngineError(f"dockerd did not answer within {START_TIMEOUT_S} s")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        """Stop dockerd and what it started, unmount what it left mounted, and put the host
        network back as it was before ``start``; ``EngineError`` if it is not."""
        pid = self._pid()
        if pid is not None:
            _terminate(pid, self._process)
        self._process = None
        # containerd and its shims, started by this engine: they name its exec root.
        for leftover in _processes_naming(self.folder):
            _terminate(leftover, None, timeout=10)
        for mount in _mounts_under(self.folder):
            run(["umount", "--lazy", mount], check=False)
        self.socket.unlink(missing_ok=True)
        self.pidfile.unlink(missing_ok=True)
        if not self.snapshot.exists():
            return
        if others := other_dockerds():
            raise EngineError(
                f"another dockerd runs (pid {next(iter(others))}): the host network is left "
                f"as it is; the state before this engine started is in {self.snapshot}"
            )
        before = HostNetwork(**json.loads(self.snapshot.read_text()))
        restore_network(before)
        if problems := before.differences(HostNetwork.capture()):
            raise EngineError(
                f"the host network was not restored ({'; '.join(problems)}); the state "
                f"before this engine started is in {self.snapshot}"
            )
        self.snapshot.unlink()

    def remove(self) -> None:
        """Stop the engine and delete its folder (kept if it could not be stopped cleanly)."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def install_compose(self) -> str:
        """Make ``docker compose`` (v2) available to this engine's CLI; its version."""
        plugin = self.config / "cli-plugins" / "docker-compose"
        if not plugin.exists():
            plugin.parent.mkdir(parents=True, exist_ok=True)
            plugin.symlink_to(compose_plugin())
        return self.docker("compose", "version", "--short").stdout.strip()

    def _pid(self) -> int | None:
        if self._process is not None:
            return self._process.pid
        try:
            return int(self.pidfile.read_text())
        except (OSError, ValueError):
            return None

    def _tail(self) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").splitlines()[-5:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> "Engine":
        try:
            return self.start()
        except BaseException:
            with contextlib.suppress(EngineError):  # the reason it did not start comes first
                self.__exit__(None, None, None)
            raise

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.purge:
            self.remove()
        else:
            self.stop()


def _alive(pid: int, process: subprocess.Popen[bytes] | None = None) -> bool:
    """Whether ``pid`` runs (a zombie, which waits for its parent to reap it, does not)."""
    if process is not None:  # our child: poll() also reaps it
        return process.poll() is None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _terminate(
    pid: int, process: subprocess.Popen[bytes] | None, timeout: float = STOP_TIMEOUT_S
) -> None:
    """SIGTERM ``pid``, and SIGKILL it if it outlives ``timeout``."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        if not _alive(pid, process):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while _alive(pid, process) and time.monotonic() < deadline:
            time.sleep(0.1)
    if _alive(pid, process):
        raise EngineError(f"process {pid} survived SIGKILL")


# What dockerd starts besides containers: its containerd, the shims, the port proxies.
HELPERS = ("containerd", "docker-proxy", "runc")


def _processes_naming(folder: Path) -> list[int]:
    """The engine's helper processes still running: they name its folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            helper = (entry / "comm").read_text().strip().startswith(HELPERS)
            if helper and str(folder) + "/" in (entry / "cmdline").read_text():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _mounts_under(folder: Path) -> list[str]:
    prefix = str(folder) + "/"
    points = [
        line.split()[1].replace("\\040", " ")
        for line in Path("/proc/self/mounts").read_text().splitlines()
    ]
    return sorted((p for p in points if p.startswith(prefix)), reverse=True)  # deepest first


def debian_mirror(security: bool = False) -> str:
    """The Debian mirror this machine's apt uses, or its security mirror (deb.debian.org's
    when none is configured)."""
    texts = [p.read_text() for p in Path("/etc/apt/sources.list.d").glob("*.sources")]
    uris = [u for text in texts for u in re.findall(r"(?m)^URIs:\s*(\S+)", text)]
    listed = Path("/etc/apt/sources.list")
    if listed.exists():
        uris += re.findall(r"(?m)^deb\s+(?:\[[^]]*\]\s+)?(\S+)", listed.read_text())
    default = "http://deb.debian.org/debian" + ("-security" if security else "")
    return next((u for u in uris if ("security" in u) == security), default)


def compose_plugin() -> Path:
    """The compose v2 CLI plugin from Debian trixie's package, downloaded once with apt
    (a private source list: the host's apt configuration is left alone) and cached."""
    folder = cache_dir() / "compose"
    plugin = folder / "docker-compose"
    if plugin.exists():
        return plugin
    if os.geteuid() != 0:
        raise EngineError("fetching the compose plugin with apt needs root")
    apt = folder / "apt"
    for sub in ("lists/partial", "archives/partial", "sources.list.d", "debs"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    (apt / "sources.list").write_text(
        f"deb [signed-by={keyring}] {debian_mirror()} {COMPOSE_SUITE} main\n"
    )
    options = [
        f"-oDir::Etc::SourceList={apt / 'sources.list'}",
        f"-oDir::Etc::SourceParts={apt / 'sources.list.d'}",
        f"-oDir::State::Lists={apt / 'lists'}",
        f"-oDir::Cache::Archives={apt / 'archives'}",
        "-oAPT::Sandbox::User=root",
        "-qq",
    ]
    run(["apt-get", *options, "update"], timeout=APT_TIMEOUT_S)
    run(["apt-get", *options, "download", COMPOSE_PACKAGE], cwd=apt / "debs", timeout=APT_TIMEOUT_S)
    (deb,) = (apt / "debs").glob(f"{COMPOSE_PACKAGE}_*.deb")
    with tempfile.TemporaryDirectory(dir=folder) as unpacked:
        run(["dpkg-deb", "-x", deb, unpacked])
        partial = folder / "docker-compose.partial"
        shutil.copy2(Path(unpacked) / COMPOSE_PLUGIN, partial)
        partial.replace(plugin)
    shutil.rmtree(apt)
    return plugin


def main(argv: Sequence[str] | None = None) -> int:
    """``start`` prints ``export`` lines for a shell; ``stop`` stops (``--purge``: and
    deletes the folder)."""
    parser = argparse.ArgumentParser(prog="python -m tools.dockerd", description=__doc__)
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--purge", action="store_true", help="stop: also delete the folder")
    parser.add_argument("--compose", action="store_true", help="start: add docker compose")
    args = parser.parse_args(argv)
    engine = Engine(args.folder)
    try:
        if args.action == "start":
            engine.start()
            if args.compose:
                print(f"docker compose {engine.install_compose()}", file=sys.stderr)
            for name, value in engine.env.items():
                print(f"export {name}={value}")
            print(f"alias docker={DOCKER}")
        elif args.purge:
            engine.remove()
        else:
            engine.stop()
    except EngineError as exc:
        print(f"tools.dockerd: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
