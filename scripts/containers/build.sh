#!/usr/bin/env bash
# `make docker-build`: the CPU image facestream:latest, and the GPU image where its base exists.
#
#   scripts/containers/build.sh            # CPU image (+ GPU image when the CUDA base is at hand)
#
# Docker where a Docker engine answers, else podman (installed when absent; engine.sh). Where
# the upstream base images cannot be pulled (an air-gapped site, or a test machine with no
# registry) the Debian stand-ins of scripts/containers/standins.sh are built first, and this
# says so. Prints the build time and the image size.
# Environment: FACESTREAM_IMAGE (facestream:latest), FACESTREAM_GPU_IMAGE (facestream:gpu).
set -euo pipefail
# shellcheck source=scripts/containers/engine.sh
source "$(dirname "${BASH_SOURCE[0]}")/engine.sh"
cd "$REPO_ROOT"

IMAGE="${FACESTREAM_IMAGE:-facestream:latest}"
GPU_IMAGE="${FACESTREAM_GPU_IMAGE:-facestream:gpu}"
PYTHON_BASE=docker.io/library/python:3.11-slim-bookworm
CUDA_BASE=docker.io/nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

# at_hand IMAGE: present locally, or pulled now.
at_hand() {
  "$ENGINE" image inspect "$1" >/dev/null 2>&1 && return 0
  say "pulling $1"
  timeout 300 "$ENGINE" pull -q "$1" >/dev/null 2>&1
}

say "engine: $ENGINE"
if ! at_hand "$PYTHON_BASE"; then
  say "cannot pull $PYTHON_BASE (no registry reachable): building Debian stand-ins for the base"
  say "images first. They are for test machines only; production builds use the upstream images."
  "$REPO_ROOT/scripts/containers/standins.sh"
fi

t0=$SECONDS
"$ENGINE" build "${BUILD_FLAGS[@]}" --target runtime -t "$IMAGE" .
size="$("$ENGINE" image inspect "$IMAGE" --format '{{.Size}}')"
say "built $IMAGE in $((SECONDS - t0)) s; size $((size / 1000000)) MB"

if at_hand "$CUDA_BASE"; then
  t0=$SECONDS
  "$ENGINE" build "${BUILD_FLAGS[@]}" --target gpu -t "$GPU_IMAGE" .
  say "built $GPU_IMAGE in $((SECONDS - t0)) s"
else
  say "NOT BUILT: $GPU_IMAGE. Its base $CUDA_BASE cannot be pulled here, and it has no Debian"
  say "stand-in (CUDA and cuDNN come from NVIDIA's registry; Python 3.11 from the deadsnakes PPA)."
  # As far as it goes without the base: the GPU stage's wheels exist for cp311 at its pins.
  ort="$(sed -n 's/^ARG ONNXRUNTIME_GPU_VERSION=//p' Dockerfile)"
  faiss="$(sed -n 's/^ARG FAISS_GPU_VERSION=//p' Dockerfile)"
  pip="$REPO_ROOT/.venv/bin/pip"
  if [[ -x "$pip" ]] && timeout 180 "$pip" install -q --dry-run --no-deps --ignore-installed \
      "onnxruntime-gpu==$ort" "faiss-gpu-cu12==$faiss" >/dev/null 2>&1; then
    say "checked: onnxruntime-gpu==$ort and faiss-gpu-cu12==$faiss resolve for Python 3.11"
  else
    say "could not resolve onnxruntime-gpu==$ort / faiss-gpu-cu12==$faiss (see the GPU stage)"
  fi
fi
