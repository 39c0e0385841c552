"""Relay's hub, feed and streams as they were before logs travelled as deltas.

A verbatim copy of those modules (every snapshot carries the whole log; the
history keeps 256 events, each a copy; progress re-read from the whole log on
every answer), kept as the baseline of bench/log_deltas.py. Not used by Relay.
"""
