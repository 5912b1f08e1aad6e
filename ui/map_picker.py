"""The map of Madrid where a click sets the home's location (streamlit-folium).

What it draws to find one's way works offline: the outlines and names of Madrid's 21
districts (``ui/data/distritos.geojson``, from the Ayuntamiento de Madrid, licence beside
it) and the area the model's training homes cover. Streets come from OpenStreetMap's
tiles when ``TASADOR_UI_TILES`` does not turn them off (empty or ``off``; any other value
is a tile URL), fetched by the person's browser. Leaflet comes from the app's own static
folder (``ui/static/leaflet``, served at ``/app/static/``), never from a CDN.
"""

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from app.training.synthetic import PUERTA_DEL_SOL
from ui.formatting import coordinate, distance, number, per_m2

LEAFLET_JS = "/app/static/leaflet/leaflet.js"
LEAFLET_CSS = "/app/static/leaflet/leaflet.css"
MAP_KEY = "mapa"
DISTRICT_KEY = "distrito"
LAST_CLICK = "_ultimo_clic"
NO_DISTRICT = "Todo Madrid"
DISTRICT_ZOOM = 14
DISTRICTS_FILE = Path(__file__).with_name("data") / "distritos.geojson"
DISTRICTS_ATTRIBUTION = "Distritos: Ayuntamiento de Madrid"
TILES_VARIABLE = "TASADOR_UI_TILES"
TILES_ATTRIBUTION_VARIABLE = "TASADOR_UI_TILES_ATTRIBUTION"
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = (
    '© <a href="https://www.openstreetmap.org/copyright">colaboradores de OpenStreetMap</a>'
)
LABEL_STYLE = (
    "font: 600 11px sans-serif; color: #333; text-align: center; white-space: nowrap;"
    "text-shadow: 0 0 3px #fff, 0 0 3px #fff, 0 0 3px #fff; pointer-events: none;"
)


@dataclass(frozen=True)
class Area:
    """A latitude/longitude rectangle."""

    south: float
    west: float
    north: float
    east: float

    def contains(self, latitud: float, longitud: float) -> bool:
        """Whether the point lies inside (borders included)."""
        return self.south <= latitud <= self.north and self.west <= longitud <= self.east

    def corners(self) -> list[tuple[float, float]]:
        """South-west and north-east corners, as Leaflet takes bounds."""
        return [(self.south, self.west), (self.north, self.east)]


def training_area(modelo: dict[str, Any] | None) -> Area | None:
    """The rectangle the training homes cover, from the manifest's feature ranges
    (``GET /modelo``); None when the manifest does not say."""
    ranges = (modelo or {}).get("feature_ranges") or {}
    try:
        lat, lon = ranges["latitud"], ranges["longitud"]
        return Area(float(lat["min"]), float(lon["min"]), float(lat["max"]), float(lon["max"]))
    except (KeyError, TypeError, ValueError):
        return None


def tiles() -> tuple[str, str] | None:
    """The street tiles' URL template and attribution, or None where turned off."""
    url = os.environ.get(TILES_VARIABLE, OSM_TILES).strip()
    if url.lower() in ("", "off", "no", "0", "false"):
        return None
    default = OSM_ATTRIBUTION if url == OSM_TILES else "Teselas: " + url.split("/")[2]
    return url, os.environ.get(TILES_ATTRIBUTION_VARIABLE, default)


@functools.cache
def districts() -> dict[str, Any]:
    """Madrid's districts as a GeoJSON FeatureCollection (``nombre``, ``etiqueta``)."""
    collection: dict[str, Any] = json.loads(DISTRICTS_FILE.read_text(encoding="utf-8"))
    return collection


def district_names() -> list[str]:
    """The districts' names, alphabetically as Spanish sorts them (accents aside)."""
    names = [str(f["properties"]["nombre"]) for f in districts()["features"]]
    return sorted(names, key=lambda n: n.lower().translate(str.maketrans("áéíóú", "aeiou")))


def _label_point(name: str) -> tuple[float, float]:
    for feature in districts()["features"]:
        if feature["properties"]["nombre"] == name:
            lat, lon = feature["properties"]["etiqueta"]
            return float(lat), float(lon)
    raise KeyError(name)


def pick_location(area: Area | None, testigos: list[dict[str, Any]] | None = None) -> None:
    """Draw the map with the pin at ``latitud``/``longitud`` (session state) and the
    testigos given; a click moves the pin there and reruns the app."""
    import folium
    from streamlit_folium import st_folium

    chosen = st.selectbox("Ir a un distrito", [NO_DISTRICT, *district_names()], key=DISTRICT_KEY)
    m = folium.Map(location=PUERTA_DEL_SOL, zoom_start=11, tiles=None, control_scale=True)
    # Only Leaflet, from this app: folium's defaults (jQuery, Bootstrap, Font Awesome from
    # CDNs) are not needed by what is drawn here, and would fail offline.
    m.default_js = [("leaflet", LEAFLET_JS)]
    m.default_css = [("leaflet_css", LEAFLET_CSS)]
    streets = tiles()
    if streets:
        folium.TileLayer(streets[0], attr=streets[1], max_zoom=19, name="calles").add_to(m)
    _draw_districts(m)
    if area:
        m.fit_bounds(area.corners())
        folium.Rectangle(
            area.corners(),
            color="#1d4e89",
            weight=2,
            dash_array="6 4",
            fill=True,
            fill_opacity=0.04,
            interactive=False,  # the caption under the map says what it is
        ).add_to(m)
    # The pin and the testigos travel in feature groups of their own: st_folium keys the
    # map by its HTML, so anything drawn into the map that changes on a click would
    # remount it (and reset the zoom) each time.
    where = (st.session_state["latitud"], st.session_state["longitud"])
    pin = folium.FeatureGroup(name="vivienda")
    folium.CircleMarker(
        where, radius=9, color="#c00", fill=True, fill_opacity=0.9, tooltip="La vivienda"
    ).add_to(pin)
    event: Any = st_folium(
        m,
        key=MAP_KEY,
        height=440,
        use_container_width=True,
        center=None if chosen == NO_DISTRICT else _label_point(chosen),
        zoom=None if chosen == NO_DISTRICT else DISTRICT_ZOOM,
        feature_group_to_add=[pin, _testigos_group(testigos or [])],
        returned_objects=["last_clicked"],
    )
    credits = [DISTRICTS_ATTRIBUTION] + (["calles: © OpenStreetMap"] if streets else [])
    legend = "Línea discontinua azul: la zona de las viviendas de entrenamiento. " if area else ""
    if testigos:
        legend += "Puntos azules: los testigos. "
    st.caption(f"{legend}{' · '.join(credits)}.")
    if area and not area.contains(*where):
        st.warning(
            f"Ese punto ({coordinate(where[0])}, {coordinate(where[1])}) queda fuera de la "
            "zona de las viviendas con que se entrenó el modelo (la línea discontinua del "
            "mapa): se puede tasar, pero el precio será poco fiable."
        )
    click = (event or {}).get("last_clicked")
    if not click:
        return
    point = (round(float(click["lat"]), 5), round(float(click["lng"]), 5))
    # The component repeats its last click on every rerun: act on a new one only.
    if point != st.session_state.get(LAST_CLICK):
        st.session_state[LAST_CLICK] = point
        st.session_state["latitud"], st.session_state["longitud"] = point
        st.rerun()


def _draw_districts(m: Any) -> None:
    import folium

    folium.GeoJson(
        districts(),
        name="distritos",
        style_function=lambda _: {"color": "#555", "weight": 1.2, "fill": False},
        interactive=False,  # a click anywhere must reach the map, to place the home
    ).add_to(m)
    for feature in districts()["features"]:
        name = feature["properties"]["nombre"]
        folium.Marker(
            feature["properties"]["etiqueta"],
            icon=folium.DivIcon(
                html=f'<div class="distrito" style="{LABEL_STYLE}">{name}</div>',
                icon_size=(140, 16),
                icon_anchor=(70, 8),
                class_name="tasador-distrito",
            ),
            interactive=False,
        ).add_to(m)


def _testigos_group(testigos: list[dict[str, Any]]) -> Any:
    import folium

    group = folium.FeatureGroup(name="testigos")
    for testigo in testigos:
        folium.CircleMarker(
            (testigo["latitud"], testigo["longitud"]),
            radius=6,
            color="#1d4e89",
            fill=True,
            fill_color="#4a90d9",
            fill_opacity=0.9,
            tooltip=(
                f"Testigo a {distance(testigo['distancia_m'])}: "
                f"{number(testigo['superficie_construida'])} m², "
                f"{testigo['habitaciones']} hab., {per_m2(testigo['precio_m2'])}"
            ),
        ).add_to(group)
    return group
