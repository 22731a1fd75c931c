#!/usr/bin/env bash
# Installs the system packages FieldOps needs on Debian, only those that are missing.
# Safe to run repeatedly. Leaves no system Redis service running: FieldOps and its tests
# start their own redis-server in a private directory.
set -euo pipefail

packages=(redis-server redis-tools libhiredis-dev libsqlite3-dev libncurses-dev tmux)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

# The contract tests validate responses with Python's jsonschema (and read the OpenAPI YAML).
python_ready() { python3 -c 'import jsonschema, yaml' >/dev/null 2>&1; }
if command -v python3 >/dev/null 2>&1 && ! python_ready; then
    echo "setup: installing the Python packages jsonschema and pyyaml" >&2
    python3 -m pip install --quiet --user jsonschema pyyaml >/dev/null 2>&1 \
        || python3 -m pip install --quiet --user --break-system-packages jsonschema pyyaml >/dev/null 2>&1 \
        || python3 -m pip install --quiet jsonschema pyyaml >/dev/null 2>&1 \
        || true
fi
if ! command -v python3 >/dev/null 2>&1 || ! python_ready; then
    missing+=(python3 python3-jsonschema python3-yaml)
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "setup: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    sudo_cmd=(sudo)
fi

# policy-rc.d keeps Debian's maintainer scripts from starting the system redis-server.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
    "${sudo_cmd[@]}" chmod +x "$policy"
    created_policy=1
fi
cleanup() {
    if [ "$created_policy" -eq 1 ]; then "${sudo_cmd[@]}" rm -f "$policy"; fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# In case a service manager started it anyway, stop the system instance.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
    "${sudo_cmd[@]}" systemctl stop redis-server || true
    "${sudo_cmd[@]}" systemctl disable redis-server >/dev/null 2>&1 || true
fi
echo "setup: done" >&2
