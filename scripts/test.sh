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
# In CI (CI=true) a missing Chromium or broker fails the run instead of skipping tests.
if [ -n "${CI:-}" ]; then
  chromium=$(scripts/chromium.sh)
else
  chromium=$(scripts/chromium.sh) || chromium="(not installed: dashboard tests will skip)"
fi
echo "chromium: $chromium"
# The local servers the integration tests talk to; a test skips (loudly) without its server's
# variable, and in CI a server that does not start fails the run.
#   kafka    tansu, for tests/kafka.rs (PINSTREAM_KAFKA)
#   kinesis  kinesis-mock, for tests/kinesis.rs (AWS_ENDPOINT_URL_KINESIS). Started, not
#            restarted: the mock is shared by every clone on the machine, and a restart under
#            another run's tests refuses their connections and loses their streams (its shard
#            cap is raised instead, see services.sh).
#   s3       moto's S3 server with writes serialised, for s3:// lakes (PINSTREAM_S3_ENDPOINT)
eval "$(scripts/services.sh env)"
for service in kafka kinesis s3; do
  if scripts/services.sh start "$service"; then
    echo "$service: started"
  elif [ -n "${CI:-}" ]; then
    echo "$service: could not start" >&2
    exit 1
  else
    echo "$service: could not start (its tests will skip)"
    case "$service" in
      kafka) unset PINSTREAM_KAFKA ;;
      kinesis) unset AWS_ENDPOINT_URL_KINESIS PINSTREAM_KINESIS_ENDPOINT ;;
      s3) unset PINSTREAM_S3_ENDPOINT ;;
    esac
  fi
done
cargo test --locked "$@"
