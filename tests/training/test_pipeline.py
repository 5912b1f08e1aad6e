"""`tasador train`: from CSV or synthetic data to a bundle the service accepts."""

import csv
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.bundle.loader import BundleError, load_bundle
from app.cli import main
from app.training import pipeline
from app.training.dataset import all_columns, required_columns
from app.training.synthetic import generate
from tests.helpers import TINY, make_key, train_quietly


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The error lines `tasador train` printed (progress lines aside)."""
    lines = capsys.readouterr().err.strip().splitlines()
    return [line for line in lines if line.startswith("tasador train:")]


def _rows(n: int) -> list[dict[str, Any]]:
    data = generate(n, 11)
    return [
        {**f.model_dump(mode="json"), "precio": float(p)}
        for f, p in zip(data.formularios, data.precios, strict=True)
    ]


def test_train_from_csv_reports_rejected_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _rows(150)
    rows[3]["superficie_construida"] = ""  # line 5: header is line 1
    rows[10]["habitaciones"] = "tres"  # line 12
    rows[20]["superficie_util"] = rows[20]["superficie_construida"] + 5  # line 22
    rows[30]["condicion"] = "Nuevo"  # line 32
    rows[31]["precio"] = -1  # line 33
    rows[40]["habitaciones"] = "tres"  # line 42
    data = _write_csv(tmp_path / "casas.csv", rows, all_columns())
    out = tmp_path / "bundle"

    code = main(["train", "--data", str(data), "--out", str(out), "--trees", "4"])

    assert code == 0
    err = capsys.readouterr().err
    assert "144 usable rows, 6 rejected" in err
    assert "2 row(s): habitaciones: not a number (line 12, 42)" in err
    assert "superficie_construida: empty (line 5)" in err
    assert "cannot exceed superficie_construida" in err
    assert "(line 22)" in err
    assert "condicion: Input should be" in err
    assert "(line 32)" in err
    assert "precio: Input should be greater than or equal to 1000 (line 33)" in err
    manifest = load_bundle(out).manifest
    assert manifest.data.rows == 144
    assert manifest.data.rows_rejected == 6
    assert manifest.data.synthetic is False
    assert manifest.data.source == "casas.csv"


def test_optional_columns_may_be_left_out_or_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _rows(80)
    for row in rows[:30]:
        row["baños"] = ""
    columns = [c for c in all_columns() if c not in ("antiguedad", "superficie_util")]
    data = _write_csv(tmp_path / "casas.csv", rows, columns)

    code = main(["train", "--data", str(data), "--out", str(tmp_path / "b"), "--trees", "2"])

    assert code == 0
    err = capsys.readouterr().err
    manifest = load_bundle(tmp_path / "b").manifest
    unknown_banos = sum(1 for r in rows if r["baños"] in ("", None))
    assert manifest.data.rows == 80
    assert manifest.data.unknown == {
        "baños": unknown_banos,
        "antiguedad": 80,
        "superficie_util": 80,
    }
    assert f"Unknown values: baños in {unknown_banos} rows, antiguedad in 80 rows" in err


def test_banos_column_and_extra_columns_are_accepted(tmp_path: Path) -> None:
    rows = [{**r, "banos": r.pop("baños"), "barrio": "Sol"} for r in _rows(60)]
    columns = [c if c != "baños" else "banos" for c in all_columns()] + ["barrio"]
    data = _write_csv(tmp_path / "casas.csv", rows, columns)

    assert main(["train", "--data", str(data), "--out", str(tmp_path / "b"), "--trees", "2"]) == 0
    assert load_bundle(tmp_path / "b").manifest.data.rows == 60


def test_missing_column_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    columns = [c for c in all_columns() if c not in ("precio", "garaje")]
    data = _write_csv(tmp_path / "casas.csv", _rows(30), columns)

    code = main(["train", "--data", str(data), "--out", str(tmp_path / "b")])

    errors = _error_lines(capsys)
    assert code == 2
    assert errors == [
        f"tasador train: {data} lacks column(s) garaje, precio; expected: "
        + ", ".join(required_columns())
        + ", and if known baños, antiguedad, superficie_util"
        + " (separated by commas, semicolons or tabs)"
    ]
    assert not (tmp_path / "b").exists()


def _header_twice(columns: list[str], names: dict[str, str]) -> str:
    """A CSV text whose header adds ``names`` (spelling → value column) after ``columns``."""
    rows = _rows(30)
    lines = [",".join([*columns, *names])]
    for row in rows:
        values = [row[c] for c in columns] + [row[v] for v in names.values()]
        lines.append(",".join(str(v) for v in values))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param({"precio": "precio"}, "precio (columns 12 and 13)", id="same-name"),
        pytest.param({"banos": "baños"}, "baños (columns 4 and 13 as banos)", id="banos"),
        pytest.param(
            {" garaje ": "garaje", "habitaciones": "habitaciones"},
            "habitaciones (columns 5 and 14); garaje (columns 10 and 13)",
            id="two-columns",
        ),
    ],
)
def test_a_column_given_twice_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: dict[str, str], message: str
) -> None:
    data = tmp_path / "casas.csv"
    data.write_text(_header_twice(all_columns(), extra), encoding="utf-8")

    code = main(["train", "--data", str(data), "--out", str(tmp_path / "b")])

    assert code == 2
    assert _error_lines(capsys) == [
        f"tasador train: {data} has the same column more than once: {message}"
    ]
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "cannot read", id="no-file"),
        pytest.param(b"", "lacks column(s)", id="empty-file"),
        pytest.param("\xff\xfe".encode("latin-1") * 10, "not UTF-8", id="binary"),
    ],
)
def test_unusable_csv_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    data = tmp_path / "casas.csv"
    if content is not None:
        data.write_bytes(content)

    code = main(["train", "--data", str(data), "--out", str(tmp_path / "b")])

    errors = _error_lines(capsys)
    assert code == 2
    assert len(errors) == 1
    assert message in errors[0]


def test_no_usable_row_is_refused_with_the_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _rows(3)
    rows[0]["habitaciones"] = rows[2]["habitaciones"] = "tres"
    rows[1]["garaje"] = "quizá"
    data = _write_csv(tmp_path / "casas.csv", rows, all_columns())

    code = main(["train", "--data", str(data), "--out", str(tmp_path / "b")])

    assert code == 2
    assert capsys.readouterr().err.splitlines()[-3:] == [
        f"tasador train: {data} has no usable rows; all 3 were rejected:",
        "  2 row(s): habitaciones: not a number (line 2, 4)",
        "  1 row(s): garaje: not a yes/no value (line 3)",
    ]
    assert not (tmp_path / "b").exists()


def test_too_few_usable_rows_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write_csv(tmp_path / "casas.csv", _rows(5), all_columns())

    assert main(["train", "--data", str(data), "--out", str(tmp_path / "b")]) == 2
    assert "training needs at least 20" in capsys.readouterr().err


def test_synthetic_training_writes_a_bundle_that_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "models"

    code = main(["train", "--out", str(out), "--rows", "300", "--trees", "3", "--seed", "4"])

    assert code == 0
    captured = capsys.readouterr()
    assert "Fitting trees" in captured.err  # progress is shown
    assert "Hold-out: RMSE" in captured.err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data"]["synthetic"] is True
    assert "synthetic" in manifest["data"]["description"]
    assert set(manifest["metrics"]) == {"rmse", "mae", "r2", "mape"}
    assert manifest["params"]["n_estimators"] == 3
    assert set(manifest["artefacts"]) == {
        "model.pkl",
        "encodings.pkl",
        "forest.onnx",
        "check.npz",
        "valuation.json",
        "leaves.onnx",
        "contributions.npz",
        "testigos.npz",
    }
    assert len(manifest["reference"]) == 8
    assert manifest["feature_ranges"]["superficie_construida"]["min"] >= 25
    assert manifest["version"] in captured.out


def test_training_is_reproducible(tmp_path: Path) -> None:
    first = json.loads((train_quietly(tmp_path / "a") / "manifest.json").read_text())
    second = json.loads((train_quietly(tmp_path / "b") / "manifest.json").read_text())

    assert first["version"] == second["version"]
    assert first["artefacts"] == second["artefacts"]
    assert first["data"]["sha256"] == second["data"]["sha256"]


def test_a_failed_training_leaves_the_old_bundle_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = train_quietly(tmp_path / "models")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def crash(*_: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline, "load_bundle", crash)
    with pytest.raises(RuntimeError, match="disk on fire"):
        train_quietly(out, replace(TINY, seed=99))

    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]  # no temp folders left


def test_retraining_replaces_the_bundle_whole(tmp_path: Path) -> None:
    out = train_quietly(tmp_path / "models")
    old = load_bundle(out).version

    train_quietly(out, replace(TINY, seed=99))

    assert load_bundle(out).version != old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]


def test_refuses_to_replace_a_folder_that_is_not_a_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("mine")

    code = main(["train", "--out", str(tmp_path / "docs"), "--rows", "100", "--trees", "2"])

    assert code == 2
    assert "refusing to replace it" in capsys.readouterr().err
    assert (tmp_path / "docs" / "notes.txt").read_text() == "mine"


def test_train_signs_with_a_key_made_by_tasador_claves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, out = tmp_path / "claves" / "firma", tmp_path / "models"

    assert main(["claves", str(private)]) == 0
    printed = capsys.readouterr().out
    trusted = printed.split("TASADOR_TRUSTED_KEYS=")[1].strip()
    code = main(
        ["train", "--out", str(out), "--rows", "200", "--trees", "2", "--firmar", str(private)]
    )

    assert code == 0
    key_id = json.loads((out / "manifest.sig").read_text())["key_id"]
    assert f"Public key:  {private}.pub, id {key_id}." in printed
    assert f"signed by key {key_id}" in capsys.readouterr().err
    assert load_bundle(out, trusted_keys=(trusted,)).manifest.params["n_estimators"] == 2
    assert load_bundle(out, trusted_keys=(f"{private}.pub",)).version
    _, other = make_key(tmp_path)
    with pytest.raises(BundleError, match="is not signed by a trusted key"):
        load_bundle(out, trusted_keys=(other,))


def test_train_signs_with_an_encrypted_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TASADOR_KEY_PASSPHRASE", "contraseña larga")
    assert main(["claves", str(tmp_path / "firma")]) == 0
    assert b"ENCRYPTED PRIVATE KEY" in (tmp_path / "firma").read_bytes()
    trusted = capsys.readouterr().out.split("TASADOR_TRUSTED_KEYS=")[1].strip()
    out = tmp_path / "models"

    code = main(
        [
            "train",
            "--out",
            str(out),
            "--rows",
            "200",
            "--trees",
            "2",
            "--firmar",
            str(tmp_path / "firma"),
        ]
    )

    assert code == 0
    assert load_bundle(out, trusted_keys=(trusted,)).version


@pytest.mark.parametrize(
    ("key", "passphrase", "message"),
    [
        pytest.param("missing", None, "cannot read the signing key", id="no-file"),
        pytest.param("public", None, "cannot be loaded: not a PEM private key", id="public-key"),
        pytest.param("encrypted", None, "is encrypted: set TASADOR_KEY_PASSPHRASE", id="locked"),
        pytest.param("encrypted", "otra", "or a wrong passphrase", id="wrong-passphrase"),
        pytest.param("plain", "otra", "is not encrypted: unset", id="not-encrypted"),
    ],
)
def test_an_unusable_signing_key_is_one_line_and_exit_2_before_training(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    key: str,
    passphrase: str | None,
    message: str,
) -> None:
    make_key(tmp_path, "plain")
    monkeypatch.setenv("TASADOR_KEY_PASSPHRASE", "buena")
    assert main(["claves", str(tmp_path / "encrypted")]) == 0
    (tmp_path / "public").write_bytes((tmp_path / "plain.pub").read_bytes())
    monkeypatch.delenv("TASADOR_KEY_PASSPHRASE")
    if passphrase is not None:
        monkeypatch.setenv("TASADOR_KEY_PASSPHRASE", passphrase)
    capsys.readouterr()

    code = main(["train", "--out", str(tmp_path / "b"), "--firmar", str(tmp_path / key)])

    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()  # nothing trained before it
    assert line.startswith("tasador train: ")
    assert message in line
    assert str(tmp_path / key) in line
    assert not (tmp_path / "b").exists()


def test_claves_refuses_to_overwrite_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, _ = make_key(tmp_path)
    before = private.read_bytes()

    assert main(["claves", str(private)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"tasador claves: {private} exists; refusing to overwrite a key"
    ]
    assert private.read_bytes() == before
