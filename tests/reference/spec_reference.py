"""An independent reference for pinstream's tables, written from ../shared/SPEC.md §1, §2, §4
and §5 (not from the engine's code), and a reader of the tables as Databricks would read them.

    python spec_reference.py INPUT_DIR LAKE_DIR

Computes, from the input files alone, every distinct clean row of `pin`, `geo` and `user` and
the (stream, source) of every bad message; reads the Delta tables with `deltalake` (and
`polars`); checks that the tables hold exactly those rows, each once, with the SPEC's column
names and types, and that the log has protocol (1,2), no table features, txn actions and
checkpoints. Prints a JSON summary; exits 1 with the differences when anything is off.

Interpretations shared with the engine where the SPEC leaves room (documented in README):
an integer field given as a JSON float with no fraction is accepted; a text field given as a
JSON number is accepted as its decimal text; a quarantine row's `source` is
`file:<path relative to INPUT_DIR>@<0-based line index>`.
"""

import datetime as dt
import json
import os
import re
import sys
from collections import Counter

MARKERS = {
    "",
    "No description available Story format",
    "No description available",
    "No Title Data Available",
    "User Info Error",
    "Image src error.",
    "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e",
}
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
FOLLOWERS = re.compile(r"^([0-9]+)([kM]?)$")
TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?$"
)
I64_MAX = 2**63 - 1
MISSING = object()


class Bad(Exception):
    pass


def field(obj, name):
    if name not in obj:
        raise Bad(f"missing {name}")
    return obj[name]


def integer(value, required=True):
    if value is None:
        if required:
            raise Bad("null integer")
        return None
    if isinstance(value, bool):
        raise Bad("bool for integer")
    if isinstance(value, int):
        result = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise Bad("fraction for integer")
        result = int(value)
    elif isinstance(value, str):
        try:
            result = int(value.strip())
        except ValueError:
            try:
                as_float = float(value.strip())
            except ValueError:
                raise Bad("text for integer")
            if not as_float.is_integer():
                raise Bad("fraction for integer")
            result = int(as_float)
    else:
        raise Bad("wrong type for integer")
    if not -(2**63) <= result <= I64_MAX:
        raise Bad("integer out of range")
    return result


def double(value):
    if value is None:
        raise Bad("null number")
    if isinstance(value, bool):
        raise Bad("bool for number")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise Bad("text for number")
    raise Bad("wrong type for number")


def text(value, required=False):
    if value is None:
        result = None
    elif isinstance(value, bool) or isinstance(value, (dict, list)):
        raise Bad("wrong type for text")
    elif isinstance(value, (int, float)):
        result = json.dumps(value)
    else:
        result = None if value.strip() in MARKERS else value
    if result is None and required:
        raise Bad("null text")
    return result


def timestamp(value):
    if not isinstance(value, str):
        raise Bad("timestamp not text")
    m = TIMESTAMP.match(value.strip())
    if not m:
        raise Bad("bad timestamp")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction = (m.group(7) or ".0")[1:]
    micros = int((fraction + "000000")[:6])
    try:
        when = dt.datetime(year, month, day, hour, minute, second, micros, tzinfo=dt.timezone.utc)
    except ValueError:
        raise Bad("impossible date")
    offset = m.group(8)
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        when -= sign * dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    delta = when - epoch
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def clean_pin(obj):
    ind = integer(field(obj, "index"))
    unique_id = text(field(obj, "unique_id"), required=True)
    if not UUID.match(unique_id):
        raise Bad("uuid")
    title = text(field(obj, "title"))
    description = text(field(obj, "description"))
    poster_name = text(field(obj, "poster_name"))
    raw_followers = field(obj, "follower_count")
    if raw_followers is None:
        raise Bad("null follower_count")
    if isinstance(raw_followers, bool) or not isinstance(raw_followers, (int, str)):
        raise Bad("follower_count type")
    m = FOLLOWERS.match(str(raw_followers))
    if not m:
        raise Bad("follower_count form")
    followers = int(m.group(1)) * {"": 1, "k": 1_000, "M": 1_000_000}[m.group(2)]
    if followers > I64_MAX:
        raise Bad("follower_count overflow")
    tag_list = text(field(obj, "tag_list"))
    kind = text(field(obj, "is_image_or_video"))
    image_src = text(field(obj, "image_src"))
    integer(field(obj, "downloaded"))
    save_location = text(field(obj, "save_location"))
    if save_location is not None and save_location.startswith("Local save in "):
        save_location = save_location[len("Local save in "):]
    category = text(field(obj, "category"))
    return (ind, unique_id, title, description, followers, poster_name, tag_list, kind,
            image_src, save_location, category)


def clean_geo(obj):
    ind = integer(field(obj, "ind"))
    when = timestamp(field(obj, "timestamp"))
    latitude = double(field(obj, "latitude"))
    longitude = double(field(obj, "longitude"))
    if not -90 <= latitude <= 90 or not -180 <= longitude <= 180:
        raise Bad("coordinates out of range")
    country = text(field(obj, "country"))
    return (ind, country, (latitude, longitude), when)


def clean_user(obj):
    ind = integer(field(obj, "ind"))
    first = text(field(obj, "first_name"), required=True)
    last = text(field(obj, "last_name"), required=True)
    age = integer(field(obj, "age"))
    if not 0 <= age <= 150:
        raise Bad("age")
    joined = timestamp(field(obj, "date_joined"))
    return (ind, f"{first} {last}", age, joined)


CLEAN = {"pin": clean_pin, "geo": clean_geo, "user": clean_user}


def stream_of(relative):
    tokens = [t for t in re.split(r"[^A-Za-z]", relative) if t in CLEAN]
    return tokens[-1] if tokens else None


def reference(input_dir):
    rows = {name: set() for name in CLEAN}
    bad = set()
    for folder, _, files in os.walk(input_dir):
        for name in files:
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, input_dir).replace(os.sep, "/")
            stream = stream_of(relative)
            if stream is None:
                continue
            with open(path, "rb") as handle:
                for index, line in enumerate(handle.read().split(b"\n")):
                    line = line.rstrip(b"\r\n")
                    if not line.strip():
                        continue
                    try:
                        try:
                            obj = json.loads(line.decode("utf-8"))
                        except (UnicodeDecodeError, ValueError):
                            raise Bad("not json")
                        if not isinstance(obj, dict):
                            raise Bad("not an object")
                        rows[stream].add(CLEAN[stream](obj))
                    except Bad:
                        bad.add((stream, f"file:{relative}@{index}"))
    return rows, bad


def micros(column):
    import pyarrow as pa
    return column.cast(pa.int64()).to_pylist()


def read_tables(lake):
    import pyarrow as pa
    from deltalake import DeltaTable

    found = {}
    problems = []
    expected_columns = {
        "pin": ["ind", "unique_id", "title", "description", "follower_count", "poster_name",
                "tag_list", "is_image_or_video", "image_src", "save_location", "category"],
        "geo": ["ind", "country", "coordinates", "timestamp"],
        "user": ["ind", "user_name", "age", "date_joined"],
        "quarantine": ["stream", "source", "received_at", "raw", "reason"],
    }
    for name, columns in expected_columns.items():
        path = os.path.join(lake, name)
        table = DeltaTable(path)
        protocol = table.protocol()
        if (protocol.min_reader_version, protocol.min_writer_version) != (1, 2):
            problems.append(f"{name}: protocol {protocol}")
        if protocol.reader_features or protocol.writer_features:
            problems.append(f"{name}: table features {protocol}")
        data = table.to_pyarrow_table()
        if data.column_names != columns:
            problems.append(f"{name}: columns {data.column_names}")
        for f in data.schema:
            if pa.types.is_timestamp(f.type) and f.type.tz not in ("UTC", "+00:00"):
                problems.append(f"{name}.{f.name}: {f.type} is not a UTC timestamp")
        schema_json = table.schema().to_json()
        if "timestamp_ntz" in schema_json:
            problems.append(f"{name}: timestamp_ntz in schema")
        if name == "pin":
            got = list(zip(*(data.column(c).to_pylist() for c in columns)))
        elif name == "geo":
            got = list(zip(data.column("ind").to_pylist(), data.column("country").to_pylist(),
                           [tuple(c) for c in data.column("coordinates").to_pylist()],
                           micros(data.column("timestamp"))))
        elif name == "user":
            got = list(zip(data.column("ind").to_pylist(), data.column("user_name").to_pylist(),
                           data.column("age").to_pylist(), micros(data.column("date_joined"))))
        else:
            got = list(zip(data.column("stream").to_pylist(), data.column("source").to_pylist()))
            if any(not r for r in data.column("reason").to_pylist()):
                problems.append("quarantine: a row without a reason")
        found[name] = got
        log = os.path.join(path, "_delta_log")
        entries = sorted(os.listdir(log))
        commits = [e for e in entries if e.endswith(".json") and e[:20].isdigit()]
        if len(commits) >= 10 and not any(".checkpoint." in e for e in entries):
            problems.append(f"{name}: {len(commits)} commits and no checkpoint")
        last = os.path.join(log, commits[-1])
        if len(commits) > 1:
            with open(last) as handle:
                actions = [json.loads(line) for line in handle if line.strip()]
            if not any("txn" in a for a in actions):
                problems.append(f"{name}: last commit {commits[-1]} has no txn action")
        try:
            import polars as pl
            frame = pl.read_delta(path)
            if frame.height != len(got):
                problems.append(f"{name}: polars reads {frame.height} rows, deltalake {len(got)}")
        except Exception as error:  # noqa: BLE001 - any failure to read is a finding
            problems.append(f"{name}: polars cannot read the table: {error}")
    return found, problems


def main():
    input_dir, lake = sys.argv[1], sys.argv[2]
    expected, expected_bad = reference(input_dir)
    found, problems = read_tables(lake)
    summary = {}
    for name in ("pin", "geo", "user"):
        counts = Counter(found[name])
        twice = [row for row, n in counts.items() if n > 1]
        missing = expected[name] - set(counts)
        extra = set(counts) - expected[name]
        summary[name] = {"rows": len(found[name]), "expected": len(expected[name])}
        if twice:
            problems.append(f"{name}: {len(twice)} rows held more than once, e.g. {twice[0]}")
        if missing:
            problems.append(f"{name}: {len(missing)} rows missing, e.g. {sorted(missing, key=str)[0]}")
        if extra:
            problems.append(f"{name}: {len(extra)} unexpected rows, e.g. {sorted(extra, key=str)[0]}")
    counts = Counter(found["quarantine"])
    summary["quarantine"] = {"rows": len(found["quarantine"]), "expected": len(expected_bad)}
    if any(n > 1 for n in counts.values()):
        problems.append("quarantine: a bad message held more than once")
    if set(counts) != expected_bad:
        missing = expected_bad - set(counts)
        extra = set(counts) - expected_bad
        problems.append(f"quarantine: {len(missing)} missing e.g. {sorted(missing)[:3]}, "
                        f"{len(extra)} unexpected e.g. {sorted(extra, key=str)[:3]}")
    print(json.dumps({"summary": summary, "problems": problems}))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
