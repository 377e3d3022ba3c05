#!/usr/bin/env bash
# Headless Chromium for the dashboard test (tests/dashboard.rs), from Debian's packages:
# installs it once (apt-get update only when the package is not known yet) and prints its path.
# Idempotent: a machine that has it prints the path and does nothing else.
set -euo pipefail
find_chromium() {
    command -v chromium || command -v chromium-browser || true
}
path=$(find_chromium)
if [ -z "$path" ]; then
    if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
        echo "chromium.sh: chromium is not installed and this user cannot install it" >&2
        exit 1
    fi
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    # The package lists may be missing or old on a fresh machine: update once, then install.
    if ! apt-cache show chromium >/dev/null 2>&1 || ! $sudo apt-get install -y -q chromium >&2; then
        $sudo apt-get update -q >&2
        $sudo apt-get install -y -q chromium >&2
    fi
    path=$(find_chromium)
fi
if [ -z "$path" ]; then
    echo "chromium.sh: chromium installed but not found on PATH" >&2
    exit 1
fi
echo "$path"
