"""Debian's headless Chromium, driven by Selenium, with every request its pages make
recorded: what the browser tests use to check that pages work with no network.

- The driver is the system's ``/usr/bin/chromedriver``, given by path, so Selenium Manager
  never runs (it would try to download a browser and a driver).
- ``--host-resolver-rules`` resolves every host but 127.0.0.1 and localhost to nothing:
  a request to the internet fails at once and still shows in the log. Chromium's own
  background traffic (update checks, accounts), which the flags do not all stop, dies there
  too, before any DNS query.
- Requests come from the DevTools performance log, which covers iframes (Streamlit's
  components) and workers.
"""

import json
import os
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
# Schemes that never reach a network: the page's own data, and Chromium's internal pages
# (a new Chromium opens chrome-untrusted://new-tab-page/... by itself).
NOT_NETWORK = frozenset(
    {"data", "blob", "about", "chrome", "chrome-untrusted", "chrome-extension", "devtools"}
)
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # as root, in a container
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=OptimizationHints,Translate,MediaRouter,NetworkTimeServiceQuerying",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--disable-quic",
    "--password-store=basic",
    "--use-mock-keychain",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
    "--window-size=1280,1600",
)


@dataclass(frozen=True)
class Request:
    """One request a page made."""

    method: str
    url: str

    @property
    def local(self) -> bool:
        """Whether it stayed on this machine (or was no network request at all)."""
        parts = urllib.parse.urlsplit(self.url)
        return parts.scheme in NOT_NETWORK or parts.hostname in LOCAL_HOSTS


@contextmanager
def chromium() -> Iterator[Any]:
    """A Selenium driver of a fresh headless Chromium; quits it (and every process it
    started) on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never go online
    profile = tempfile.mkdtemp(prefix="tasador-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=os.devnull)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def requests_made(driver: Any) -> list[Request]:
    """Every request the driver's pages started since the last call (the log drains)."""
    made = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            request = message["params"]["request"]
            made.append(Request(request["method"], request["url"]))
        elif message["method"] == "Network.webSocketCreated":
            made.append(Request("WEBSOCKET", message["params"]["url"]))
    return made


def screenshot(driver: Any, folder: Path, name: str) -> Path:
    """Save what the page shows as ``folder/name.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
