"""First tab: one home, its location picked on the map, and the appraisal with everything
the API says about it (range, €/m², the area, warnings, what drives the price)."""

from typing import Any

import streamlit as st

from app.schemas.formulario import (
    ANTIGUEDAD_MAX,
    BANOS_MAX,
    FORMULARIO_EJEMPLO,
    HABITACIONES_MAX,
    SUPERFICIE_MAX,
    SUPERFICIE_MIN,
    Condicion,
)
from ui.api import ApiError, Tasador
from ui.formatting import euros, percent
from ui.map_picker import pick_location

# Wire name → what a person reads.
LABELS = {
    "latitud": "Latitud",
    "longitud": "Longitud",
    "ubicacion": "Ubicación",
    "superficie_construida": "Superficie construida (m²)",
    "superficie_util": "Superficie útil (m²)",
    "baños": "Baños",
    "habitaciones": "Habitaciones",
    "antiguedad": "Antigüedad (años)",
    "condicion": "Estado",
    "jardin": "Jardín o zona verde",
    "ascensor": "Ascensor",
    "garaje": "Garaje o plaza de aparcamiento",
}
# What a person may not know: each gets a "No lo sé" box, and is then sent as unknown.
UNKNOWABLE = ("superficie_util", "baños", "antiguedad")
NO_LO_SE = "No lo sé"
RESULT = "tasacion"
ERRORS = "errores"
CONDICIONES = [c.value for c in Condicion]


def _start() -> None:
    """The example home the API documents, until the person changes it."""
    for name, value in FORMULARIO_EJEMPLO.items():
        key = "banos" if name == "baños" else name
        st.session_state.setdefault(key, value)


def render(api: Tasador) -> None:
    """The map, the form, and the last appraisal (or the API's objections, by field)."""
    _start()
    st.subheader("¿Dónde está la vivienda?")
    st.caption("Haz clic en el mapa para situarla, o escribe sus coordenadas.")
    pick_location()
    slots: dict[str, Any] = {}
    left, right = st.columns(2)
    left.number_input(LABELS["latitud"], key="latitud", format="%.5f", step=0.001)
    slots["latitud"] = left.empty()
    right.number_input(LABELS["longitud"], key="longitud", format="%.5f", step=0.001)
    slots["longitud"] = right.empty()

    with st.form("formulario"):
        st.subheader("¿Cómo es?")
        left, right = st.columns(2)
        _number(left, slots, "superficie_construida", SUPERFICIE_MIN, SUPERFICIE_MAX, 5.0)
        _number(right, slots, "superficie_util", SUPERFICIE_MIN, SUPERFICIE_MAX, 5.0)
        _count(left, slots, "habitaciones", 0, HABITACIONES_MAX)
        _count(right, slots, "baños", 1, BANOS_MAX)
        _count(left, slots, "antiguedad", 0, ANTIGUEDAD_MAX)
        right.selectbox(LABELS["condicion"], CONDICIONES, key="condicion")
        slots["condicion"] = right.empty()
        for column, name in zip((left, right, left), ("ascensor", "garaje", "jardin"), strict=True):
            column.checkbox(LABELS[name], key=name)
            slots[name] = column.empty()
        sent = st.form_submit_button("Tasar", type="primary")

    if sent:
        _appraise(api)
    general = st.session_state.get(ERRORS, {})
    for name, messages in general.items():
        (slots.get(name) or st).error(" ".join(messages))
    if RESULT in st.session_state:
        show(st.session_state[RESULT])


def _number(
    column: Any, slots: dict[str, Any], name: str, low: float, high: float, step: float
) -> None:
    column.number_input(LABELS[name], min_value=low, max_value=high, step=step, key=name)
    slots[name] = column.empty()
    _unknowable(column, name)


def _count(column: Any, slots: dict[str, Any], name: str, low: int, high: int) -> None:
    key = "banos" if name == "baños" else name
    column.number_input(LABELS[name], min_value=low, max_value=high, step=1, key=key)
    slots[name] = column.empty()
    _unknowable(column, name)


def _unknown_key(name: str) -> str:
    return f"{'banos' if name == 'baños' else name}_no_lo_se"


def _unknowable(column: Any, name: str) -> None:
    if name in UNKNOWABLE:
        column.checkbox(
            NO_LO_SE,
            key=_unknown_key(name),
            help="Se tasa sin este dato: el intervalo será más ancho.",
        )


def formulario() -> dict[str, Any]:
    """The home as the API takes it, from the widgets' values."""
    state = st.session_state
    home = {
        "latitud": float(state["latitud"]),
        "longitud": float(state["longitud"]),
        "superficie_construida": float(state["superficie_construida"]),
        "baños": int(state["banos"]),
        "habitaciones": int(state["habitaciones"]),
        "jardin": bool(state["jardin"]),
        "antiguedad": int(state["antiguedad"]),
        "superficie_util": float(state["superficie_util"]),
        "ascensor": bool(state["ascensor"]),
        "garaje": bool(state["garaje"]),
        "condicion": str(state["condicion"]),
    }
    for name in UNKNOWABLE:
        if state.get(_unknown_key(name)):
            home[name] = None
    return home


def _appraise(api: Tasador) -> None:
    st.session_state.pop(RESULT, None)
    st.session_state.pop(ERRORS, None)
    try:
        st.session_state[RESULT] = api.predecir(formulario())
    except ApiError as exc:
        by_field = exc.by_field()
        st.session_state[ERRORS] = by_field or {"_": [f"La API no ha podido tasarla: {exc}"]}


def show(result: dict[str, Any]) -> None:
    """Everything the API answered, each part only when it is there."""
    st.subheader("Tasación")
    precio = float(result["precio"])
    columns = st.columns(3)
    columns[0].metric("Precio estimado", euros(precio))
    if result.get("precio_m2"):
        columns[1].metric("Precio por m² construido", f"{euros(result['precio_m2'])}/m²")
    zona = result.get("zona")
    if zona:
        columns[2].metric(
            "Mediana de la zona",
            f"{euros(zona['precio_m2_mediano'])}/m²",
            delta=f"{percent(zona['diferencia'], signed=True)} esta vivienda",
            delta_color="off",
            help=f"{zona['viviendas']} viviendas de entrenamiento a menos de "
            f"{zona['radio_km']:.1f} km".replace(".", ","),
        )
    intervalo = result.get("intervalo")
    if intervalo:
        st.markdown(
            f"Lo más probable es que el precio esté **entre {euros(intervalo['inferior'])} y "
            f"{euros(intervalo['superior'])}** (así ocurre con el {percent(intervalo['nivel'])} "
            "de las viviendas parecidas a las de entrenamiento)."
        )
    for warning in result.get("advertencias") or []:
        st.warning(warning["mensaje"])
    contributions = result.get("contribuciones")
    if contributions:
        _explanation(result.get("base"), contributions)
    st.caption(f"Modelo {result.get('modelo', '?')} · {result.get('timestamp', '')}")


def _explanation(base: float | None, contributions: list[dict[str, Any]]) -> None:
    import altair as alt
    import pandas as pd

    st.markdown("**Qué explica el precio**")
    if base is not None:
        st.caption(
            f"Partiendo del precio medio del modelo ({euros(base)}), cada característica "
            "suma o resta:"
        )
    frame = pd.DataFrame(
        {
            "característica": [LABELS.get(c["variable"], c["variable"]) for c in contributions],
            "efecto (€)": [round(float(c["efecto"])) for c in contributions],
        }
    )
    frame["signo"] = ["sube" if e >= 0 else "baja" for e in frame["efecto (€)"]]
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("efecto (€):Q"),
            y=alt.Y("característica:N", sort=None, axis=alt.Axis(title=None, labelLimit=260)),
            color=alt.Color(
                "signo:N",
                scale=alt.Scale(domain=["sube", "baja"], range=["#2a9d8f", "#e76f51"]),
                legend=None,
            ),
            tooltip=["característica", "efecto (€)"],
        )
    )
    st.altair_chart(chart, width="stretch")
