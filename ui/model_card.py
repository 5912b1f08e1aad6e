"""Third tab: the model card, from GET /modelo, in plain words."""

from typing import Any

import streamlit as st

from ui.api import ApiError, Tasador
from ui.formatting import LABELS, count, date, euros, number, percent


def render(api: Tasador) -> None:
    """What model answers, what it was trained on, and how well it did on held-out homes."""
    try:
        modelo = api.modelo()
    except ApiError as exc:
        st.error(f"La API no ha dicho qué modelo sirve: {exc}")
        return
    data: dict[str, Any] = modelo.get("data", {})
    st.subheader(f"Modelo {modelo.get('version', '?')}")
    if data.get("synthetic"):
        st.warning(
            "**Este modelo se entrenó con datos sintéticos**: viviendas inventadas que se "
            "parecen a los anuncios de Madrid de 2021. Sirve para ver cómo funciona el "
            "servicio; no tasa viviendas reales."
        )
    else:
        st.info(f"Entrenado con datos reales: {data.get('source', '?')}.")
    params = modelo.get("params", {})
    st.markdown(
        f"- **Algoritmo**: {modelo.get('estimator', '?')} de "
        f"{params.get('n_estimators', '?')} árboles, servido con {modelo.get('engine', '?')}\n"
        f"- **Entrenado** el {_date(modelo.get('created_at'))} con "
        f"{_rows(data.get('rows'))} ({data.get('description', '')})\n"
        f"- **Variables**: {', '.join(LABELS.get(f, f) for f in modelo.get('features', []))}"
    )
    metrics = modelo.get("metrics", {})
    st.markdown("**Cómo acertó con viviendas que no vio al entrenar** (hold-out)")
    columns = st.columns(4)
    columns[0].metric("Error típico (RMSE)", euros(metrics.get("rmse", 0)))
    columns[1].metric("Error medio (MAE)", euros(metrics.get("mae", 0)))
    r2 = metrics.get("r2")
    columns[2].metric("R²", "—" if r2 is None else number(r2, 3))
    columns[3].metric("Error porcentual (MAPE)", percent(metrics.get("mape", 0)))
    origen = modelo.get("origen")
    if origen:
        st.markdown(
            f"**Desde MLflow**: `{origen['uri']}` → versión {origen.get('version') or '—'}, "
            f"run `{origen.get('run_id') or '—'}`"
        )
    with st.expander("Manifiesto completo"):
        st.json(modelo)


def _date(stamp: object) -> str:
    try:
        return date(str(stamp))
    except ValueError:
        return "?"


def _rows(rows: object) -> str:
    return count(rows, "viviendas") if isinstance(rows, int) else "? viviendas"
