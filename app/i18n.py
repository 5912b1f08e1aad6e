"""What clients read, in their language: English by default, Spanish when the request
prefers it (``Accept-Language: es``).

Only prose is translated; names (fields, ``loc``, ``type``, ``campo``) stay as they are.
"""

import re
from typing import Literal

Language = Literal["en", "es"]
DEFAULT: Language = "en"
_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")
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
    "unknown_wider": {
        "en": "Not known: {campos}. The range is {cuanto} wider because of it: training homes "
        "with the same fields unknown were priced less surely.",
        "es": "Sin dato: {campos}. Por eso el intervalo es un {cuanto} más ancho: las "
        "viviendas de entrenamiento sin esos datos se tasaron con menos seguridad.",
    },
    "unknown_as_sure": {
        "en": "Not known: {campos}. The range allows for it: training homes with the same "
        "fields unknown were priced as surely as the rest, so it is no wider.",
        "es": "Sin dato: {campos}. El intervalo lo tiene en cuenta: las viviendas de "
        "entrenamiento sin esos datos se tasaron con la misma seguridad, así que no es más "
        "ancho.",
    },
    "ratio": {
        "en": "{etiqueta}: {valor} is {sentido} than in any training home ({minimo} to "
        "{maximo}): the price is less reliable.",
        "es": "{etiqueta}: {valor} es {sentido} que en cualquier vivienda de entrenamiento "
        "({minimo} a {maximo}): el precio es menos fiable.",
    },
    "testigos_none": {
        "en": "This model was trained without testigos (comparable homes): there are none to show.",
        "es": "Este modelo se entrenó sin testigos (viviendas comparables): no hay ninguno que "
        "mostrar.",
    },
    "testigos_none_near": {
        "en": "No comparable home lies within {km} km.",
        "es": "No hay ninguna vivienda comparable a menos de {km} km.",
    },
    "testigos_fewer": {
        "en": "Only {n} comparable homes lie within {km} km: fewer than the usual 6.",
        "es": "Solo hay {n} viviendas comparables a menos de {km} km: menos de las 6 habituales.",
    },
    "invalid_setting": {
        "en": "invalid setting {name}: {msg}",
        "es": "ajuste no válido {name}: {msg}",
    },
    "cannot_start": {"en": "cannot start: {why}", "es": "no puede arrancar: {why}"},
    "lower": {"en": "lower", "es": "menor"},
    "higher": {"en": "higher", "es": "mayor"},
    "m2_por_habitacion": {"en": "built m² per bedroom", "es": "m² construidos por habitación"},
    "m2_por_bano": {"en": "built m² per bathroom", "es": "m² construidos por baño"},
    "banos_por_habitacion": {"en": "bathrooms per bedroom", "es": "baños por habitación"},
}


# Spanish for each kind of problem (an error's ``type``), filled with its ``ctx``; a kind
# not listed keeps its English message. pydantic's own kinds first, then tasador's.
PROBLEMS_ES: dict[str, str] = {
    "missing": "Campo obligatorio",
    "extra_forbidden": "No se admiten campos que no estén en el esquema",
    "extra_forbidden.field": "envía {field} una sola vez, con uno de sus nombres",
    "extra_forbidden.unknown": "el cuerpo tiene unos {unknown} campos que el esquema no "
    "tiene; envía solo los suyos",
    "greater_than_equal": "Debe ser mayor o igual que {ge}",
    "greater_than": "Debe ser mayor que {gt}",
    "less_than_equal": "Debe ser menor o igual que {le}",
    "less_than": "Debe ser menor que {lt}",
    "float_type": "Debe ser un número",
    "float_parsing": "Debe ser un número",
    "finite_number": "Debe ser un número finito",
    "int_type": "Debe ser un número entero",
    "int_from_float": "Debe ser un número entero, no {value}",
    "bool_type": "Debe ser un booleano: true o false",
    "bool_parsing": "Debe ser un booleano: true o false",
    "string_type": "Debe ser un texto",
    "enum": "Debe ser {expected}",
    "model_type": "Debe ser un objeto JSON",
    "model_attributes_type": "Debe ser un objeto JSON",
    "dict_type": "Debe ser un objeto JSON",
    "list_type": "Debe ser una lista",
    "too_short": "La lista debe tener al menos {min_length} elementos",
    "too_long": "La lista debe tener como mucho {max_length} elementos; tiene {actual_length}",
    "json_invalid": "JSON no válido: {error}",
    "superficie_util_too_large": "superficie_util ({util}) no puede superar "
    "superficie_construida ({construida})",
    "too_many_errors": "{not_shown} problema(s) más sin mostrar; corrige estos primero",
    "api_key_missing": "esta ruta necesita una clave en la cabecera X-API-Key",
    "api_key_unknown": "la clave de la cabecera X-API-Key no es de este servicio",
    "body_too_large": "el cuerpo supera el límite de {limit} bytes",
    "unsupported_media_type": "envía JSON: Content-Type: application/json",
    "unsupported_content_encoding": "envía el cuerpo sin comprimir: no se acepta "
    "Content-Encoding {encoding}",
    "not_ready": "el modelo aún no está cargado",
    "busy": "ocupado con {in_flight} bytes de peticiones; prueba de nuevo en un momento",
    "explanations_unavailable": "las explicaciones no están disponibles: {why}",
    "not_found": "No existe",
    "not_found.hint": "No existe esta ruta; ¿quería decir {sugerencia}?",
    "method_not_allowed": "Método no permitido",
    "method_not_allowed.hint": "Método no permitido: esta ruta admite {metodos}",
}


def problem_message(problem: dict[str, object], language: Language) -> str:
    """A problem's message in ``language`` (its own English one when not translated)."""
    english = str(problem["msg"])
    if language != "es":
        return english
    kind = str(problem["type"])
    ctx = problem.get("ctx")
    values = dict(ctx) if isinstance(ctx, dict) else {}
    if kind == "extra_forbidden" and values:
        kind = "extra_forbidden.field" if "field" in values else "extra_forbidden.unknown"
    if kind in ("not_found", "method_not_allowed") and values:
        kind += ".hint"
    if kind == "enum" and "expected" in values:
        values["expected"] = str(values["expected"]).replace(" or ", " o ")
    template = PROBLEMS_ES.get(kind)
    if template is None:
        return english
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return english


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
            # RFC 9110's qvalue, 0 to 1 with at most three decimals: float() would also
            # take "1e309" (infinity, above every other weight), "nan" or "-1".
            if not _QVALUE.fullmatch(params.strip()[2:]):
                continue
            weight = float(params.strip()[2:])
        if primary in LANGUAGES and weight > best[0]:
            best = (weight, primary)
        elif primary == "*" and weight > best[0]:
            best = (weight, DEFAULT)
    return best[1]


def from_environment() -> Language:
    """The language of a terminal: the first of LC_ALL, LC_MESSAGES and LANG that is set
    (``es_ES.UTF-8`` is Spanish)."""
    import os

    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable)
        if value:
            primary = value.split(".")[0].split("_")[0].lower()
            return "es" if primary == "es" else DEFAULT
    return DEFAULT


def message(key: str, language: Language, **values: object) -> str:
    """The message ``key`` in ``language``, with ``values`` filled in."""
    return MESSAGES[key][language].format(**values)
