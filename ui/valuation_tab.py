"""First tab: one home, its location picked on the map, and the appraisal with everything
the API says about it (range, confidence, €/m², the area, testigos, warnings, what drives
the price), in Spanish for people."""

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
from ui.formatting import (
    LABELS,
    VEGA_LOCALE,
    date_time,
    distance,
    field_error,
    km,
    number,
    per_m2,
    percent,
    price,
    warning,
)
from ui.map_picker import pick_location, training_area

# What a person may not know: each gets a "No lo sé" box, and is then sent as unknown.
UNKNOWABLE = ("superficie_util", "baños", "antiguedad")
NO_LO_SE = "No lo sé"
RESULT = "tasacion"
ERRORS = "errores"
CONDICIONES = [c.value for c in Condicion]
CONFIANZA = {
    "alta": "Alta",
    "media": "Media",
    "baja": "Baja",
}
SYNTHETIC_NOTICE = (
    "**Modelo entrenado con datos sintéticos**: viviendas inventadas que se parecen a los "
    "anuncios de Madrid. Este precio muestra cómo funciona el servicio; no tasa la "
    "vivienda real."
)


def _start() -> None:
    """The example home the API documents, until the person changes it."""
    for name, value in FORMULARIO_EJEMPLO.items():
        key = "banos" if name == "baños" else name
        st.session_state.setdefault(key, value)


def render(api: Tasador) -> None:
    """The map, the form, and the last appraisal (or the API's objections, by field)."""
    _start()
    try:
        modelo: dict[str, Any] | None = api.modelo()
    except ApiError:
        modelo = None  # the appraisal says why, when the person asks for one
    result: dict[str, Any] | None = st.session_state.get(RESULT)
    st.subheader("¿Dónde está la vivienda?")
    st.caption("Haz clic en el mapa para situarla, o escribe sus coordenadas.")
    pick_location(training_area(modelo), _testigos(result))
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
        # Appraised in the button's callback, before the page is drawn again, so that the
        # map of this same run shows the answer's testigos.
        st.form_submit_button("Tasar", type="primary", on_click=_appraise, args=(api,))

    general = st.session_state.get(ERRORS, {})
    for name, messages in general.items():
        (slots.get(name) or st).error(" ".join(messages))
    if result is not None:
        show(result, synthetic=bool((modelo or {}).get("data", {}).get("synthetic")))


def _testigos(result: dict[str, Any] | None) -> list[dict[str, Any]]:
    testigos = (result or {}).get("testigos") or {}
    viviendas: list[dict[str, Any]] = testigos.get("viviendas") or []
    return viviendas


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
        by_field = {
            name: [field_error(m) for m in messages] for name, messages in exc.by_field().items()
        }
        st.session_state[ERRORS] = by_field or {"_": [f"La API no ha podido tasarla: {exc}"]}


def show(result: dict[str, Any], synthetic: bool = False) -> None:
    """Everything the API answered, each part only when it is there."""
    st.subheader("Tasación")
    head = st.columns([1, 1, 2])
    head[0].metric("Precio estimado", price(float(result["precio"])))
    confianza = result.get("confianza")
    if confianza:
        head[1].metric(
            "Confianza",
            CONFIANZA.get(str(confianza), str(confianza)),
            help="Cuánto se puede fiar uno de este precio: alta, media o baja, según lo "
            "ancho que es su intervalo y los avisos de más abajo.",
        )
    if synthetic:
        head[2].warning(SYNTHETIC_NOTICE)
    intervalo = result.get("intervalo")
    if intervalo:
        st.markdown(
            f"Lo más probable es que el precio esté **entre {price(intervalo['inferior'])} y "
            f"{price(intervalo['superior'])}** (así ocurre con el {percent(intervalo['nivel'])} "
            "de las viviendas parecidas a las de entrenamiento)."
        )
    columns = st.columns(3)
    if result.get("precio_m2"):
        columns[0].metric("Precio por m² construido", per_m2(result["precio_m2"]))
    zona = result.get("zona")
    if zona:
        columns[1].metric(
            "Mediana de la zona",
            per_m2(zona["precio_m2_mediano"]),
            delta=f"{percent(zona['diferencia'], signed=True)} esta vivienda",
            delta_color="off",
            # Streamlit reads the sign from an ASCII "-", and the text has a typographic one.
            delta_arrow="down" if zona["diferencia"] < 0 else "up",
            help=f"{number(zona['viviendas'])} viviendas de entrenamiento a menos de "
            f"{km(zona['radio_km'])}",
        )
    for advertencia in result.get("advertencias") or []:
        st.warning(warning(advertencia))
    testigos = result.get("testigos")
    if testigos is not None:
        _testigos_table(testigos)
    contributions = result.get("contribuciones")
    if contributions:
        _explanation(result.get("base"), contributions)
    stamp = result.get("fecha")
    when = f" · tasado el {date_time(stamp)}" if stamp else ""
    st.caption(f"Modelo {result.get('modelo', '?')}{when}")


def _testigos_table(testigos: dict[str, Any]) -> None:
    """The comparable homes the price can be judged against, nearest first."""
    st.markdown("**Testigos: viviendas parecidas cerca**")
    viviendas = testigos.get("viviendas") or []
    mediana = testigos.get("mediana_precio_m2")
    if viviendas:
        st.table(
            [
                {
                    "Distancia": distance(float(v["distancia_m"])),
                    "Superficie construida": f"{number(float(v['superficie_construida']))} m²",
                    "Habitaciones": number(int(v["habitaciones"])),
                    "Estado": str(v["condicion"]),
                    "Precio": price(float(v["precio"])),
                    "Precio por m²": per_m2(float(v["precio_m2"])),
                }
                for v in viviendas
            ]
        )
    if mediana is not None:
        st.caption(f"Mediana de los testigos: {per_m2(float(mediana))}.")
    aviso = testigos.get("aviso")
    if aviso:
        st.info(aviso)
    elif not viviendas:
        st.info("La respuesta no trae testigos para esta vivienda.")


def _explanation(base: float | None, contributions: list[dict[str, Any]]) -> None:
    import altair as alt
    import pandas as pd

    st.markdown("**Qué explica el precio**")
    if base is not None:
        st.caption(
            f"Partiendo del precio medio del modelo ({price(base)}), cada característica "
            "suma o resta:"
        )
    frame = pd.DataFrame(
        {
            "característica": [LABELS.get(c["variable"], c["variable"]) for c in contributions],
            "efecto": [round(float(c["efecto"])) for c in contributions],
        }
    )
    frame["signo"] = ["sube" if e >= 0 else "baja" for e in frame["efecto"]]
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("efecto:Q", title="Efecto sobre el precio (€)", axis=alt.Axis(format=",d")),
            y=alt.Y("característica:N", sort=None, axis=alt.Axis(title=None, labelLimit=260)),
            color=alt.Color(
                "signo:N",
                scale=alt.Scale(domain=["sube", "baja"], range=["#2a9d8f", "#e76f51"]),
                legend=None,
            ),
            tooltip=[
                alt.Tooltip("característica:N", title="Característica"),
                alt.Tooltip("efecto:Q", title="Efecto (€)", format=",d"),
            ],
        )
        .configure(locale=VEGA_LOCALE)
    )
    st.altair_chart(chart, width="stretch")
