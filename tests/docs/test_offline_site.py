"""tools.offline_site: a built docs site that would fetch an asset from the network fails."""

from pathlib import Path

import pytest

from tools.offline_site import main, remote_assets

LOCAL_PAGE = """<!doctype html><html><head>
<link rel="stylesheet" href="assets/main.css">
<link rel="canonical" href="https://tasador.example/">
<script src="assets/bundle.js"></script>
</head><body><a href="https://docs.astral.sh/uv/">uv</a><img src="img/map.png"></body></html>
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(LOCAL_PAGE, encoding="utf-8")
    (tmp_path / "assets" / "main.css").write_text("a{background:url(../img/x.png)}")
    return tmp_path


def test_a_site_with_only_its_own_assets_and_links_out_passes(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert remote_assets(site) == []
    assert main([str(site)]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("where", "text", "address"),
    [
        pytest.param(
            "api/index.html",
            '<script src="https://unpkg.com/iframe-worker/shim"></script>',
            "https://unpkg.com/iframe-worker/shim",
            id="script",
        ),
        pytest.param(
            "index2.html",
            '<link rel="preconnect" href="https://fonts.gstatic.com">',
            "https://fonts.gstatic.com",
            id="font-preconnect",
        ),
        pytest.param(
            "page.html",
            "<style>@import url(//fonts.googleapis.com/css?family=Roboto)</style>",
            "//fonts.googleapis.com/css?family=Roboto",
            id="inline-style",
        ),
        pytest.param(
            "assets/extra.css",
            "body{font-family:x;src:url('https://cdn.example/x.woff2')}",
            "https://cdn.example/x.woff2",
            id="stylesheet",
        ),
    ],
)
def test_an_asset_from_the_network_is_named_and_fails(
    site: Path, where: str, text: str, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = site / where
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")

    assert remote_assets(site) == [f"{where}: {address}"]
    assert main([str(site)]) == 1
    assert capsys.readouterr().err == f"fetched from the network: {where}: {address}\n"


def test_no_site_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "site")]) == 2
    assert "usage: python -m tools.offline_site" in capsys.readouterr().err
