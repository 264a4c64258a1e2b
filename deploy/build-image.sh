#!/usr/bin/env bash
# Builds the scratch image (deploy/scratch/Dockerfile) from the static binary, with no pulls.
#
#   deploy/build-image.sh [TAG] [BINARY]
#
# TAG defaults to gsai-load:static; BINARY to target/static/gsai-load, built first by
# deploy/build-static.sh when missing. Uses podman, else docker (CONTAINER_ENGINE overrides).
# The CA bundle is the build machine's (/etc/ssl/certs/ca-certificates.crt, Debian's
# ca-certificates; CA_BUNDLE overrides).
set -euo pipefail
cd "$(dirname "$0")/.."

tag="${1:-gsai-load:static}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
binary="${2:-$target_dir/static/gsai-load}"
ca_bundle="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
engine="${CONTAINER_ENGINE:-$(command -v podman || command -v docker || true)}"

[ -n "$engine" ] || { echo "build-image.sh: neither podman nor docker on PATH" >&2; exit 2; }
[ -f "$binary" ] || binary="$(deploy/build-static.sh)"
[ -f "$ca_bundle" ] || {
  echo "build-image.sh: no CA bundle at $ca_bundle (apt-get install ca-certificates, or set CA_BUNDLE)" >&2
  exit 2
}

context="$target_dir/image"
rm -rf "$context"
root="$context/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp"
# /tmp: world-writable with the sticky bit, as on any Linux; the compose file writes its JSON there.
chmod 1777 "$root/tmp"
install -m 0755 "$binary" "$root/usr/local/bin/gsai-load"
install -m 0644 deploy/scratch/etc/passwd deploy/scratch/etc/group deploy/scratch/etc/nsswitch.conf "$root/etc/"
install -m 0644 "$ca_bundle" "$root/etc/ssl/certs/ca-certificates.crt"
cp deploy/scratch/Dockerfile "$context/Dockerfile"

"$engine" build --quiet --tag "$tag" "$context" >/dev/null
echo "$tag"
