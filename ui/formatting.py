"""Numbers as a Spanish reader writes them: 470.526 €, 4.953 €/m², 21,3 %."""


def euros(value: float) -> str:
    """Whole euros with a dot between thousands: ``470.526 €``."""
    return f"{value:,.0f} €".replace(",", ".")


def percent(fraction: float, signed: bool = False) -> str:
    """A fraction as a percentage with a decimal comma: ``21,3 %`` (``+7,0 %``)."""
    text = f"{fraction * 100:+.1f}" if signed else f"{fraction * 100:.1f}"
    return f"{text.replace('.', ',')} %"
