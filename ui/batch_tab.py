"""Second tab: a CSV of homes, appraised in batches, shown, plotted and downloadable."""

import streamlit as st

from ui import batch
from ui.api import ApiError, Tasador
from ui.formatting import euros

RESULT = "lote"


def render(api: Tasador) -> None:
    """Upload, appraise, show the table, the distribution and a download."""
    st.subheader("Tasar varias viviendas")
    st.markdown(
        "Sube un CSV con una fila por vivienda y estas columnas: "
        + ", ".join(f"`{c}`" for c in batch.COLUMNS)
        + " (`banos` vale por `baños`; sí/no, true/false o 1/0 en las columnas de sí o no). "
        + ", ".join(f"`{c}`" for c in batch.OPTIONAL)
        + " pueden faltar, o quedar vacías donde no se sepan. "
        "Otras columnas se conservan en la tabla."
    )
    upload = st.file_uploader("Archivo CSV", type=["csv"], key="csv")
    if upload is not None and st.button("Tasar el archivo", type="primary"):
        try:
            rows = batch.read_csv(upload.getvalue())
        except (ValueError, UnicodeDecodeError) as exc:
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
    """The table, what was refused, the prices' distribution and the download."""
    import altair as alt
    import pandas as pd

    table = pd.DataFrame(result.table())
    priced = [p for p in result.prices if p is not None]
    st.metric("Viviendas tasadas", f"{len(priced)} de {len(result.rows)}")
    if result.problems:
        st.error(
            "Filas rechazadas por la API:\n\n"
            + "\n".join(
                f"- línea {batch.file_line(i)}: {message}"
                for i, message in sorted(result.problems.items())
            )
        )
    st.dataframe(table, width="stretch", hide_index=True)
    st.download_button(
        "Descargar la tabla (CSV)",
        table.to_csv(index=False).encode(),
        file_name="tasaciones.csv",
        mime="text/csv",
    )
    if priced:
        st.caption(
            f"Mediana {euros(float(pd.Series(priced).median()))}, "
            f"de {euros(min(priced))} a {euros(max(priced))}."
        )
        chart = (
            alt.Chart(pd.DataFrame({"precio (€)": priced}))
            .mark_bar()
            .encode(x=alt.X("precio (€):Q", bin=alt.Bin(maxbins=30)), y="count()")
        )
        st.altair_chart(chart, width="stretch")
