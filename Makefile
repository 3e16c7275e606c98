# The two commands of the quick start, and a few for contributors.
.PHONY: demo test lint bench lock clean

demo:  ## create .venv, bring the local environment up, train on example data, deploy the model locally
	@scripts/bootstrap.sh
	@.venv/bin/mlops demo --env local

test:  ## create .venv and run the whole test suite (lint and type checks included)
	@scripts/bootstrap.sh
	@scripts/test.sh

lint:
	@.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

bench:
	@.venv/bin/python -m bench.all

lock:  ## re-resolve requirements.lock from pyproject.toml (then review the diff)
	@rm -rf .venv-lock && python3.11 -m venv .venv-lock && .venv-lock/bin/pip install -q -e '.[dev]' \
	  && .venv-lock/bin/pip freeze --exclude-editable | sed 's/^torch==2.13.0+cpu$$/torch==2.13.0/' > requirements.lock \
	  && rm -rf .venv-lock

clean:
	rm -rf .mlops
