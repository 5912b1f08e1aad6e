"""What the request gate leaves in a request's ASGI scope for the rest of its path."""

# The bundle the gate admitted the request to: it serves the request to the end, even if
# a reload swaps the model meanwhile.
BUNDLE_SCOPE_KEY = "tasador.bundle"
# The language of the answer, from Accept-Language (app.i18n).
LANGUAGE_SCOPE_KEY = "tasador.language"
# A body route's declared Content-Length, or None for a body sent without one (chunked).
BODY_LENGTH_SCOPE_KEY = "tasador.body_length"
