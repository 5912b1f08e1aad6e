"""The HTTP transport: thin adapters from requests to ``app.service`` and back.

Every route is declared once (``routes.ROUTES``) and served one way, by the
``dispatch.Dispatcher``; ``docs`` describes the same table in the OpenAPI document, and
``refusal_responses`` gives every refusal one JSON shape.
"""
