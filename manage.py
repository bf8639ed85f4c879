#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebalancer_site.settings")
    from django.core.management import execute_from_command_line

    from rebalancer_site.startup import run_or_exit_on_config_error

    run_or_exit_on_config_error(lambda: execute_from_command_line(sys.argv))


if __name__ == "__main__":
    main()
