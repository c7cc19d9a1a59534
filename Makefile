# Two commands on a fresh machine with Python 3.11 and pip:
#   make demo   — the demo audit, ending with the path of report.html
#   make test   — the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml tools/llama_wheel.sh | cksum | cut -d' ' -f1)

.PHONY: demo test lint bench bench-live calibrate realclaims fixtures install-check screenshots clean

# llama-cpp-python is built portably (no -march=native) by tools/llama_wheel.sh before anything else can pull it in.
$(STAMP): pyproject.toml tools/llama_wheel.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	bash tools/llama_wheel.sh $(PY)
	$(PY) -m pip install -q -e ".[test,live,lmeval,inspect,lint,ray]"
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(VENV)/bin/audit verify fixtures/claims/demo.yaml --out out/demo; \
	  code=$$?; echo "report: $$(pwd)/out/demo/report.html (audit exit code $$code)"; test $$code -le 1

test: $(STAMP)
	$(PY) -m pytest -q

# ruff (lint + format check) and mypy on audit/, checks/, reports/ (tools/lint.py; configuration in pyproject.toml,
# the strictness explained in CONTRIBUTING.md). `$(PY) tools/lint.py --fix` applies ruff's safe fixes and format.
lint: $(STAMP)
	$(PY) tools/lint.py

# From a fresh clone: build, twine check, a new venv elsewhere, pip install the wheel, audit verify a replay fixture
# (tools/install_check.py); then the GitHub Action and the GitLab job in a scratch repository (tools/ci_recipes.py).
install-check: $(STAMP)
	$(PY) -m pytest -q tests/test_packaging.py

# The README's screenshots of report.html at 1400 and 420 px (Chromium headless; .ci/run installs it).
screenshots: $(STAMP)
	AUDIT_SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest -q tests/test_browser.py -k 1400

bench: $(STAMP)
	$(PY) benchmarks/replay_100k.py
	$(PY) benchmarks/replay_scale.py

calibrate: $(STAMP)
	$(PY) benchmarks/calibrate.py

# Verdicts on real published outputs (../shared/data beside the repository) against the verdicts expected beforehand.
realclaims: $(STAMP)
	$(PY) benchmarks/realclaims.py

bench-live: $(STAMP)
	$(PY) benchmarks/live_sweep.py
	$(PY) benchmarks/live_throughput.py
	$(PY) benchmarks/cached_demo.py
	$(PY) benchmarks/sequential_live.py
	$(PY) benchmarks/ray_live.py

fixtures: $(STAMP)
	$(PY) -m pip install -q -e ".[live,lmeval,inspect]" openai
	$(PY) fixtures/scripts/make_lmeval_logs.py
	$(PY) fixtures/scripts/make_inspect_logs.py

clean:
	rm -rf $(VENV) out .pytest_cache
