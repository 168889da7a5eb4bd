#!/usr/bin/env bash
# Builds the images esteira's tests and quick start use, when they are missing.
# No image can be pulled on these machines, so every image is made from Debian packages.
#   esteira-test/busybox:latest   a busybox rootfs (sh, echo, cat, sleep, wget, httpd, ...)
#   esteira-test/python:3.11      Debian bookworm (minbase) with python3, python3-coverage and
#                                 pycodestyle: the seed API's image (examples/seed-api)
#   esteira-test/debian:bookworm  Debian bookworm (minbase) with git, ca-certificates and
#                                 curl: the base of esteira's own images (deploy/docker)
# With arguments (busybox, python, debian), only those are built.
set -euo pipefail

need_apt() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

build_busybox() {
  local name=esteira-test/busybox:latest
  docker image inspect "$name" >/dev/null 2>&1 && return 0
  need_apt busybox-static
  local root
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/tmp" "$root/etc"
  cp /bin/busybox "$root/bin/"
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
  chmod 1777 "$root/tmp"
  tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$name" >/dev/null
  rm -rf "$root"
  echo "built $name"
}

# debootstrap_image NAME PACKAGES [docker import options]: Debian bookworm (minbase) with
# PACKAGES (comma-separated), imported as NAME.
debootstrap_image() {
  local name=$1 packages=$2
  shift 2
  docker image inspect "$name" >/dev/null 2>&1 && return 0
  need_apt debootstrap
  local mirror root
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  root=$(mktemp -d)
  debootstrap --variant=minbase --include="$packages" \
    bookworm "$root" "${mirror:-http://deb.debian.org/debian}" >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import "$@" - "$name" >/dev/null
  rm -rf "$root"
  echo "built $name"
}

build_python() {
  debootstrap_image esteira-test/python:3.11 python3-minimal,python3-coverage,pycodestyle \
    -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' -c 'ENV PYTHONDONTWRITEBYTECODE=1' \
    -c 'CMD ["/bin/sh"]'
}

build_debian() {
  debootstrap_image esteira-test/debian:bookworm git,ca-certificates,curl \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["/bin/bash"]'
}

images=("$@")
[ ${#images[@]} -gt 0 ] || images=(busybox python debian)
for name in "${images[@]}"; do "build_$name"; done
