"""Bytes each installed distribution takes in a site-packages folder, as JSON.

Standard library only: ``tools.image`` pipes this file into the image's own Python
(``docker run -i IMAGE python - FOLDER``). Every top-level entry (package, module, its
``.libs`` folder, its ``.dist-info``) is given to the distribution whose ``RECORD`` lists
it; sizes are apparent sizes (what a layer stores), compiled bytecode counted apart.
"""

import csv
import json
import sys
from pathlib import Path


def owners(site: Path) -> dict[str, str]:
    """Top-level entry name → the distribution that installed it."""
    found: dict[str, str] = {}
    for record in site.glob("*.dist-info/RECORD"):
        # "scikit_learn-1.9.1.dist-info" → "scikit-learn", as the lock names it.
        distribution = record.parent.name.split("-")[0].lower().replace("_", "-")
        found[record.parent.name] = distribution
        with record.open(newline="") as rows:
            for row in csv.reader(rows):
                top = row[0].split("/", 1)[0] if row else ""
                if top and not top.startswith(".."):
                    found.setdefault(top, distribution)
    return found


def sizes(site: Path) -> dict[str, dict[str, int]]:
    """Distribution → ``{"bytes": all its files, "pyc": compiled bytecode among them}``."""
    owner = owners(site)
    totals: dict[str, dict[str, int]] = {}
    for entry in site.iterdir():
        files = [entry] if not entry.is_dir() else [p for p in entry.rglob("*") if p.is_file()]
        for path in files:
            # Top-level modules keep their bytecode in the top-level __pycache__.
            name = path.name.split(".")[0] + ".py" if entry.name == "__pycache__" else entry.name
            total = totals.setdefault(owner.get(name, "(unowned)"), {"bytes": 0, "pyc": 0})
            size = path.lstat().st_size
            total["bytes"] += size
            total["pyc"] += size if path.suffix == ".pyc" else 0
    return totals


if __name__ == "__main__":
    (site,) = Path(sys.argv[1]).glob("lib/python3*/site-packages")
    json.dump(sizes(site), sys.stdout)
