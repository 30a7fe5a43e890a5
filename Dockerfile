# syntax=docker/dockerfile:1
# The strongroom operator image: `docker build -t strongroom:dev .`
#
# Two stages: the build stage resolves exactly the locked dependencies (uv.lock, no dev group) into a
# virtualenv at /opt/strongroom; the runtime stage is the same Python base with only that virtualenv,
# no compiler, no uv, no sources, running as an unprivileged user.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# binutils for `strip` (container/prune_venv.py); build stage only.
RUN apt-get update \
 && apt-get install -y --no-install-recommends binutils \
 && rm -rf /var/lib/apt/lists/*
# Same uv as the Makefile, so the lock file is read the way CI reads it.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
# Bytecode compiled at build time: the runtime root filesystem is read-only. The base image's Python
# is used (never a downloaded one), so the virtualenv's interpreter links resolve in the runtime stage.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/strongroom
WORKDIR /src
# Dependencies in their own layer: rebuilt only when the lock file changes, not on every code change.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY src ./src
# --no-editable: install strongroom itself as a package, so /src is not needed at run time.
RUN uv sync --frozen --no-dev --no-editable
# What the dependencies ship but the operator never runs (unused AWS/GCP API models, debug symbols,
# test suites, type stubs): the same script testenv.image runs, so both images hold the same files.
COPY container/prune_venv.py ./container/
RUN python container/prune_venv.py "$UV_PROJECT_ENVIRONMENT"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="strongroom" \
      org.opencontainers.image.description="strongroom Kubernetes operator" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/strongroom/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/strongroom /opt/strongroom
# 65532 is the conventional "nonroot" uid/gid; the Helm chart's securityContext uses the same ids.
USER 65532:65532
# 8080 metrics, 8081 health probes (see docs/operator.md).
EXPOSE 8080 8081
ENTRYPOINT ["strongroom", "operator", "run"]
