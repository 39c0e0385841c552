"""Progress read from a prediction's logs.

Cog models report progress by printing tqdm bars into their logs, one update a
line (or several updates on one line, separated by CR). Replicate sends the whole
cumulative text each time, so the current state is the last bar line in it, and
we find it by reading lines from the end. Three tqdm shapes are recognised:

    Generating:  46%|████▌     | 23/50 [00:02<00:03,  9.12it/s]   percent and bar
    23/50 [00:02<00:03,  9.12it/s]                                 counts, no bar
    4it [00:00, 19.86it/s]                                          no total

Each must be the whole line apart from an optional `desc: ` label, so prose that
merely mentions a percentage ("loaded 45% of weights") is never taken for a bar.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

__all__ = ["Progress", "parse_progress"]


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a prediction's last progress bar stands."""

    percent: float | None
    current: int | None
    total: int | None
    eta_seconds: float | None
    step: str | None

    def as_dict(self) -> dict[str, float | int | str | None]:
        """The snapshot's `progress` object (docs/openapi.yaml)."""
        return {
            "percent": self.percent,
            "current": self.current,
            "total": self.total,
            "eta_seconds": self.eta_seconds,
            "step": self.step,
        }


# Repeats are bounded or stop at a delimiter, and longer lines than a terminal's
# are never matched (_MAX_BAR_LINE), so no log can make the scan crawl.
# [0-9] rather than \d keeps exotic Unicode digits away from float() and int().
_NUMBER = r"[0-9]{1,20}(?:\.[0-9]{1,20})?"
_SI = r"[kMGTPEZY]?"  # tqdm's unit_scale prints 4.52G, 12.3M, ...
_FRACTION = rf"(?P<n>{_NUMBER})(?P<n_si>{_SI})/(?P<total>{_NUMBER})(?P<total_si>{_SI})"
_INFO = r"\[(?P<info>[^\]]{0,300})\]"
_PERCENT_BAR = re.compile(
    r"(?<![0-9.])(?P<pct>[0-9]{1,6}(?:\.[0-9]{1,6})?)%"
    r"\|[^|]{0,300}\|"  # the bar itself: blocks, "#", digits or spaces
    rf"(?:\s*{_FRACTION})?(?:\s*{_INFO})?\s*\Z"
)
_COUNTS = re.compile(rf"(?<![0-9.]){_FRACTION}\s*{_INFO}\s*\Z")
_COUNTER = re.compile(
    rf"(?<![0-9.])(?P<n>{_NUMBER})(?P<n_si>{_SI})(?:[^\W\d]\w{{0,30}})?\s*{_INFO}\s*\Z"  # 4it, 12.3MB
)

# tqdm prints mm:ss or h:mm:ss; "1 day, 2:03:04" and "1d 02:03:04" come from
# other formatters. Anything else leaves the ETA unknown.
_CLOCK = (
    r"(?:(?P<days>[0-9]{1,9})\s?(?:d|days?),?\s?)?"
    r"(?P<hms>[0-9]{1,9}(?::[0-9]{1,2}){1,2}(?:\.[0-9]{1,6})?)"
)
_ELAPSED = re.compile(rf"\s*{_CLOCK}")
_REMAINING = re.compile(rf"<\s*(?:\?|{_CLOCK})\s*(?:,|\Z)")

_STAGE = re.compile(r"\b(?:stage|phase)\s?#?\s?[0-9]{1,4}(?:\s?(?:/|of)\s?[0-9]{1,4})?\b", re.IGNORECASE)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # tqdm moves the cursor for nested bars

_MAX_BAR_LINE = 2000  # a terminal line; longer lines are data dumps, not bars
_STAGE_LOOKBACK_LINES = 1000  # bounds the work per poll on a very long run
_STAGE_CONTEXT_LINES = 5  # a stage heading sits just before its bar


def parse_progress(logs: str | None) -> Progress | None:
    """The state of the last tqdm bar in `logs`, or None when they show none."""
    if not logs or not isinstance(logs, str):
        return None
    lines = _lines_from_end(logs)
    for line in lines:
        progress = _parse_line(line)
        if progress is None:
            continue
        if progress.step is None:
            stage = _stage_heading(lines, progress)
            if stage is not None:
                progress = replace(progress, step=stage)
        return progress
    return None


def _lines_from_end(text: str) -> Iterator[str]:
    """Lines last first, ended by CR, LF or CRLF (CRLF also yields an empty line)."""
    end = len(text)
    # Each rfind resumes below the last break of its kind, so the whole walk is
    # linear even when one kind of break is rare or absent.
    lf = text.rfind("\n", 0, end)
    cr = text.rfind("\r", 0, end)
    while True:
        cut = max(lf, cr)
        yield text[cut + 1 : end]
        if cut < 0:
            return
        end = cut
        if lf == cut:
            lf = text.rfind("\n", 0, end)
        else:
            cr = text.rfind("\r", 0, end)


def _parse_line(line: str) -> Progress | None:
    if len(line) > _MAX_BAR_LINE:
        return None
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    # Cheap necessary conditions first: most log lines are rejected without a regex.
    shapes: list[re.Pattern[str]] = []
    if "%|" in line:
        shapes.append(_PERCENT_BAR)
    if line.rstrip().endswith("]") and "/" in line:
        shapes += (_COUNTS, _COUNTER)
    for shape in shapes:
        match = shape.search(line)
        if match is None:
            continue
        prefix = line[: match.start()].rstrip()
        if prefix and not prefix.endswith(":"):
            continue  # tqdm puts only "desc: " before a bar; this is prose
        fields = match.groupdict()
        info = fields.get("info")
        if shape is not _PERCENT_BAR and not _looks_timed(info):
            continue  # without a bar, only tqdm's [elapsed..., rate] marks a counter
        return _progress(fields, desc=prefix[:-1].strip() or None)
    return None


def _looks_timed(info: str | None) -> bool:
    return info is not None and "/" in info and _ELAPSED.match(info) is not None


def _progress(fields: dict[str, str | None], desc: str | None) -> Progress:
    current = _count(fields.get("n"), fields.get("n_si"))
    total = _count(fields.get("total"), fields.get("total_si"))
    shown = fields.get("pct")
    percent: float | None = None
    if current is not None and total:
        percent = current / total * 100  # finer than tqdm's whole-number display
    elif shown is not None:
        percent = float(shown)
    if percent is not None:
        percent = round(min(max(percent, 0.0), 100.0), 1)
    return Progress(
        percent=percent,
        current=None if current is None else round(current),
        total=None if total is None else round(total),
        eta_seconds=_remaining_seconds(fields.get("info")),
        step=desc,
    )


def _count(number: str | None, si: str | None) -> float | None:
    if number is None:
        return None
    return float(number) * 1000.0 ** ("kMGTPEZY".index(si) + 1 if si else 0)


def _remaining_seconds(info: str | None) -> float | None:
    match = _REMAINING.search(info) if info else None
    if match is None or match["hms"] is None:
        return None  # no bracket, "?" or a format we don't know
    *larger, seconds = match["hms"].split(":")
    total = float(seconds)
    for power, part in enumerate(reversed(larger), start=1):
        total += int(part) * 60**power
    if match["days"]:
        total += int(match["days"]) * 86400
    return total


def _stage_heading(earlier_lines: Iterator[str], latest: Progress) -> str | None:
    """A "stage 2"-like heading printed just before the bar run that `latest` ends."""
    later = latest
    prose = 0
    for scanned, line in enumerate(earlier_lines):
        if scanned >= _STAGE_LOOKBACK_LINES:
            return None
        bar = _parse_line(line)
        if bar is None:
            if not line.strip():
                continue
            heading = _STAGE.search(line)
            if heading is not None:
                return " ".join(heading.group().split())
            prose += 1
            if prose >= _STAGE_CONTEXT_LINES:
                return None
        elif bar.step != later.step or bar.total != later.total or _position(bar) > _position(later):
            return None  # an earlier bar: its heading is not ours
        else:
            later = bar
    return None


def _position(progress: Progress) -> float:
    if progress.current is not None:
        return progress.current
    return progress.percent or 0.0
