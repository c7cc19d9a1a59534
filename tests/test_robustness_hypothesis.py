"""Generated bad inputs (hypothesis): claim files as arbitrary text and bytes, claims as random nestings of real
keys and hostile values, and log lines with random field types. Whatever is generated, ``audit validate`` exits
0 or 2 (never a traceback, never 1, 3 or 4), and a line that breaks the format is named with its line number.
"""
from __future__ import annotations

import json
import math

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import write_jsonl
from test_robustness import BASE, bounded, check, cli  # noqa: F401 - bounded is an autouse fixture

SETTINGS = settings(max_examples=100, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

KEYS = ["claim", "title", "metric", "reported", "baseline", "treatment", "delta", "n", "p_value", "ci", "settings",
        "max_tokens", "samples", "format", "options", "seed", "resamples", "level", "alpha", "margin", "checks",
        "truncation", "high_rate", "perturbations", "scorings", "scorers", "regex", "group", "kind", "arms",
        "endpoint", "timeout_s", "task", "dataset", "prompt", "16", "-1", "0"]

hostile_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["exact", "jsonl", "lm-eval", "http://127.0.0.1:99999/v1", "{{ range(10**9) }}", "a(b",
                     "logs/*.jsonl", "\x1b]0;x\x07", "\u202e", ".nan", "1e12"]),
)
trees = st.recursive(hostile_scalars,
                     lambda kids: st.one_of(st.lists(kids, max_size=4),
                                            st.dictionaries(st.sampled_from(KEYS), kids, max_size=5)),
                     max_leaves=25)


def _validate(tmp_path, content: bytes | str):
    p = tmp_path / "claim.yaml"
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8", errors="surrogatepass")
    return p, cli("validate", p)


@SETTINGS
@given(text=st.text(max_size=400))
def test_any_text_as_a_claim(tmp_path_factory, text):
    tmp = tmp_path_factory.mktemp("text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates cannot be written as UTF-8: bytes below cover invalid UTF-8
        return
    p, res = _validate(tmp, text)
    out = check(res, res.exit_code)
    assert res.exit_code == 2 and str(p) in out and "error:" in out, out


@SETTINGS
@given(data=st.binary(max_size=400))
def test_any_bytes_as_a_claim(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("bytes")
    p, res = _validate(tmp, data)
    out = check(res, res.exit_code)
    assert res.exit_code == 2 and str(p) in out, out


@SETTINGS
@given(tree=st.dictionaries(st.sampled_from(KEYS), trees, min_size=1, max_size=6))
def test_random_claim_structures(tmp_path_factory, tree):
    tmp = tmp_path_factory.mktemp("tree")
    p, res = _validate(tmp, yaml.safe_dump(tree, allow_unicode=True))
    out = check(res, res.exit_code)
    assert res.exit_code == 2, out
    assert str(p) in out and ("fix:" in out), out


@SETTINGS
@given(section=st.sampled_from(["claim", "options", "samples", "perturbations", "checks", "scorers"]),
       key=st.sampled_from(KEYS), value=trees)
def test_one_hostile_value_in_a_valid_claim(tmp_path_factory, section, key, value):
    """A valid claim with one key replaced or added: valid (0) or refused with a located message (2)."""
    tmp = tmp_path_factory.mktemp("one")
    write_jsonl(tmp / "logs/base_16.jsonl", [{"id": f"q{i}", "output": "1", "target": "1"} for i in range(4)])
    write_jsonl(tmp / "logs/treat_16.jsonl", [{"id": f"q{i}", "output": "1", "target": "1"} for i in range(4)])
    claim = yaml.safe_load(BASE)
    target = claim.setdefault(section, {})
    if section == "claim":
        target = target["reported"]
    target[key] = value
    p, res = _validate(tmp, yaml.safe_dump(claim, allow_unicode=True))
    out = check(res, res.exit_code)
    assert res.exit_code in (0, 2), out
    if res.exit_code == 2:
        assert f"{p}:" in out and "fix:" in out, out


# ---------------------------------------------------------------------------------------------------------------
# log lines

values = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**40), max_value=2**40),
                   st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
                   st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def _field_ok(key: str, v) -> bool:
    """The oracle: which values the generic JSONL format accepts for each field."""
    if key == "output":
        return v is None or isinstance(v, str)  # null: no output, recorded with its cause
    if key == "completion_tokens":
        return v is None or (not isinstance(v, bool) and isinstance(v, (int, float)) and float(v).is_integer()
                             and v >= 0)
    if key == "finish_reason":
        return v is None or v in ("stop", "length", "eos", "max_tokens")
    if key == "prompt":
        return v is None or isinstance(v, str)
    if key == "scores":
        return v is None or (isinstance(v, dict) and all(
            x is None or isinstance(x, bool) or (isinstance(x, (int, float)) and math.isfinite(x))
            for x in v.values()))
    raise AssertionError(key)


line_fields = st.fixed_dictionaries({}, optional={"output": values, "completion_tokens": values,
                                                  "finish_reason": st.one_of(values, st.sampled_from(["stop", "length"])),
                                                  "prompt": values,
                                                  "scores": st.one_of(values, st.dictionaries(
                                                      st.sampled_from(["other", "x"]), values, max_size=2))})


@SETTINGS
@given(lines=st.lists(line_fields, min_size=3, max_size=3))
def test_random_log_lines(tmp_path_factory, lines):
    tmp = tmp_path_factory.mktemp("log")
    rows = []
    bad = []
    for i, fields in enumerate(lines):
        row = {"id": f"q{i}", "output": "1", "target": "1"} | fields
        rows.append(row)
        if not all(_field_ok(k, v) for k, v in row.items() if k in fields):
            bad.append(i + 1)
    (tmp / "logs").mkdir()
    (tmp / "logs/base_16.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_jsonl(tmp / "logs/treat_16.jsonl", [{"id": f"q{i}", "output": "1", "target": "1"} for i in range(3)])
    claim = yaml.safe_load(BASE)
    claim["claim"]["reported"] = {"n": 3}
    p, res = _validate(tmp, yaml.safe_dump(claim))
    out = check(res, res.exit_code)
    log = tmp / "logs/base_16.jsonl"
    if bad:
        assert res.exit_code == 2, (rows, out)
        for line in bad:
            assert f"{log}:{line}:" in out, (rows, out)
        assert "fix:" in out
    else:
        assert res.exit_code == 0, (rows, out)


@SETTINGS
@given(raw=st.binary(min_size=1, max_size=200))
def test_random_bytes_as_a_log_line(tmp_path_factory, raw):
    tmp = tmp_path_factory.mktemp("raw")
    write_jsonl(tmp / "logs/treat_16.jsonl", [{"id": "q0", "output": "1", "target": "1"}])
    (tmp / "logs/base_16.jsonl").write_bytes(raw.replace(b"\n", b" ") + b"\n")
    claim = yaml.safe_load(BASE)
    claim["claim"]["reported"] = {"n": 1}
    p, res = _validate(tmp, yaml.safe_dump(claim))
    out = check(res, res.exit_code)
    assert res.exit_code in (0, 2), out
    if res.exit_code == 2:
        assert str(tmp / "logs/base_16.jsonl") in out and "fix:" in out, out
