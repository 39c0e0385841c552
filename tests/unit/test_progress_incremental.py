"""ProgressReader reads only what was appended, and agrees with reading the whole log."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relay.progress import ProgressReader, ProgressTracker, parse_progress

PIECES = [
    "Stage 1: base\n", "Running stage 2: refiner\n", "loading weights\n", "\n", "\r",
    "  0%|          | 0/10 [00:00<?, ?it/s]", " 30%|███       | 3/10 [00:00<00:01,  6.20it/s]\n",
    "100%|██████████| 10/10 [00:01<00:00,  9.80it/s]\r\n", "4it [00:00, 19.86it/s]\n", "3/5 [00:01<00:01,  2.0it/s]",
    "desc: 50%|█████     | 2/4 [00:00<00:00, 9.0it/s]\r", "prose 45% done\n",
]


@given(st.lists(st.sampled_from(PIECES), max_size=40), st.lists(st.integers(0, 2000), max_size=8))
def test_reading_in_pieces_agrees_with_reading_the_whole_log(pieces: list[str], cuts: list[int]) -> None:
    log = "".join(pieces)
    reader = ProgressReader()
    for cut in sorted(c % (len(log) + 1) for c in cuts):
        assert reader.read(log[:cut]) == parse_progress(log[:cut])
    assert reader.read(log) == parse_progress(log)


def test_a_rewritten_log_restarts_the_reader() -> None:
    reader = ProgressReader()
    assert reader.read(" 50%|█████     | 5/10 [00:00<00:01,  6.20it/s]\n") is not None
    rewritten = "fresh start\n 10%|█         | 1/10 [00:00<00:01,  6.20it/s]\n"
    assert reader.read(rewritten) == parse_progress(rewritten)
    assert reader.read("nothing measurable\n") is None


def test_the_tracker_keeps_one_reader_per_prediction_and_forgets() -> None:
    tracker = ProgressTracker(size=2)
    bar = " 50%|█████     | 5/10 [00:00<00:01,  6.20it/s]\n"
    assert tracker.read("a", bar) == tracker.read("b", bar) == parse_progress(bar)
    tracker.read("c", "")
    tracker.forget("b")
    assert tracker.read("a", bar + "more\n") == parse_progress(bar)
