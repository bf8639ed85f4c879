"""rotate_credentials: re-encrypt every stored broker credential with the newest key.

Key rotation: put a new key first in FIELD_ENCRYPTION_KEYS (keep the old one after it), restart,
run this command, then remove the old key.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from brokers.crypto import CredentialsUnreadable
from brokers.services.accounts import credentials_rotate


class Command(BaseCommand):
    help = "Re-encrypt broker credentials with the first key of FIELD_ENCRYPTION_KEYS."

    def handle(self, *args: object, **options) -> None:
        try:
            done = credentials_rotate()
        except CredentialsUnreadable as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"{done} account(s) re-encrypted with the newest key; older keys may now be removed.")
