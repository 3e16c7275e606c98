#!/bin/sh
# The platform image's entry point. SageMaker starts a serving container with the single argument
# `serve`; everything else (AWS Batch's `python -m pipelines.training.job ...`, the Prefect Kubernetes worker's
# flow-run command) runs as given.
set -eu
if [ "$#" -eq 1 ] && [ "$1" = "serve" ]; then
  exec mlops container serve
fi
exec "$@"
