"""Robustness of the sample-log readers: generic JSONL and lm-eval ``--log_samples`` output.

Every wrong field type, encoding, structure and path is exit 2 with the file, the line, the field and a fix; no
value is converted into a stand-in (``"output": null`` is not the text "None"). Bounds and helpers: see
``test_robustness.py``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import write_jsonl, write_lmeval_run
from test_robustness import bounded, check, cli, located  # noqa: F401 - bounded is an autouse fixture

CLAIM = """\
claim:
  title: logs
  settings: {max_tokens: 16}
samples:
  format: jsonl
  baseline: {16: logs/base_16.jsonl}
  treatment: {16: logs/treat_16.jsonl}
perturbations: {scorings: [exact]}
options: {resamples: 1000}
"""


def good(i: int, **kw) -> dict:
    return {"id": f"q{i:04d}", "output": "1", "target": "1"} | kw


def line(d: dict | str | bytes) -> bytes:
    if isinstance(d, bytes):
        return d
    return (d if isinstance(d, str) else json.dumps(d)).encode() + b"\n"


def setup(tmp_path: Path, bad: list, claim: str = CLAIM, treat: list | None = None) -> Path:
    """The baseline log holds ``bad`` (dicts, JSON text or raw bytes), the treatment log q0000..q0003 (valid)."""
    (tmp_path / "logs").mkdir(exist_ok=True)
    (tmp_path / "logs/base_16.jsonl").write_bytes(b"".join(line(x) for x in bad))
    write_jsonl(tmp_path / "logs/treat_16.jsonl", treat if treat is not None else [good(i) for i in range(4)])
    p = tmp_path / "claim.yaml"
    p.write_text(claim, encoding="utf-8")
    return p


def rest(first_bad) -> list:
    """A bad first line followed by three good ones (items q0001..q0003)."""
    return [first_bad] + [good(i) for i in range(1, 4)]


# (id, baseline lines, needles, line of the problem, field)
JSONL_CASES = [
    ("output-missing", rest({"id": "q0000", "target": "1"}), ["required key 'output' is missing"], 1, "output"),
    ("output-number", rest(good(0, output=12)), ["must be a string, not a JSON number"], 1, "output"),
    ("output-object", rest(good(0, output={"text": "1"})), ["must be a string, not a JSON object"], 1, "output"),
    ("output-list", rest(good(0, output=["1"])), ["must be a string, not a JSON array"], 1, "output"),
    ("output-bool", rest(good(0, output=True)), ["must be a string, not a JSON boolean"], 1, "output"),
    ("id-null", rest(good(0, id=None)), ["not a JSON null"], 1, "id"),
    ("id-bool", rest(good(0, id=True)), ["not a JSON boolean"], 1, "id"),
    ("id-float", rest(good(0, id=1.5)), ["not a JSON number"], 1, "id"),
    ("id-list", rest(good(0, id=["q0000"])), ["not a JSON array"], 1, "id"),
    ("id-empty", rest(good(0, id="")), ["not an empty string"], 1, "id"),
    ("id-missing", rest({"output": "1", "target": "1"}), ["required key 'id' is missing"], 1, "id"),
    ("target-list", rest(good(0, target=["1", "one"])), ["must be a string (the reference answer), not a JSON array"],
     1, "target"),
    ("target-bool", rest(good(0, target=False)), ["not a JSON boolean"], 1, "target"),
    ("target-missing", rest({"id": "q0000", "output": "1"}), ["compares the output with a target", "1 line(s)"], 1,
     "target"),
    ("target-null", rest(good(0, target=None)), ["compares the output with a target"], 1, "target"),
    ("target-object", rest(good(0, target={"test": "assert True"})), ["the target on this line is a JSON object"], 1,
     "target"),
    ("tokens-text", rest(good(0, completion_tokens="many")), ["must be a whole number, not a string"], 1,
     "completion_tokens"),
    ("tokens-negative", rest(good(0, completion_tokens=-3)), ["must not be negative"], 1, "completion_tokens"),
    ("tokens-fraction", rest(good(0, completion_tokens=1.5)), ["not a fraction"], 1, "completion_tokens"),
    ("tokens-bool", rest(good(0, completion_tokens=True)), ["not a JSON boolean"], 1, "completion_tokens"),
    ("tokens-huge-float", rest(b'{"id": "q0000", "output": "1", "target": "1", "completion_tokens": 1e400}\n'),
     ["not valid JSON"], 1, None),
    ("finish-number", rest(good(0, finish_reason=42)), ["must be a string, not a JSON number"], 1, "finish_reason"),
    ("finish-unknown", rest(good(0, finish_reason="exploded")), ["unknown value", "use one of stop, length"], 1,
     "finish_reason"),
    ("scores-list", rest(good(0, scores=[1])), ["must be an object, not a JSON array"], 1, "scores"),
    ("score-text", rest(good(0, scores={"exact": "1"})), ["must be a number, not a string", "without quotes"], 1,
     "scores.exact"),
    ("score-list", rest(good(0, scores={"exact": [1]})), ["must be a number, not a JSON array"], 1, "scores.exact"),
    ("score-nan", rest(b'{"id": "q0000", "output": "1", "target": "1", "scores": {"exact": NaN}}\n'),
     ["NaN is not valid JSON", "write null"], 1, None),
    ("score-infinity", rest(b'{"id": "q0000", "output": "1", "target": "1", "scores": {"exact": -Infinity}}\n'),
     ["-Infinity is not valid JSON"], 1, None),
    ("prompt-number", rest(good(0, prompt=7)), ["must be a string, not a JSON number"], 1, "prompt"),
    ("line-array", rest('["q0000", "1"]'), ["line is a JSON array, not an object"], 1, None),
    ("line-number", rest("42"), ["line is a JSON number, not an object"], 1, None),
    ("line-string", rest('"text"'), ["line is a JSON string, not an object"], 1, None),
    ("bad-json", [good(0), "{not json}", good(2), good(3)], ["not valid JSON"], 2, None),
    ("interrupted-write", [good(i) for i in range(3)] + [b'{"id": "q0003", "out'],
     ["ends mid-line", "interrupted"], 4, None),
    ("latin1-line", rest(b'{"id": "q0000", "output": "caf\xe9", "target": "1"}\n'),
     ["not valid UTF-8: byte 0xe9 at column 31"], 1, None),
    ("nul-bytes", rest(b'{"id": "q0000",\x00 "output": "1"}\n'), ["NUL bytes"], 1, None),
    ("utf16-log", [("\n".join(json.dumps(good(i)) for i in range(4)) + "\n").encode("utf-16")],
     ["UTF-16-encoded, not UTF-8"], 1, None),
    ("many-bad-lines", ["{bad"] * 30 + [good(i) for i in range(4)], ["stopping after 20 bad lines"], None, None),
    ("duplicate-id", [good(0), good(0), good(1), good(2), good(3)], ["appears more than once"], None, None),
    ("big-int-id", rest(b'{"id": 123456789012345678901234567890, "output": "1", "target": "1"}\n'),
     ["not a JSON number"], 1, "id"),
    ("deeply-nested-line", rest(b'{"id": "q0000", "output": "1", "target": "1", "x": ' + b"[" * 2000 + b"]" * 2000
                                + b"}\n"), ["not valid JSON"], 1, None),
]


@pytest.mark.parametrize("case", JSONL_CASES, ids=[c[0] for c in JSONL_CASES])
def test_bad_jsonl_log(tmp_path, case):
    name, bad, needles, line_no, field = case
    p = setup(tmp_path, bad)
    log = tmp_path / "logs/base_16.jsonl"
    out = check(cli("validate", p), 2, *needles)
    located(out, log, line_no, field)


def test_bom_log_is_read_like_a_bom_claim(tmp_path):
    p = setup(tmp_path, [b"\xef\xbb\xbf" + line(good(0))] + [good(i) for i in range(1, 4)])
    check(cli("validate", p), 0, "valid, 8 record rows")


def test_output_null_never_becomes_a_gain(tmp_path):
    """The issue's fabricated +0.67: nulls read as the text "None" matched a target "None". Now a null output is no
    output: it scores 0 (never the text "None"), and is counted as no answer with its cause."""
    base = [good(i, output=None, target="None") for i in range(3)] + [good(3)]
    treat = [good(i, output="x", target="None") for i in range(3)] + [good(3)]
    p = setup(tmp_path, base, treat=treat)
    cli("verify", p, "--out", tmp_path / "out")
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    (cell,) = [c for c in rep["cells"] if c["claimed"]]
    assert cell["baseline"] == 0.25 and cell["delta"] == 0.0
    (f,) = [f for f in rep["findings"] if f["code"] == "no_output"]
    assert f["statistic"]["no_output_baseline"] == 3 and "probable budget exhaustion" in f["title"]
    rows = {(r["arm"], r["scoring"]): r for r in rep["rate_tables"]["no_answer"]}
    assert rows[("baseline", "exact")]["count"] == 3 and "3 null output, no finish reason" in \
        rows[("baseline", "exact")]["reason"]


@pytest.mark.parametrize("which", ["empty", "blank", "both-empty"])
def test_empty_logs(tmp_path, which):
    content = b"" if which != "blank" else b"\n\n  \n"
    p = setup(tmp_path, [content], treat=[] if which == "both-empty" else None)
    out = check(cli("validate", p), 2, "the log has no sample lines (the file is empty or blank)")
    located(out, tmp_path / "logs/base_16.jsonl", None, None)
    if which == "both-empty":
        assert str(tmp_path / "logs/treat_16.jsonl") in out and "2 problem(s)" in out


@pytest.mark.parametrize("kind", ["folder", "link-loop", "broken-link", "nothing", "glob-only-folders"])
def test_log_path_that_is_not_a_file(tmp_path, kind):
    p = setup(tmp_path, [good(i) for i in range(4)])
    log = tmp_path / "logs/base_16.jsonl"
    log.unlink()
    claim = CLAIM
    if kind == "folder":
        log.mkdir()
        want = f"{log} is a folder, not a file"
    elif kind == "link-loop":
        log.symlink_to(log)
        want = f"{log} is a symbolic link loop"
    elif kind == "broken-link":
        log.symlink_to(tmp_path / "gone.jsonl")
        want = f"{log} is a symbolic link to a missing file"
    elif kind == "glob-only-folders":
        (tmp_path / "logs/run_a.jsonl").mkdir()
        claim = CLAIM.replace("logs/base_16.jsonl", "logs/run_*.jsonl")
        want = "is a folder, not a file"
    else:
        want = "no file matches 'logs/base_16.jsonl'"
    p.write_text(claim)
    out = check(cli("validate", p), 2, want)
    located(out, p, 6, "samples.baseline.16")


def test_recursive_glob_over_link_loops_ends(tmp_path):
    """Two link loops under a ** pattern: Python's glob would walk 2**40 paths; audit does not follow them."""
    p = setup(tmp_path, [good(i) for i in range(4)])
    runs = tmp_path / "logs/runs"
    runs.mkdir()
    (runs / "loop1").symlink_to(runs)
    (runs / "loop2").symlink_to(runs)
    write_jsonl(runs / "deep/base.jsonl", [good(i) for i in range(4)])
    p.write_text(CLAIM.replace("logs/base_16.jsonl", "logs/runs/**/base.jsonl"))
    check(cli("validate", p), 0, "valid, 8 record rows")


def test_glob_matching_two_runs(tmp_path):
    p = setup(tmp_path, [good(i) for i in range(4)])
    write_jsonl(tmp_path / "logs/base_64.jsonl", [good(i, output="0") for i in range(4)])
    p.write_text(CLAIM.replace("logs/base_16.jsonl", "logs/base_*.jsonl"))
    out = check(cli("validate", p), 2, "'logs/base_*.jsonl' matches 2 files that hold the same items",
                "probably matches more than one run", "narrow the glob")
    located(out, p, None, "samples.baseline.16")


def test_cluster_field_of_the_wrong_type(tmp_path):
    rows = [good(i, passage=f"p{i % 2}") for i in range(4)]
    rows[2]["passage"] = {"nested": 1}
    p = setup(tmp_path, rows, claim=CLAIM.replace("options: {resamples: 1000}",
                                                  "options: {resamples: 1000, cluster_field: passage}"),
              treat=[good(i, passage=f"p{i % 2}") for i in range(4)])
    out = check(cli("validate", p), 2, "must be a string or a number, not a JSON object")
    located(out, tmp_path / "logs/base_16.jsonl", 3, "passage")


# ---------------------------------------------------------------------------------------------------------------
# lm-eval logs

LMEVAL = """\
claim:
  title: lm-eval
  metric: exact_match
  settings: {max_tokens: 16, scoring: strict-match}
samples:
  format: lm-eval
  baseline: {16: base/samples_*.jsonl}
  treatment: {16: treat/samples_*.jsonl}
options: {resamples: 1000}
"""


def lmeval_setup(tmp_path: Path, mutate=None, claim: str = LMEVAL, results=None) -> tuple[Path, Path]:
    """Two lm-eval runs of 4 documents; ``mutate(lines)`` edits the baseline samples' parsed lines in place."""
    for arm in ("base", "treat"):
        write_lmeval_run(tmp_path / arm, "t", 16, ["1", "2", "3", "4"], {"strict-match": [1, 0, 1, 1]})
    (samples,) = (tmp_path / "base").glob("samples_*.jsonl")
    if mutate is not None:
        lines = [json.loads(x) for x in samples.read_text().splitlines()]
        raw = mutate(lines)
        samples.write_bytes(raw if isinstance(raw, bytes) else
                            "".join(json.dumps(x) + "\n" for x in lines).encode())
    if results is not None:
        (res,) = (tmp_path / "base").glob("results_*.json")
        res.write_bytes(results)
    p = tmp_path / "claim.yaml"
    p.write_text(claim)
    return p, samples


def _set(key, value, i=0):
    def m(lines):
        lines[i][key] = value
    return m


def _drop(key, i=0):
    def m(lines):
        del lines[i][key]
    return m


# (id, mutate, claim, results bytes, needles, line, field)
LMEVAL_CASES = [
    ("metric-text", _set("exact_match", "1.0"), LMEVAL, None, ["must be a number, not a string"], 1, "exact_match"),
    ("metric-null", _set("exact_match", None), LMEVAL, None, ["'exact_match' is null, not a number"], 1,
     "exact_match"),
    ("metric-list", _set("exact_match", [1]), LMEVAL, None, ["must be a number, not a JSON array"], 1, "exact_match"),
    ("metric-missing", None, LMEVAL.replace("metric: exact_match", "metric: acc"), None,
     ["the claimed metric 'acc' is not on this line", "set claim.metric to one of ['exact_match']"], 1,
     "claim.metric"),
    ("doc-id-list", _set("doc_id", [0]), LMEVAL, None, ["not a JSON array"], 1, "doc_id"),
    ("doc-id-null", _set("doc_id", None), LMEVAL, None, ["not a JSON null"], 1, "doc_id"),
    ("no-doc-id", _drop("doc_id"), LMEVAL, None, ["not an lm-eval sample (no 'doc_id')", "format: jsonl"], 1, None),
    ("filter-number", _set("filter", 3), LMEVAL, None, ["must be a string, not a JSON number"], 1, "filter"),
    ("doc-not-object", _set("doc", "text"), LMEVAL, None, ["must be an object, not a JSON string"], 1, "doc"),
    ("metric-nan", lambda lines: "".join(json.dumps(x) + "\n" for x in lines).replace('"exact_match": 1',
                                                                                       '"exact_match": NaN', 1).encode(),
     LMEVAL, None, ["NaN is not valid JSON"], 1, None),
    ("results-list", None, LMEVAL, b"[1, 2, 3]", ["holds a JSON object, not a JSON array"], 1, None),
    ("results-string", None, LMEVAL, b'"results"', ["not a JSON string"], 1, None),
    ("results-broken", None, LMEVAL, b'{"configs": ', ["cannot read lm-eval results file"], 1, None),
    ("results-latin1", None, LMEVAL, b'{"model": "caf\xe9"}', ["not valid UTF-8: byte 0xe9"], 1, None),
    ("rescore-list-target", _set("target", ["1", "one"]),
     LMEVAL.replace("scoring: strict-match}", "scoring: strict-match}\nperturbations: {scorings: [exact]}"), None,
     ["lack a text target"], 1, "target"),
    ("rescore-no-text", _set("resps", [[{"not": "text"}]]),
     LMEVAL.replace("scoring: strict-match}", "scoring: strict-match}\nperturbations: {scorings: [exact]}"), None,
     ["lack a text response"], 1, "resps"),
]


@pytest.mark.parametrize("case", LMEVAL_CASES, ids=[c[0] for c in LMEVAL_CASES])
def test_bad_lmeval_log(tmp_path, case):
    name, mutate, claim, results, needles, line_no, field = case
    p, samples = lmeval_setup(tmp_path, mutate, claim, results)
    out = check(cli("validate", p), 2, *needles)
    target = next((tmp_path / "base").glob("results_*.json")) if name.startswith("results") else samples
    located(out, target, line_no, field)


def test_lmeval_pattern_without_jsonl(tmp_path):
    p, _ = lmeval_setup(tmp_path, claim=LMEVAL.replace("base/samples_*.jsonl", "base/results_*.json"))
    out = check(cli("validate", p), 2, "matches no .jsonl file")
    located(out, p, None, "samples.baseline.16")


def test_lmeval_glob_matching_two_runs(tmp_path):
    p, _ = lmeval_setup(tmp_path)
    write_lmeval_run(tmp_path / "base" / "again", "t", 16, ["1", "2", "3", "4"], {"strict-match": [0, 0, 1, 1]})
    p.write_text(LMEVAL.replace("base/samples_*.jsonl", "base/**/samples_*.jsonl"))
    check(cli("validate", p), 2, "matches 2 files that hold the same items", "more than one run")
