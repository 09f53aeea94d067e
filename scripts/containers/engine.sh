# Which container engine builds and runs facestream's images. Sourced, not executed.
# shellcheck shell=bash
#
# Docker where a Docker engine answers; otherwise podman, installed from Debian when absent
# (with runc and the settings this kind of host needs, in /etc/containers/containers.conf).
# Sets ENGINE (docker|podman) and BUILD_FLAGS (extra `build` flags for this host).

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

say() { printf '[containers] %s\n' "$*" >&2; }
die() { printf '[containers] ERROR: %s\n' "$*" >&2; exit 1; }
as_root() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# A host whose kernel is sandboxed (gVisor here) refuses crun's cgroup layout, raising
# RLIMIT_NOFILE and systemd cgroups: runc, no default ulimits, no pids limit, cgroupfs.
CONTAINERS_CONF=/etc/containers/containers.conf
write_containers_conf() {
  [[ -s "$CONTAINERS_CONF" ]] && return 0
  say "writing $CONTAINERS_CONF (runc, cgroupfs, no default ulimits)"
  as_root mkdir -p /etc/containers
  as_root tee "$CONTAINERS_CONF" >/dev/null <<'CONF'
# written by facestream scripts/containers/engine.sh
[containers]
default_ulimits = []
pids_limit = 0

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
CONF
}

install_podman() {
  # dnsname: compose services find each other by name on podman's CNI bridge.
  local pkgs=(podman runc golang-github-containernetworking-plugin-dnsname)
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || missing+=(runc)
  [[ -x /usr/lib/cni/dnsname ]] || missing+=(golang-github-containernetworking-plugin-dnsname)
  ((${#missing[@]})) || return 0
  say "installing ${pkgs[*]} from Debian"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

docker_answers() {
  command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1
}

if [[ -n "${FACESTREAM_CONTAINER_ENGINE:-}" ]]; then
  ENGINE="$FACESTREAM_CONTAINER_ENGINE"
elif docker_answers && ! docker info 2>/dev/null | grep -qi podman; then
  ENGINE=docker
else
  ENGINE=podman
fi
BUILD_FLAGS=()
if [[ "$ENGINE" == podman ]]; then
  install_podman
  write_containers_conf
  # Package installs inside a build go through the host's network and trust its CAs. Docker
  # image format: podman's default (OCI) has no HEALTHCHECK and would drop the Dockerfile's.
  BUILD_FLAGS=(--format docker --network=host -v /etc/ssl/certs:/etc/ssl/certs:ro)
fi
