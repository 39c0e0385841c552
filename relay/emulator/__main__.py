"""Run the emulator on its own: `python -m relay.emulator --port 8001`.

Useful for a multi-worker Relay with no token: every worker points
REPLICATE_BASE_URL at this one server.
"""

from gevent import monkey

# Before anything else imports socket, ssl or threading.
monkey.patch_all()

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

from gevent.pywsgi import WSGIServer  # noqa: E402

from . import create_emulator  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m relay.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument("--state-dir", help="where predictions are kept (default: a new temp dir)")
    parser.add_argument("--faults", action="store_true", help="enable /_emulator fault and stats routes")
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    state_dir = args.state_dir or tempfile.mkdtemp(prefix="relay-emulator-")
    app = create_emulator(state_dir, faults_enabled=args.faults)
    server = WSGIServer((args.host, args.port), app, log=sys.stderr if args.access_log else None)
    server.start()
    host, port = server.address[:2]
    print(f"emulator listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
