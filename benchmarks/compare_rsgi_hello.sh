#!/usr/bin/env bash
# Same-run comparison of RSGI "GET /" hello world: this repository's granian vs granian==2.8.1 from PyPI.
# One worker each, server pinned to CPU 0, wrk pinned to CPU 1, runs alternated, the same example app.
#
#   benchmarks/compare_rsgi_hello.sh [ROUNDS] [DURATION]     (defaults: 3 rounds of 10s)
#
# Needs: wrk and taskset, the development environment (.venv, built by `python3 tools/dev.py build`).
# Upstream granian is installed into benchmarks/.venv-upstream on first use (it cannot share a venv
# with ours: both own the `granian` import name).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${1:-3}
DURATION=${2:-10}
APP_DIR="$ROOT/examples/rsgi_hello"
OURS="$ROOT/.venv/bin/python"
UPSTREAM_VENV="$ROOT/benchmarks/.venv-upstream"
if [[ ! -x $UPSTREAM_VENV/bin/python ]]; then
  python3 -m venv "$UPSTREAM_VENV"
  "$UPSTREAM_VENV/bin/pip" install --quiet granian==2.8.1 uvloop
fi
UPSTREAM="$UPSTREAM_VENV/bin/python"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

measure() { # name python port
  local name=$1 python=$2 port=$3
  (cd "$APP_DIR" && exec taskset -c 0 "$python" -m granian --interface rsgi --loop uvloop --port "$port" \
      --no-log main:app) >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do port_free "$port" || break; sleep 0.1; done
  taskset -c 1 wrk -t1 -c64 -d2s "http://127.0.0.1:$port/" >/dev/null          # warm-up
  local out rps p99
  out=$(taskset -c 1 wrk -t1 -c64 -d"${DURATION}s" --latency "http://127.0.0.1:$port/")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  echo "$name $rps $p99"
}

results=()
for round in $(seq 1 "$ROUNDS"); do
  results+=("$(measure ours "$OURS" 18001)")
  results+=("$(measure granian-2.8.1 "$UPSTREAM" 18002)")
done
printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
runs = {}
for line in sys.stdin:
    name, rps, p99 = line.split()
    runs.setdefault(name, []).append((float(rps), p99))
for name, values in runs.items():
    rps = [v[0] for v in values]
    print(f"{name:>14}: median {statistics.median(rps):>10,.0f} req/s  runs {[round(r) for r in rps]}  p99 {[v[1] for v in values]}")
ours, theirs = statistics.median(v[0] for v in runs["ours"]), statistics.median(v[0] for v in runs["granian-2.8.1"])
print(f"ratio ours / granian 2.8.1: {ours / theirs:.2f}")
'
