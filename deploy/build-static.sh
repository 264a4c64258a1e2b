#!/usr/bin/env bash
# Builds the fully static Linux binary that a release attaches and the scratch image copies:
# glibc linked statically (+crt-static) as a non-PIE executable (relocation-model=static), so it
# has no program interpreter and no dynamic section and runs in an empty root filesystem. Uses
# only the installed toolchain (no musl target needed).
#
#   deploy/build-static.sh            # -> target/static/gsai-load-<version>-x86_64-linux-static{,.sha256}
#
# Prints the binary's path. Honours CARGO_TARGET_DIR; cargo rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

triple="$(uname -m)-unknown-linux-gnu"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"

# --target keeps these flags off build scripts and proc macros (they stay dynamic, for the host).
# getrandom (0.3, 0.4) finds glibc's getrandom() through dlsym, which a static binary does not
# have, and then falls back to /dev/urandom, absent from an empty root: call getrandom() directly.
RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static --cfg getrandom_backend=\"linux_getrandom\"" \
  cargo build --locked --profile dist --target "$triple" --bin gsai-load >&2

built="$target_dir/$triple/dist/gsai-load"
out_dir="$target_dir/static"
name="gsai-load-$version-$(uname -m)-linux-static"
mkdir -p "$out_dir"
cp "$built" "$out_dir/$name"
(cd "$out_dir" && sha256sum "$name" > "$name.sha256")
# A stable name for the image build and the tests.
cp "$out_dir/$name" "$out_dir/gsai-load"
echo "$out_dir/$name"
