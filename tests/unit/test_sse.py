"""The SSE encoder follows the WHATWG wire rules (regressions named after the bug)."""

import pytest

from relay.sse import SSEEncodingError, encode_comment, encode_event, encode_retry


def test_single_line_event_with_type_and_id() -> None:
    assert encode_event('{"a":1}', event="output", id="5") == b'id: 5\nevent: output\ndata: {"a":1}\n\n'


def test_id_zero_is_sent_not_dropped() -> None:
    assert encode_event("x", id="0").startswith(b"id: 0\n")


def test_data_split_only_on_cr_lf_and_crlf() -> None:
    assert encode_event("a\r\nb\rc\nd") == b"data: a\ndata: b\ndata: c\ndata: d\n\n"


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\x85"])
def test_other_line_separators_stay_inside_one_data_line(separator: str) -> None:
    # str.splitlines() would split here and corrupt the payload.
    encoded = encode_event(f"a{separator}b")
    assert encoded == f"data: a{separator}b\n\n".encode()


def test_empty_data_still_makes_an_event() -> None:
    assert encode_event("") == b"data: \n\n"


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\x00b"])
def test_newline_or_nul_in_id_or_event_is_refused(bad: str) -> None:
    with pytest.raises(SSEEncodingError):
        encode_event("x", id=bad)
    with pytest.raises(SSEEncodingError):
        encode_event("x", event=bad)


def test_retry_is_digits_only() -> None:
    assert encode_retry(1500) == b"retry: 1500\n"
    for bad in (-1, 1.5, True, "10"):
        with pytest.raises(SSEEncodingError):
            encode_retry(bad)  # type: ignore[arg-type]


def test_comment_cannot_smuggle_a_field() -> None:
    assert encode_comment("hb\ndata: evil") == b": hb\n: data: evil\n"
