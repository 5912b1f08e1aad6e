"""Second tab: a CSV of homes, appraised in batches, shown, plotted and downloadable."""

import streamlit as st

from app.features import OPTIONAL
from ui import batch
from ui.api import ApiError, Tasador
from ui.formatting import VEGA_LOCALE, number, price

RESULT = "lote"


def render(api: Tasador) -> None:
    """Upload, appraise, show the table, the distribution and a download."""
    st.subheader("Tasar varias viviendas")
    st.markdown(
        "Sube un CSV con una fila por vivienda y estas columnas: "
        + ", ".join(f"`{c}`" for c in batch.COLUMNS)
        + " (`banos` vale por `baños`; sí/no, true/false o 1/0 en las columnas de sí o no; "
        "separadas por comas, puntos y comas o tabuladores; en UTF-8). "
        + ", ".join(f"`{c}`" for c in OPTIONAL)
        + " pueden faltar, o quedar vacías donde no se sepan. "
        "Otras columnas se conservan en la tabla."
    )
    upload = st.file_uploader("Archivo CSV", type=["csv"], key="csv")
    if upload is not None and st.button("Tasar el archivo", type="primary"):
        try:
            rows = batch.read_csv(upload.getvalue(), upload.name)
        except ValueError as exc:
            st.error(f"No se puede leer el archivo: {exc}")
            return
        bar = st.progress(0.0, text="Tasando…")
        try:
            st.session_state[RESULT] = batch.appraise(api, rows, progress=bar.progress)
        except ApiError as exc:
            st.error(f"La API no ha podido tasar el lote: {exc}")
            return
        finally:
            bar.empty()
    result: batch.Result | None = st.session_state.get(RESULT)
    if result is not None:
        show(result)


def show(result: batch.Result) -> None:
    """The prices first, then the file's own columns; what was refused, the prices'
    distribution and the download (with the numbers as numbers)."""
    import altair as alt
    import pandas as pd

    priced = [p for p in result.prices if p is not None]
    st.metric("Viviendas tasadas", f"{number(len(priced))} de {number(len(result.rows))}")
    if result.problems:
        st.error(
            "Filas que no se han podido tasar:\n\n"
            + "\n".join(
                f"- línea {result.rows[i].line}: {message}"
                for i, message in sorted(result.problems.items())
            )
        )
    table = result.table()
    money = (batch.PRICE, batch.LOW, batch.HIGH)
    shown = pd.DataFrame(
        [{k: (_price(v) if k in money else v) for k, v in row.items()} for row in table]
    )
    st.dataframe(shown, width="stretch", hide_index=True)
    st.download_button(
        "Descargar la tabla (CSV)",
        pd.DataFrame(table).to_csv(index=False).encode(),
        file_name="tasaciones.csv",
        mime="text/csv",
    )
    if priced:
        st.caption(
            f"Mediana {price(float(pd.Series(priced).median()))}, "
            f"de {price(min(priced))} a {price(max(priced))}."
        )
        chart = (
            alt.Chart(pd.DataFrame({"precio": priced}))
            .mark_bar()
            .encode(
                x=alt.X(
                    "precio:Q",
                    bin=alt.Bin(maxbins=30),
                    title="Precio estimado (€)",
                    axis=alt.Axis(format=",d"),
                ),
                y=alt.Y("count():Q", title="Viviendas", axis=alt.Axis(format="d", tickMinStep=1)),
                tooltip=[
                    alt.Tooltip(
                        "precio:Q", bin=alt.Bin(maxbins=30), title="Precio (€)", format=",d"
                    ),
                    alt.Tooltip("count():Q", title="Viviendas"),
                ],
            )
            .configure(locale=VEGA_LOCALE)
        )
        st.altair_chart(chart, width="stretch")


def _price(value: object) -> str:
    is_number = isinstance(value, int | float) and value == value  # NaN: no price
    return price(float(value)) if is_number else ""  # type: ignore[arg-type]
