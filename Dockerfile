# tasador: the model-serving API, and its front end.
#   docker build -t tasador .                    lean (default): the compiled ONNX engine only
#   docker build --target full -t tasador:full .  also scikit-learn, the fallback engine
#   docker run -p 8000:8000 tasador             PORT and WEB_CONCURRENCY are read at start
#   docker build --target ui -t tasador:ui .      the Streamlit front end, on 8501
#   docker run -p 8501:8501 -e TASADOR_API_URL=http://host:8000 --read-only --tmpfs /tmp tasador:ui
# Needs BuildKit (RUN --mount): the default builder since Docker 23; before it, set
# DOCKER_BUILDKIT=1. No "# syntax=" line, so the build pulls no frontend image: the
# engine's built-in one is enough. Both bases are build arguments, so a build can use
# local images and run with no registry at all (docs/deployment/docker.md: stand-in bases).

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm
# uv, pinned: the same release that wrote uv.lock.
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
COPY pyproject.toml uv.lock ./

# The locked dependencies, without the project: rebuilt only when the lock changes.
# The serving core: FastAPI, uvicorn, pydantic, numpy, ONNX Runtime.
FROM builder AS deps
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# The same plus the sklearn extra: scikit-learn (with scipy) and joblib.
FROM builder AS deps-full
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --extra sklearn --no-install-project

# The same plus the ui extra: Streamlit (with pandas, pyarrow, altair) and streamlit-folium.
FROM builder AS deps-ui
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --extra ui --no-install-project

# The project alone: installed (not editable) over the dependencies, then every file
# that install wrote (the app package, its compiled bytecode, its metadata and the
# tasador script) is copied out to /project, so that the image gets it as a layer of
# its own and a code change does not rebuild the dependencies' layer.
FROM deps AS project
COPY README.md ./
COPY app ./app
RUN --mount=type=cache,target=/root/.cache/uv \
    touch /tmp/before-project \
    && uv sync --frozen --no-dev --no-editable \
    && mkdir -p /project/app \
    && find .venv -newer /tmp/before-project \( -type f -o -type l \) \
       -exec cp -a --parents -t /project/app {} +

# The front end's code with its bytecode, as uv compiled the app's: with a read-only root
# Python could not cache it. checked-hash: valid whatever the files' times after COPY.
FROM builder AS ui-code
COPY ui ./ui
RUN python -m compileall -q --invalidation-mode checked-hash ui

# What every image shares: the base and the user its server runs as.
FROM ${PYTHON_IMAGE} AS nonroot
RUN groupadd --gid 10001 tasador \
    && useradd --uid 10001 --gid tasador --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin tasador
WORKDIR /app

# What both API images share: the settings and the command.
FROM nonroot AS runtime
# ORT_DISABLE_TELEMETRY: ONNX Runtime would otherwise try to write a device id under
# $HOME at every start (and warn, as there is no home and the root is read-only).
# TASADOR_LOG_FORMAT=json: one JSON object per log line, one line per request.
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    ORT_DISABLE_TELEMETRY=1 \
    TASADOR_HOST=0.0.0.0 \
    TASADOR_MODEL_DIR=/app/models \
    TASADOR_LOG_FORMAT=json
# Numeric, so that runtimes enforcing runAsNonRoot can check it. The files are root's:
# the server cannot change its code or model, and it can run with a read-only root.
USER 10001:10001
EXPOSE 8000
# Standard library only: no curl in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=2)"]
# Exec form, no shell: SIGTERM reaches the server, which drains in-flight requests.
CMD ["tasador", "serve"]

# Layers from the least to the most often changed: dependencies, model, code.
FROM runtime AS full
COPY --from=deps-full /app/.venv /app/.venv
COPY models ./models
COPY --from=project /project/ /

# The front end: Streamlit on 8501, asking the API at TASADOR_API_URL. It imports the app's
# schemas (the form's limits, the example home), hence the project over its environment.
FROM nonroot AS ui
COPY --from=deps-ui /app/.venv /app/.venv
COPY --from=project /project/ /
COPY --from=ui-code /app/ui ./ui
# python -m ui adds static serving (the vendored Leaflet), usage statistics off, the
# viewer toolbar. Here: all interfaces, no browser to open, no file watcher (the code
# cannot change), and browser.serverAddress set, because otherwise a headless Streamlit
# asks checkip.amazonaws.com for this machine's address at every start. HOME=/tmp, as the
# user's home does not exist: Streamlit would keep files under ~/.streamlit (none with
# these settings), and temporary files go to /tmp; with a read-only root, mount a tmpfs.
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_SERVER_FILE_WATCHER_TYPE=none \
    STREAMLIT_BROWSER_SERVER_ADDRESS=localhost
USER 10001:10001
EXPOSE 8501
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('STREAMLIT_SERVER_PORT', '8501') + '/_stcore/health', timeout=2)"]
# Exec form: SIGTERM reaches Streamlit, which stops its server.
CMD ["python", "-m", "ui"]

# The default target, last: serves with the compiled engine, and refuses in one line a
# bundle that only scikit-learn could serve.
FROM runtime AS lean
COPY --from=deps /app/.venv /app/.venv
COPY models ./models
COPY --from=project /project/ /
