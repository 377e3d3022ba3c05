#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what the tests need (the Python
# Delta readers, headless Chromium for the dashboard), then runs every test. The README's
# second command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
# One target directory outside the clone, reused across clones and sessions.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pinstream-target}"
python=$(scripts/python-env.sh)
echo "python readers: $python"
# The dashboard tests skip (loudly) only when Chromium cannot be installed at all.
chromium=$(scripts/chromium.sh) || chromium="(not installed: dashboard tests will skip)"
echo "chromium: $chromium"
cargo test --locked "$@"
