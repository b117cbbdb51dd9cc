"""``python -m adapters.healthcheck``: exit 0 when this container's gateway answers ``/health``
with 200, 1 otherwise (the Dockerfile's HEALTHCHECK).

It reads ``PORT`` and the TLS settings from the same environment as the server, asks loopback
without any proxy, and prints one line saying why it failed.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request

__all__ = ["main", "health_url"]


def health_url(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """The URL of this process's ``/health``: loopback, ``PORT``, https when TLS is on."""
    scheme = "https" if environ.get("TLS_CERT_FILE") else "http"
    return f"{scheme}://127.0.0.1:{environ.get('PORT') or '8080'}/health"


def main() -> int:
    url = health_url()
    context = None
    if url.startswith("https"):
        # Loopback to ourselves: the certificate names the public host, not 127.0.0.1.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(url, timeout=4) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        print(f"health check: {url} unreachable: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"health check: {url} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
