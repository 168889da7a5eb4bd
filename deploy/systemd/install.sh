#!/usr/bin/env bash
# Installs esteira's binaries, units, users and example settings (never overwriting
# existing settings):  deploy/systemd/install.sh [BIN_DIR]   (default target/release)
# then edit /etc/esteira/*.env and: systemctl enable --now esteira-coordinator esteira-agent
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin_dir=${1:-$here/../../target/release}
install -m 0755 "$bin_dir/esteira-coordinator" "$bin_dir/esteira-agent" "$bin_dir/esteira" /usr/local/bin/
install -m 0644 "$here/esteira-coordinator.service" "$here/esteira-agent.service" /etc/systemd/system/
install -D -m 0644 "$here/esteira.sysusers" /etc/sysusers.d/esteira.conf
for service in coordinator agent; do
  [ -e "/etc/esteira/$service.env" ] || install -D -m 0600 "$here/$service.env.example" "/etc/esteira/$service.env"
done
systemd-sysusers /etc/sysusers.d/esteira.conf
systemctl daemon-reload
