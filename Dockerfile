# The platform image. One image runs everything that runs in the cloud: Prefect flow runs on the
# Kubernetes work pool, AWS Batch training jobs (`python -m pipelines.training.job SPEC_URI`) and the SageMaker
# endpoint (`serve`). `mlops image publish` builds it and pushes it to the environment's ECR
# repositories; on linux/amd64, torch==2.13.0 from PyPI brings CUDA, so GPU nodes use their GPUs.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLOPS_PROJECT_ROOT=/opt/mlops \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /opt/mlops

# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY . .
RUN pip install --no-deps -e . \
    && useradd --uid 10001 --no-create-home --home-dir /tmp mlops

USER 10001
EXPOSE 8080
ENTRYPOINT ["/opt/mlops/docker/entrypoint.sh"]
