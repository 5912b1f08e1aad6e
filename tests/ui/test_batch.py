"""The front end's CSV reading (ui/batch.py) through app.home_files, the reader of
``tasador train``: plain Python, in the default suite, without Streamlit."""

import pytest

from ui import batch

HEADER = (
    "referencia;latitud;longitud;superficie_construida;banos;habitaciones;jardin;"
    "antiguedad;superficie_util;ascensor;garaje;condicion"
)


def test_a_spanish_excel_file_is_read_as_training_reads_it() -> None:
    data = f"{HEADER}\nv1;40,4168;-3,7038;1.250,5;2;3;no;;;sí;0;Reformado\n".encode()

    (row,) = batch.read_csv(data, "casas.csv")

    assert row.line == 2
    assert row.cells["referencia"] == "v1"
    assert row.formulario is not None
    assert row.formulario["superficie_construida"] == 1250.5
    assert row.formulario["latitud"] == 40.4168
    assert row.formulario["antiguedad"] is None  # empty: unknown
    assert (row.formulario["jardin"], row.formulario["ascensor"]) == (False, True)


def test_a_row_the_reader_refuses_says_why_in_spanish() -> None:
    data = f"{HEADER}\nv1;40,4;-3,7;mucho;2;3;no;;;sí;0;Reformado\n".encode()

    (row,) = batch.read_csv(data)

    assert row.formulario is None
    assert row.problem == "Superficie construida: no es un número"


@pytest.mark.parametrize(
    ("data", "said"),
    [
        pytest.param(
            f"{HEADER}\nv1;40,4;-3,7;90;2;3;no;;;sí;0;A reformar\n".replace(
                "banos", "baños"
            ).encode("latin-1"),
            "casas.csv no está en UTF-8: la línea 1 tiene el byte 0xf1",
            id="latin-1",
        ),
        pytest.param(
            b"latitud,longitud\n40.4,-3.7\n",
            "A casas.csv le faltan columnas: superficie_construida, habitaciones, jardin, "
            "ascensor, garaje, condicion.",
            id="missing-columns",
        ),
    ],
)
def test_a_file_that_cannot_be_used_is_diagnosed_in_spanish(data: bytes, said: str) -> None:
    with pytest.raises(ValueError, match=r"^casas\.csv |^A casas\.csv ") as refused:
        batch.read_csv(data, "casas.csv")

    assert str(refused.value).startswith(said)
    assert "/tmp" not in str(refused.value)
