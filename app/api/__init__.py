"""The HTTP transport: thin adapters from requests to ``app.service`` and back.

One request path: every request passes the ``RequestGate`` (API key, model ready, declared
body size), then either the ``FastTransport`` (the body operations, straight from ASGI)
or FastAPI's routes, which document the API and serve the rest. Both parse bodies with
the same function, call the same service and answer errors in the same shape.
"""
