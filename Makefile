# cloudnet.cilium_eks: one entry point for the sandbox, the tests and the build.
# Everything is installed by the targets themselves: a fresh machine needs python3, go and make.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SANDBOX_NAME ?= cilium-eks-sandbox
# real: the chart's Cilium agents and operator run for real on the sandbox's nodes (root, Cilium 1.19/1.20);
# replay: they answer from recorded outputs (no root needed for them; any Cilium version). docs/real-cilium.md
CILIUM ?= real
PYTEST_ARGS ?=
# pytest-xdist workers. Integration: whole files per worker (--dist loadfile keeps a file's sandbox on one worker),
# handed out longest first (tests/integration/conftest.py); most of a file's time is waiting (eksctl's sleeps,
# rollouts, API polls), so 3 workers on 2 cores. Units: whole files too (a file's moto is module-scoped), 2 workers.
# 0 runs the tests in this process, one after another.
INTEGRATION_WORKERS ?= 3
UNIT_WORKERS ?= 2
XDIST_INTEGRATION := -n $(INTEGRATION_WORKERS) --dist loadfile --no-loadscope-reorder -v --durations=25

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export PYTHONPATH := $(CURDIR)/tests/platform
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
SANDBOX := $(PY) -m eks_sandbox

.PHONY: help deps platform sandbox sandbox-up sandbox-down test checks sanity lint units integration integration-real molecule build bench bench-cold lock clean docs docs-lint role-docs ee changelog

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --requirement requirements-dev.lock
	touch $@

deps: $(VENV)/.installed ## venv with pinned Python packages, kubernetes.core and amazon.aws, Debian packages
	$(PY) scripts/install_collections.py
	bash scripts/install_debs.sh

platform: deps ## build/fetch the local platform's tools and Cilium charts (cached by version)
	# The charts download (network) while the tools compile (CPU).
	$(SANDBOX) charts & charts=$$!; $(SANDBOX) build || { wait $$charts; exit 1; }; wait $$charts

sandbox: platform ## the main job on the local sandbox: playbooks/site.yml against inventories/sandbox
	$(SANDBOX) up --name $(SANDBOX_NAME) --empty --cilium $(CILIUM)
	$(SANDBOX) datapath up --name $(SANDBOX_NAME) --namespace cilium-bandwidth-test
	eval "$$($(SANDBOX) env --name $(SANDBOX_NAME))" && \
	  $(VENV)/bin/ansible-playbook -i inventories/sandbox playbooks/site.yml

sandbox-up: platform ## start the sandbox only, empty (kwok + moto + the EKS proxy; CILIUM=real|replay): the real eksctl makes the cluster
	$(SANDBOX) up --name $(SANDBOX_NAME) --empty --cilium $(CILIUM)

sandbox-down: deps ## stop the sandbox, leaving no process behind
	$(SANDBOX) down --name $(SANDBOX_NAME)

test: ## everything CI runs: the static checks beside the platform's build, then the unit and integration tests
	# Two jobs: `platform` compiles Go on every core, and the checks (mostly one Python process each) run one after
	# another beside it instead of after it. Their lines interleave with the build's progress, which shows as it
	# comes (make's --output-sync would hold a job's output until the job ends).
	$(MAKE) --no-print-directory -j2 platform checks
	$(MAKE) --no-print-directory units integration

checks: deps ## the static checks, one after another: ansible-test sanity, ansible-lint, docs lint, the docs site
	# -j1: under `make test -j2` they share the one job beside the build, never run two at once (make says so with a
	# "-j1 forced in submake" warning).
	$(MAKE) --no-print-directory -j1 sanity lint docs-lint docs

sanity: deps ## ansible-test sanity
	$(PY) scripts/run_ansible_test.py sanity --python 3.11 --color no

lint: deps ## ansible-lint (production profile) and shellcheck
	$(VENV)/bin/ansible-lint --profile production
	shellcheck scripts/*.sh .ci/run

units: deps ## unit tests (module_utils, parsers, platform tool) on UNIT_WORKERS workers (default 2)
	$(PY) -m pytest tests/unit tests/platform -n $(UNIT_WORKERS) --dist loadfile --durations=10 $(PYTEST_ARGS)

integration: platform ## integration tests on the local platform, INTEGRATION_WORKERS files at once (3; 0: serial)
	$(PY) -m pytest tests/integration $(XDIST_INTEGRATION) $(PYTEST_ARGS)

integration-real: platform ## the real-agent tier alone: real Cilium agents and operator on the sandbox's nodes
	$(PY) -m pytest tests/integration/test_real_cilium.py tests/integration/test_real_chaining.py $(PYTEST_ARGS)

molecule: platform ## molecule scenarios (extensions/molecule), each on its own sandbox, one after another
	$(VENV)/bin/molecule test --all

role-docs: deps ## regenerate docs/roles/*.md and the README role table from roles/*/meta/argument_specs.yml
	$(PY) scripts/gen_role_docs.py

docs-lint: deps ## antsibull-docs lint of the plugin and role docs; role docs and CHANGELOG up to date
	# `all`: the linter reads the dependencies where they are installed (.collections) instead of copying them, which
	# it does with `git ls-files` from inside this repository, getting nothing: amazon.aws's doc fragments would be
	# missing for eksctl_cluster(_info).
	$(VENV)/bin/antsibull-docs lint-collection-docs --plugin-docs --validate-collection-refs all .
	$(PY) scripts/gen_role_docs.py --check
	$(VENV)/bin/antsibull-changelog lint
	$(PY) scripts/gen_changelog.py --check

changelog: deps ## regenerate CHANGELOG.rst/.md from changelogs/ (antsibull-changelog; after adding a fragment)
	$(PY) scripts/gen_changelog.py

DOCSITE := build/docsite
docs: deps ## the documentation site (antsibull-docs + Sphinx, offline) in build/docsite/html
	rm -rf $(DOCSITE) && mkdir -p $(DOCSITE)/rst && chmod og-w $(DOCSITE)/rst
	$(VENV)/bin/antsibull-docs --config-file docs/site/antsibull-docs.cfg collection --use-current \
	  --fail-on-error --dest-dir $(DOCSITE)/rst cloudnet.cilium_eks
	cp docs/site/index.rst $(DOCSITE)/rst/index.rst
	$(VENV)/bin/sphinx-build -b html -c docs/site -W --keep-going -q $(DOCSITE)/rst $(DOCSITE)/html
	@echo "open $(DOCSITE)/html/index.html"

build: deps ## build the collection tarball
	$(VENV)/bin/ansible-galaxy collection build --force --output-path build/

bench: platform ## benchmarks on the sandbox (no-op cost, readiness, scale, many clusters, role vs bare eksctl): bench/results/*.json
	$(PY) bench/noop_cost.py
	$(PY) bench/readiness_latency.py
	$(PY) bench/scale.py
	$(PY) bench/many_clusters.py
	$(PY) bench/real_eksctl.py
	$(PY) bench/real_status.py

bench-cold: deps ## time a cold platform build (fresh tool, Go module and Go build caches)
	$(PY) bench/cold_platform_build.py

ee: deps ## execution environment build context in build/ee/context (collection tarball + ansible-builder create)
	rm -rf build/ee && mkdir -p build/ee
	$(VENV)/bin/ansible-galaxy collection build --output-path build/ee .
	$(VENV)/bin/ansible-builder create --file execution-environment.yml --context build/ee/context
	@echo "next: podman build -t cilium-eks-ee:$$(awk '/^version:/ {print $$2}' galaxy.yml) build/ee/context"

lock: ## re-resolve requirements-dev.in into requirements-dev.lock
	rm -rf build/lockvenv && $(PYTHON) -m venv build/lockvenv
	build/lockvenv/bin/pip install --quiet -r requirements-dev.in
	{ echo "# Exact versions for development and CI. Regenerate: make lock"; \
	  build/lockvenv/bin/pip freeze | grep -vE '^(pip|setuptools)=='; } > requirements-dev.lock

clean: ## remove the venv and build outputs (the tool cache outside the repo stays)
	rm -rf $(VENV) .collections build .pytest_cache
