# Three commands (see README.md):
#   make run    set up, then stylize the bundled photo with the bundled style
#   make test   set up, then run every test, the notebooks included (what CI runs)
#   make check  set up, then run the unit tests only (no notebooks, browser or slow tests): while working
#   make lab    set up, then open the notebooks in JupyterLab
#   make student    build the nbgrader assignments in course/: source and release versions (classroom/README.md)
#   make autograde  grade the submissions collected in course/submitted/ and write feedback
#   make figures  redraw the reference pictures in docs/figures/: make figures WEIGHTS=PATH LABEL="what they are"
# Set-up is a virtual environment in .venv with requirements.txt and this
# project installed in editable mode; it is redone when either file changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROXY := $(VENV)/node/node_modules/.bin/configurable-http-proxy
WEIGHTS ?= imagenet
LABEL ?=

.PHONY: setup run test check lab lint benchmark quality levers student autograde figures clean

setup: $(STAMP) $(PROXY)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $(STAMP)

# configurable-http-proxy, plain JupyterHub's proxy (classroom/README.md), from npm into .venv/node: its own
# target, so that an environment without it (npm was missing, or .venv came from a cache) gets it later
$(PROXY):
	if command -v npm >/dev/null 2>&1; then \
		npm install --prefix $(VENV)/node --no-audit --no-fund --loglevel=error configurable-http-proxy@5.3.0 \
		|| echo "npm install configurable-http-proxy failed: tests/test_hub.py will be skipped (and fail in CI)"; \
	else echo "npm not found: configurable-http-proxy not installed, tests/test_hub.py will be skipped (and fail in CI)"; fi

run: setup
	mkdir -p outputs
	$(BIN)/python styletransfer_utils.py --output outputs/stylized.png $(ARGS)

test: setup
	$(BIN)/python -m pytest

check: setup
	$(BIN)/python -m pytest -m "not notebook and not browser and not slow"

lab: setup
	$(BIN)/jupyter lab notebooks/

lint: setup
	$(BIN)/ruff check .

benchmark: setup
	$(BIN)/python benchmarks/benchmark_speed.py $(ARGS)

quality: setup
	$(BIN)/python benchmarks/benchmark_quality.py $(ARGS)

levers: setup
	$(BIN)/python benchmarks/optimiser_levers.py $(ARGS)

figures: setup
	$(BIN)/python -m styletransfer_tools.figures --weights "$(WEIGHTS)" --label "$(LABEL)" $(ARGS)

student: setup
	$(BIN)/python -m styletransfer_tools.assignments build $(ARGS)

autograde: setup
	$(BIN)/python -m styletransfer_tools.assignments autograde $(ARGS)

clean:
	rm -rf $(VENV) outputs build course *.egg-info
