"""Progress of a live run as lines a CI log can read (stderr is not a terminal).

A live run generates in stages (one arm × prompt variant × budget each). On a terminal the CLI draws a bar per
stage; elsewhere (a CI log, a file, ``| tee``) a bar is just its label, so :class:`LineProgress` writes lines
instead: one when a stage starts, then at a steady cadence — every ``every_s`` seconds or every ``every_frac`` of the
stage, whichever comes first — and one when it ends, each with done/total, items per second and the stage's ETA,
plus the whole run's done/total and ETA once the run has announced its plan (:meth:`LineProgress.plan`)::

    [audit] baseline/default/64: 40/80 (50%), 1.9 items/s, ETA 21 s; overall 120/330 (36%), ETA 1 min 50 s

Rates count generated items only (items served from the generation cache arrive at once and would inflate them);
ETAs say ``unknown`` until an item has been generated. A heartbeat thread keeps the cadence when no item finishes for
``every_s`` seconds (a slow server), so a CI log is never silent for longer. The clock and the writer are injected,
so tests drive it without sleeping.

It is the ``progress`` argument of :func:`audit.verify.verify` / :func:`audit.live.run_live`: a factory
``(label, total) -> update(done, total)`` with an optional ``plan(stages)``.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``: an ETA a reader takes in at a glance."""
    if not math.isfinite(seconds) or seconds < 0:
        return "unknown"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


@dataclass
class _Stage:
    label: str
    total: int
    started: float
    first_done: int | None = None  # items done at the first report: served from the cache
    done: int = 0
    last_line: float = 0.0
    last_line_done: int = -1
    finished: bool = False

    def generated(self) -> int:
        return self.done - (self.first_done or 0)


@dataclass
class LineProgress:
    """Non-terminal progress: lines at a steady cadence (see the module docstring)."""

    write: Callable[[str], None]
    clock: Callable[[], float] = time.monotonic
    every_s: float = 10.0
    every_frac: float = 0.1
    heartbeat: bool = True
    prefix: str = "[audit]"
    _planned: dict[str, int] = field(default_factory=dict)  # label → expected items, for the overall ETA
    _seen: dict[str, int] = field(default_factory=dict)  # label → actual items of the stages started so far
    _done_before: int = 0  # items of finished stages
    _gen_items: int = 0  # items generated (not cached) in finished stages
    _gen_time: float = 0.0  # seconds spent in finished stages that generated something
    _stage: _Stage | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event | None = None

    # -- the factory protocol ----------------------------------------------------------------------------------

    def plan(self, stages: list[tuple[str, int]]) -> None:
        """The stages the run expects, in order, with their expected item counts (for the overall ETA)."""
        self._planned = dict(stages)
        total = sum(n for _, n in stages)
        self.write(
            f"{self.prefix} live run: {total} generation(s) planned in {len(stages)} stage(s) "
            f"(progress every {self.every_s:g} s or {self.every_frac:.0%} of a stage)"
        )

    def __call__(self, label: str, total: int) -> Callable[[int, int], None]:
        with self._lock:
            self._finish_stage()
            self._seen[label] = total
            self._stage = _Stage(label, total, self.clock())
        if self.heartbeat:
            self._start_heartbeat()

        def update(done: int, total_: int) -> None:
            with self._lock:
                st = self._stage
                if st is None or st.label != label or st.finished:
                    return
                st.total = total_
                if st.first_done is None:
                    st.first_done = done
                    st.done = done
                    cached = f", {done} from the cache" if done else ""
                    self.write(f"{self.prefix} {label}: start, {total_} item(s){cached}{self._overall()}")
                    st.last_line, st.last_line_done = self.clock(), done
                    if done >= total_:
                        self._finish_stage()
                    return
                st.done = done
                if done >= total_:
                    self._finish_stage()
                    return
                now = self.clock()
                step = max(1, math.ceil(self.every_frac * total_))
                if now - st.last_line >= self.every_s or done - st.last_line_done >= step:
                    self._line(st, now)

        return update

    def close(self) -> None:
        """End the current stage's heartbeat (the run ended or failed)."""
        with self._lock:
            if self._stage is not None and not self._stage.finished:
                self._stage.finished = True
        self._stop_heartbeat()

    # -- lines -----------------------------------------------------------------------------------------------------

    def _rate(self, st: _Stage, now: float) -> float:
        elapsed = now - st.started
        return st.generated() / elapsed if elapsed > 0 and st.generated() > 0 else math.nan

    def _line(self, st: _Stage, now: float, idle: bool = False) -> None:
        rate = self._rate(st, now)
        eta = (st.total - st.done) / rate if rate > 0 else math.nan
        pct = st.done / st.total if st.total else 1.0
        speed = f"{rate:.2f} items/s" if math.isfinite(rate) else "no item generated yet"
        quiet = f" (no item finished in the last {duration(now - st.last_line)})" if idle else ""
        self.write(
            f"{self.prefix} {st.label}: {st.done}/{st.total} ({pct:.0%}), {speed}, ETA {duration(eta)}{quiet}"
            f"{self._overall(now)}"
        )
        st.last_line, st.last_line_done = now, st.done

    def _overall(self, now: float | None = None) -> str:
        """``; overall D/P (x%), ETA …`` once a plan is known."""
        if not self._planned:
            return ""
        now = self.clock() if now is None else now
        planned = {**self._planned, **self._seen}  # the actual size of every stage started so far
        total = sum(planned.values())
        st = self._stage
        done = self._done_before + (st.done if st is not None and not st.finished else 0)
        gen_items = self._gen_items + (st.generated() if st is not None and not st.finished else 0)
        gen_time = self._gen_time + (now - st.started if st is not None and not st.finished and st.generated() else 0.0)
        rate = gen_items / gen_time if gen_time > 0 and gen_items > 0 else math.nan
        eta = (total - done) / rate if rate > 0 else math.nan
        return f"; overall {done}/{total} ({done / total if total else 1.0:.0%}), ETA {duration(eta)}"

    def _finish_stage(self) -> None:
        """Close the current stage with its last line (called with the lock held)."""
        st = self._stage
        if st is None or st.finished:
            return
        st.finished = True
        now = self.clock()
        elapsed = now - st.started
        if st.first_done is not None:
            rate = self._rate(st, now)
            speed = f", {rate:.2f} items/s" if math.isfinite(rate) else ""
            self._done_before += st.done
            if st.generated():
                self._gen_items += st.generated()
                self._gen_time += elapsed
            self.write(
                f"{self.prefix} {st.label}: {st.done}/{st.total} done in {duration(elapsed)}{speed}{self._overall(now)}"
            )

    # -- heartbeat -------------------------------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        if self._stop is not None:
            return
        stop = threading.Event()
        self._stop = stop

        def beat() -> None:
            while not stop.wait(self.every_s):
                with self._lock:
                    st = self._stage
                    if st is None or st.finished or st.first_done is None:
                        continue
                    now = self.clock()
                    if now - st.last_line >= self.every_s:
                        self._line(st, now, idle=st.done == st.last_line_done)

        threading.Thread(target=beat, name="audit-progress", daemon=True).start()

    def _stop_heartbeat(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None


__all__ = ["LineProgress", "duration"]
