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
from collections import OrderedDict
from dataclasses import dataclass, replace

__all__ = ["Progress", "ProgressReader", "ProgressTracker", "parse_progress"]


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a prediction's last progress bar stands."""

    percent: float | None
    current: int | None
    total: int | None
    eta_seconds: float | None
    step: str | None

    def as_dict(self) -> dict[str, float | int | str | None]:
        """The snapshot's `progress` object (docs/openapi.yaml, `Snapshot.progress`)."""
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
    return ProgressReader().read(logs)


class ProgressReader:
    """Reads one prediction's log forward, keeping only what the next answer needs.

    Each call is given the whole log; when it extends the text read before, only
    the appended part is parsed (a partial last line is re-read until it ends).
    A log that does not extend it (rewritten) restarts the reader. The stage
    rule is the one a reader walking back from the latest bar would apply: the
    nearest "stage N" heading before it, with fewer than five prose lines and no
    bar of another run in between.
    """

    __slots__ = (
        "_bar",
        "_end",
        "_heading",
        "_heading_since_bar",
        "_mark",
        "_pending",
        "_prose",
        "_raw",
        "_since_heading",
    )

    def __init__(self) -> None:
        self._end = 0  # how much of the log has been read (code points)
        self._mark = ""  # the last characters read, to tell an extension from a rewrite
        self._pending = ""  # the last, unfinished line
        self._bar: Progress | None = None
        self._heading: str | None = None
        self._prose = 0
        self._since_heading = 0
        self._heading_since_bar = False
        self._raw: Progress | None = None  # the last bar as printed (no heading added)

    def read(self, logs: str | None) -> Progress | None:
        """The progress shown by `logs` (the whole log so far)."""
        if not logs or not isinstance(logs, str):
            if self._end:
                self.__init__()  # type: ignore[misc]
            return None
        if len(logs) < self._end or logs[self._end - len(self._mark):self._end] != self._mark:
            self.__init__()  # type: ignore[misc]
        if len(logs) > self._end:
            text = self._pending + logs[self._end:]
            *lines, pending = _BREAK.split(text)
            for line in lines:
                self._take(line)
            self._pending = pending if len(pending) <= _MAX_PENDING else pending[-_MAX_BAR_LINE - 1:]
            self._end = len(logs)
            self._mark = logs[-_MARK:]
        partial = _parse_line(self._pending) if self._pending else None
        return self._with_stage(partial, commit=False) if partial is not None else self._bar

    def _take(self, line: str) -> None:
        bar = _parse_line(line)
        if bar is not None:
            self._bar = self._with_stage(bar, commit=True)
            return
        if not line.strip():
            self._since_heading += 1
            return
        lowered = line.lower()
        heading = _STAGE.search(line) if "stage" in lowered or "phase" in lowered else None
        if heading is not None:
            self._heading = " ".join(heading.group().split())
            self._prose = self._since_heading = 0
            self._heading_since_bar = True
            return
        self._prose += 1
        self._since_heading += 1

    def _with_stage(self, bar: Progress, *, commit: bool) -> Progress:
        heading = self._heading
        previous = self._raw
        breaks_run = previous is not None and (
            bar.step != previous.step or bar.total != previous.total or _position(previous) > _position(bar))
        if breaks_run and not self._heading_since_bar:
            heading = None
        if self._prose >= _STAGE_CONTEXT_LINES or self._since_heading >= _STAGE_LOOKBACK_LINES:
            heading = None
        if commit:
            self._raw = bar
            self._heading = heading
            self._heading_since_bar = False
        if bar.step is None and heading is not None:
            return replace(bar, step=heading)
        return bar


_BREAK = re.compile(r"\r\n?|\n")
_MARK = 64
_MAX_PENDING = 64 * 1024


class ProgressTracker:
    """One ProgressReader per prediction, for the predictions followed lately (bounded)."""

    def __init__(self, size: int = 10_000) -> None:
        self._readers: OrderedDict[str, ProgressReader] = OrderedDict()
        self._size = size

    def read(self, prediction_id: str, logs: str | None) -> Progress | None:
        reader = self._readers.pop(prediction_id, None) or ProgressReader()
        self._readers[prediction_id] = reader
        if len(self._readers) > self._size:
            self._readers.popitem(last=False)
        return reader.read(logs)

    def forget(self, prediction_id: str) -> None:
        self._readers.pop(prediction_id, None)


def _parse_line(line: str) -> Progress | None:
    if len(line) > _MAX_BAR_LINE:
        return None
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    # Cheap necessary conditions first: most log lines are rejected without a regex.
    shapes: list[re.Pattern[str]] = []
    if "%|" in line:
        shapes.append(_PERCENT_BAR)
    if line.rstrip().endswith("]") and "/" in line and ":" in line:  # a counter's [elapsed, rate]
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


def _position(progress: Progress) -> float:
    if progress.current is not None:
        return progress.current
    return progress.percent or 0.0
