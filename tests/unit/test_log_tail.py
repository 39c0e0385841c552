"""log_tail: the most log text a connecting client gets at once (docs/openapi.yaml)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relay.events import log_tail


def test_a_short_log_is_sent_whole() -> None:
    assert log_tail("one\ntwo\n", 100) == (0, "one\ntwo\n")


def test_the_tail_starts_at_a_line_start_within_the_limit() -> None:
    log = "".join(f"line {n}\n" for n in range(100))
    offset, tail = log_tail(log, 30)
    assert len(tail.encode()) <= 30 and log[offset:] == tail and log[offset - 1] == "\n"
    assert tail.startswith("line ")


def test_without_a_line_start_the_tail_is_cut_at_the_limit_on_a_character() -> None:
    log = "é" * 100  # two bytes each
    offset, tail = log_tail(log, 31)
    assert tail == "é" * 15 and offset == 85


@given(st.text(alphabet=st.sampled_from("ab\n\ré€😀"), max_size=300), st.integers(min_value=4, max_value=64))
def test_any_tail_is_a_suffix_within_the_limit(log: str, limit: int) -> None:
    offset, tail = log_tail(log, limit)
    assert log[offset:] == tail
    assert len(tail.encode("utf-8", "surrogatepass")) <= limit
    if offset and tail:
        assert log[offset - 1] in "\r\n" or ("\n" not in tail and "\r" not in tail)
