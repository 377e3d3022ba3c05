#!/usr/bin/env bash
# The fuzz targets without cargo-fuzz's build: cargo-fuzz instruments and optimises every
# dependency (~45 minutes on 2 cores); Cargo.toml here instruments pinstream and the targets
# only. The binaries are libFuzzer's, so its flags work as usual.
#
#   fuzz/run.sh build                 build every target (RUSTC_BOOTSTRAP=1 for profile rustflags)
#   fuzz/run.sh seed                  write seed inputs (emulated messages, bodies, object names)
#   fuzz/run.sh run <target> [secs]   fuzz one target (default 180 s) on its corpus + the seeds
#   fuzz/run.sh cmin <target>         minimise fuzz/corpus/<target> (libFuzzer -merge=1, edges only)
#
# `cargo fuzz run <target>` works too (same layout), at the full build cost.
set -euo pipefail
cd "$(dirname "$0")"
# FUZZ_TARGET_DIR: where the instrumented build goes (default fuzz/target), apart from the
# ordinary build: its profile differs in every unit.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target}"
export RUSTC_BOOTSTRAP=1
bin="$CARGO_TARGET_DIR/release"
seeds="$CARGO_TARGET_DIR/seeds"

case "${1:-}" in
build)
  cargo build --release --bins
  ;;
seed)
  rm -rf "$seeds" && mkdir -p "$seeds"
  # Inputs the project makes itself: 40 emulated events (bad ones included), a few lenient
  # forms the emulator does not write, the bodies the posting emulators send, Connect names.
  # PINSTREAM_BIN: a built pinstream binary (default: the one on PATH).
  "${PINSTREAM_BIN:-pinstream}" emulate --to "file:$seeds/emulated" \
    --events 40 --seed 13 --universe 30 >/dev/null
  python3 - "$seeds" <<'PY'
import base64, json, os, sys
seeds = sys.argv[1]
def put(target, name, data):
    os.makedirs(f"{seeds}/{target}", exist_ok=True)
    with open(f"{seeds}/{target}/{name}", "wb") as f:
        f.write(data)
lines = {}
for stream in ("pin", "geo", "user"):
    with open(f"{seeds}/emulated/{stream}.jsonl", "rb") as f:
        lines[stream] = [l.rstrip(b"\r\n") for l in f if l.strip()]
extra = {
    "pin": [b'{"index": "7", "unique_id": "55ABCD28-bda1-4453-bbcd-1427fb3aa49b", "title": 5, '
            b'"description": 1.5e3, "poster_name": null, "follower_count": 4500, "tag_list": "", '
            b'"is_image_or_video": "video", "image_src": "Image src error.", "downloaded": "1.0", '
            b'"save_location": "Local save in ", "category": " art "}'],
    "geo": [b'{"ind": 7.0, "timestamp": "2020-01-02T05:04:05.1234567+02:00", "latitude": "-90", '
            b'"longitude": 180, "country": "No Title Data Available"}',
            b'{"ind": 1, "timestamp": "2020-02-29t00:00:00z", "latitude": -0.0, "longitude": 1e-300, "country": 3}'],
    "user": [b'{"ind": 7, "first_name": "Ann Marie", "last_name": " User Info Error x", "age": "150", '
             b'"date_joined": "2016-01-01 00:00:00-0130"}'],
}
for stream, values in lines.items():
    for i, line in enumerate(values[:40] + extra[stream]):
        put(f"clean_{stream}", f"{i:03}", line)
        put("clean_record", f"{stream}-{i:03}", bytes([("pin", "geo", "user").index(stream)]) + line)
put("clean_record", "no-stream", b"\x03" + lines["pin"][0])
put("clean_record", "not-utf8", b"\x02" + b'{"ind": 1, "first_name": "\xff\xfe"}')
put("clean_record", "base64-text", b"\x00base64:AAAA")
for i in range(0, 12, 3):
    pins, geos, users = lines["pin"][i:i + 3], lines["geo"][i:i + 3], lines["user"][i:i + 3]
    put("ingest_body", f"proxy-{i:02}", b'{"records": [' + b", ".join(b'{"value": ' + p + b"}" for p in pins) + b"]}")
    put("ingest_body", f"record-object-{i:02}", b'{"StreamName": "streaming-0a-geo", "Data": ' + geos[0] + b', "PartitionKey": "7"}')
    put("ingest_body", f"record-base64-{i:02}", json.dumps({"StreamName": "streaming-0a-geo", "Data": base64.b64encode(geos[1]).decode(), "PartitionKey": "7"}).encode())
    put("ingest_body", f"records-lower-{i:02}", b'{"records": [' + b", ".join(b'{"data": ' + u + b', "partition-key": "k"}' for u in users) + b"]}")
    put("ingest_body", f"records-upper-{i:02}", json.dumps({"Records": [{"Data": base64.b64encode(u).decode(), "PartitionKey": "k"} for u in users]}).encode())
names = [
    "topics/abc.geo/partition=3/abc.geo+3+0000000042.json",
    "topics/abc.pin/partition=0/abc.pin+0+0000000000.json.gz",
    "abc.user+12+0000001000.json",
    "topics/a+b.pin/partition=1/a+b.pin+1+7.jsonl",
    "2026/pin.jsonl.gz",
    "data/user.jsonl",
    "README.md",
    "topics/other/partition=0/other+0+0000000000.json",
    "topics/a.pin/partition=0/a.pin+0+x.json",
    "topics/a.pin/partition=0/a.pin+1+0000000000.json",
    "a.pin+-1+5.json",
    "a.pin+0+5.avro",
]
for i, name in enumerate(names):
    put("object_name", f"{i:02}", name.encode())
PY
  rm -rf "$seeds/emulated"
  ls "$seeds" | while read -r target; do echo "$target: $(ls "$seeds/$target" | wc -l) seeds"; done
  ;;
run)
  target="$2"
  mkdir -p "corpus/$target" "artifacts/$target"
  "$bin/$target" -max_total_time="${3:-180}" -print_final_stats=1 -max_len=4096 \
    -artifact_prefix="artifacts/$target/" "corpus/$target" "$seeds/$target"
  ;;
cmin)
  target="$2"
  rm -rf "corpus/$target.min" && mkdir -p "corpus/$target.min"
  # Every covered edge kept, not every hit count: hundreds of files rather than thousands.
  "$bin/$target" -merge=1 -use_counters=0 -max_len=4096 "corpus/$target.min" "corpus/$target"
  rm -rf "corpus/$target" && mv "corpus/$target.min" "corpus/$target"
  echo "$target: $(ls "corpus/$target" | wc -l) files"
  ;;
*)
  sed -n '2,11p' "$0"
  exit 2
  ;;
esac
