from itsdangerous import URLSafeTimedSerializer

from relay.tokens import TokenSigner


def test_token_grants_only_its_prediction_and_purpose() -> None:
    signer = TokenSigner("k" * 32, max_age=60)
    token = signer.sign("abc", "stream")
    assert signer.grants(token, "stream", "abc")
    assert not signer.grants(token, "stream", "abd")
    assert not signer.grants(token, "cancel", "abc")


def test_token_from_another_key_is_refused() -> None:
    token = TokenSigner("other-key" * 4, max_age=60).sign("abc", "stream")
    assert TokenSigner("k" * 32, max_age=60).verify(token, "stream") is None


def test_expired_token_is_refused() -> None:
    signer = TokenSigner("k" * 32, max_age=60)
    old = URLSafeTimedSerializer("k" * 32, salt="relay-stream")
    # A token signed 120 s ago: itsdangerous reads the time from the token itself.
    token = old.dumps("abc")
    assert signer.verify(token, "stream") == "abc"
    import time
    from unittest import mock

    with mock.patch("time.time", return_value=time.time() + 120):
        assert signer.verify(token, "stream") is None


def test_garbage_tokens_are_refused_without_raising() -> None:
    signer = TokenSigner("k" * 32, max_age=60)
    for junk in (None, "", ".", "a.b.c", "é", "x" * 10_000, "\x00"):
        assert signer.verify(junk, "stream") is None
