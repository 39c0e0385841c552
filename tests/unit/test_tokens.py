import time
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import BadData, URLSafeTimedSerializer

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
    with mock.patch("time.time", return_value=time.time() + 120):
        assert signer.verify(token, "stream") is None


def test_garbage_tokens_are_refused_without_raising() -> None:
    signer = TokenSigner("k" * 32, max_age=60)
    for junk in (None, "", ".", "a.b.c", "é", "x" * 10_000, "\x00"):
        assert signer.verify(junk, "stream") is None


def test_tokens_are_itsdangerous_defaults_both_ways() -> None:
    # Relay checks tokens through the signer, not the serializer's `loads`: tokens issued by any
    # itsdangerous with the same key and salt must keep working, and Relay's must read back there.
    signer = TokenSigner("k" * 32, max_age=60)
    plain = URLSafeTimedSerializer("k" * 32, salt="relay-stream")
    assert signer.grants(plain.dumps("abc"), "stream", "abc")
    assert plain.loads(signer.sign("abc", "stream"), max_age=60) == "abc"
    assert not signer.grants(URLSafeTimedSerializer("k" * 32, salt="relay-cancel").dumps("abc"), "stream", "abc")


KEY = "k" * 32
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=é\x00"


def itsdangerous_verdict(token: str, salt: str = "relay-stream", max_age: int = 60) -> object:
    try:
        return URLSafeTimedSerializer(KEY, salt=salt).loads(token, max_age=max_age)
    except BadData:
        return None


@settings(max_examples=400, deadline=None)
@given(prediction_id=st.text(min_size=1, max_size=40), position=st.integers(min_value=0, max_value=200),
       replacement=st.text(alphabet=ALPHABET, max_size=3), cut=st.integers(min_value=0, max_value=3),
       age=st.integers(min_value=-5, max_value=120))
def test_relay_accepts_only_what_itsdangerous_accepts(prediction_id: str, position: int, replacement: str,
                                                      cut: int, age: int) -> None:
    # Relay checks tokens by hand (relay/tokens.py says why): on tokens signed `age` seconds ago
    # and then tampered with (a span replaced, the end cut), it may be stricter than itsdangerous
    # about non-canonical base64, but never accepts what itsdangerous refuses, nor reads another id.
    with mock.patch("time.time", return_value=time.time() - age):
        token = URLSafeTimedSerializer(KEY, salt="relay-stream").dumps(prediction_id)
    assert isinstance(token, str)
    signer = TokenSigner(KEY, max_age=60)
    assert signer.verify(token, "stream") == itsdangerous_verdict(token)  # untouched: the same verdict
    at = position % (len(token) + 1)
    tampered = (token[:at] + replacement + token[at + len(replacement):])[:len(token) - cut or None]
    mine = signer.verify(tampered, "stream")
    if mine is not None:
        assert mine == itsdangerous_verdict(tampered)
    assert signer.verify(tampered, "cancel") is None  # another salt never matches


def test_tokens_in_the_future_or_with_a_bad_timestamp_are_refused() -> None:
    signer = TokenSigner(KEY, max_age=60)
    with mock.patch("time.time", return_value=time.time() + 30):
        ahead = signer.sign("abc", "stream")
    assert signer.verify(ahead, "stream") is None and itsdangerous_verdict(ahead) is None
    payload, _, signature = signer.sign("abc", "stream").split(".")
    assert signer.verify(f"{payload}.!!!.{signature}", "stream") is None
