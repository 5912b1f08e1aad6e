"""``uv run python -m scaleout --replicas 3``: replicas behind HAProxy until Ctrl-C or SIGTERM."""

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from scaleout.cluster import Cluster

EXIT_USAGE = 2
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stop(BaseException):
    """SIGINT or SIGTERM arrived; raised where the program is, so that the cluster's
    ``with`` block exits and stops everything (a BaseException, like KeyboardInterrupt, so
    that no ``except Exception`` swallows it)."""

    def __init__(self, sig: signal.Signals) -> None:
        super().__init__(sig.name)
        self.signal = sig


def _stop(signum: int, _frame: FrameType | None) -> None:
    # Only the first signal interrupts: a second one (Ctrl-C pressed again, or SIGTERM
    # after it) must not cut the cleanup short and leave processes or the folder behind.
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise Stop(signal.Signals(signum))


def _ports(text: str) -> list[int]:
    """``9001,9002`` as a list of TCP ports."""
    try:
        ports = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of ports: {text}") from None
    if bad := [port for port in ports if not 1 <= port <= 65535]:
        raise argparse.ArgumentTypeError(f"not a TCP port (1 to 65535): {bad[0]}")
    return ports


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scaleout", description=__doc__)
    parser.add_argument(
        "--replicas", type=int, help="tasador processes (2, or as many as --replica-ports)"
    )
    parser.add_argument("--port", type=int, default=8080, help="HAProxy's port (8080)")
    parser.add_argument(
        "--replica-ports",
        type=_ports,
        metavar="PORT,PORT,…",
        help="the replicas' ports, one each (default: free ports)",
    )
    parser.add_argument("--model-dir", type=Path, help="bundle folder (default: models/)")
    args = parser.parse_args(argv)
    if args.replicas is None:
        args.replicas = len(args.replica_ports) if args.replica_ports else 2
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Start the cluster and keep it running until SIGINT (Ctrl-C) or SIGTERM, then stop
    HAProxy and the replicas and remove the folder of logs."""
    previous = {sig: signal.signal(sig, _stop) for sig in STOP_SIGNALS}
    cluster: Cluster | None = None
    try:
        args = _arguments(argv)
        try:
            cluster = Cluster(args.replicas, args.model_dir, args.port, args.replica_ports)
        except ValueError as exc:
            print(f"python -m scaleout: {exc}", file=sys.stderr)
            return EXIT_USAGE
        with cluster:
            ports = ", ".join(map(str, cluster.ports))
            print(f"{args.replicas} replicas on 127.0.0.1:{ports}; HAProxy on {cluster.url}")
            print(f"Logs in {cluster.folder}, removed on exit. Ctrl-C stops everything.")
            sys.stdout.flush()
            while True:
                signal.pause()
    except Stop as stop:
        if cluster is not None:  # the with block has stopped it
            print(
                f"{stop.signal.name}: stopped HAProxy and the replicas, removed {cluster.folder}."
            )
        return 0
    except RuntimeError as exc:  # a replica or HAProxy that did not start: why, no traceback
        print(f"python -m scaleout: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
