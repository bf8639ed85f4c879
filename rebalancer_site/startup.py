"""Turns a configuration error into one line on stderr and exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from ground.env import ConfigError

T = TypeVar("T")


def run_or_exit_on_config_error(start: Callable[[], T]) -> T:
    try:
        return start()
    except ConfigError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        raise SystemExit(2) from None
