"""The domain work of every request, knowing nothing of HTTP: validate the body, build the
feature rows, predict, shape the answer. The transports in ``app.api`` call these."""
