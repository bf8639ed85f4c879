"""The Quick start's commands: `make demo` shows the demo logins with their passwords last,
before the server's own output (`make demo-data` last of all)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def commands(target: str, storage: Path) -> list[str]:
    """The shell commands ``make <target>`` would run (the install step taken as done)."""
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.installed-stamp", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "STORAGE_PATH": str(storage)},
    )
    return dry.stdout.strip().splitlines()


@pytest.mark.parametrize(("target", "server"), [("demo-data", None), ("serve", "manage.py qcluster")])
def test_the_demo_shows_its_logins_and_their_passwords_last(target, server, tmp_path):
    (tmp_path / "demo-logins.txt").write_text("demo / s3cret (administrator)\ndemo-retiree / other (user)\n")
    lines = commands(target, tmp_path)
    banner = [line for line in lines if "demo-logins.txt" in line or "changepassword" in line]
    # Nothing but the server itself (serve) comes after the logins.
    end = len(lines) if server is None else next(n for n, line in enumerate(lines) if server in line)
    assert banner and lines[end - len(banner) : end] == banner
    shown = subprocess.run(
        ["sh", "-c", "\n".join(banner)],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "STORAGE_PATH": str(tmp_path)},
    ).stdout.splitlines()
    assert shown[:3] == [
        "Demo logins (user / password):",
        "  demo / s3cret (administrator)",
        "  demo-retiree / other (user)",
    ]
    assert "ALLOWED_HOSTS" in shown[3]
