"""FastAPI's routes, one module per concern; they document the API and serve what the fast
transport does not."""
