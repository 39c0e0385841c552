"""parse_progress on logs shaped like the ones Cog models write to Replicate."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.progress import Progress, parse_progress

SDXL_RUNNING = (
    "Using seed: 1234\n"
    "Prompt: an astronaut riding a horse on mars\n"
    "txt2img mode\n"
    "  0%|          | 0/50 [00:00<?, ?it/s]\n"
    "  2%|▏         | 1/50 [00:00<00:05,  9.12it/s]\n"
    "  4%|▍         | 2/50 [00:00<00:05,  9.10it/s]\n"
    " 44%|████▍     | 22/50 [00:02<00:03,  9.11it/s]\n"
    " 46%|████▌     | 23/50 [00:02<00:03,  9.12it/s]\n"
)

SDXL_DONE = (
    "Using seed: 1234\n"
    "  0%|          | 0/50 [00:00<?, ?it/s]\n"
    " 98%|█████████▊| 49/50 [00:05<00:00,  9.40it/s]\n"
    "100%|██████████| 50/50 [00:05<00:00,  9.41it/s]\n"
    "100%|██████████| 50/50 [00:05<00:00,  9.38it/s]\n"
    "Saving image to /tmp/out-0.png\n"
    "Running safety checker\n"
)


def test_no_logs_yet_has_no_progress() -> None:
    # Replicate sends "logs": null while a prediction is starting.
    assert parse_progress(None) is None
    assert parse_progress("") is None
    assert parse_progress("\n\r\n  \n") is None


def test_logs_without_a_bar_have_no_progress() -> None:
    assert parse_progress("Using seed: 1234\nLoading pipeline...\nsetup took 3.2s\n") is None


def test_running_diffusion_reports_the_last_step() -> None:
    assert parse_progress(SDXL_RUNNING) == Progress(
        percent=46.0, current=23, total=50, eta_seconds=3.0, step=None
    )


def test_first_bar_line_has_unknown_eta() -> None:
    logs = "Using seed: 42\n  0%|          | 0/50 [00:00<?, ?it/s]\n"
    assert parse_progress(logs) == Progress(percent=0.0, current=0, total=50, eta_seconds=None, step=None)


def test_carriage_returns_between_updates_end_lines() -> None:
    # tqdm on a terminal-like stream redraws with CR instead of starting a new line.
    logs = (
        "Using seed: 7\r\n"
        "  0%|          | 0/20 [00:00<?, ?it/s]\r"
        "  5%|▌         | 1/20 [00:00<00:02,  8.01it/s]\r"
        " 30%|███       | 6/20 [00:00<00:01,  8.50it/s]"
    )
    assert parse_progress(logs) == Progress(percent=30.0, current=6, total=20, eta_seconds=1.0, step=None)


def test_crlf_line_ends_with_trailing_prose() -> None:
    logs = SDXL_RUNNING.replace("\n", "\r\n") + "warning: NSFW filter slow\r\n"
    result = parse_progress(logs)
    assert result is not None and (result.current, result.total) == (23, 50)


def test_finished_bar_is_kept_after_later_prose_and_repeated_100_percent() -> None:
    assert parse_progress(SDXL_DONE) == Progress(
        percent=100.0, current=50, total=50, eta_seconds=0.0, step=None
    )


def test_desc_label_becomes_the_step() -> None:
    logs = "Generating:  46%|████▌     | 23/50 [00:02<00:03,  9.12it/s]\n"
    result = parse_progress(logs)
    assert result is not None and result.step == "Generating" and result.percent == 46.0


def test_desc_with_spaces_and_slow_seconds_per_iteration() -> None:
    logs = (
        "Loading pipeline components...\n"
        "Loading checkpoint shards:  50%|█████     | 1/2 [00:01<00:01,  1.55s/it]\n"
        "Loading checkpoint shards: 100%|██████████| 2/2 [00:03<00:00,  1.52s/it]\n"
    )
    assert parse_progress(logs) == Progress(
        percent=100.0, current=2, total=2, eta_seconds=0.0, step="Loading checkpoint shards"
    )


def test_desc_containing_a_colon_is_kept_whole() -> None:
    logs = "Stage 2: denoising:  25%|██▌       | 5/20 [00:01<00:03,  4.00it/s]\n"
    result = parse_progress(logs)
    assert result is not None and result.step == "Stage 2: denoising"


def test_second_stage_restarting_at_zero_is_reported_with_its_heading() -> None:
    logs = (
        "Stage 1: base model\n"
        "  0%|          | 0/40 [00:00<?, ?it/s]\n"
        "100%|██████████| 40/40 [00:04<00:00,  9.80it/s]\n"
        "Running stage 2: refiner\n"
        "  0%|          | 0/10 [00:00<?, ?it/s]\n"
        " 30%|███       | 3/10 [00:00<00:01,  6.20it/s]\n"
    )
    assert parse_progress(logs) == Progress(
        percent=30.0, current=3, total=10, eta_seconds=1.0, step="stage 2"
    )


def test_restarted_bar_does_not_borrow_the_previous_stages_heading() -> None:
    # Same totals, no heading before the second run: "Stage 1" belongs to the first.
    logs = (
        "Stage 1 of 2\n"
        "  0%|          | 0/10 [00:00<?, ?it/s]\n"
        "100%|██████████| 10/10 [00:01<00:00,  9.80it/s]\n"
        "  0%|          | 0/10 [00:00<?, ?it/s]\n"
        " 20%|██        | 2/10 [00:00<00:01,  6.20it/s]\n"
    )
    assert parse_progress(logs) == Progress(percent=20.0, current=2, total=10, eta_seconds=1.0, step=None)


def test_second_stage_at_zero_percent_is_zero_not_the_first_stages_100() -> None:
    logs = SDXL_DONE + "Upscaling\n  0%|          | 0/4 [00:00<?, ?it/s]\n"
    assert parse_progress(logs) == Progress(percent=0.0, current=0, total=4, eta_seconds=None, step=None)


@pytest.mark.parametrize(
    ("line", "current", "step"),
    [
        ("4it [00:00, 19.86it/s]", 4, None),
        ("0it [00:00, ?it/s]", 0, None),
        ("Decoding tokens: 12it [00:01,  9.50it/s]", 12, "Decoding tokens"),
        ("Fetching: 12.3MB [00:01, 9.80MB/s]", 12_300_000, "Fetching"),
    ],
)
def test_bar_without_total_has_count_only(line: str, current: int, step: str | None) -> None:
    logs = f"Using seed: 99\n{line}\n"
    assert parse_progress(logs) == Progress(
        percent=None, current=current, total=None, eta_seconds=None, step=step
    )


@pytest.mark.parametrize(
    ("bracket", "eta"),
    [
        ("[00:00<?, ?it/s]", None),
        ("[00:42<06:18,  8.41s/it]", 378.0),
        ("[02:10<1:46:35,  6.53s/it]", 6395.0),
        ("[26:00:01<12:00:00, 95.10s/it]", 43200.0),
        ("[1:02:03<1 day, 2:03:04, 95.10s/it]", 93784.0),
        ("[1:02:03<2 days, 0:00:10, 95.10s/it]", 172810.0),
        ("[1:02:03<1d, 2:03:04, 95.10s/it]", 93784.0),
        ("[00:01<1h02m, 3.20s/it]", None),  # not a format we know
        ("[00:01<soon, 3.20s/it]", None),
        ("[00:02<00:03,  9.12it/s, loss=0.123, lr=1e-4]", 3.0),  # tqdm postfix
    ],
)
def test_remaining_time_formats(bracket: str, eta: float | None) -> None:
    logs = f"  2%|▏         | 20/1000 {bracket}\n"
    result = parse_progress(logs)
    assert result is not None
    assert (result.eta_seconds, result.current, result.total, result.percent) == (eta, 20, 1000, 2.0)


@pytest.mark.parametrize(
    "line",
    [
        "23/50 [00:02<00:03, 9.12steps/s]",
        " 46%|████▌     | 23/50 [00:02<00:03,  9.12steps/s]",
        " 46%|####6     | 23/50 [00:02<00:03,  9.12it/s]",  # ascii=True
        " 46%|█████████████████████▏                        | 23/50 [00:02<00:03,  9.12it/s]",
        "\x1b[A 46%|████▌     | 23/50 [00:02<00:03,  9.12it/s]\x1b[A",  # nested bar cursor moves
    ],
)
def test_units_and_bar_drawings(line: str) -> None:
    assert parse_progress(f"Using seed: 5\n{line}\n") == Progress(
        percent=46.0, current=23, total=50, eta_seconds=3.0, step=None
    )


def test_unit_scaled_sizes_give_a_finer_percent_than_the_display() -> None:
    logs = "Downloading weights:  45%|████▌     | 4.52G/10.0G [00:31<00:38, 145MB/s]\n"
    assert parse_progress(logs) == Progress(
        percent=45.2,
        current=4_520_000_000,
        total=10_000_000_000,
        eta_seconds=38.0,
        step="Downloading weights",
    )


def test_percent_is_rounded_to_one_decimal() -> None:
    result = parse_progress(" 33%|███▎      | 1/3 [00:01<00:02,  1.00s/it]\n")
    assert result is not None and result.percent == 33.3


def test_overshooting_bars_are_clamped_to_100() -> None:
    assert parse_progress("105%|██████████| 21/20 [00:02<00:00,  9.90it/s]\n") == Progress(
        percent=100.0, current=21, total=20, eta_seconds=0.0, step=None
    )
    shown_only = parse_progress("150%|██████████|\n")
    assert shown_only is not None and shown_only.percent == 100.0


def test_bar_without_counts_uses_the_displayed_percent() -> None:
    assert parse_progress("Warmup:  70%|███████   |\n") == Progress(
        percent=70.0, current=None, total=None, eta_seconds=None, step="Warmup"
    )


def test_zero_total_falls_back_to_the_displayed_percent() -> None:
    result = parse_progress("  0%|          | 0/0 [00:00<?, ?it/s]\n")
    assert result is not None and (result.percent, result.current, result.total) == (0.0, 0, 0)


@pytest.mark.parametrize(
    "prose",
    [
        "loaded 45% of weights",
        "Progress: 45%",
        "CPU: 45% | mem: 30%",
        "| fp16 | 45%| 3/4 |",  # a markdown table is not a bar
        "done 45%|████▌     | 23/50 [00:02<00:03,  9.12it/s]",  # no "desc:" form
        "Downloaded 3 files [00:01, 1.20MB/s]",
        "Step 3/50 [loss=0.2]",
        "ratio 3/4 [see docs/setup]",
        "3/4 [see docs/setup]",  # counts need tqdm's [elapsed..., rate] after them
        "Models: 3 [sdxl/refiner]",
        "[INFO] request /v1/models took 3ms [ok]",
    ],
)
def test_prose_mentioning_percentages_is_not_a_bar(prose: str) -> None:
    assert parse_progress(f"Using seed: 1\n{prose}\n") is None


def test_prose_after_a_bar_does_not_hide_it() -> None:
    logs = SDXL_RUNNING + "loaded 45% of weights\nCPU: 99% | mem: 30%\n"
    result = parse_progress(logs)
    assert result is not None and result.current == 23


def test_as_dict_is_the_snapshot_progress_object() -> None:
    result = parse_progress("Generating:  46%|████▌     | 23/50 [00:02<00:03,  9.12it/s]")
    assert result is not None
    assert result.as_dict() == {
        "percent": 46.0,
        "current": 23,
        "total": 50,
        "eta_seconds": 3.0,
        "step": "Generating",
    }
    assert json.loads(json.dumps(result.as_dict())) == result.as_dict()


def test_megabyte_log_with_the_bar_far_back_is_parsed_quickly() -> None:
    # Worst honest case: every line after the bar must be looked at and rejected.
    noise = "".join(
        f"[worker {i % 8}] step {i} loss 0.{i % 97:02d} at 45% /tmp/x [ok]\n" for i in range(20_000)
    )
    logs = SDXL_DONE + noise
    assert len(logs) > 1_000_000
    started = time.perf_counter()
    result = parse_progress(logs)
    elapsed = time.perf_counter() - started
    assert result is not None and result.percent == 100.0
    assert elapsed < 1.0


BAR_ALPHABET = st.sampled_from(
    list("0123456789 %|[]<>:,./?itsMkGd█▏▌#\r\n\x1bAStage") + ["it/s", "s/it", "%|", ": "]
)


@settings(max_examples=400)
@given(st.one_of(st.text(), st.lists(BAR_ALPHABET, max_size=200).map("".join)))
def test_any_text_gives_none_or_a_percent_within_0_and_100(logs: str) -> None:
    result = parse_progress(logs)
    assert result is None or isinstance(result, Progress)
    if result is not None and result.percent is not None:
        assert 0.0 <= result.percent <= 100.0


@given(
    total=st.integers(min_value=1, max_value=100_000),
    data=st.data(),
    desc=st.one_of(st.none(), st.from_regex(r"[A-Za-z][A-Za-z ]{0,20}[A-Za-z]", fullmatch=True)),
    ascii_bar=st.booleans(),
    prefix=st.text(alphabet="abc xyz:%\n", max_size=80),
)
def test_tqdm_formatted_lines_round_trip(
    total: int, data: st.DataObject, desc: str | None, ascii_bar: bool, prefix: str
) -> None:
    # Lines built the way tqdm.format_meter builds them, after arbitrary earlier logs.
    n = data.draw(st.integers(min_value=0, max_value=total))
    remaining = data.draw(st.integers(min_value=0, max_value=3 * 3600))
    filled = n * 10 // total
    bar = ("#" if ascii_bar else "█") * filled + " " * (10 - filled)
    hours, rest = divmod(remaining, 3600)
    clock = f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"
    label = f"{desc}: " if desc else ""
    line = f"{label}{n / total * 100:3.0f}%|{bar}| {n}/{total} [00:01<{clock},  3.21it/s]"
    result = parse_progress(f"{prefix}\n{line}\n")
    assert result == Progress(
        percent=round(n / total * 100, 1), current=n, total=total, eta_seconds=float(remaining), step=desc
    )
