"""``python -m ui [streamlit flags]``: start the front end with the settings it needs.

Static serving on (the map's Leaflet is served from ``ui/static``), usage statistics off
(the browser would send them to Streamlit's servers), the developer toolbar off, and
listening on 127.0.0.1 as ``tasador serve`` does, unless ``STREAMLIT_SERVER_ADDRESS`` says
otherwise (the image sets 0.0.0.0); any flag given is passed on.
"""

import os
import sys
from pathlib import Path

APP = Path(__file__).with_name("streamlit_app.py")
FLAGS = [
    "--server.enableStaticServing", "true",
    "--browser.gatherUsageStats", "false",
    "--client.toolbarMode", "viewer",  # no "Deploy" button for the people using it
]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Run ``streamlit run ui/streamlit_app.py`` with tasador's flags, then the caller's."""
    from streamlit.web import cli

    local = [] if "STREAMLIT_SERVER_ADDRESS" in os.environ else ["--server.address", "127.0.0.1"]
    given = sys.argv[1:] if argv is None else argv
    sys.argv = ["streamlit", "run", str(APP), *FLAGS, *local, *given]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
