"""tasador's front end (Streamlit): ``uv run --extra ui python -m ui``.

Three tabs: one home on a map, a CSV of homes, and the model card. Everything comes from
the tasador API at ``TASADOR_API_URL`` (changeable in the sidebar).
"""

# Not named app.py: Streamlit puts this folder first on sys.path, where an app.py would
# hide the app package.
import streamlit as st

from ui import batch_tab, model_card, valuation_tab
from ui.api import Tasador, default_url

st.set_page_config(page_title="Tasador de viviendas · Madrid", page_icon="🏠", layout="wide")
st.title("Tasador de viviendas en Madrid")
with st.sidebar:
    url = st.text_input("Dirección de la API", value=default_url(), key="api_url")
    st.caption("El servicio tasador que responde (TASADOR_API_URL).")
api = Tasador(url)
one, many, card = st.tabs(["Una vivienda", "Un lote (CSV)", "El modelo"])
with one:
    valuation_tab.render(api)
with many:
    batch_tab.render(api)
with card:
    model_card.render(api)
