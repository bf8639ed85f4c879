"""WSGI entry point (gunicorn rebalancer_site.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from rebalancer_site.startup import run_or_exit_on_config_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebalancer_site.settings")
application = run_or_exit_on_config_error(get_wsgi_application)
