#!/bin/sh
# Container entrypoint: apply migrations, then run the given command (gunicorn by default).
set -eu
python manage.py migrate --noinput
exec "$@"
