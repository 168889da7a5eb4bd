#!/usr/bin/env bash
# Builds the images esteira's tests and quick start use, when they are missing.
# No image can be pulled on these machines, so every image is made from Debian packages.
#   esteira-test/busybox:latest  a busybox rootfs (sh, echo, cat, sleep, wget, httpd, ...)
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

build_busybox
