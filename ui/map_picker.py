"""The map of Madrid where a click sets the home's location (streamlit-folium).

Leaflet comes from the app's own static folder (``ui/static/leaflet``, served by Streamlit
at ``/app/static/``), never from a CDN, and the map has no tile layer: it works offline.
What it draws to find one's way is the model's area and each district's centre.
"""

from typing import Any

import streamlit as st

from app.schemas.formulario import LATITUD_MAX, LATITUD_MIN, LONGITUD_MAX, LONGITUD_MIN
from app.training.synthetic import DISTRICTS, PUERTA_DEL_SOL

LEAFLET_JS = "/app/static/leaflet/leaflet.js"
LEAFLET_CSS = "/app/static/leaflet/leaflet.css"
MAP_KEY = "mapa"
LAST_CLICK = "_ultimo_clic"


def pick_location() -> None:
    """Draw the map with the pin at ``latitud``/``longitud`` (session state); a click
    moves both there and reruns the app."""
    import folium
    from streamlit_folium import st_folium

    where = (st.session_state["latitud"], st.session_state["longitud"])
    area = [(LATITUD_MIN, LONGITUD_MIN), (LATITUD_MAX, LONGITUD_MAX)]
    m = folium.Map(location=PUERTA_DEL_SOL, zoom_start=11, tiles=None, control_scale=True)
    # Only Leaflet, from this app: folium's defaults (jQuery, Bootstrap, Font Awesome from
    # CDNs) are not needed by what is drawn here, and would fail offline.
    m.default_js = [("leaflet", LEAFLET_JS)]
    m.default_css = [("leaflet_css", LEAFLET_CSS)]
    m.fit_bounds(area)
    folium.Rectangle(
        area, color="#888", weight=1, fill=True, fill_color="#eef", fill_opacity=0.4
    ).add_to(m)
    for name, (_, _, lat, lon, _) in DISTRICTS.items():
        folium.CircleMarker((lat, lon), radius=4, color="#555", fill=True, tooltip=name).add_to(m)
    # The pin travels in a feature group of its own: st_folium keys the map by its HTML,
    # so a pin drawn into the map would remount it (and reset the zoom) on every click.
    pin = folium.FeatureGroup(name="vivienda")
    folium.CircleMarker(
        where, radius=9, color="#c00", fill=True, fill_opacity=0.9, tooltip="La vivienda"
    ).add_to(pin)
    event: Any = st_folium(
        m,
        key=MAP_KEY,
        height=420,
        use_container_width=True,
        feature_group_to_add=pin,
        returned_objects=["last_clicked"],
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
