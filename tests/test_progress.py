"""Progress for a CI log (stderr not a terminal): lines with done/total, items per second and ETA at a steady cadence
(every 10 s or 10% of a stage, whichever comes first), the whole run's ETA, and the same through the CLI on a live
run against a fake OpenAI-compatible server (CliRunner's stderr is not a terminal)."""
from __future__ import annotations

import re
import time

import yaml
from click.testing import CliRunner

from audit.cli import main
from audit.progress import LineProgress, duration
from servers import FakeServer


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make(**kw) -> tuple[LineProgress, list[str], Clock]:
    lines: list[str] = []
    clock = Clock()
    return LineProgress(write=lines.append, clock=clock, heartbeat=False, **kw), lines, clock


def test_duration():
    assert duration(0.4) == "0 s" and duration(42) == "42 s" and duration(185) == "3 min 05 s"
    assert duration(3720) == "1 h 02 min" and duration(float("nan")) == "unknown"


def test_fast_stage_reports_every_tenth_with_rate_eta_and_overall():
    p, lines, clock = make()
    p.plan([("baseline/default/64", 100), ("treatment/default/64", 50)])
    assert lines == ["[audit] live run: 150 generation(s) planned in 2 stage(s) (progress every 10 s or 10% of a "
                     "stage)"]
    update = p("baseline/default/64", 100)
    update(0, 100)
    assert lines[-1] == "[audit] baseline/default/64: start, 100 item(s); overall 0/150 (0%), ETA unknown"
    for done in range(1, 100):  # 2 items a second: 10% (10 items) comes before 10 s
        clock.t += 0.5
        update(done, 100)
    progress = [ln for ln in lines if re.search(r": \d+/100 \(", ln)]
    assert [ln.split(": ")[1].split(" ")[0] for ln in progress] == [f"{k}/100" for k in range(10, 100, 10)]
    assert progress[0] == ("[audit] baseline/default/64: 10/100 (10%), 2.00 items/s, ETA 45 s; overall 10/150 "
                           "(7%), ETA 1 min 10 s")
    clock.t += 0.5
    update(100, 100)
    assert lines[-1] == "[audit] baseline/default/64: 100/100 done in 50 s, 2.00 items/s; overall 100/150 (67%), " \
                        "ETA 25 s"


def test_slow_stage_reports_every_ten_seconds():
    p, lines, clock = make()
    update = p("treatment/default/64", 100)
    update(0, 100)
    for done in range(1, 21):  # one item every 3 s: 10 s comes before 10% (30 s)
        clock.t += 3
        update(done, 100)
    shown = [int(m.group(1)) for m in (re.search(r": (\d+)/100 \(", ln) for ln in lines) if m]
    assert shown == [4, 8, 12, 16, 20]  # 12 s apart: the first update at least 10 s after the last line
    assert "0.33 items/s, ETA 4 min 00 s" in lines[-1]
    assert "overall" not in lines[-1]  # no plan announced: no overall ETA


def test_cached_items_do_not_count_as_speed():
    p, lines, clock = make()
    p.plan([("a/default/8", 10)])
    update = p("a/default/8", 10)
    update(6, 10)  # 6 served from the cache at once
    assert lines[-1] == "[audit] a/default/8: start, 10 item(s), 6 from the cache; overall 6/10 (60%), ETA unknown"
    clock.t += 4
    update(7, 10)
    assert lines[-1] == "[audit] a/default/8: 7/10 (70%), 0.25 items/s, ETA 12 s; overall 7/10 (70%), ETA 12 s"


def test_a_stage_fully_cached_ends_at_once_and_unplanned_stages_join_the_total():
    p, lines, clock = make()
    p.plan([("a/default/8", 4)])
    p("a/default/8", 4)(4, 4)
    assert lines[-2:] == ["[audit] a/default/8: start, 4 item(s), 4 from the cache; overall 4/4 (100%), ETA unknown",
                          "[audit] a/default/8: 4/4 done in 0 s; overall 4/4 (100%), ETA unknown"]
    update = p("a/default/4 (cuts + check)", 2)  # not in the plan: the total grows
    update(0, 2)
    assert lines[-1].endswith("overall 4/6 (67%), ETA unknown")


def test_heartbeat_keeps_the_cadence_when_nothing_finishes():
    lines: list[str] = []
    p = LineProgress(write=lines.append, every_s=0.05)
    update = p("baseline/default/64", 10)
    update(0, 10)
    time.sleep(0.4)
    p.close()
    beats = [ln for ln in lines if "no item finished in the last" in ln]
    assert beats and beats[0].startswith("[audit] baseline/default/64: 0/10 (0%), no item generated yet, ETA unknown")
    n = len(lines)
    time.sleep(0.15)
    assert len(lines) == n  # closed: the heartbeat stopped


def test_cli_live_run_without_a_terminal_prints_progress_lines(tmp_path):
    """A live audit through the CLI (CliRunner: stderr is not a terminal) against a fake server: the stage lines
    with counts, rate and ETA, the plan and the overall ETA — not the bare stage labels of a bar."""
    data = tmp_path / "items.jsonl"
    data.write_text("".join(f'{{"id": "q{i}", "question": "{i} + 1", "answer": "{i + 1}"}}\n' for i in range(20)))
    with FakeServer(tokenizer=True, delay=0.01, max_requests=1000) as server:
        arm = {"endpoint": server.url, "model": "fake", "max_concurrency": 1}
        claim = {"claim": {"title": "progress", "settings": {"max_tokens": 8, "scoring": "exact"}},
                 "arms": {"baseline": arm, "treatment": arm | {"prompt": "Question: {{ question }}\nA:"}},
                 "task": {"dataset": str(data), "prompt": "Q: {{ question }}\nA:", "target": "{{ answer }}",
                          "sweep_check": 2},
                 "perturbations": {"max_tokens": [8, 16], "scorings": ["exact"]},
                 "options": {"resamples": 1000}}
        path = tmp_path / "claim.yaml"
        path.write_text(yaml.safe_dump(claim))
        res = CliRunner().invoke(main, ["verify", str(path), "--no-cache", "--fail-on", "none"])
    assert res.exit_code == 0, res.output
    err = res.stderr.splitlines()
    assert err[0] == ("[audit] live run: 44 generation(s) planned in 4 stage(s) (progress every 10 s or 10% of a "
                      "stage)")
    assert "[audit] baseline/default/16: start, 20 item(s); overall 0/44 (0%), ETA unknown" in err
    ticks = [ln for ln in err if ln.startswith("[audit] baseline/default/16: ") and "items/s, ETA" in ln
             and "done in" not in ln]
    assert [t.split(": ")[1].split(" ")[0] for t in ticks] == [f"{k}/20" for k in range(2, 20, 2)]  # every 10%
    assert all(re.search(r"\d+\.\d\d items/s, ETA (\d+ s|\d+ min \d\d s); overall \d+/44 \(\d+%\), ETA ", t)
               for t in ticks)
    assert any(ln.startswith("[audit] treatment/default/8 (cuts + check): 2/2 done in ") for ln in err)
    assert err[-1].startswith("[audit] treatment/default/8 (cuts + check): 2/2 done in ")
    assert err[-1].endswith("overall 44/44 (100%), ETA 0 s")
    assert "\x1b" not in res.stderr  # no bar drawing in a log
