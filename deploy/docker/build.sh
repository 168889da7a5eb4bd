#!/usr/bin/env bash
# Builds esteira's images from binaries already built, without compiling in Docker:
#   deploy/docker/build.sh [--bin-dir DIR] [--base IMAGE] [--tag TAG]
# makes esteira-coordinator:TAG and esteira-agent:TAG from DIR (default target/release:
# run `cargo build --release --bins` first) on IMAGE (default debian:bookworm-slim; on a
# machine that cannot pull, `.ci/images.sh debian` makes esteira-test/debian:bookworm).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin_dir="$here/../../target/release" base=debian:bookworm-slim tag=latest
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) bin_dir=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    *) echo "usage: $0 [--bin-dir DIR] [--base IMAGE] [--tag TAG]" >&2; exit 2 ;;
  esac
done
# A context of the three binaries only, not the whole target directory.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
for binary in esteira-coordinator esteira-agent esteira; do
  if [ ! -x "$bin_dir/$binary" ]; then
    echo "$bin_dir/$binary is missing: run cargo build --release --bins" >&2
    exit 1
  fi
  cp "$bin_dir/$binary" "$context/"
done
for target in coordinator agent; do
  docker build --quiet --file "$here/Dockerfile" --target "$target" \
    --build-arg "BASE=$base" --tag "esteira-$target:$tag" "$context" >/dev/null
  echo "built esteira-$target:$tag"
done
