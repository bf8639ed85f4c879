"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

from rebalancer_site.startup import run_or_exit_on_config_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebalancer_site.settings")
application = run_or_exit_on_config_error(get_asgi_application)
