"""Robustness: every bad input gets its documented exit code and a located message — no traceback, no hang.

Table-driven bad inputs, one pytest case each: claim files here (encoding, YAML structure, alias bombs, duplicate
keys, every bounded option), CLI options, output paths, terminal injection and internal errors; sample logs in
``test_robustness_logs.py``; live servers, templates and secrets in ``test_robustness_live.py``; generated claims
and log lines in ``test_robustness_hypothesis.py``. Each case asserts the exact exit code and the message's file,
line (where there is one), field and fix, and runs bounded: 30 s (SIGALRM) and 4 GiB of address space
(RLIMIT_AS) in process, or in a subprocess with the same limits for the inputs built to exhaust memory.

Exit codes (README): 0 supported, 1 gate failed, 2 invalid input or usage, 3 model server or harness failure,
4 internal error.
"""
from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import arm_rows, check, cli, write_jsonl

CASE_S = 30
CASE_BYTES = 4 << 30
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


class CaseTimeout(BaseException):
    """A case ran past CASE_S (BaseException: no library code may swallow it)."""


def _vm_size() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@pytest.fixture(autouse=True)
def bounded():
    """Every case: at most CASE_S seconds and at most CASE_BYTES more address space than the test process has."""
    def on_alarm(signum, frame):
        raise CaseTimeout(f"the case ran past {CASE_S} s")

    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _vm_size() + CASE_BYTES
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    signal.alarm(CASE_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old_handler)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))




def located(out: str, file: str | Path, line: int | None = None, field: str | None = None) -> None:
    """The message names the file (and line), the field, and carries a fix."""
    name = str(file)
    assert (f"{name}:{line}:" if line is not None else name) in out, (name, line, out)
    if field is not None:
        assert field in out, (field, out)
    assert "fix:" in out, out


def cli_bounded(args: list, cwd: Path, timeout: float = CASE_S) -> tuple[int, str]:
    """The CLI in a subprocess under RLIMIT_AS = CASE_BYTES and a wall-clock limit: for inputs built to exhaust
    memory or time. Returns (exit code, stdout + stderr)."""
    code = ("import resource, sys\n"
            f"resource.setrlimit(resource.RLIMIT_AS, ({CASE_BYTES}, {CASE_BYTES}))\n"
            "from audit.cli import main\n"
            "sys.argv = ['audit'] + sys.argv[1:]\n"
            "main()\n")
    p = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                       timeout=timeout, errors="replace")
    out = p.stdout + p.stderr
    assert "Traceback" not in out, out
    return p.returncode, out


# ---------------------------------------------------------------------------------------------------------------
# claim files

BASE = """\
claim:
  title: robust
  metric: exact_match
  reported: {baseline: 0.5, treatment: 0.6, n: 20}
  settings: {max_tokens: 16}
samples:
  format: jsonl
  baseline: {16: logs/base_16.jsonl}
  treatment: {16: logs/treat_16.jsonl}
perturbations: {scorings: [exact]}
options: {resamples: 1000}
"""

LIVE = """\
claim:
  title: live
  settings: {max_tokens: 8}
arms:
  baseline: {endpoint: "http://127.0.0.1:8000/v1", model: m}
  treatment: {endpoint: "http://127.0.0.1:8000/v1", model: m}
task:
  dataset: data.jsonl
  prompt: "Q: {{ question }}"
  target: "{{ answer }}"
perturbations: {scorings: [exact]}
"""


@pytest.fixture
def replay(tmp_path):
    """Valid logs (20 items per arm) and a data set beside the claim; returns a function writing the claim."""
    write_jsonl(tmp_path / "logs/base_16.jsonl", arm_rows([1, 0] * 10))
    write_jsonl(tmp_path / "logs/treat_16.jsonl", arm_rows([1, 1] * 10))
    write_jsonl(tmp_path / "data.jsonl", [{"id": f"q{i}", "question": f"1+{i}", "answer": str(1 + i)}
                                          for i in range(4)])

    def make(content: str | bytes, name: str = "claim.yaml") -> Path:
        p = tmp_path / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
        return p

    return make


def _bomb(levels: int = 9, where: str = "top") -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    body = "\n".join(lines)
    if where == "checks":
        return BASE + "checks:\n  truncation:\n" + "\n".join("    " + x for x in lines) + "\n"
    return BASE + "x_anchors:\n" + "\n".join("  " + x for x in lines) + f"\n# {len(body)} bytes\n"


def sub(old: str, new: str, base: str = BASE) -> str:
    assert old in base, old
    return base.replace(old, new, 1)


# (id, claim content, exit code, needles, line, field)
CLAIM_CASES = [
    ("utf16", BASE.encode("utf-16"), 2, ["UTF-16-encoded, not UTF-8", "iconv"], 1, None),
    ("utf32", BASE.encode("utf-32"), 2, ["UTF-32-encoded"], 1, None),
    ("utf16-no-bom", BASE.encode("utf-16-le"), 2, ["NUL bytes"], 1, None),
    ("latin1", sub("title: robust", "title: café").encode("latin-1"), 2, ["not valid UTF-8: byte 0xe9", "Latin-1"],
     2, None),
    ("cp1252-quotes", sub("title: robust", "title: \u201crobust\u201d").encode("cp1252"), 2,
     ["not valid UTF-8: byte 0x93"], 2, None),
    ("binary", bytes(range(1, 256)) * 8, 2, ["binary, not UTF-8 text"], 1, None),
    ("binary-with-nul", bytes(range(256)) * 8, 2, ["NUL bytes: it is binary"], 1, None),
    ("nul-inside", BASE.encode().replace(b"robust", b"rob\x00ust"), 2, ["NUL bytes"], 2, None),
    ("empty", "", 2, ["must be a YAML mapping"], 1, None),
    ("comments-only", "# nothing here\n", 2, ["must be a YAML mapping"], 1, None),
    ("top-level-list", "- claim\n- samples\n", 2, ["must be a YAML mapping"], 1, None),
    ("top-level-scalar", "just text\n", 2, ["must be a YAML mapping"], 1, None),
    ("unclosed-flow", sub("settings: {max_tokens: 16}", "settings: {max_tokens: 16"), 2, ["YAML syntax error"],
     6, None),
    ("tab-indent", sub("  title: robust", "\ttitle: robust"), 2, ["YAML syntax error"], 2, None),
    ("two-documents", BASE + "---\nclaim: {title: again}\n", 2, ["YAML syntax error", "single document"], 12, None),
    ("deep-flow", "claim:\n  title: " + "[" * 3000 + "]" * 3000 + "\n", 2,
     ["nested more than 64 levels deep"], 2, None),
    ("deep-block", "claim:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 120)) + "  " * 120 + "v: 1\n", 2,
     ["nested more than 64 levels deep"], None, None),
    ("alias-bomb", _bomb(), 2, ["expand to more than 100,000 values", "billion laughs"], 21, None),
    ("alias-bomb-in-checks", _bomb(where="checks"), 2, ["expand to more than 100,000 values"], 22, None),
    ("alias-chain-depth", BASE + "x:\n" + "\n".join(f"  a{i}: &a{i} [*a{i - 1}]" if i else "  a0: &a0 [1]"
                                                      for i in range(80)) + "\n", 2,
     ["more than 64 levels deep"], None, None),
    ("recursive-alias", BASE + "x: &loop [1, *loop]\n", 2, ["recursive structure", "&loop"], 12, None),
    ("undefined-alias", BASE + "x: *nowhere\n", 2, ["YAML syntax error", "undefined alias"], 12, None),
    ("dup-top-key", BASE + "claim: {title: again}\n", 2, ["duplicate key 'claim' (lines 1 and 12)"], 12, "claim"),
    ("dup-nested-key", sub("  metric: exact_match\n", "  metric: exact_match\n  title: again\n"), 2,
     ["duplicate key 'title' (lines 2 and 4)", "silently keep only"], 4, "claim.title"),
    ("dup-budget-key", sub("baseline: {16: logs/base_16.jsonl}", "baseline: {16: a.jsonl, 16: logs/base_16.jsonl}"),
     2, ["duplicate key 16"], 8, "samples.baseline.16"),
    ("raw-escape-char", sub("title: robust", "title: rob\x1bust"), 2, ["YAML does not allow the character"], 2,
     None),
    ("python-tag", BASE + "x: !!python/object/apply:os.system ['true']\n", 2, ["YAML syntax error"], 12, None),
    ("huge-number", sub("resamples: 1000", "resamples: " + "9" * 5000), 2, ["more than 1000 digits"], 11,
     "options.resamples"),
    ("bad-date", BASE + "x: 2024-13-45\n", 2, ["YAML value cannot be read"], None, None),
    ("unknown-key", sub("  metric: exact_match", "  metrc: exact_match"), 2, ["unknown key", "did you mean 'metric'"],
     3, "claim.metrc"),
    ("missing-title", sub("  title: robust\n", ""), 2, ["required key is missing", "add 'title'"], 1, "claim.title"),
    ("title-is-list", sub("title: robust", "title: [a, b]"), 2, ["valid string"], 2, "claim.title"),
    ("delta-inf", sub("n: 20}", "n: 20, delta: .inf}"), 2, ["finite number", ".inf and .nan"], 4,
     "claim.reported.delta"),
    ("delta-nan", sub("n: 20}", "n: 20, delta: .nan}"), 2, ["finite number"], 4, "claim.reported.delta"),
    ("delta-minus-inf", sub("n: 20}", "n: 20, delta: -.inf}"), 2, ["finite number"], 4, "claim.reported.delta"),
    ("ci-reversed", sub("n: 20}", "n: 20, ci: [0.5, -0.5]}"), 2, ["the CI [0.5, -0.5] is reversed"], 4,
     "claim.reported.ci"),
    ("ci-nan", sub("n: 20}", "n: 20, ci: [.nan, 0.5]}"), 2, ["finite number"], 4, "claim.reported.ci"),
    ("ci-three", sub("n: 20}", "n: 20, ci: [0.1, 0.2, 0.3]}"), 2, ["at most 2 items"], 4, "claim.reported.ci"),
    ("rate-percent", sub("baseline: 0.5", "baseline: 50"), 2, ["a rate must lie in [0, 1]"], 4,
     "claim.reported.baseline"),
    ("rate-inf", sub("baseline: 0.5", "baseline: .inf"), 2, ["finite"], 4, "claim.reported.baseline"),
    ("passes-over-n", sub("baseline: 0.5", "baseline: {passes: 30, n: 20}"), 2, ["exceeds n"], 4,
     "claim.reported.baseline"),
    ("n-zero", sub("n: 20}", "n: 0}"), 2, ["greater than 0"], 4, "claim.reported.n"),
    ("n-huge", sub("n: 20}", "n: 1000000000000}"), 2, ["less than or equal to 10000000"], 4, "claim.reported.n"),
    ("n-negative-counts", sub("baseline: 0.5", "baseline: {passes: -1, n: 20}"), 2, ["greater than or equal to 0"],
     4, "claim.reported.baseline.passes"),
    ("p-over-one", sub("n: 20}", "n: 20, p_value: 1.5}"), 2, ["less than or equal to 1"], 4,
     "claim.reported.p_value"),
    ("p-nan", sub("n: 20}", "n: 20, p_value: .nan}"), 2, ["finite number"], 4, "claim.reported.p_value"),
    ("test-unknown", sub("n: 20}", "n: 20, test: magic}"), 2, ["Input should be"], 4, "claim.reported.test"),
    ("budget-negative", sub("max_tokens: 16}", "max_tokens: -16}"), 2, ["greater than 0"], 5,
     "claim.settings.max_tokens"),
    ("budget-huge", sub("max_tokens: 16}", "max_tokens: 1000000000}"), 2, ["less than or equal to 1048576"], 5,
     "claim.settings.max_tokens"),
    ("budget-text", sub("max_tokens: 16}", "max_tokens: lots}"), 2, ["valid integer"], 5,
     "claim.settings.max_tokens"),
    ("temperature-negative", sub("max_tokens: 16}", "max_tokens: 16, temperature: -1}"), 2,
     ["greater than or equal to 0"], 5, "claim.settings.temperature"),
    ("samples-negative-budget", sub("{16: logs/base_16.jsonl}", "{-16: logs/base_16.jsonl}"), 2,
     ["positive number of tokens", "got -16"], 8, "samples.baseline"),
    ("samples-zero-budget", sub("{16: logs/treat_16.jsonl}", "{0: logs/treat_16.jsonl}"), 2,
     ["positive number of tokens"], 9, "samples.treatment"),
    ("samples-budgets-differ", sub("{16: logs/treat_16.jsonl}", "{32: logs/treat_16.jsonl}"), 2,
     ["budgets [16] and treatment budgets [32] differ"], 6, "samples"),
    ("samples-path-number", sub("{16: logs/base_16.jsonl}", "{16: 42}"), 2, ["valid string"], 8,
     "samples.baseline.16"),
    ("samples-format", sub("format: jsonl", "format: xml"), 2, ["'jsonl', 'json', 'csv', 'parquet' or 'lm-eval-results'"], 7,
     "samples.format"),
    ("seed-negative", sub("resamples: 1000}", "resamples: 1000, seed: -1}"), 2, ["greater than or equal to 0"], 11,
     "options.seed"),
    ("seed-huge", sub("resamples: 1000}", "resamples: 1000, seed: 18446744073709551616}"), 2, ["less than"], 11,
     "options.seed"),
    ("seed-float", sub("resamples: 1000}", "resamples: 1000, seed: 1.5}"), 2, ["valid integer"], 11,
     "options.seed"),
    ("resamples-1e12", sub("resamples: 1000", "resamples: 1000000000000"), 2, ["less than or equal to 1000000"], 11,
     "options.resamples"),
    ("resamples-low", sub("resamples: 1000", "resamples: 10"), 2, ["greater than or equal to 1000"], 11,
     "options.resamples"),
    ("resamples-exp", sub("resamples: 1000", "resamples: 1e12"), 2, ["valid integer"], 11, "options.resamples"),
    ("level-high", sub("resamples: 1000}", "resamples: 1000, level: 1.5}"), 2, ["less than 1"], 11,
     "options.level"),
    ("alpha-nan", sub("resamples: 1000}", "resamples: 1000, alpha: .nan}"), 2, ["finite number"], 11,
     "options.alpha"),
    ("level-alpha-disagree", sub("resamples: 1000}", "resamples: 1000, level: 0.9, alpha: 0.05}"), 2,
     ["disagree"], 11, "options"),
    ("margin-negative", sub("resamples: 1000}", "resamples: 1000, margin: -1}"), 2, ["greater than 0"], 11,
     "options.margin"),
    ("margin-inf", sub("resamples: 1000}", "resamples: 1000, margin: .inf}"), 2, ["finite number"], 11,
     "options.margin"),
    ("power-two", sub("resamples: 1000}", "resamples: 1000, power: 2}"), 2, ["less than 1"], 11, "options.power"),
    ("level-text", sub("resamples: 1000}", "resamples: 1000, level: high}"), 2, ["valid number"], 11,
     "options.level"),
    ("sweep-zero", sub("scorings: [exact]}", "scorings: [exact], max_tokens: [0]}"), 2,
     ["positive number of tokens"], 10, "perturbations.max_tokens"),
    ("sweep-huge", sub("scorings: [exact]}", "scorings: [exact], max_tokens: [99999999]}"), 2,
     ["more than 1048576 tokens"], 10, "perturbations.max_tokens"),
    ("unknown-check", BASE + "checks: {truncaton: {}}\n", 2, ["unknown check", "did you mean 'truncation'"], 12,
     "checks.truncaton"),
    ("check-param-type", BASE + "checks: {truncation: {high_rate: lots}}\n", 2, ["valid number"], 12,
     "checks.truncation.high_rate"),
    ("check-param-unknown", BASE + "checks: {truncation: {hig_rate: 0.2}}\n", 2, ["unknown key"], 12,
     "checks.truncation.hig_rate"),
    ("regex-invalid", BASE + "scorers: {x: {regex: 'a(b'}}\n", 2, ["not a valid regular expression"], 12,
     "scorers.x.regex"),
    ("regex-group-missing", BASE + "scorers: {x: {regex: 'a(b)', group: 5}}\n", 2,
     ["group 5 does not exist: the regex has 1 group"], 12, "scorers.x"),
    ("scorer-kind", BASE + "scorers: {x: {kind: magic}}\n", 2, ["unknown scorer kind"], 12, "scorers.x"),
    ("code-exec-off", BASE + "scorers: {x: {kind: code_exec}}\n", 2, ["code execution is off by default"], 12,
     "scorers.x"),
    ("code-exec-timeout", BASE + "scorers: {x: {kind: code_exec, enabled: true, timeout_s: 1000000}}\n", 2,
     ["less than or equal to 600"], 12, "scorers.x.timeout_s"),
    ("code-exec-memory", BASE + "scorers: {x: {kind: code_exec, enabled: true, memory_mb: 1}}\n", 2,
     ["greater than or equal to 64"], 12, "scorers.x.memory_mb"),
    ("samples-and-arms", BASE + "arms: {baseline: {endpoint: embedded}}\ntask: {dataset: data.jsonl, prompt: q}\n",
     2, ["not both"], 6, "samples"),
    ("nothing-to-audit", "claim: {title: t}\n", 2, ["nothing to audit"], 1, "claim.reported"),
    ("live-port-99999", sub('baseline: {endpoint: "http://127.0.0.1:8000/v1"', 'baseline: {endpoint: '
                            '"http://127.0.0.1:99999/v1"', LIVE), 2, ["Port out of range"], 5,
     "arms.baseline.endpoint"),
    ("live-port-letters", sub('treatment: {endpoint: "http://127.0.0.1:8000/v1"',
                              'treatment: {endpoint: "http://127.0.0.1:http/v1"', LIVE), 2,
     ["could not be cast to integer"], 6, "arms.treatment.endpoint"),
    ("live-port-zero", sub('baseline: {endpoint: "http://127.0.0.1:8000/v1"', 'baseline: {endpoint: '
                           '"http://127.0.0.1:0/v1"', LIVE), 2, ["port 0"], 5, "arms.baseline.endpoint"),
    ("live-no-host", sub('baseline: {endpoint: "http://127.0.0.1:8000/v1"', 'baseline: {endpoint: "http:///v1"',
                         LIVE), 2, ["has no host"], 5, "arms.baseline.endpoint"),
    ("live-ftp", sub('baseline: {endpoint: "http://127.0.0.1:8000/v1"', 'baseline: {endpoint: "ftp://h/v1"', LIVE),
     2, ["must be 'embedded' or an http(s) base URL"], 5, "arms.baseline.endpoint"),
    ("live-replica-port", sub("model: m}", "model: m, replicas: ['http://127.0.0.1:70000/v1']}", LIVE), 2,
     ["Port out of range"], 5, "arms.baseline.replicas[0]"),
    ("live-timeout-inf", sub("model: m}", "model: m, timeout_s: .inf}", LIVE), 2, ["finite number"], 5,
     "arms.baseline.timeout_s"),
    ("live-timeout-negative", sub("model: m}", "model: m, timeout_s: -1}", LIVE), 2, ["greater than 0"], 5,
     "arms.baseline.timeout_s"),
    ("live-timeout-huge", sub("model: m}", "model: m, timeout_s: 1e9}", LIVE), 2, ["less than or equal to 86400"],
     5, "arms.baseline.timeout_s"),
    ("live-concurrency-zero", sub("model: m}", "model: m, max_concurrency: 0}", LIVE), 2,
     ["greater than or equal to 1"], 5, "arms.baseline.max_concurrency"),
    ("live-concurrency-huge", sub("model: m}", "model: m, max_concurrency: 1000000}", LIVE), 2,
     ["less than or equal to 1024"], 5, "arms.baseline.max_concurrency"),
    ("live-retries-negative", sub("model: m}", "model: m, max_retries: -1}", LIVE), 2,
     ["greater than or equal to 0"], 5, "arms.baseline.max_retries"),
    ("live-temperature-nan", sub('target: "{{ answer }}"', 'target: "{{ answer }}"\n  temperature: .nan', LIVE), 2,
     ["finite number"], 11, "task.temperature"),
    ("live-task-seed", sub('target: "{{ answer }}"', 'target: "{{ answer }}"\n  seed: -5', LIVE), 2,
     ["greater than or equal to 0"], 11, "task.seed"),
    ("live-template-syntax", sub('prompt: "Q: {{ question }}"', 'prompt: "Q: {{ question "', LIVE), 2,
     ["jinja2 syntax error"], 9, "task.prompt"),
    ("live-template-deep", sub('prompt: "Q: {{ question }}"', 'prompt: "{{ ' + "(" * 2000 + "1" + ")" * 2000 + ' }}"',
                               LIVE), 2, ["task.prompt"], 9, "task.prompt"),
    ("live-dataset-missing", sub("dataset: data.jsonl", "dataset: nowhere.jsonl", LIVE), 2, ["dataset not found"],
     8, "task.dataset"),
    ("live-ood-seed", sub("scorings: [exact]}", "scorings: [exact], ood: {builtin: [], seed: -1}}", LIVE), 2,
     ["greater than or equal to 0"], 11,
     "perturbations.ood.seed"),
]


@pytest.mark.parametrize("case", CLAIM_CASES, ids=[c[0] for c in CLAIM_CASES])
def test_bad_claim(replay, case):
    name, content, code, needles, line, field = case
    p = replay(content)
    out = check(cli("validate", p), code, str(p), *needles)
    located(out, p, line, field)


def test_bom_claim_is_read_like_any_utf8_claim(replay):
    p = replay(b"\xef\xbb\xbf" + BASE.encode())
    check(cli("validate", p), 0, "valid, 40 record rows")


def test_alias_bomb_is_refused_fast_and_small(replay, tmp_path):
    """The ~1 kB document that expands to 9**9 values, in a subprocess capped at 4 GiB: refused within seconds."""
    p = replay(_bomb())
    rc, out = cli_bounded(["validate", p], tmp_path, timeout=20)
    assert rc == 2 and "expand to more than 100,000 values" in out, out


def test_deep_yaml_in_a_bounded_subprocess(replay, tmp_path):
    p = replay("claim:\n  title: " + "[" * 100_000 + "]" * 100_000 + "\n")
    rc, out = cli_bounded(["validate", p], tmp_path, timeout=20)
    assert rc == 2 and "nested more than 64 levels deep" in out, out


def test_claim_larger_than_the_cap(replay):
    p = replay(BASE + "# " + "x" * (5 << 20) + "\n")
    out = check(cli("validate", p), 2, "larger than 4,194,304 bytes")
    assert "fix:" in out


@pytest.mark.parametrize("kind", ["missing", "folder", "link-loop", "broken-link"])
def test_claim_path_that_is_not_a_file(tmp_path, kind):
    p = tmp_path / "claim.yaml"
    if kind == "folder":
        p.mkdir()
        check(cli("validate", p), 2, "is a directory")  # click refuses it before audit reads anything
        return
    if kind == "link-loop":
        p.symlink_to(p)
        want = "symbolic link loop"
    elif kind == "broken-link":
        p.symlink_to(tmp_path / "gone.yaml")
        want = "not found (a broken symbolic link)"
    else:
        want = "claim file not found"
    out = check(cli("validate", p), 2, want)
    located(out, p)


def test_every_problem_at_once(replay):
    """Duplicate keys and validation errors in one file: all reported together, each on its line."""
    text = sub("  metric: exact_match\n", "  metric: exact_match\n  title: again\n")
    text = sub("resamples: 1000}", "resamples: 10, seed: -1}", text)
    p = replay(text)
    out = check(cli("validate", p), 2, "3 problem(s)")
    for needle in (f"{p}:4: claim.title: duplicate key", f"{p}:12: options.seed", f"{p}:12: options.resamples"):
        assert needle in out, out


# ---------------------------------------------------------------------------------------------------------------
# CLI options and output paths

OPTION_CASES = [
    ("seed-negative", ["--seed", "-1"], "'--seed': -1 is not in the range 0<=x<=9223372036854775807"),
    ("seed-too-big", ["--seed", str(2**64)], "is not in the range"),
    ("seed-text", ["--seed", "abc"], "'abc' is not a valid integer"),
    ("resamples-low", ["--resamples", "10"], "10 is not in the range 1000<=x<=1000000"),
    ("resamples-1e12", ["--resamples", "1000000000000"], "is not in the range 1000<=x<=1000000"),
    ("resamples-float", ["--resamples", "1e12"], "'1e12' is not a valid integer"),
    ("fail-on-bogus", ["--fail-on", "bogus"], "Valid values"),
    ("unknown-option", ["--sede", "1"], "No such option '--sede'"),
]


@pytest.mark.parametrize("case", OPTION_CASES, ids=[c[0] for c in OPTION_CASES])
def test_bad_option(replay, case):
    name, args, needle = case
    check(cli("verify", replay(BASE), *args), 2, needle)


def _unwritable_dir(tmp_path: Path) -> Path:
    """A folder that exists and cannot be written, even by root: /proc/<pid> of this process."""
    return Path(f"/proc/{os.getpid()}")


OUTPUT_CASES = [
    ("out-under-a-file", lambda t: ["--out", t / "file.txt" / "out"], ["cannot write into", "--out", "fix:"]),
    ("out-unwritable", lambda t: ["--out", _unwritable_dir(t)], ["cannot write into", "--out", "fix:"]),
    ("out-is-a-file", lambda t: ["--out", t / "file.txt"], ["is a file"]),
    ("summary-md-folder", lambda t: ["--summary-md", t], ["is a directory"]),
    ("summary-md-unwritable", lambda t: ["--summary-md", _unwritable_dir(t) / "s.md"], ["cannot write", "--summary-md"]),
    ("junit-under-a-file", lambda t: ["--junit", t / "file.txt" / "j.xml"], ["cannot write", "--junit"]),
]


@pytest.mark.parametrize("case", OUTPUT_CASES, ids=[c[0] for c in OUTPUT_CASES])
def test_unwritable_output(replay, tmp_path, case):
    (tmp_path / "file.txt").write_text("x")
    name, args, needles = case
    check(cli("verify", replay(BASE), *args(tmp_path)), 2, *needles)


@pytest.mark.parametrize("target", ["unwritable", "under-a-file", "folder"])
def test_schema_to_an_unwritable_path(tmp_path, target):
    (tmp_path / "file.txt").write_text("x")
    path = {"unwritable": _unwritable_dir(tmp_path) / "schema.json", "under-a-file": tmp_path / "file.txt" / "s.json",
            "folder": tmp_path}[target]
    needles = ["is a directory"] if target == "folder" else ["cannot write the schema", "fix:"]
    check(cli("schema", "-o", path), 2, *needles)


@pytest.mark.parametrize("content", [b"[1, 2, 3]", b"not json", b"\xff\xfe{}", b'{"verdict": 7}', b""],
                         ids=["list", "text", "utf16", "wrong-shape", "empty"])
def test_compare_bad_reports(tmp_path, content):
    bad = tmp_path / "old.json"
    bad.write_bytes(content)
    check(cli("compare", bad, bad), 2, str(bad))


@pytest.mark.parametrize("kind", ["folder", "not-sqlite"])
def test_cache_file_that_is_not_a_cache(tmp_path, kind):
    p = tmp_path / "c.sqlite"
    if kind == "folder":
        p.mkdir()
        check(cli("cache", "info", "--cache", p), 2, "is a directory")
    else:
        p.write_bytes(b"this is not a database" * 100)
        check(cli("cache", "info", "--cache", p), 2, "not a usable SQLite database", "fix:")


# ---------------------------------------------------------------------------------------------------------------
# terminal injection and internal errors

INJECTIONS = [
    ("osc-retitle", r'"\e]0;pwned\a robust"', "\\x1b]0;pwned\\x07"),
    ("csi-clear", r'"\e[2J\e[H robust"', "\\x1b[2J"),
    ("bidi-override", '"robust \u202eelif.exe"', "\\u202e"),
    ("c1-csi", r'"\x9b31m robust"', "\\x9b31m"),
]


@pytest.mark.parametrize("case", INJECTIONS, ids=[c[0] for c in INJECTIONS])
def test_claim_title_cannot_drive_the_terminal(replay, tmp_path, case):
    name, yaml_title, shown = case
    p = replay(sub("title: robust", f"title: {yaml_title}"))
    out_dir = tmp_path / "out"
    res = cli("verify", p, "--out", out_dir, "--fail-on", "none")
    out = check(res, 0, shown)
    assert not CONTROL.search(out.replace("\n", "")), repr(out[:500])
    assert "\u202e" not in out and "\x9b" not in out
    summary = (out_dir / "summary.md").read_text(encoding="utf-8")
    assert not CONTROL.search(summary.replace("\n", "")) and "\u202e" not in summary and "\x9b" not in summary


def test_log_text_cannot_drive_the_terminal_or_the_summary(tmp_path, replay):
    rows = arm_rows([1, 0] * 10)
    for r in rows:
        r["output"] = "\x1b]0;pwned\x07" + r["output"]
    write_jsonl(tmp_path / "logs/base_16.jsonl", rows)
    p = replay(sub("settings: {max_tokens: 16}", "settings: {max_tokens: 16, scoring: exact}"))
    res = cli("verify", p, "--out", tmp_path / "out", "--fail-on", "none")
    out = check(res, 0)
    assert "\x1b" not in out and "\x07" not in out
    summary = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    assert not CONTROL.search(summary.replace("\n", ""))


def test_internal_error_exits_4_and_writes_the_traceback_into_out(replay, tmp_path, monkeypatch):
    import audit.verify

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(audit.verify, "verify", broken)
    out_dir = tmp_path / "out"
    out = check(cli("verify", replay(BASE), "--out", out_dir), 4,
                "internal error, a bug in audit (not a problem with your input): ZeroDivisionError: a bug",
                "the full traceback is in", str(out_dir))
    assert len(out.strip().splitlines()) == 1
    (trace,) = out_dir.glob("audit-traceback-*.txt")
    assert "ZeroDivisionError" in trace.read_text() and "Traceback" in trace.read_text()


def test_internal_error_without_out_goes_to_the_temp_dir(replay, tmp_path, monkeypatch):
    import tempfile

    import audit.claim

    def broken(*args, **kwargs):
        raise RecursionError("deep")

    monkeypatch.setattr(audit.claim, "load_claim", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    check(cli("validate", replay(BASE)), 4, "RecursionError: deep", str(tmp_path))
    assert list(tmp_path.glob("audit-traceback-*.txt"))


def test_internal_error_never_leaks_a_secret(replay, tmp_path, monkeypatch):
    import tempfile

    import audit.verify
    from audit.textsafe import register_secret

    register_secret("sk-internal-SECRET-42")

    def broken(*args, **kwargs):
        raise ValueError("key was sk-internal-SECRET-42")

    monkeypatch.setattr(audit.verify, "verify", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = check(cli("verify", replay(BASE)), 4, "ValueError: key was ***")
    assert "sk-internal-SECRET-42" not in out
    (trace,) = tmp_path.glob("audit-traceback-*.txt")
    assert "sk-internal-SECRET-42" not in trace.read_text()


def test_help_lists_exit_code_4():
    out = check(cli("--help"), 0)
    assert "4 internal error" in out


def test_ctrl_c_is_not_a_verdict(replay, monkeypatch):
    import audit.verify

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(audit.verify, "verify", interrupted)
    check(cli("verify", replay(BASE)), 130, "interrupted")
