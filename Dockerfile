# syntax=docker/dockerfile:1
# Production image: one image for every role (web, worker, migrate, one-shot commands; see
# docker/entrypoint.sh), running as a non-root user.
#
#   docker build -t portfolio-rebalancer .
#   docker run --env-file .env -p 8000:8000 portfolio-rebalancer            # web
#   docker run --env-file .env portfolio-rebalancer worker                  # task cluster
#
# docs/deployment.md covers Compose and Kubernetes.

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: the virtualenv, with whatever compiling it needs --------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1

# A compiler only for a dependency without a wheel for this platform; it stays in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# Requirements alone first: code changes then reuse this layer instead of reinstalling.
COPY requirements.txt /tmp/requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -r /tmp/requirements.txt

# --- runtime: the virtualenv, the code, tini; no compiler, no pip cache ------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    # gunicorn's workers are separate processes: prometheus_client sums them through files here.
    # Under /tmp because the root filesystem may be read-only (Kubernetes mounts an emptyDir).
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    # yfinance and friends cache under ~/.cache; keep that writable on a read-only root too.
    XDG_CACHE_HOME=/tmp/cache

# tini as PID 1: forwards SIGTERM to gunicorn/qcluster and reaps qcluster's exited workers.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric id: Kubernetes' runAsNonRoot can only verify a numeric USER, and volumes
# (fsGroup, the Compose named volume) are prepared for this id.
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid app --create-home --shell /usr/sbin/nologin app

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
# Code stays root-owned: the app user can read it, not rewrite it.
COPY . .

# Static files are collected here, once, so containers never write into the code. Settings need
# a secret key and a Fernet key to load: throwaway ones exist only inside this RUN (without them
# settings would generate keys into .local/ and bake them into the image; the check below fails
# the build if anything landed there). PROMETHEUS_MULTIPROC_DIR is emptied for this RUN so that
# the build's own metric files are not baked into the image. The app user may write only to
# data/ (STORAGE_PATH), .local/, logs/ and its folders under /tmp.
RUN install -d -o app -g app -m 0750 /app/data /app/.local /app/logs /tmp/prometheus /tmp/cache \
    && chmod 0755 docker/entrypoint.sh \
    && DEBUG=false \
       VALIDATE_REQUIRED_CONFIG=false \
       SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
       FIELD_ENCRYPTION_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
       DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 \
       LOG_FILE_PATH= \
       PROMETHEUS_MULTIPROC_DIR= \
       python manage.py collectstatic --noinput \
    && rm -f /tmp/collectstatic.sqlite3 \
    && test -z "$(ls -A /app/.local)" \
    # Compiled once here: with PYTHONDONTWRITEBYTECODE (and a read-only root) every process
    # would otherwise recompile the project at start.
    && python -m compileall -q /app

USER 10001:10001

EXPOSE 8000

# /health touches no database: it says this process answers (docker/healthcheck.py explains the
# Host header it sends). The start period covers the web role's migrations.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "/app/docker/healthcheck.py", "/health"]

ENTRYPOINT ["/usr/bin/tini", "--", "/app/docker/entrypoint.sh"]
# The web role: migrations, schedules, then `gunicorn -c gunicorn.conf.py rebalancer_site.wsgi`.
CMD ["web"]
