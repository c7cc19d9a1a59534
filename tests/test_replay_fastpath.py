"""The fast path of lm-eval replay (column-wise reading, one take per scoring, vectorised pairing checks) against the
careful line-by-line path it replaces: the same table for every valid log, odd-but-valid ones included, and the
careful path (with its messages) for every log that has anything to report."""
from __future__ import annotations

import gc
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from audit.claim import load_claim
from audit.importers import apply_scorings, load_records
from audit.importers import lmeval
from audit.importers.lmeval import read_samples, read_samples_careful, read_samples_fast
from conftest import FIXTURES, REPO

FILTERS = ["strict-match", "flexible-extract"]
DROP = object()


@pytest.fixture(scope="module")
def bench():
    """benchmarks/replay_100k.py, whose generator writes the logs `make bench` replays."""
    spec = importlib.util.spec_from_file_location("replay_100k", REPO / "benchmarks" / "replay_100k.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["replay_100k"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("replay_100k", None)


def bench_claim(bench, root: Path, docs: int = 75) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    for b in (512, 1024):
        bench.write_run(root / f"base_{b}", "base", b, docs, 0.55, 0.3 if b == 512 else 0.02, rng, "B")
        bench.write_run(root / f"treat_{b}", "treat", b, docs, 0.5, 0.05 if b == 512 else 0.01, rng, "T")
    claim = root / "claim.yaml"
    claim.write_text(
        "claim:\n  title: small replay\n  settings: {max_tokens: 512}\n"
        "samples:\n  format: lm-eval\n"
        "  baseline: {512: base_512/samples_*.jsonl, 1024: base_1024/samples_*.jsonl}\n"
        "  treatment: {512: treat_512/samples_*.jsonl, 1024: treat_1024/samples_*.jsonl}\n"
        "perturbations:\n  scorings: [strict-match, flexible-extract]\n")
    return claim


def line(i: int, filt: str | None, budget: int = 512, prompt: str = "B", **over) -> dict:
    d = {"doc_id": i, "doc": {"q": i, "grp": f"g{i % 3}"}, "target": str(i + 1),
         "arguments": {"gen_args_0": {"arg_0": f"{prompt}{i}", "arg_1": {"until": ["\n"], "max_gen_toks": budget}}},
         "resps": [[f"{i + 1}"]], "filtered_resps": [f"{i + 1}"], "filter": filt, "metrics": ["exact_match"],
         "doc_hash": hashlib.md5(str(i).encode()).hexdigest(), "prompt_hash": f"{prompt}{i}", "target_hash": "",
         "exact_match": float(i % 3 == 0)}
    for k, v in over.items():
        if v is DROP:
            d.pop(k)
        else:
            d[k] = v
    return d


def lines(docs: int = 40, change=None) -> list[dict]:
    out = [line(i, f) for f in FILTERS for i in range(docs)]
    return [change(k, d) for k, d in enumerate(out)] if change else out


def write(path: Path, rows: list[dict] | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = rows if isinstance(rows, bytes) else "".join(
        json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    path.write_bytes(data)
    return path


def both(path: Path, filter_order=FILTERS, cluster_field=None, metric="exact_match"):
    args = (path, "baseline", 512, metric, filter_order, "default", cluster_field)
    gc_was = gc.isenabled()
    fast = read_samples_fast(*args)
    careful, problems = read_samples_careful(*args)
    assert gc.isenabled() == gc_was
    return fast, careful, problems


def with_(**over):
    return lambda k, d: {**d, **over}


def drop(*keys):
    return lambda k, d: {key: v for key, v in d.items() if key not in keys}


def by_line(fn):
    return lambda k, d: {**d, **fn(k, d)}


# Odd but valid: every one of these is accepted by the careful path, and the fast path must give its table.
ODD = {
    "unicode": by_line(lambda k, d: {"resps": [[f"Ünïcødé ✓ {k} \u2028"]], "filtered_resps": ["ø"], "target": "ü"}),
    "ids as strings": by_line(lambda k, d: {"doc_id": f"q{d['doc_id']}"}),
    "ids mixed": by_line(lambda k, d: {"doc_id": str(d["doc_id"]) if k % 2 else d["doc_id"]}),
    "no filter key": drop("filter"),
    "filter null": with_(filter=None),
    "filter on some lines": lambda k, d: {key: v for key, v in d.items() if key != "filter" or k % 3},
    "target a number": by_line(lambda k, d: {"target": d["doc_id"] + 1}),
    "target a fraction": by_line(lambda k, d: {"target": d["doc_id"] / 2}),
    "target a list of one": by_line(lambda k, d: {"target": [d["target"]]}),
    "targets of every kind": by_line(
        lambda k, d: {"target": [None, 3, ["x"], ["a", "b"], True, {"x": 1}, "s"][k % 7]}),
    "resps of every shape": by_line(
        lambda k, d: {"resps": [[["x"]], [], "s", [["a", "b"]], None, [[]], [[1]], {}][k % 8]}),
    "filtered of every shape": by_line(lambda k, d: {"filtered_resps": [
        "a", [], [["x"]], None, "[invalid]", " ", ["[invalid] "], [1], [1.5], ["a", "b"], [True], {"k": 1}][k % 12]}),
    "filtered missing on some": by_line(lambda k, d: {"filtered_resps": None if k % 5 == 0 else ["v"]}),
    "filtered numbers and nulls": by_line(lambda k, d: {"filtered_resps": None if k % 5 == 0 else [1.5]}),
    "filtered all invalid": with_(filtered_resps=["[invalid]"]),
    "filtered blank in every whitespace": by_line(lambda k, d: {"filtered_resps": [
        ["", " ", "\u3000[invalid]\x1c", "x", "\u200b", "[invalid]x", "\x85 \u2028", "\t[invalid]\n"][k % 8]]}),
    "filter none on some": by_line(lambda k, d: {"filter": "none"} if k % 3 == 0 else {}),
    "hashes and targets all text, ids as text": by_line(lambda k, d: {"doc_id": f"d{d['doc_id']}", "target": "t"}),
    "score a boolean": by_line(lambda k, d: {"exact_match": bool(k % 2)}),
    "score an integer": by_line(lambda k, d: {"exact_match": k % 2}),
    "score of every numeric kind": by_line(lambda k, d: {"exact_match": [1, 0.5, True, 0, -0.0][k % 5]}),
    "arguments as a list": by_line(lambda k, d: {"arguments": [[f"ctx{k}", {"max_gen_toks": 512}]]}),
    "arguments missing": drop("arguments"),
    "arguments missing on some": lambda k, d: {key: v for key, v in d.items() if key != "arguments" or k % 4},
    "arguments of every shape": by_line(lambda k, d: {"arguments": [
        {}, [], "x", {"a": "b"}, {"a": {"b": 1, "c": {"max_gen_toks": 512}}}, {"a": {"c": {"x": 1}}},
        {"gen_args_0": {"arg_1": {"max_gen_toks": 7}, "arg_0": {"max_gen_toks": 9}}}, [["c"]], [["c", 5]]][k % 9]}),
    "budget as text": with_(arguments={"g": {"a": "x", "b": {"max_gen_toks": "512"}}}),
    "budget as a fraction": with_(arguments={"g": {"a": "x", "b": {"max_gen_toks": 512.0}}}),
    "doc missing": drop("doc"),
    "doc null on some": by_line(lambda k, d: {"doc": None} if k % 2 else {}),
    "hashes of every kind": by_line(
        lambda k, d: {"prompt_hash": [None, 5, "p"][k % 3], "doc_hash": [7, None, "d"][k % 3]}),
    "no hashes": drop("prompt_hash", "doc_hash"),
    "extra keys": with_(extra={"a": [1, 2]}, acc=0.5),
    "huge id": by_line(lambda k, d: {"doc_id": d["doc_id"] + 10 ** 19}),
}


@pytest.mark.parametrize("name", list(ODD))
def test_fast_path_equals_careful_path_on_odd_valid_logs(tmp_path, name):
    path = write(tmp_path / "samples_t_2026-01-01T00-00-00.jsonl", lines(change=ODD[name]))
    fast, careful, problems = both(path)
    assert problems == []
    assert fast is not None, "a valid log must take the fast path"
    pd.testing.assert_frame_equal(fast, careful, check_exact=True)


@pytest.mark.parametrize("cluster", ["grp", "q", "absent"])
def test_fast_path_clusters(tmp_path, cluster):
    path = write(tmp_path / "samples_t_2026-01-01T00-00-00.jsonl",
                 lines(change=by_line(lambda k, d: {"doc": {"grp": [1, 1.5, True, "a", None][k % 5], "q": k}})))
    fast, careful, problems = both(path, cluster_field=cluster)
    assert fast is not None and problems == []
    pd.testing.assert_frame_equal(fast, careful, check_exact=True)


RAW = {
    "blank lines": lambda b: b.replace(b"\n", b"\n\n", 5) + b"\n  \n",
    "CRLF": lambda b: b.replace(b"\n", b"\r\n"),
    "byte-order mark": lambda b: b"\xef\xbb\xbf" + b,
    "no final newline": lambda b: b.rstrip(b"\n"),
    "escaped unicode": lambda b: b.replace(b'"resps": [["', b'"resps": [["\\u00e9\\ud83d\\ude00'),
    "spacing": lambda b: b.replace(b'", "', b'",   "'),
}


@pytest.mark.parametrize("name", list(RAW))
def test_fast_path_equals_careful_path_on_odd_files(tmp_path, name):
    data = "".join(json.dumps(r) + "\n" for r in lines()).encode()
    path = write(tmp_path / "samples_t_2026-01-01T00-00-00.jsonl", RAW[name](data))
    fast, careful, problems = both(path)
    assert fast is not None and problems == []
    pd.testing.assert_frame_equal(fast, careful, check_exact=True)


def test_fast_path_without_filter_order(tmp_path):
    """One filter and no 'filter' key and no results file: lines are the "none" filter, on both paths."""
    path = write(tmp_path / "samples_t_2026-01-01T00-00-00.jsonl",
                 [line(i, None) for i in range(30)])
    fast, careful, problems = both(path, filter_order=None)
    assert fast is not None and problems == []
    pd.testing.assert_frame_equal(fast, careful, check_exact=True)


# Bad: the fast path must step aside, so the careful path names the problem (file, line, fix).
BAD = {
    "truncated last line": lambda b: b[:-40],
    "not JSON": lambda b: b.replace(b"\n", b"\nnot json\n", 1),
    "an array line": lambda b: b.replace(b"\n", b"\n[1, 2]\n", 1),
    "NaN": lambda b: b.replace(b'"exact_match": 0.0}', b'"exact_match": NaN}', 1),
    "NUL byte": lambda b: b.replace(b"\n", b"\n\x00\n", 1),
    "Latin-1 byte": lambda b: b.replace(b'"resps": [["', b'"resps": [["\xe9', 1),
    "control byte": lambda b: b.replace(b'"resps": [["', b'"resps": [["\x01', 1),
    "lone surrogate": lambda b: b.replace(b'"resps": [["', b'"resps": [["\\ud800', 1),
    "UTF-16": lambda b: b"\xff\xfe" + b,
    "huge score": lambda b: b.replace(b'"exact_match": 0.0}', b'"exact_match": 1' + b"0" * 400 + b"}", 1),
    "no doc_id": lambda b: b.replace(b'"doc_id": 3,', b"", 1),
    "no metric": lambda b: b.replace(b', "exact_match": 1.0}', b"}", 1),
    "score as text": lambda b: b.replace(b'"exact_match": 1.0}', b'"exact_match": "1"}', 1),
    "score null": lambda b: b.replace(b'"exact_match": 1.0}', b'"exact_match": null}', 1),
    "doc a list": lambda b: b.replace(b'"doc": {"q": 2, "grp": "g2"}', b'"doc": [2]', 1),
    "id a boolean": lambda b: b.replace(b'"doc_id": 3,', b'"doc_id": true,', 1),
    "id a fraction": lambda b: b.replace(b'"doc_id": 3,', b'"doc_id": 3.0,', 1),
    "id empty": lambda b: b.replace(b'"doc_id": 3,', b'"doc_id": "",', 1),
    "id null": lambda b: b.replace(b'"doc_id": 3,', b'"doc_id": null,', 1),
    "filter a number": lambda b: b.replace(b'"filter": "strict-match"', b'"filter": 3', 1),
    "empty file": lambda b: b"",
    "blank file": lambda b: b"\n \n",
}


@pytest.mark.parametrize("name", list(BAD))
def test_fast_path_steps_aside_for_every_problem(tmp_path, name):
    data = "".join(json.dumps(r) + "\n" for r in lines()).encode()
    bad = BAD[name](data)
    assert bad != data or name in ("empty file", "blank file")
    path = write(tmp_path / "samples_t_2026-01-01T00-00-00.jsonl", bad)
    fast, careful, problems = both(path)
    assert fast is None
    got, got_problems = read_samples(path, "baseline", 512, "exact_match", FILTERS)
    assert got_problems == problems
    pd.testing.assert_frame_equal(got, careful, check_exact=True)
    if name not in ("empty file", "blank file"):
        assert problems and all(p.file == str(path) for p in problems)
    assert gc.isenabled()


def test_fast_path_steps_aside_for_an_unordered_repeat(tmp_path):
    """No 'filter' key, two lines per document and no results file to order them: the careful path says so."""
    path = write(tmp_path / "samples_t_2026-01-01T00-00-00.jsonl", lines(change=drop("filter")))
    fast, careful, problems = both(path, filter_order=None)
    assert fast is None
    assert "no results_*.json gives the filter order" in problems[0].message


def test_fast_path_steps_aside_for_a_bad_cluster(tmp_path):
    path = write(tmp_path / "samples_t_2026-01-01T00-00-00.jsonl",
                 lines(change=by_line(lambda k, d: {"doc": {"grp": [1]}} if k == 9 else {})))
    fast, careful, problems = both(path, cluster_field="grp")
    assert fast is None
    assert problems[0].line == 10 and problems[0].field == "doc.grp"


def test_fixture_logs_take_the_fast_path():
    """The recorded lm-eval logs (fixtures/logs, made by a real lm-eval run) read the same both ways."""
    paths = sorted((FIXTURES / "logs").glob("add_*/samples_*.jsonl"))
    assert paths
    for path in paths:
        fast, careful, problems = both(path)
        assert fast is not None and problems == []
        pd.testing.assert_frame_equal(fast, careful, check_exact=True)


def careful_only(monkeypatch):
    monkeypatch.setattr(lmeval, "read_samples_fast", lambda *a, **k: None)


@pytest.mark.parametrize("claim", ["bench", "truncation.yaml", "settings_fires.yaml", "lmeval rescore"])
def test_records_equal_with_and_without_the_fast_path(tmp_path, bench, monkeypatch, claim):
    """The whole Records (table, sources, settings) from the fast path equals the careful path's."""
    if claim == "bench":
        path = bench_claim(bench, tmp_path)
    elif claim == "lmeval rescore":
        path = bench_claim(bench, tmp_path)
        path.write_text(path.read_text().replace("[strict-match, flexible-extract]",
                                                 "[flexible-extract, exact, strict-match]"))
    else:
        path = FIXTURES / "claims" / claim
    fast = load_records(load_claim(path))
    with monkeypatch.context() as m:
        careful_only(m)
        careful = load_records(load_claim(path))
    pd.testing.assert_frame_equal(fast.table, careful.table, check_exact=True)
    assert fast.sources == careful.sources
    assert fast.settings == careful.settings


def test_odd_log_in_a_claim_equals_the_careful_path(tmp_path, bench, monkeypatch):
    """A claim whose baseline log is odd but valid: the fast path for every file, the same Records."""
    path = bench_claim(bench, tmp_path, docs=40)
    log = next((tmp_path / "base_512").glob("samples_*.jsonl"))
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    for k, d in enumerate(rows):
        d["doc_id"] = str(d["doc_id"]) if k % 2 else d["doc_id"]
        d["resps"] = [[f"ünï {k}"]] if k % 3 else d["resps"]
        if k % 4 == 0:
            d.pop("prompt_hash")
    log.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in rows))
    fast = load_records(load_claim(path))
    with monkeypatch.context() as m:
        careful_only(m)
        careful = load_records(load_claim(path))
    pd.testing.assert_frame_equal(fast.table, careful.table, check_exact=True)
    assert fast.settings == careful.settings


def test_apply_scorings_take_equals_concat(tmp_path, bench):
    """Picking the logged scorings' rows in one take gives what concatenating one filter per scoring gives."""
    path = bench_claim(bench, tmp_path, docs=20)
    frames = [read_samples(f, "baseline", 512, "exact_match", FILTERS)[0]
              for f in sorted(tmp_path.glob("*/samples_*.jsonl"))]
    table = pd.concat(frames, ignore_index=True)
    for names in (["flexible-extract", "strict-match"], ["strict-match"], [], ["strict-match", "strict-match"]):
        got, problems = apply_scorings(table, names, "lm-eval", str(path))
        want = pd.concat([table[table["scoring"] == n] for n in (names or FILTERS)], ignore_index=True)
        assert problems == []
        pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_mismatched_ids_still_named(tmp_path, bench):
    """The vectorised pairing check only decides that the arms match; a mismatch is named as before."""
    path = bench_claim(bench, tmp_path, docs=20)
    log = next((tmp_path / "treat_1024").glob("samples_*.jsonl"))
    log.write_text(log.read_text().replace('"doc_id": 3,', '"doc_id": 300,'))
    rec = load_records(load_claim(path))
    s = rec.item_set(1024)
    assert (s.only_baseline, s.only_treatment, s.shared) == (("3",), ("300",), 19)
    assert "1 only in baseline ('3'), 1 only in treatment ('300')" in s.sentence()


@pytest.mark.parametrize("layout", ["grouped", "interleaved", "one filter"])
def test_take_rows_equals_take(tmp_path, bench, layout):
    """The scorings' rows picked as slices (filters written together) or by one take (interleaved): the table a
    take gives, its text columns in one piece."""
    from audit.importers import _take_rows

    bench_claim(bench, tmp_path, docs=30)
    frames = [read_samples(f, "baseline", 512, "exact_match", FILTERS)[0]
              for f in sorted(tmp_path.glob("*/samples_*.jsonl"))]
    if layout == "interleaved":
        frames = [f.iloc[np.argsort(np.arange(len(f)) % (len(f) // 2), kind="stable")] for f in frames]
    elif layout == "one filter":
        frames = [f[f["scoring"] == FILTERS[0]] for f in frames]
    table = pd.concat(frames, ignore_index=True)
    for names in (FILTERS, FILTERS[::-1], FILTERS[:1]):
        rows = np.concatenate([np.flatnonzero((table["scoring"] == n).to_numpy()) for n in names])
        got = _take_rows(table, rows)
        pd.testing.assert_frame_equal(got, table.take(rows).reset_index(drop=True), check_exact=True)
        assert all(getattr(pa.array(got[c].array), "num_chunks", 1) == 1 for c in got.columns if got[c].dtype == "str")
