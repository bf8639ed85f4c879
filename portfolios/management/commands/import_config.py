"""import_config FILE --user NAME: create a portfolio from the seed's config.json format."""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portfolios.services.config_import import portfolio_import_config

EXIT_BAD_INPUT = 2


def _messages(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
    return "; ".join(error.messages)


class Command(BaseCommand):
    help = "Create a portfolio for a user from a config.json file (the seed's format; see docs/rebalancing.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="Path of the config.json file.")
        parser.add_argument("--user", required=True, help="Username of the owner.")
        parser.add_argument(
            "--name", help="Portfolio name (default: portfolio.name in the file, or 'Imported portfolio')."
        )

    def handle(self, *args: object, **options) -> None:
        path: Path = options["file"]
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise CommandError(f"{path}: cannot read ({error.strerror})", returncode=EXIT_BAD_INPUT) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CommandError(f"{path}: not valid JSON ({error})", returncode=EXIT_BAD_INPUT) from None
        owner = get_user_model().objects.filter(username=options["user"]).first()
        if owner is None:
            raise CommandError(f"--user: no user named {options['user']!r}", returncode=EXIT_BAD_INPUT)
        try:
            imported = portfolio_import_config(owner=owner, config=config, name=options["name"])
        except ValidationError as error:
            raise CommandError(f"{path}: {_messages(error)} (nothing was saved)", returncode=EXIT_BAD_INPUT) from None
        portfolio = imported.portfolio
        symbols = ", ".join(portfolio.instruments.order_by("symbol").values_list("symbol", flat=True)) or "none"
        self.stdout.write(f"Created portfolio {portfolio.name!r} (id {portfolio.pk}) for {owner}: {symbols}")
        for line in imported.skipped:
            self.stdout.write(f"Skipped {line}")
