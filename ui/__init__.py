"""tasador's front end: a Streamlit app for a person appraising a home in Madrid.

It talks JSON to the tasador API (``TASADOR_API_URL``, default http://127.0.0.1:8000)
and nothing else; ``python -m ui`` starts it with the settings it needs.
"""
