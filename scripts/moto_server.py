"""moto's server (as `moto_server` builds it in moto 5.2.5), with writes serialised.

Stock moto_server serves each request on its own thread, and S3 PutObject with
`If-None-Match: *` checks for the key before it writes, so two racing conditional PUTs
can both win (Delta commits rely on exactly one winning). This serves the same WSGI app
with one lock held around every PUT/POST/DELETE (reads stay concurrent).

Usage: python moto_server.py [--host 127.0.0.1] [--port 5000]
Started by scripts/services.sh (`start s3`); binds loopback only.
"""

import argparse
import os
import signal
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

WRITE_METHODS = frozenset({"PUT", "POST", "DELETE", "PATCH"})


class SerialisedWrites:
    """WSGI middleware: one write request at a time, from condition check to response."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD", "GET").upper() not in WRITE_METHODS:
            return self.app(environ, start_response)
        with self.lock:
            result = self.app(environ, start_response)
            try:
                # produce the whole (small) response under the lock, in case the app
                # does any work lazily while the body is iterated
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("local test servers bind loopback only")

    # moto reads MOTO_PORT to build URLs it returns (as moto_server does)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))

    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # as moto_server: errors come back with moto's detail
    run_simple(
        args.host,
        args.port,
        SerialisedWrites(app),
        threaded=True,
        use_reloader=False,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
