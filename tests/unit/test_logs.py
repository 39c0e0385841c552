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
