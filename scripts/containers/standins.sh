#!/usr/bin/env bash
# Debian stand-ins for the upstream base images, where no container registry is reachable.
#
#   scripts/containers/standins.sh            # build the stand-ins that are missing
#   scripts/containers/standins.sh --force    # rebuild them all
#
# FOR TEST MACHINES ONLY. The Dockerfile and docker-compose.yml name the upstream images
# (python:3.11-slim-bookworm, apache/kafka:4.1.0, postgres:17-bookworm); a site that can pull
# them never runs this. Here a Debian bookworm root file system (debootstrap) is imported as
# localhost/facestream-standin/debian:bookworm, and each stand-in is built on it from Debian
# packages (and the Kafka jars from Maven Central), then tagged with the upstream name so the
# files build and run unchanged. Differences: PostgreSQL is Debian's 15, not 17; the Kafka and
# PostgreSQL entrypoints implement only what docker-compose.yml uses (see their Containerfiles).
# The nvidia/cuda base has no Debian stand-in: the GPU target cannot be built here.
set -euo pipefail
# shellcheck source=scripts/containers/engine.sh
source "$(dirname "${BASH_SOURCE[0]}")/engine.sh"

HERE="$REPO_ROOT/scripts/containers/standins"
CACHE="$REPO_ROOT/.cache/standins"
DEBIAN_TAG=localhost/facestream-standin/debian:bookworm
MIRROR="${FACESTREAM_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
FORCE=0
[[ "${1:-}" == --force ]] && FORCE=1

declare -A UPSTREAM=(
  [python]=docker.io/library/python:3.11-slim-bookworm
  [kafka]=docker.io/apache/kafka:4.1.0
  [postgres]=docker.io/library/postgres:17-bookworm
)

have_image() { "$ENGINE" image inspect "$1" >/dev/null 2>&1; }

debian_base() {
  if ((FORCE == 0)) && have_image "$DEBIAN_TAG"; then return 0; fi
  command -v debootstrap >/dev/null || {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
  }
  local rootfs="$CACHE/rootfs-bookworm"
  as_root rm -rf "$rootfs"
  mkdir -p "$CACHE"
  say "debootstrap bookworm (minbase) from $MIRROR"
  as_root debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$MIRROR" \
    >"$CACHE/debootstrap.log" 2>&1 || { tail -n 30 "$CACHE/debootstrap.log" >&2; die "debootstrap failed"; }
  # Like the upstream slim images: no apt caches, no docs.
  as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/*
  say "importing it as $DEBIAN_TAG"
  as_root tar -C "$rootfs" -c . | "$ENGINE" import - "$DEBIAN_TAG" >/dev/null
  as_root rm -rf "$rootfs"
}

kafka_context() {
  local ctx="$CACHE/kafka"
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp "$HERE/kafka/"* "$ctx/"
  cp "$REPO_ROOT/scripts/kafka/log4j2.properties" "$ctx/"
  say "resolving the Kafka jars for the stand-in with Maven"
  mvn -B -q -Dstyle.color=never -f "$ctx/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$ctx/libs" -DincludeScope=runtime >&2 || die "mvn failed for the Kafka stand-in"
  echo "$ctx"
}

build_standin() {
  local name="$1" tag="${UPSTREAM[$1]}" ctx="$HERE/$1"
  if ((FORCE == 0)) && have_image "$tag"; then
    say "$tag present"
    return 0
  fi
  [[ "$name" == kafka ]] && ctx="$(kafka_context)"
  say "building the stand-in for $tag (Debian packages; for test machines only)"
  # Host network for apt (plain http); no CA mount: Debian's Java would rewrite that bundle.
  "$ENGINE" build --network=host -t "$tag" -f "$ctx/Containerfile" "$ctx"
}

debian_base
for name in python kafka postgres; do
  build_standin "$name"
done
say "stand-ins ready: ${UPSTREAM[*]}"
