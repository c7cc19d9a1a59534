"""settings: the arms' effective settings side by side; undeclared differences; budget-sweep mismatches."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from audit.claim import Claim, load_claim
from audit.records import LogSource, build_records
from audit.verify import verify
from checks import settings as settings_check
from conftest import FIXTURES, arm_rows, jsonl_claim, write_lmeval_run

CLAIMS = FIXTURES / "claims"


def codes(outcome, check="settings"):
    return {f.code for f in outcome.findings if f.check == check}


def findings(outcome, code):
    return [f for f in outcome.findings if f.check == "settings" and f.code == code]


# --- normalisation ----------------------------------------------------------------------------------------------

def test_effective_flattens_lmeval_and_applies_cli_gen_kwargs():
    st = {"task": "t", "results_file": "/x/results.json", "format": "lm-eval", "max_gen_toks": 64,
          "generation_kwargs": {"until": ["\n\n"], "do_sample": False, "temperature": 0, "max_gen_toks": 64},
          "gen_kwargs_cli": "temperature=0.7,do_sample=True,top_k=5", "doc_to_text": "Q: {{q}}",
          "system_instruction": None, "num_fewshot": 0, "lm_eval_version": "0.4.9"}
    e = settings_check.effective(st)
    assert e == {"task": "t", "max_tokens": 64, "stop": ["\n\n"], "do_sample": True, "temperature": 0.7, "top_k": 5,
                 "prompt_template": "Q: {{q}}", "fewshot": 0, "lm_eval_version": "0.4.9"}


@pytest.mark.parametrize("a,b,same", [(0, 0.0, True), ("0", 0, True), (0.7, "0.70", True), (True, "true", False),
                                      (["a", "b"], ("a", "b"), True), (["a"], ["b"], False),
                                      ({"x": 1, "y": 2}, {"y": 2, "x": 1}, True), ("chat", "completions", False)])
def test_value_normalisation(a, b, same):
    assert (settings_check._norm(a) == settings_check._norm(b)) is same


def test_declared_names_cover_aliases_groups_and_implied_keys():
    cov, unknown = settings_check.covered(["doc_to_text", "sampling", "Model", "colour"])
    assert {"prompt_template", "task", "task_hash"} <= cov  # a prompt variant is its own lm-eval task
    assert {"temperature", "top_p", "seed", "do_sample"} <= cov
    assert {"model", "model_args", "model_name", "model_file"} <= cov
    assert "system_prompt" not in cov and "max_tokens" not in cov
    assert unknown == ["colour"]


# --- fixtures through verify ------------------------------------------------------------------------------------

def test_fixture_fires_undeclared_sampling_and_harness():
    out = verify(load_claim(CLAIMS / "settings_fires.yaml"))
    assert out.report.verdict == "fragile"
    assert codes(out) == {"undeclared_difference", "side_by_side"}
    diffs = {f.statistic["setting"]: f for f in findings(out, "undeclared_difference")}
    assert set(diffs) == {"temperature", "do_sample", "lm_eval_version"}
    assert all(f.severity == "critical" and f.impact == "fragile" for f in diffs.values())
    assert diffs["temperature"].rows == [{"budget": 64, "setting": "temperature", "group": "sampling", "baseline": 0,
                                          "treatment": 0.7}]
    (table,) = findings(out, "side_by_side")
    status = {r["setting"]: r["status"] for r in table.rows}
    assert status["model_args"] == status["model_name"] == "differs (declared)"
    assert status["stop"] == status["max_tokens"] == status["prompt_template"] == "same"


def test_fixture_passes_matched():
    out = verify(load_claim(CLAIMS / "settings_passes.yaml"))
    assert out.report.verdict == "supported"
    assert codes(out) == {"matched"}
    (f,) = findings(out, "matched")
    assert f.outcome == "pass" and "2 declared change(s)" in f.title
    assert {r["status"] for r in f.rows} == {"same", "differs (declared)"}


# --- synthetic lm-eval runs -------------------------------------------------------------------------------------

def _claim_over_runs(tmp_path, changes=None):
    """The claim over the lm-eval runs in tmp_path/b (baseline) and tmp_path/t (treatment) at 16 tokens."""
    c = {"claim": {"title": "t", "settings": {"max_tokens": 16}},
         "samples": {"format": "lm-eval", "baseline": {16: "b/samples_*.jsonl"}, "treatment": {16: "t/samples_*.jsonl"}}}
    if changes is not None:
        c["claim"]["treatment_changes"] = changes
    p = tmp_path / "c.yaml"
    p.write_text(json.dumps(c))
    return load_claim(p)


def _lmeval_claim(tmp_path, task_b="add", task_t="add", version=(1.0, 1.0), changes=None):
    texts = [str(i) for i in range(40)]
    write_lmeval_run(tmp_path / "b", task_b, 16, texts, {"strict-match": [i % 2 for i in range(40)]}, "B",
                     version=version[0])
    write_lmeval_run(tmp_path / "t", task_t, 16, texts, {"strict-match": [1] * 40}, "T", version=version[1])
    return _claim_over_runs(tmp_path, changes)


def test_undeclared_prompt_difference_without_declarations_does_not_move_the_verdict(tmp_path):
    out = verify(_lmeval_claim(tmp_path, task_t="add_verify"))
    (f,) = findings(out, "undeclared_difference")
    assert f.statistic["setting"] == "task" and f.severity == "major" and f.impact == "none"
    assert "treatment_changes" in f.detail
    assert out.report.verdict == "supported"


def test_undeclared_prompt_difference_is_fragile_when_something_else_is_declared(tmp_path):
    out = verify(_lmeval_claim(tmp_path, task_t="add_verify", changes=["model"]))
    (f,) = findings(out, "undeclared_difference")
    assert f.statistic["setting"] == "task" and f.impact == "fragile"
    assert "declared_change_absent" in codes(out)  # the declared model change is not in the logs
    assert out.report.verdict == "fragile"


def test_declared_prompt_template_covers_the_task_name(tmp_path):
    out = verify(_lmeval_claim(tmp_path, task_t="add_verify", changes=["prompt_template"]))
    assert "undeclared_difference" not in codes(out)
    status = {r["setting"]: r["status"] for r in findings(out, "matched")[0].rows}
    assert status["task"] == "differs (declared)"


def test_scoring_keys_are_left_to_the_scoring_check(tmp_path):
    out = verify(_lmeval_claim(tmp_path, version=(1.0, 2.0), changes=["model"]))
    assert "arms_scored_differently" in codes(out, "scoring")
    assert "undeclared_difference" not in codes(out)
    rows = findings(out, "matched")[0].rows
    assert [r["status"] for r in rows if r["setting"] == "task_version"] == ["differs (see the scoring check)"]


def test_unknown_declared_change_is_reported(tmp_path):
    out = verify(_lmeval_claim(tmp_path, changes=["colour"]))
    (f,) = findings(out, "unknown_declared_change")
    assert f.outcome == "info" and "colour" in f.title


def test_jsonl_logs_record_no_settings_and_get_nothing(claim_dir):
    p = claim_dir(jsonl_claim([16], 16), {"logs/base_16.jsonl": arm_rows([0, 1] * 10),
                                          "logs/treat_16.jsonl": arm_rows([1] * 20)})
    out = verify(load_claim(p))
    assert "settings" in out.report.checks_run and not codes(out)


def test_counts_only_claim_skips_the_check(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(json.dumps({"claim": {"title": "t", "reported": {"baseline": {"passes": 4, "n": 89},
                                                                   "treatment": {"passes": 6, "n": 89}}}}))
    out = verify(load_claim(p))
    assert "settings" not in out.report.checks_run and not codes(out)


# --- live-mode records: settings per budget and the sweep check ---------------------------------------------------

def _live_records(settings: dict, run: dict):
    rows = []
    for arm in ("baseline", "treatment"):
        for b in (4, 12):
            for i in range(20):
                ok = (i % 2 == 0) if arm == "baseline" else (i % 4 != 3)
                rows.append({"arm": arm, "item_id": f"i{i:02d}", "variant": "default", "budget": b, "scoring": "exact",
                             "score": float(ok), "text": "7" if ok else "8", "target": "7",
                             "finish_reason": "stop", "completion_tokens": 1})
    return build_records([pd.DataFrame(rows)], [LogSource("baseline", 4, "live", "0" * 64, 20)], settings, run=run)


def _live_settings(**treat) -> dict:
    def one(b, **kw):
        return {"mode": "live", "endpoint": "embedded", "replicas": [], "model": "gemma-3-270m", "api": "completions",
                "max_tokens": b, "temperature": 0.0, "top_p": 1.0, "seed": 0, "stop": ["\n"],
                "prompt_template": "Q: {{ question }}\nA:", "system_prompt": None,
                "budget_source": "generated" if b == 12 else "derived from the 12-token run",
                "llama_cpp_python": "0.3.16", "model_file": "gemma-3-270m-it-Q4_K_M.gguf sha256:abc", **kw}
    return {"baseline": {b: one(b) for b in (4, 12)}, "treatment": {b: one(b, **treat) for b in (4, 12)}}


def _claim(tmp_path, changes):
    return Claim.model_validate({"claim": {"title": "live", "settings": {"max_tokens": 4, "scoring": "exact"},
                                           "treatment_changes": changes},
                                 "options": {"resamples": 1000}}).model_copy(update={"path": tmp_path / "c.yaml"})


def test_live_sweep_mismatch_is_flagged_with_items(tmp_path):
    run = {"baseline": {"requests": 20, "sweep_checked": 2, "sweep_mismatches": [
               {"budget": 4, "item_id": "i03", "derived": "The answ", "real": "The ans"}]},
           "treatment": {"requests": 20, "sweep_checked": 2, "sweep_mismatches": []}}
    settings = _live_settings(prompt_template="Q: {{ question }} Check it.\nA:")
    out = verify(_claim(tmp_path, ["prompt_template"]), records=_live_records(settings, run))
    (f,) = findings(out, "sweep_mismatch")
    assert f.severity == "major" and f.impact == "none" and f.outcome == "flag"
    assert f.statistic == {"arm": "baseline", "budgets": [4], "mismatches": 1, "checked": 2}
    assert f.evidence == [{"item_id": "i03", "budget": 4, "derived_output": "The answ", "real_output": "The ans",
                           "reason": None}]
    assert "matched" in codes(out)  # endpoint and budget_source are bookkeeping, not settings


def test_live_undeclared_temperature_at_every_budget(tmp_path):
    settings = _live_settings(temperature=0.8, api="chat")
    out = verify(_claim(tmp_path, ["prompt_template"]), records=_live_records(settings, {}))
    diffs = {f.statistic["setting"]: f for f in findings(out, "undeclared_difference")}
    assert set(diffs) == {"temperature", "api"}
    assert diffs["temperature"].severity == "critical" and diffs["temperature"].statistic["budgets"] == [4, 12]
    assert diffs["api"].severity == "major" and diffs["api"].impact == "fragile"
    assert "declared_change_absent" in codes(out)  # prompt_template declared but identical
    assert [f.code for f in out.findings if f.check == "settings"][:2] == ["undeclared_difference"] * 2
    assert findings(out, "undeclared_difference")[0].statistic["setting"] == "temperature"  # critical first


# --- the model identity and guessed values are never undeclared differences -----------------------------------------

def _two_models_claim(tmp_path, base_cfg: dict, treat_cfg: dict, changes=None):
    """Two lm-eval runs whose results files differ only in what ``base_cfg`` / ``treat_cfg`` set."""
    texts = [str(i) for i in range(40)]
    for name, arm_cfg, scores in (("b", base_cfg, [i % 2 for i in range(40)]), ("t", treat_cfg, [1] * 40)):
        write_lmeval_run(tmp_path / name, "add", 16, texts, {"strict-match": scores}, "Q")
        (res,) = (tmp_path / name).glob("results_*.json")
        data = json.loads(res.read_text())
        data["config"].update(arm_cfg.get("config", {}))
        data.update({k: v for k, v in arm_cfg.items() if k != "config"})
        res.write_text(json.dumps(data))
    return _claim_over_runs(tmp_path, changes)


def test_two_models_are_the_claim_not_an_undeclared_difference(tmp_path):
    """Real lm-eval logs of two models, no treatment_changes: model_name and model_args' pretrained= differ. Shown
    side by side, never flagged."""
    out = verify(_two_models_claim(
        tmp_path,
        {"model_name": "org/base-7b", "config": {"model": "hf", "model_args": "pretrained=org/base-7b,dtype=bfloat16"}},
        {"model_name": "org/tuned-7b",
         "config": {"model": "hf", "model_args": "pretrained=org/tuned-7b,dtype=bfloat16"}}))
    assert "undeclared_difference" not in codes(out)
    (f,) = findings(out, "matched")
    assert "names of the models compared" in f.title
    status = {r["setting"]: r["status"] for r in f.rows}
    assert status["model_name"] == status["model_args"] == settings_check.IDENTITY_STATUS
    assert status["model_type"] == "same"  # lm-eval's --model is the backend, compared like the API
    assert out.report.verdict == "supported"


def test_model_args_beyond_the_name_are_still_compared(tmp_path):
    out = verify(_two_models_claim(
        tmp_path,
        {"model_name": "org/a", "config": {"model": "hf", "model_args": "pretrained=org/a,dtype=bfloat16"}},
        {"model_name": "org/b", "config": {"model": "vllm", "model_args": "pretrained=org/b,dtype=float16"}}))
    diffs = {f.statistic["setting"]: f for f in findings(out, "undeclared_difference")}
    assert set(diffs) == {"model_args", "model_type"}  # dtype and the backend, not the names
    assert all(f.severity == "major" for f in diffs.values())
    status = {r["setting"]: r["status"] for r in findings(out, "side_by_side")[0].rows}
    assert status["model_name"] == settings_check.IDENTITY_STATUS


@pytest.mark.parametrize("a,b,identity", [
    ("pretrained=org/a,dtype=bfloat16", "pretrained=org/b,dtype=bfloat16", True),
    ("model=m1,base_url=http://h1/v1,api_key=<redacted>", "model=m2,base_url=http://h2/v1,api_key=<redacted>", True),
    ("pretrained=org/a,peft=org/lora", "pretrained=org/a", True),
    ("pretrained=org/a,dtype=bfloat16", "pretrained=org/b,dtype=float16", False),
    ({"pretrained": "a", "max_length": 2048}, {"pretrained": "b", "max_length": 4096}, False),
])
def test_model_args_identity_parts(a, b, identity):
    assert settings_check.is_identity_difference("model_args", a, b) is identity


def test_live_model_names_are_not_flagged_but_sampling_is(tmp_path):
    settings = _live_settings(model="gemma-3-1b", model_file="gemma-3-1b-it-Q4_K_M.gguf sha256:def", temperature=0.8)
    out = verify(_claim(tmp_path, []), records=_live_records(settings, {}))
    diffs = {f.statistic["setting"]: f for f in findings(out, "undeclared_difference")}
    assert set(diffs) == {"temperature"} and diffs["temperature"].severity == "critical"
    status = {r["setting"]: r["status"] for r in findings(out, "side_by_side")[0].rows}
    assert status["model"] == status["model_file"] == settings_check.IDENTITY_STATUS


def test_task_names_guessed_from_file_names_are_not_compared(tmp_path):
    """lm-eval samples without a results file: the importer derives each arm's task from the file name. Two names
    that differ are shown, not flagged; what the logs do record (the budget) is still compared."""
    from conftest import lmeval_lines, write_jsonl

    texts = [str(i) for i in range(30)]
    write_jsonl(tmp_path / "b/samples_add_2026-11-21T05-00-00.000000.jsonl",
                lmeval_lines(texts, {"none": [i % 2 for i in range(30)]}, 16))
    write_jsonl(tmp_path / "t/samples_add_renamed_2026-11-21T05-00-00.000000.jsonl",
                lmeval_lines(texts, {"none": [1] * 30}, 16))
    p = tmp_path / "c.yaml"
    p.write_text(json.dumps({"claim": {"title": "t", "settings": {"max_tokens": 16}},
                             "samples": {"format": "lm-eval", "baseline": {16: "b/samples_*.jsonl"},
                                         "treatment": {16: "t/samples_*.jsonl"}}}))
    out = verify(load_claim(p))
    assert "undeclared_difference" not in codes(out)
    (f,) = findings(out, "matched")
    rows = {r["setting"]: r for r in f.rows}
    assert rows["task"]["status"] == settings_check.GUESSED_STATUS
    assert (rows["task"]["baseline"], rows["task"]["treatment"]) == ("add", "add_renamed")
    assert rows["max_tokens"]["status"] == "same"


def test_an_importer_marker_for_guessed_values_is_honoured(tmp_path):
    settings = _live_settings(prompt_template="Q: {{ question }} (rephrased)\nA:", temperature=0.8)
    for arm in ("baseline", "treatment"):
        for b in settings[arm]:
            settings[arm][b]["guessed"] = ["prompt"]  # alias of prompt_template
    out = verify(_claim(tmp_path, []), records=_live_records(settings, {}))
    diffs = {f.statistic["setting"] for f in findings(out, "undeclared_difference")}
    assert diffs == {"temperature"}
    status = {r["setting"]: r["status"] for r in findings(out, "side_by_side")[0].rows}
    assert status["prompt_template"] == settings_check.GUESSED_STATUS
    assert settings_check.guessed({"format": "lm-eval", "results_file": "/x/results.json"}) == set()
    assert settings_check.guessed({"format": "lm-eval"}) == {"task"}


def test_live_lm_eval_task_per_arm_is_the_declared_prompt_variant(tmp_path):
    """A live run of lm-eval tasks records each arm's task as ``lm_eval_task``: it is lm-eval's task name, which a
    declared prompt_template covers (before, an undeclared 'other' difference that made the claim fragile)."""
    settings = _live_settings(lm_eval_task="add_direct", prompt_template="Q: {{ question }}\nA: The answer is")
    for b in settings["baseline"]:
        settings["baseline"][b]["lm_eval_task"] = "add_verify"
    out = verify(_claim(tmp_path, ["prompt_template"]), records=_live_records(settings, {}))
    assert "undeclared_difference" not in codes(out)
    status = {r["setting"]: r["status"] for r in findings(out, "matched")[0].rows}
    assert status["task"] == status["prompt_template"] == "differs (declared)"
