"""The image's HEALTHCHECK: exit 0 when GET http://127.0.0.1:8000<PATH> answers 200, else 1.

    python docker/healthcheck.py /health

Standard library only (the slim image has no curl). The Host header is the first ALLOWED_HOSTS
entry: Django answers 400 to a Host it does not allow, and production does not list 127.0.0.1.
/health is exempt from SECURE_SSL_REDIRECT (settings.SECURE_REDIRECT_EXEMPT), so plain HTTP on
the loopback is enough. Redirects are not followed: anything but 200 is unhealthy.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 4


def probe_host(allowed_hosts: str) -> str:
    """A Host header Django accepts: the first ALLOWED_HOSTS entry, wildcards made concrete."""
    first = next((host.strip() for host in allowed_hosts.split(",") if host.strip()), "localhost")
    if first == "*":
        return "localhost"
    # ".example.com" allows example.com and its subdomains.
    return first.lstrip(".")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def main(path: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:8000{path}",
        headers={"Host": probe_host(os.environ.get("ALLOWED_HOSTS", "localhost"))},
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:
        print(f"{path}: {error}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"{path}: HTTP {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/health"))
