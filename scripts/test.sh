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
# rdkafka builds librdkafka with CMake (and libcurl headers): install them once.
if ! command -v cmake >/dev/null || ! dpkg -s libcurl4-openssl-dev >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q cmake libcurl4-openssl-dev >/dev/null
fi
# A Kafka broker (tansu) for tests/kafka.rs; they skip without PINSTREAM_KAFKA.
if scripts/services.sh start kafka; then
  eval "$(scripts/services.sh env)"
  echo "kafka: $PINSTREAM_KAFKA"
elif [ -n "${CI:-}" ]; then
  echo "kafka: could not start" >&2
  exit 1
else
  echo "kafka: could not start (Kafka tests will skip)"
fi
# kinesis-mock for tests/kinesis.rs; they skip without AWS_ENDPOINT_URL_KINESIS. Started, not
# restarted: the mock is shared by every clone on the machine, and a restart under another
# run's tests refuses their connections and loses their streams (its shard cap is raised
# instead, see services.sh).
if scripts/services.sh start kinesis; then
  eval "$(scripts/services.sh env)"
  echo "kinesis: $AWS_ENDPOINT_URL_KINESIS"
elif [ -n "${CI:-}" ]; then
  echo "kinesis: could not start" >&2
  exit 1
else
  echo "kinesis: could not start (Kinesis tests will skip)"
fi
# moto's S3 server (writes serialised) for tests/s3.rs; they skip without PINSTREAM_S3_ENDPOINT.
if scripts/services.sh start s3; then
  eval "$(scripts/services.sh env)"
  echo "s3: $PINSTREAM_S3_ENDPOINT"
elif [ -n "${CI:-}" ]; then
  echo "s3: could not start" >&2
  exit 1
else
  echo "s3: could not start (S3 tests will skip)"
fi
cargo test --locked "$@"
