"""Reading a training CSV: separators, decimal commas, encodings, and what is refused."""

from pathlib import Path

import pytest

from app.training.dataset import DatasetError, all_columns, read_csv

# One home as a CSV writes it with decimal points; `_spanish` turns it into decimal commas.
HOME = {
    "latitud": "40.4168",
    "longitud": "-3.7038",
    "superficie_construida": "95.5",
    "baños": "2",
    "habitaciones": "3",
    "jardin": "no",
    "antiguedad": "40",
    "superficie_util": "80.25",
    "ascensor": "sí",
    "garaje": "0",
    "condicion": "Reformado",
    "precio": "350000.5",
}
RESAVE = 're-save it as UTF-8 (in Excel: Save As, "CSV UTF-8")'


def _spanish(row: dict[str, str]) -> dict[str, str]:
    return {name: value.replace(".", ",") for name, value in row.items()}


def _write(
    path: Path,
    rows: list[dict[str, str]],
    separator: str = ",",
    columns: list[str] | None = None,
    encoding: str = "utf-8",
) -> Path:
    """A CSV as Excel writes it (CRLF line ends); a row lacking a column gets it from HOME."""
    columns = columns or all_columns()
    lines = [separator.join(columns)]
    lines += [separator.join({**HOME, **row}[name] for name in columns) for row in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


@pytest.mark.parametrize(
    ("separator", "row"),
    [
        pytest.param(",", HOME, id="comma"),
        pytest.param(";", _spanish(HOME), id="semicolon-decimal-comma"),
        pytest.param(";", HOME, id="semicolon-decimal-point"),
        pytest.param("\t", HOME, id="tab"),
    ],
)
def test_each_separator_gives_the_same_home(
    tmp_path: Path, separator: str, row: dict[str, str]
) -> None:
    data = read_csv(_write(tmp_path / "casas.csv", [row, row], separator))

    assert len(data) == 2
    assert data.rejected.total == 0
    home = data.formularios[0].model_dump(mode="json")
    assert home["latitud"] == 40.4168
    assert home["longitud"] == -3.7038
    assert home["superficie_construida"] == 95.5
    assert home["superficie_util"] == 80.25
    assert home["baños"] == 2
    assert home["ascensor"] is True
    assert list(data.precios) == [350000.5, 350000.5]


@pytest.mark.parametrize(
    ("separator", "precio", "read"),
    [
        pytest.param(";", "350000,5", 350000.5, id="decimal-comma"),
        pytest.param(";", "350.000,5", 350000.5, id="thousands-dot-and-decimal-comma"),
        pytest.param(";", "1.234.567", 1234567.0, id="thousands-dots"),
        pytest.param(";", "350000.5", 350000.5, id="decimal-point"),
        pytest.param(";", "350.000", 350000.0, id="one-thousands-dot"),
        pytest.param(";", "35.00.000,5", "precio: not a number", id="bad-grouping"),
        pytest.param(";", "350,000.5", "precio: not a number", id="english-grouping"),
        pytest.param(";", "350000,", "precio: not a number", id="comma-without-decimals"),
        pytest.param(",", '"350000,5"', "precio: not a number", id="comma-file-no-decimal-comma"),
        pytest.param("\t", "350000,5", "precio: not a number", id="tab-file-no-decimal-comma"),
    ],
)
def test_numbers_are_read_as_written_or_refused(
    tmp_path: Path, separator: str, precio: str, read: float | str
) -> None:
    home = _spanish(HOME) if separator == ";" else HOME
    rows = [home, {**home, "precio": precio}]  # the second is line 3

    data = read_csv(_write(tmp_path / "casas.csv", rows, separator))

    if isinstance(read, float):
        assert data.rejected.total == 0
        assert data.precios[1] == read
    else:
        (line,) = data.rejected.summary()
        assert line.startswith(f"1 row(s): {read}")
        assert line.endswith("(line 3)")


@pytest.mark.parametrize(
    ("home", "read"),
    [
        pytest.param(_spanish(HOME), 1500.0, id="decimal-commas-in-the-file: thousands dot"),
        pytest.param(HOME, 1.5, id="no-decimal-comma-in-the-file: decimal point"),
    ],
)
def test_one_dot_before_three_digits_is_read_as_the_file_writes_numbers(
    tmp_path: Path, home: dict[str, str], read: float
) -> None:
    first = {**home, "longitud": "-3.704" if home is HOME else "-3,704"}
    second = {**home, "superficie_construida": "1.500", "superficie_util": "1.500"}

    data = read_csv(_write(tmp_path / "casas.csv", [first, second], ";"))

    assert data.formularios[0].longitud == -3.704  # never a thousands dot
    if read > 1000:
        assert data.rejected.total == 0
        assert data.formularios[1].superficie_construida == read
    else:  # 1.5 m² is read as written, then refused by the schema like any such area
        (line,) = data.rejected.summary()
        assert line.startswith("1 row(s): superficie_construida: Input should be greater than")


def test_no_usable_row_shows_every_reason(tmp_path: Path) -> None:
    rows = [
        {"habitaciones": "tres"},
        {"precio": ""},
        {"habitaciones": "tres"},
        {"superficie_util": "120"},  # more than superficie_construida
    ]
    path = _write(tmp_path / "casas.csv", rows)

    with pytest.raises(DatasetError) as refused:
        read_csv(path)

    lines = str(refused.value).splitlines()
    assert lines[0] == f"{path} has no usable rows; all 4 were rejected:"
    assert lines[1] == "  2 row(s): habitaciones: not a number (line 2, 4)"
    assert lines[2] == "  1 row(s): precio: empty (line 3)"
    assert lines[3] == (
        "  1 row(s): superficie_util: superficie_util (120.0) cannot exceed "
        "superficie_construida (95.5) (line 5)"
    )
    assert len(lines) == 4


def test_a_header_without_rows_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "casas.csv", [])

    with pytest.raises(DatasetError, match=r"casas\.csv has no rows below its header$"):
        read_csv(path)


@pytest.mark.parametrize(
    ("columns", "rows", "line", "byte"),
    [
        pytest.param(
            [*(c if c != "baños" else "banos" for c in all_columns()), "barrio"],
            [{"banos": "2", "ascensor": "si", "barrio": b} for b in ("Sol", "Sol", "Núñez")],
            4,
            "0xfa",
            id="cell",
        ),
        pytest.param(all_columns(), [{}], 1, "0xf1", id="header"),
    ],
)
def test_latin1_says_which_line_is_not_utf8(
    tmp_path: Path, columns: list[str], rows: list[dict[str, str]], line: int, byte: str
) -> None:
    path = _write(tmp_path / "casas.csv", rows, ";", columns, encoding="latin-1")

    with pytest.raises(DatasetError) as refused:
        read_csv(path)

    assert str(refused.value) == (
        f"{path} is not UTF-8 text: line {line} has byte {byte} "
        f"(Latin-1 or Windows-1252, perhaps); {RESAVE}"
    )


def test_utf16_is_named(tmp_path: Path) -> None:
    path = tmp_path / "casas.txt"
    path.write_text("\t".join(all_columns()) + "\n", encoding="utf-16")

    with pytest.raises(DatasetError) as refused:
        read_csv(path)

    assert str(refused.value) == (
        f'{path} is UTF-16 text (Excel\'s "Unicode Text"), not UTF-8; {RESAVE}'
    )


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "casas.csv", [_spanish(HOME)], ";", encoding="utf-8-sig")

    assert len(read_csv(path)) == 1
