"""Run the emulator on its own: `python -m relay.emulator --port 8001`.

Useful for a multi-worker Relay with no token (every worker points
REPLICATE_BASE_URL at this one server) and for the official clients' tests.
By default any bearer token is accepted; `--token` (or RELAY_EMULATOR_TOKEN)
requires that one. `--tls` serves HTTPS with a self-signed certificate it
makes in the state dir, so file outputs are `https://` URLs the clients wrap.
"""

from gevent import monkey

# Before anything else imports socket, ssl or threading.
monkey.patch_all()

import argparse  # noqa: E402
import ipaddress  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from gevent.pywsgi import WSGIServer  # noqa: E402

from . import create_emulator  # noqa: E402


def _url_host(host: str) -> str:
    """The host to put in URLs for a bind address (a wildcard bind means this machine)."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - reading a bind address, not binding
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m relay.emulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument("--state-dir", help="where predictions are kept (default: a new temp dir)")
    parser.add_argument("--token", default=os.environ.get("RELAY_EMULATOR_TOKEN") or None,
                        help="the only bearer token accepted (default: RELAY_EMULATOR_TOKEN, else any)")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a self-signed certificate")
    parser.add_argument("--public-url", help="base of output file URLs (default: this server's own address)")
    parser.add_argument("--data-ttl", type=float, default=None,
                        help="seconds after a prediction ends until its data is removed (default 3600)")
    parser.add_argument("--faults", action="store_true", help="enable /_emulator fault and stats routes")
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    state_dir = Path(args.state_dir or tempfile.mkdtemp(prefix="relay-emulator-"))
    state_dir.mkdir(parents=True, exist_ok=True)
    ssl_args: dict[str, Any] = {}
    scheme = "http"
    if args.tls:
        from .tls import ensure_certificate

        cert, key = ensure_certificate(state_dir)
        ssl_args = {"certfile": str(cert), "keyfile": str(key)}
        scheme = "https"
    app = create_emulator(state_dir, faults_enabled=args.faults, token=args.token, data_ttl=args.data_ttl)
    server = WSGIServer((args.host, args.port), app, log=sys.stderr if args.access_log else None, **ssl_args)
    server.start()
    port = server.address[1]
    own = f"{scheme}://{_url_host(args.host)}:{port}"
    app.extensions["relay_emulator"].files_url = (args.public_url or own).rstrip("/")
    print(f"emulator listening on {own}", flush=True)
    if args.tls:
        print(f"certificate: {ssl_args['certfile']}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
