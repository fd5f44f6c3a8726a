# One Dockerfile for every Sentinel service, built from the repository root:
#
#   docker build --build-arg SERVICE=incident-manager --build-arg PORT=50054 \
#     -t sentinel-incident-manager:dev .
#
# SERVICE is the service's one name (services/<SERVICE>/, package sentinel-<SERVICE>, entry point
# sentinel-<SERVICE>); PORT is its gRPC port. `make images` builds all four; docker-compose.yml
# passes the same arguments. Each image holds only its service's dependencies (PyOD only in
# detection, the embedded PostgreSQL/Redis servers only in storage), installed by uv from uv.lock,
# never re-resolved.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- manifests: only pyproject.toml files and uv.lock, so the dependency layer below is rebuilt
# when a manifest changes, not on every source edit (and no member list is repeated here).
FROM ${PYTHON_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN find . -type f ! -name pyproject.toml ! -name uv.lock -delete \
 && find . -depth -type d -empty -delete

# --- builder: uv, the third-party dependencies, then the workspace packages as wheels.
FROM ${PYTHON_IMAGE} AS builder
ARG UV_VERSION=0.13.9
ARG SERVICE
RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<service>" >&2; exit 1; } \
 && pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"
# No BuildKit-only features (cache mounts), so that the legacy builder and docker-compose v1 build it.
ENV UV_COMPILE_BYTECODE=1 \
    UV_NO_CACHE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
COPY --from=manifests /src ./
RUN uv sync --frozen --no-dev --no-install-workspace --package "sentinel-${SERVICE}"
COPY . .
# --no-editable: the workspace packages land in site-packages, so the runtime stage needs no source.
RUN uv sync --frozen --no-dev --no-editable --package "sentinel-${SERVICE}" \
 && { test -x "/app/.venv/bin/sentinel-${SERVICE}" \
      || { echo "no entry point sentinel-${SERVICE}: SERVICE must name services/<SERVICE>" >&2; exit 1; }; }

# --- runtime: the interpreter, the virtualenv, a non-root user; no uv, pip cache or compilers.
FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE
ARG PORT
ARG METRICS_PORT=9464
RUN test -n "${PORT}" || { echo "build with --build-arg PORT=<gRPC port>" >&2; exit 1; } \
 && groupadd --system --gid 10001 sentinel \
 && useradd --system --uid 10001 --gid sentinel --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin sentinel
# Owned by root and read-only to the service: the code cannot rewrite itself.
COPY --from=builder /app/.venv /app/.venv
RUN ln -s "/app/.venv/bin/sentinel-${SERVICE}" /usr/local/bin/sentinel-service
# Two OpenBLAS threads on two vCPUs stall in 4 ms steps under contention (ARCHITECTURE.md §3).
# numba (detection's kernels, PyOD) caches compiled code beside the sources, which are read-only
# here: it must cache under /tmp (an emptyDir in the Helm chart) or it refuses to compile.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OPENBLAS_NUM_THREADS=1 \
    NUMBA_CACHE_DIR=/tmp/numba \
    SENTINEL_HOST=0.0.0.0 \
    SENTINEL_PORT=${PORT} \
    SENTINEL_METRICS_PORT=${METRICS_PORT} \
    OTEL_SERVICE_NAME=${SERVICE}
LABEL org.opencontainers.image.title="sentinel-${SERVICE}"
WORKDIR /app
USER 10001:10001
EXPOSE ${PORT} ${METRICS_PORT}
# The service handles SIGTERM itself (health NOT_SERVING, drain, stop): exec form, no shell.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sentinel-service"]
