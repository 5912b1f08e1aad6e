# syntax=docker/dockerfile:1
# tasador: the model-serving API. Build: docker build -t tasador .
# Run:  docker run -p 8000:8000 tasador     (PORT and WEB_CONCURRENCY are read at start)

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

# uv, pinned: the same release that wrote uv.lock.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first, in their own layer: it is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
# Then the project itself, installed (not editable) into the same environment.
COPY README.md ./
COPY app ./app
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 tasador \
    && useradd --system --uid 10001 --gid tasador --no-create-home --shell /usr/sbin/nologin tasador
WORKDIR /app
COPY --from=builder /app/.venv /app/.venv
COPY models ./models
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    TASADOR_HOST=0.0.0.0 \
    TASADOR_MODEL_DIR=/app/models
USER 10001:10001
EXPOSE 8000
# Standard library only: no curl in the image.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=2)"]
# Exec form, no shell: SIGTERM reaches the server, which drains in-flight requests.
CMD ["tasador", "serve"]
