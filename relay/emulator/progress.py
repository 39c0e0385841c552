"""Progress lines in the exact text tqdm prints, as Cog models leave in logs.

Relay parses these lines out of real Replicate logs, so the emulator must
produce the same bytes: ` 45%|████▌     | 9/20 [00:01<00:01,  6.67it/s]`.
The rules below follow tqdm's default (non-terminal) format: a 3-wide
percentage, a 10-cell bar drawn with eighth blocks, elapsed<remaining as
mm:ss (h:mm:ss past an hour), and a 5.2f rate that flips to s/it when an
iteration takes longer than a second.
"""

from __future__ import annotations

_BAR_WIDTH = 10
# Empty cell, then one to eight eighths of a block.
_BLOCKS = " " + "".join(chr(c) for c in range(0x258F, 0x2587, -1))


def format_interval(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours:d}:{minutes:02d}:{secs:02d}"
    return f"{minutes:02d}:{secs:02d}"


def _bar(fraction: float) -> str:
    steps = len(_BLOCKS) - 1
    full, partial = divmod(int(fraction * _BAR_WIDTH * steps), steps)
    if full >= _BAR_WIDTH:
        return _BLOCKS[-1] * _BAR_WIDTH
    return (_BLOCKS[-1] * full + _BLOCKS[partial]).ljust(_BAR_WIDTH)


def _rate(n: int, elapsed: float) -> tuple[str, float | None]:
    """The rate text and iterations per second (None when still unknown)."""
    if n <= 0 or elapsed <= 0:
        return "?it/s", None
    rate = n / elapsed
    if rate < 1:
        return f"{1 / rate:5.2f}s/it", rate
    return f"{rate:5.2f}it/s", rate


def progress_line(n: int, total: int, elapsed: float) -> str:
    """One tqdm update line (no newline) after `n` of `total` iterations."""
    fraction = n / total if total else 0.0
    rate_text, rate = _rate(n, elapsed)
    remaining = format_interval((total - n) / rate) if rate else "?"
    return (
        f"{fraction * 100:3.0f}%|{_bar(fraction)}| {n}/{total} "
        f"[{format_interval(elapsed)}<{remaining}, {rate_text}]"
    )
