"""Numbers, dates and messages as a Spanish reader writes them (es-ES): 470.500 €,
4.953 €/m², 21,3 %, 1,0 km, 40,5159, 20.000 viviendas, 6 de diciembre de 2026, 00:13.

Thousands are grouped from 1.000 on, as Spanish property listings write prices per m²
(CLDR's es-ES would leave four-digit numbers ungrouped, and Vega's locale cannot).
"""

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTHS = (
    "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
    "septiembre", "octubre", "noviembre", "diciembre",
)  # fmt: skip
DAYS = ("domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado")
MADRID = "Europe/Madrid"
MINUS = "\u2212"  # the typographic minus, as Vega's axes write it

# Wire name → what a person reads, as a form's label and inside a sentence.
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
IN_A_SENTENCE = {
    "latitud": "la latitud",
    "longitud": "la longitud",
    "superficie_construida": "la superficie construida",
    "superficie_util": "la superficie útil",
    "baños": "los baños",
    "habitaciones": "las habitaciones",
    "antiguedad": "la antigüedad",
    "condicion": "el estado",
    "jardin": "el jardín",
    "ascensor": "el ascensor",
    "garaje": "el garaje",
}
_NUMBER = re.compile(r"(?<![\w.,])-?\d+(?:\.\d+)?(?![\w])")
_UTIL_TOO_LARGE = re.compile(
    r"superficie_util \((?P<util>[\d.]+)\) no puede superar superficie_construida "
    r"\((?P<built>[\d.]+)\)"
)

# Vega's number and time locale for es-ES (d3-format / d3-time-format definitions), so
# that chart axes read 100.000 (with a minus sign below zero) and "6 dic": a chart's
# config.locale.
VEGA_LOCALE: dict[str, Any] = {
    "number": {"decimal": ",", "thousands": ".", "grouping": [3], "currency": ["", " €"]},
    "time": {
        "dateTime": "%A, %e de %B de %Y, %X",
        "date": "%d/%m/%Y",
        "time": "%H:%M:%S",
        "periods": ["", ""],
        "days": list(DAYS),
        "shortDays": ["dom", "lun", "mar", "mié", "jue", "vie", "sáb"],
        "months": list(MONTHS),
        "shortMonths": [m[:3] for m in MONTHS],
    },
}


def number(value: float, decimals: int = 0) -> str:
    """A number with thousands dots and a decimal comma: ``20.000``, ``40,5159``."""
    text = f"{value:,.{decimals}f}"
    return text.translate(str.maketrans(",.", ".,")).replace("-", MINUS)


def coordinate(value: float) -> str:
    """A latitude or longitude to the metre, without trailing zeros: ``40,41694``."""
    return number(value, 5).rstrip("0").rstrip(",")


def euros(value: float) -> str:
    """Whole euros: ``470.526 €`` (for figures read to the euro, such as €/m²)."""
    return f"{number(round(value))} €"


def price(value: float) -> str:
    """A price as an appraisal states it, rounded to what the model can tell: to €500
    from €100.000 on, to €100 below that (``470.500 €``)."""
    step = 500 if abs(value) >= 100_000 else 100 if abs(value) >= 1_000 else 1
    return euros(round(value / step) * step)


def per_m2(value: float) -> str:
    """Euros per square metre: ``4.953 €/m²``."""
    return f"{euros(value)}/m²"


def percent(fraction: float, signed: bool = False) -> str:
    """A fraction as a percentage with a decimal comma: ``21,3 %`` (``+7,0 %``)."""
    text = number(fraction * 100, 1)
    if signed and fraction >= 0:
        text = f"+{text}"
    return f"{text} %"


def km(value: float) -> str:
    """A distance in kilometres with one decimal: ``1,0 km``."""
    return f"{number(value, 1)} km"


def distance(metres: float) -> str:
    """A distance as one says it: ``350 m`` below a kilometre, ``1,2 km`` from there."""
    return f"{number(metres)} m" if metres < 1_000 else km(metres / 1_000)


def count(value: int, noun: str) -> str:
    """A count and what is counted: ``20.000 viviendas``."""
    return f"{number(value)} {noun}"


def date_time(stamp: str) -> str:
    """An ISO 8601 instant as Madrid's clock shows it: ``6 de diciembre de 2026, 01:13``
    (in UTC, said so, where the machine has no time-zone data)."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    suffix = ""
    try:
        moment = moment.astimezone(ZoneInfo(MADRID))
    except ZoneInfoNotFoundError:
        moment, suffix = moment.astimezone(UTC), " UTC"
    return f"{moment.day} de {MONTHS[moment.month - 1]} de {moment.year}, {moment:%H:%M}{suffix}"


def date(stamp: str) -> str:
    """An ISO 8601 date or instant as a date: ``6 de diciembre de 2026``."""
    return date_time(stamp).split(",")[0]


def plain_numbers(text: str, drop_zero_decimals: bool = False) -> str:
    """The numbers inside a message written the Spanish way: ``40.5159`` → ``40,5159``,
    ``1284000`` → ``1.284.000`` (and ``120.0`` → ``120`` with ``drop_zero_decimals``)."""

    def spanish(match: re.Match[str]) -> str:
        raw = match.group()
        decimals = len(raw.partition(".")[2])
        value = float(raw)
        if drop_zero_decimals and value.is_integer():
            decimals = 0
        return number(value, decimals).replace(MINUS, "-")

    return _NUMBER.sub(spanish, text)


def field_names(text: str) -> str:
    """A message with the API's field names replaced by the words of the form."""
    for wire, words in IN_A_SENTENCE.items():
        text = re.sub(rf"\b{wire}\b", words.split(" ", 1)[1], text)
    return text


def field_error(message: str) -> str:
    """An objection of the API to a field, in the form's words and Spanish numbers:
    ``Superficie útil (120) no puede superar la superficie construida (95)``."""
    found = _UTIL_TOO_LARGE.search(message)
    if found:
        util = plain_numbers(found["util"], drop_zero_decimals=True)
        built = plain_numbers(found["built"], drop_zero_decimals=True)
        return f"Superficie útil ({util}) no puede superar la superficie construida ({built})"
    text = field_names(plain_numbers(message, drop_zero_decimals=True))
    return text[:1].upper() + text[1:]


def warning(advertencia: dict[str, Any]) -> str:
    """One of the API's warnings, with the form's labels and Spanish numbers."""
    campo = str(advertencia.get("campo", ""))
    bounds = [advertencia.get(k) for k in ("valor", "minimo", "maximo")]
    if campo in LABELS and all(isinstance(v, int | float) for v in bounds):
        valor, minimo, maximo = (_shown(campo, float(v)) for v in bounds)  # type: ignore[arg-type]
        return (
            f"{LABELS[campo].split(' (')[0]}: {valor} está fuera de lo que el modelo vio al "
            f"entrenar ({minimo} a {maximo}): el precio es menos fiable."
        )
    return field_names(plain_numbers(str(advertencia.get("mensaje", ""))))


def _shown(campo: str, value: float) -> str:
    if campo in ("latitud", "longitud"):
        return coordinate(value)
    return number(value, 0 if value.is_integer() else 1)
