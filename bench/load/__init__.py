"""Load: the gevent client processes (`clients`), their drivers (`processes`), signed webhook
deliveries (`webhooks`) and memory readings of a server's worker (`memory`). No imports here:
`clients` must patch the standard library with gevent before anything else runs."""
