# Production image: gunicorn serving Django, as a non-root user.
# Build: docker build -t portfolio-rebalancer .
# Run:   docker run --env-file .env -p 8000:8000 portfolio-rebalancer
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN useradd --create-home --uid 10001 app \
    && mkdir -p /app/data /app/logs /app/.local \
    && chown -R app:app /app/data /app/logs /app/.local \
    && DEBUG=false SECRET_KEY=build-time-only-key-not-used-at-runtime-xxxxxxxx \
       python manage.py collectstatic --noinput \
    && chmod +x docker/entrypoint.sh
USER app

EXPOSE 8000
ENTRYPOINT ["docker/entrypoint.sh"]
CMD ["gunicorn", "rebalancer_site.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60", "--access-logfile", "-"]
