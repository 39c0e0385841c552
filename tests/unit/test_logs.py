import logging

from relay.logs import _Context


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("relay.test", logging.INFO, __file__, 1, message, args, None)


def test_secrets_and_url_tokens_are_redacted_from_every_record() -> None:
    context = _Context(["r8_supersecrettoken", "whsec_c2VjcmV0c2VjcmV0"])
    item = record("calling with %s and /api/predictions/x/events?token=abc.def&lastEventId=1",
                  "r8_supersecrettoken")
    assert context.filter(item)
    text = item.getMessage()
    assert "r8_supersecrettoken" not in text and "abc.def" not in text
    assert "token=[redacted]" in text and "lastEventId=1" in text
    assert item.request_id == "-"  # type: ignore[attr-defined]


def test_short_or_empty_secrets_do_not_blank_out_logs() -> None:
    context = _Context(["", "ab"])
    item = record("about abc")
    context.filter(item)
    assert item.getMessage() == "about abc"


def test_gunicorn_access_atoms_are_redacted_in_place_and_keep_their_lookups() -> None:
    from gunicorn.glogging import SafeAtoms

    from relay.logs import _RedactTokens

    atoms = SafeAtoms({"r": "GET /api/events?watch=abc.def&token=ghi HTTP/1.1", "s": "200",
                       "{x-request-id}o": "rid-1"})
    item = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1,
                             '%(r)s %(s)s rid=%({x-request-id}o)s %({x-missing}i)s', None, None)
    item.args = atoms
    assert _RedactTokens().filter(item)
    assert item.args is atoms  # gunicorn's mapping, so `{header}` atoms still fold case and default to "-"
    assert item.getMessage() == "GET /api/events?watch=[redacted]&token=[redacted] HTTP/1.1 200 rid=rid-1 -"


def test_only_the_atoms_the_access_format_writes_are_looked_at() -> None:
    from gunicorn.glogging import SafeAtoms

    from relay.logs import _RedactTokens

    # gunicorn makes an atom per request and response header; a format that shows only some of
    # them gets those redacted (header names in any case), and the others are left alone.
    atoms = SafeAtoms({"U": "/api/events", "q": "watch=abc&token=ghi", "{referer}i": "/x?token=abc",
                       "r": "GET /api/events?token=ghi HTTP/1.1"})
    item = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1,
                             '%(U)s %({Referer}i)s %(q)s', None, None)
    item.args = atoms
    assert _RedactTokens().filter(item)
    assert item.getMessage() == "/api/events /x?token=[redacted] watch=[redacted]&token=[redacted]"
    assert atoms["r"] == "GET /api/events?token=ghi HTTP/1.1"  # not in the format: never written, not touched
