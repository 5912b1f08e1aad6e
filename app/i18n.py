"""What clients read, in their language: English by default, Spanish when the request
prefers it (``Accept-Language: es``).

Only prose is translated; names (fields, ``loc``, ``type``, ``campo``) stay as they are.
"""

from typing import Literal

Language = Literal["en", "es"]
DEFAULT: Language = "en"
LANGUAGES: tuple[Language, ...] = ("en", "es")

MESSAGES: dict[str, dict[Language, str]] = {
    "outside_range": {
        "en": "{campo} = {valor} is outside what the model was trained on ({minimo} to "
        "{maximo}): the price is less reliable.",
        "es": "{campo} = {valor} está fuera de lo que el modelo vio al entrenar ({minimo} a "
        "{maximo}): el precio es menos fiable.",
    },
    "no_zone": {
        "en": "No training home lies within {km} km of these coordinates: the price is less "
        "reliable.",
        "es": "Ninguna vivienda de entrenamiento está a menos de {km} km de estas "
        "coordenadas: el precio es menos fiable.",
    },
    "ratio": {
        "en": "{etiqueta}: {valor} is {sentido} than in any training home ({minimo} to "
        "{maximo}): the price is less reliable.",
        "es": "{etiqueta}: {valor} es {sentido} que en cualquier vivienda de entrenamiento "
        "({minimo} a {maximo}): el precio es menos fiable.",
    },
    "lower": {"en": "lower", "es": "menor"},
    "higher": {"en": "higher", "es": "mayor"},
    "m2_por_habitacion": {"en": "built m² per bedroom", "es": "m² construidos por habitación"},
    "m2_por_bano": {"en": "built m² per bathroom", "es": "m² construidos por baño"},
    "banos_por_habitacion": {"en": "bathrooms per bedroom", "es": "baños por habitación"},
}


def negotiate(accept_language: str | None) -> Language:
    """The language to answer in, from an ``Accept-Language`` header (RFC 9110 weights)."""
    if not accept_language:
        return DEFAULT
    best: tuple[float, Language] = (0.0, DEFAULT)
    for part in accept_language.split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        if primary in LANGUAGES and weight > best[0]:
            best = (weight, primary)
        elif primary == "*" and weight > best[0]:
            best = (weight, DEFAULT)
    return best[1]


def message(key: str, language: Language, **values: object) -> str:
    """The message ``key`` in ``language``, with ``values`` filled in."""
    return MESSAGES[key][language].format(**values)
