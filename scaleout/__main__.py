"""``uv run python -m scaleout --replicas 3``: replicas behind HAProxy until Ctrl-C."""

import argparse
import contextlib
import signal
import sys
from pathlib import Path

from scaleout.cluster import Cluster


def main() -> int:
    """Start the cluster and keep it running until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicas", type=int, default=2, help="tasador processes (2)")
    parser.add_argument("--port", type=int, default=8080, help="HAProxy's port (8080)")
    parser.add_argument("--model-dir", type=Path, help="bundle folder (default: models/)")
    args = parser.parse_args()
    with Cluster(args.replicas, args.model_dir, args.port) as cluster:
        ports = ", ".join(map(str, cluster.ports))
        print(f"{args.replicas} replicas on 127.0.0.1:{ports}; HAProxy on {cluster.url}")
        print("Ctrl-C stops everything.")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
