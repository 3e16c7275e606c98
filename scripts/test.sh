#!/usr/bin/env bash
# The whole test suite: lint, type check, then pytest (fast and slow tests). Fails on any failure,
# and treats "no tests collected" (pytest exit 5) as a failure too.
set -uo pipefail
cd "$(dirname "$0")/.."
export AWS_DEFAULT_REGION=eu-west-1 AWS_EC2_METADATA_DISABLED=true DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
echo "==> ruff"; .venv/bin/ruff check . || exit 1
echo "==> mypy"; .venv/bin/mypy || exit 1
echo "==> pytest"
# Two workers by default (TEST_WORKERS=0 runs in this process, for debugging); a worker takes a whole
# test file, so module fixtures are built once.
.venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
status=$?
if [ "$status" -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi
exit "$status"
