"""gunicorn settings for Relay (Heroku-style: read from the environment).

Streams are long-lived, so Relay runs gevent workers: each open stream is one
greenlet (~20 KB), not one thread.
"""

import glob
import os
import tempfile

# Heroku gives the port in $PORT; [::] accepts IPv4 and IPv6.
bind = f"[::]:{os.environ.get('PORT', '8000')}"

# Processes; each holds thousands of streams. Heroku sets WEB_CONCURRENCY by dyno size.
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
worker_class = "gevent"

# Open connections per worker: every browser following a prediction holds one.
worker_connections = int(os.environ.get("RELAY_WORKER_CONNECTIONS", "5000"))

# A worker that blocks its event loop this long is restarted; streams never block it.
timeout = 30

# On SIGTERM Heroku allows 30 s; Relay ends its streams at once (clients resume
# on another worker), so 20 s is plenty and leaves margin.
graceful_timeout = 20

# Keep-alive between the router and gunicorn.
keepalive = 5

# Access log to stdout for Heroku's log router. The query string is left out:
# it carries stream and cancel tokens.
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'
errorlog = "-"

# Which proxy headers to believe is Relay's decision (RELAY_TRUSTED_PROXIES, applied
# by ProxyFix in relay/security.py), not gunicorn's: left to itself gunicorn takes
# X-Forwarded-Proto from any local peer (or any peer with FORWARDED_ALLOW_IPS=*), and
# a client could then claim HTTPS or set SCRIPT_NAME.
forwarded_allow_ips = ""

# Prometheus metrics from every worker: prometheus-client reads this variable
# when a worker first imports it, so it is set here, in the master, before forking.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="relay-metrics-")
else:
    # Values from an earlier run would be added to this one's: start clean.
    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(stale)

# Not preload_app: the app must be created after gevent patches the worker.
preload_app = False


def post_worker_init(worker):
    """Tune the collector for thousands of streams; end open streams promptly when asked to stop."""
    import gevent

    from relay.memory import tune_gc

    tune_gc()

    def watch_for_exit():
        while worker.alive:
            gevent.sleep(0.25)
        relay = getattr(worker.wsgi, "extensions", {}).get("relay")
        if relay is not None:
            relay.shutdown()

    gevent.spawn(watch_for_exit)


def child_exit(server, worker):
    """Drop a dead worker's live gauges (open streams, watchers) from /metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
