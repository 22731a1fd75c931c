#!/usr/bin/env bash
# Measures `fieldops dispatch` under load: a fresh server, the simulator at RATE events/s for
# SECONDS, and the dispatch client in a 200x60 tmux pane. Every INTERVAL seconds it prints the
# client's CPU (share of one core over the interval), resident memory and the events/s its
# status line shows; at the end the client's own totals (events, redraws, CPU, peak memory).
#
#   bash scripts/bench-dispatch.sh                 # 2000 events/s for 120 s
#   bash scripts/bench-dispatch.sh 3600 2000 60    # an hour, sampled every minute
#
# Uses the release build (built first if missing: swift build -c release).
set -euo pipefail
SECONDS_TO_RUN=${1:-120}
RATE=${2:-2000}
INTERVAL=${3:-10}
WORKERS=${WORKERS:-200}

cd "$(dirname "$0")/.."
FIELDOPS=.build/release/fieldops
if [ ! -x "$FIELDOPS" ]; then
    echo "building the release binary (swift build -c release)…" >&2
    swift build -c release --product fieldops >&2
fi
command -v tmux >/dev/null || { echo "tmux is needed: bash scripts/setup.sh installs it" >&2; exit 1; }

STORAGE=$(mktemp -d /tmp/fieldops-bench-dispatch.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TMUX_SOCKET="fieldops-bench-$$"
SERVER_PID=""
SIM_PID=""
cleanup() {
    tmux -L "$TMUX_SOCKET" kill-server 2>/dev/null || true
    [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null || true
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
    rm -rf "$STORAGE"
}
trap cleanup EXIT

"$FIELDOPS" serve --host 127.0.0.1 --port "$PORT" --storage "$STORAGE" --rate-limit 0 >"$STORAGE/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "the server did not start:" >&2; tail "$STORAGE/serve.log" >&2; exit 1; }
TOKEN=$("$FIELDOPS" token create --storage "$STORAGE" --tenant bench --sub d-1 --role dispatcher | tail -1)

tmux -L "$TMUX_SOCKET" new-session -d -s board -x 200 -y 60 -e TERM=xterm-256color \
    "$FIELDOPS dispatch --server http://127.0.0.1:$PORT --token $TOKEN --stats; sleep 3600"
sleep 2
# The client itself, not the shell tmux runs it in.
DISPATCH_PID=$(pgrep -f "^$FIELDOPS dispatch --server http://127.0.0.1:$PORT" | head -1)
[ -n "$DISPATCH_PID" ] || { echo "dispatch did not start" >&2; tmux -L "$TMUX_SOCKET" capture-pane -p -t board >&2; exit 1; }

"$FIELDOPS" simulate --server "http://127.0.0.1:$PORT" --token "$TOKEN" --workers "$WORKERS" --rate "$RATE" \
    --duration "${SECONDS_TO_RUN}s" --seed 7 >"$STORAGE/simulate.log" 2>&1 &
SIM_PID=$!

TICKS=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$DISPATCH_PID/stat"; }
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$DISPATCH_PID/status"; }
shown_rate() { tmux -L "$TMUX_SOCKET" capture-pane -p -t board | head -1 | grep -o '[0-9]* ev/s' || echo "? ev/s"; }

echo "fieldops dispatch under $RATE events/s from $WORKERS simulated workers, ${SECONDS_TO_RUN} s, 200x60 pane"
printf '%8s  %10s  %8s  %12s\n' "time" "client CPU" "RSS MB" "board shows"
START=$(date +%s)
LAST_TICKS=$(cpu_ticks)
LAST_TIME=$(date +%s.%N)
while kill -0 "$SIM_PID" 2>/dev/null; do
    sleep "$INTERVAL"
    kill -0 "$DISPATCH_PID" 2>/dev/null || { echo "dispatch exited" >&2; exit 1; }
    NOW_TICKS=$(cpu_ticks)
    NOW_TIME=$(date +%s.%N)
    CPU=$(python3 -c "print(f'{($NOW_TICKS - $LAST_TICKS) / $TICKS / ($NOW_TIME - $LAST_TIME) * 100:.0f}%')")
    printf '%7ss  %10s  %8s  %12s\n' "$(( $(date +%s) - START ))" "$CPU" "$(rss_mb)" "$(shown_rate)"
    LAST_TICKS=$NOW_TICKS
    LAST_TIME=$NOW_TIME
done
wait "$SIM_PID" || true
SIM_PID=""
tail -1 "$STORAGE/simulate.log"
tmux -L "$TMUX_SOCKET" send-keys -t board q
sleep 1
tmux -L "$TMUX_SOCKET" capture-pane -p -t board | grep '^dispatch ran' || echo "(no totals from dispatch)"
