"""kill_switch: stop (or allow again) order sending for everyone or one user.

python manage.py kill_switch on --reason "broker incident"    # everyone; open orders canceled
python manage.py kill_switch on --user alice
python manage.py kill_switch off
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from brokers.services.controls import kill_switch_set


class Command(BaseCommand):
    help = "Turn the kill switch on (cancelling open orders) or off, globally or for one user."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("state", choices=["on", "off"])
        parser.add_argument("--user", help="Username (default: every user).")
        parser.add_argument("--reason", default="", help="Shown wherever the halt is reported.")

    def handle(self, *args: object, **options) -> None:
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"user {options['user']!r} does not exist", returncode=2)
        switch, problems = kill_switch_set(user=user, active=options["state"] == "on", reason=options["reason"])
        self.stdout.write(str(switch))
        for line in problems:
            self.stdout.write(f"  could not cancel: {line}")
        if problems:
            raise CommandError(f"{len(problems)} open order(s) could not be canceled; check them at the broker")
