"""Stand-ins for the Dockerfile's two base images, built from what the CI machines reach
(Debian's archive and PyPI, not Docker Hub or ghcr.io).

- ``PYTHON_IMAGE`` (``python:3.11.7-slim-bookworm``) → ``tasador-standin/python:3.11-bookworm``:
  a Debian root filesystem from ``debootstrap --variant=minbase`` with Debian's python3,
  python3-venv, python-is-python3 and ca-certificates, updated from the suite's -updates
  and -security, trimmed like the slim images. The host's extra CAs go in too: where an
  egress proxy re-signs TLS, uv in the build trusts it through ``SSL_CERT_FILE``.
  Python is Debian's (3.11.2 in /usr/bin), not python.org's 3.11.7 in /usr/local/bin.
- ``UV_IMAGE`` (``ghcr.io/astral-sh/uv:0.13.9``) → ``tasador-standin/uv:0.13.9``: ``/uv`` and
  ``/uvx``, the static binaries of PyPI's musllinux ``uv`` wheel, as in the real image.

Names, suite and versions are read from the Dockerfile's defaults. The root filesystems
are kept as tarballs in ``cache_dir()/standins`` (named after what they are built from;
the Debian one is rebuilt after ``MAX_AGE_DAYS`` for its security updates), so a new
engine gets both in seconds. Needs root (debootstrap, chroot).

    sudo uv run python -m tools.standins   # into the engine of DOCKER_HOST; prints the flags
"""

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tools.dockerd import (
    DOCKER,
    EngineError,
    apt_install,
    cache_dir,
    debian_mirror,
    run,
)

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
EXTRA_CAS = Path("/usr/local/share/ca-certificates")
MAX_AGE_DAYS = 30
DEBOOTSTRAP_TIMEOUT_S = 1200
# Bump when the way the root filesystem is made changes: older tarballs are then unused.
RECIPE = "1"
# As the official images, trimmed of what a server never reads.
TRIMMED = ("usr/share/man", "usr/share/info", "usr/share/locale", "var/lib/apt/lists")
PYTHON_ENV = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG=C.UTF-8",
    # uv trusts its bundled roots unless told otherwise; the system bundle holds the
    # host's extra CAs.
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
)


def dockerfile_defaults(dockerfile: Path = ROOT / "Dockerfile") -> dict[str, str]:
    """The ``ARG NAME=default`` lines before the first ``FROM``."""
    head = re.split(r"(?m)^FROM\s", dockerfile.read_text(), maxsplit=1)[0]
    return dict(re.findall(r"(?m)^ARG\s+(\w+)=(\S+)", head))


def standin_tags(defaults: dict[str, str]) -> dict[str, str]:
    """Build argument → the stand-in's tag, from the Dockerfile's public defaults."""
    python = re.fullmatch(r"python:(\d+\.\d+)[.\d]*-slim-(\w+)", defaults["PYTHON_IMAGE"])
    uv = re.fullmatch(r"ghcr\.io/astral-sh/uv:([\d.]+)", defaults["UV_IMAGE"])
    if python is None or uv is None:
        raise EngineError(f"no stand-in for {defaults['PYTHON_IMAGE']} or {defaults['UV_IMAGE']}")
    minor, suite = python.groups()
    return {
        "PYTHON_IMAGE": f"tasador-standin/python:{minor}-{suite}",
        "UV_IMAGE": f"tasador-standin/uv:{uv.group(1)}",
    }


def ensure(docker_env: dict[str, str]) -> dict[str, str]:
    """Both stand-ins in the engine ``docker_env`` points at; the build arguments."""
    tags = standin_tags(dockerfile_defaults())
    for argument, tag in tags.items():
        present = run([DOCKER, "image", "inspect", tag], env=docker_env, check=False)
        if present.returncode == 0:
            continue
        version = tag.split(":")[1]
        if argument == "PYTHON_IMAGE":
            minor, suite = version.split("-")
            tarball = debian_rootfs(suite, minor)
            changes = [f"ENV {variable}" for variable in PYTHON_ENV] + ['CMD ["python3"]']
        else:
            tarball = uv_rootfs(version)
            changes = ['ENTRYPOINT ["/uv"]']
        flags = [f"--change={change}" for change in changes]
        run([DOCKER, "import", *flags, tarball, tag], env=docker_env, timeout=300)
    return tags


def _fresh(path: Path) -> bool:
    return path.exists() and time.time() - path.stat().st_mtime < MAX_AGE_DAYS * 86400


def _store(folder: Path, name: str, pattern: str) -> Path:
    """``folder/name``; other files matching ``pattern`` (older recipes) are deleted."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(pattern):
        if old.name != name:
            old.unlink()
    return folder / name


def debian_rootfs(suite: str, python_minor: str) -> Path:
    """The tarball of the Python stand-in's root filesystem, built unless cached."""
    cas = sorted(EXTRA_CAS.glob("*.crt"))
    key = hashlib.sha256(
        "\0".join([RECIPE, suite, *PACKAGES, *(ca.read_text() for ca in cas)]).encode()
    ).hexdigest()[:12]
    tarball = _store(cache_dir() / "standins", f"python-{suite}-{key}.tar", f"python-{suite}-*")
    if _fresh(tarball):
        return tarball
    if os.geteuid() != 0:
        raise EngineError("building the Python stand-in needs root (debootstrap, chroot)")
    if shutil.which("debootstrap") is None:
        apt_install(["debootstrap"])
    for leftover in tarball.parent.glob("rootfs-*"):  # from a build that was killed
        shutil.rmtree(leftover)
    mirror = debian_mirror()
    with tempfile.TemporaryDirectory(dir=tarball.parent, prefix="rootfs-") as folder:
        root = Path(folder)
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                suite,
                root,
                mirror,
            ],
            timeout=DEBOOTSTRAP_TIMEOUT_S,
        )
        # debootstrap installs from the suite alone: take its point-release and security
        # fixes too (python3.11 gets them there), as the official images are rebuilt with.
        security = debian_mirror(security=True)
        (root / "etc/apt/sources.list").write_text(
            f"deb {mirror} {suite} main\ndeb {mirror} {suite}-updates main\n"
            f"deb {security} {suite}-security main\n"
        )
        (root / EXTRA_CAS.relative_to("/")).mkdir(parents=True, exist_ok=True)
        for ca in cas:
            shutil.copy2(ca, root / ca.relative_to("/"))
        quiet = {"DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "upgrade", "-y", "-qq"],
            ["update-ca-certificates"],
            ["apt-get", "clean"],
        ):
            run(["chroot", root, *command], env=quiet, timeout=DEBOOTSTRAP_TIMEOUT_S)
        _check(root, cas, python_minor)
        _trim(root)
        partial = tarball.with_suffix(".partial")
        run(["tar", "-C", root, "--numeric-owner", "-cf", partial, "."], timeout=600)
        partial.replace(tarball)
    return tarball


def _check(root: Path, cas: list[Path], python_minor: str) -> None:
    version = run(["chroot", root, "python3", "--version"]).stdout.split()[-1]
    if not version.startswith(python_minor + "."):
        raise EngineError(f"the stand-in's Python is {version}, the image's {python_minor}")
    bundle = "".join((root / "etc/ssl/certs/ca-certificates.crt").read_text().split())
    for ca in cas:
        if "".join(ca.read_text().split()) not in bundle:
            raise EngineError(f"{ca} is missing from the stand-in's CA bundle")


def _trim(root: Path) -> None:
    for folder in TRIMMED:
        for entry in (root / folder).glob("*"):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for entry in (root / "usr/share/doc").rglob("*"):  # licences stay
        if entry.is_file() and entry.name != "copyright":
            entry.unlink()
    for log in (*(root / "var/log").rglob("*.log"), *(root / "var/cache/apt").glob("*.bin")):
        log.unlink()
    # Docker provides these to every container.
    for name in ("etc/resolv.conf", "etc/hostname"):
        (root / name).write_text("")


def uv_rootfs(version: str) -> Path:
    """The tarball of the uv stand-in (``/uv``, ``/uvx``), from PyPI unless cached."""
    arch = platform.machine()
    tarball = _store(cache_dir() / "standins", f"uv-{version}-{arch}.tar", "uv-*")
    if tarball.exists():
        return tarball
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        raise EngineError("uv is needed to fetch the uv wheel")
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder)
        # The musllinux wheel holds the statically linked binaries the official image has.
        run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                f"--python-platform={arch}-unknown-linux-musl",
                f"--target={target}",
                f"uv=={version}",
            ],
            timeout=300,
        )
        said = run([target / "bin" / "uv", "--version"]).stdout.split()
        if said[:2] != ["uv", version]:
            raise EngineError(f"the uv wheel's binary says {' '.join(said)}")
        partial = tarball.with_suffix(".partial")
        with tarfile.open(partial, "w") as archive:
            for name in ("uv", "uvx"):
                info = archive.gettarinfo(target / "bin" / name, arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mode = 0o755
                with (target / "bin" / name).open("rb") as binary:
                    archive.addfile(info, binary)
        partial.replace(tarball)
    return tarball


def main(argv: Sequence[str] | None = None) -> int:
    """Put both stand-ins into the engine of ``DOCKER_HOST``; print the build flags."""
    del argv  # no options
    if "DOCKER_HOST" not in os.environ:
        print("tools.standins: set DOCKER_HOST (python -m tools.dockerd start)", file=sys.stderr)
        return 1
    try:
        tags = ensure(dict(os.environ))
    except (EngineError, subprocess.SubprocessError) as exc:
        print(f"tools.standins: {exc}", file=sys.stderr)
        return 1
    print(" ".join(f"--build-arg {name}={tag}" for name, tag in tags.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
