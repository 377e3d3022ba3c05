#!/usr/bin/env bash
# Kinesis -> Delta throughput against the local kinesis-mock (scripts/services.sh):
#   1. `pinstream emulate --to kinesis://<fresh prefix>` puts N events (3N records) into new
#      2-shard streams: events/s put;
#   2. the mock's own GetRecords ceiling: a boto3 reader draining every shard (10,000 records
#      per call, no processing), so the engine's figure can be read against it;
#   3. `pinstream run --from kinesis://<prefix> --until-done` into a fresh local lake at each
#      worker count: records/s from the run's --summary (wall time from start to the last
#      commit, opening the tables included).
# The streams are deleted at the end. Use a release build:
#   cargo build --release && scripts/bench-kinesis.sh [events=10000] ["1 2"]
# PINSTREAM_BIN overrides the binary (default $CARGO_TARGET_DIR/release/pinstream).
# PINSTREAM_BENCH_LAKE sets where the lakes go: a directory (default: a fresh temporary one)
# or s3://bucket/prefix for Kinesis -> S3 Delta (moto from scripts/services.sh; the bucket is
# created when missing).
#
# kinesis-mock is one single-threaded node process whose PutRecords cost grows with the
# shard's length (it hashes the shard's whole record vector per entry), so putting slows as
# streams grow and larger N mostly measures the mock.
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-10000}"
workers="${2:-1 2}"
bin="${PINSTREAM_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/pinstream-target}/release/pinstream}"
[ -x "$bin" ] || { echo "bench-kinesis.sh: no binary at $bin (cargo build --release)" >&2; exit 1; }
scripts/services.sh start kinesis >/dev/null
eval "$(scripts/services.sh env)"
python="${PINSTREAM_SERVICES:-$HOME/.cache/pinstream-services}/venv/bin/python"
prefix="bench-$$-$(date +%s)"
work="$(mktemp -d)"

boto() {
  "$python" - "$prefix" "$@" <<'EOF'
import sys, time
import boto3
prefix, action = sys.argv[1], sys.argv[2]
client = boto3.client("kinesis")
names = [f"streaming-{prefix}-{s}" for s in ("pin", "geo", "user")]
if action == "delete":
    for name in names:
        try:
            client.delete_stream(StreamName=name)
        except Exception as e:
            print(f"delete {name}: {e}", file=sys.stderr)
    sys.exit(0)
# Drain every shard from TRIM_HORIZON, as fast as the mock answers.
records, started = 0, time.monotonic()
for name in names:
    for shard in client.list_shards(StreamName=name)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            answer = client.get_records(ShardIterator=iterator, Limit=10000)
            records += len(answer["Records"])
            if not answer["Records"] and answer.get("MillisBehindLatest", 0) == 0:
                break
            iterator = answer.get("NextShardIterator")
seconds = time.monotonic() - started
print(f"kinesis-mock GetRecords ceiling (boto3, 1 reader): {records} records in {seconds:.1f} s = {records / seconds:.0f} records/s")
EOF
}
trap 'boto delete; rm -rf "$work"' EXIT
lakes="${PINSTREAM_BENCH_LAKE:-$work}"
if [[ "$lakes" == s3://* ]]; then
  scripts/services.sh start s3 >/dev/null
  bucket="${lakes#s3://}"; bucket="${bucket%%/*}"
  "$python" -c "import boto3, sys; c = boto3.client('s3'); b = sys.argv[1]; \
    b in [x['Name'] for x in c.list_buckets()['Buckets']] or c.create_bucket(Bucket=b)" "$bucket"
  lakes="${lakes%/}/run-$prefix"
fi

started=$(date +%s.%N)
"$bin" emulate --to "kinesis://$prefix" --events "$events" --seed 1 2>/dev/null
put_seconds=$(echo "$(date +%s.%N) - $started" | bc)
echo "emulate --to kinesis://: $events events ($((events * 3)) records) in ${put_seconds} s = $(echo "$events / $put_seconds" | bc) events/s"
boto ceiling
for w in $workers; do
  "$bin" run --from "kinesis://$prefix" --lake "$lakes/lake-$w" --until-done --workers "$w" \
    --summary "$work/summary-$w.json" 2>/dev/null
  "$python" - "$work/summary-$w.json" "$w" "$lakes" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
n, t = s["records_in"], s["seconds"]
mib = s["peak_rss_bytes"] / 2**20
print(f"kinesis -> Delta ({sys.argv[3]}), {sys.argv[2]} worker(s): {n} records in {t:.1f} s = {n / t:.0f} records/s, {s['commits']} commits, peak RSS {mib:.0f} MiB")
EOF
done
