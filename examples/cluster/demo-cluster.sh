#!/bin/sh
# make demo-cluster: a nats-server with JetStream on a free loopback port in
# a temporary folder, three `subinterp worker`s, and the word count of
# `make demo` spread over them (examples/cluster/main.rs). Everything it
# started is stopped when it ends, whether it succeeded or not.
set -eu

if ! command -v nats-server >/dev/null 2>&1; then
    echo "make demo-cluster: nats-server is not on PATH; install it (Debian, Ubuntu: apt-get install nats-server)" >&2
    exit 1
fi
BIN=${SUBINTERP_BIN:-target/release/subinterp}
WORKERS=3
dir=$(mktemp -d "${TMPDIR:-/tmp}/subinterp-cluster.XXXXXX")
pids=""

stop() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT TERM

# Waits (60 s at most) for FILE to contain TEXT; shows FILE if it never does.
wait_for() {
    n=0
    until grep -q "$2" "$1" 2>/dev/null; do
        n=$((n + 1))
        if [ "$n" -gt 600 ]; then
            echo "make demo-cluster: no \"$2\" in $1:" >&2
            cat "$1" >&2
            exit 1
        fi
        sleep 0.1
    done
}

nats-server -js -a 127.0.0.1 -p -1 -sd "$dir/js" >"$dir/nats.log" 2>&1 &
pids="$!"
wait_for "$dir/nats.log" "Server is ready"
addr=$(sed -n 's/.*Listening for client connections on \([0-9.:]*\).*/\1/p' "$dir/nats.log" | head -n 1)
url="nats://$addr"
echo "nats-server (pid $pids) on $url, JetStream in $dir"

"$BIN" compile --js >/dev/null
for i in $(seq "$WORKERS"); do
    "$BIN" worker --nats "$url" --concurrency 2 --timeout 30s 2>"$dir/worker$i.log" &
    pids="$pids $!"
done
for i in $(seq "$WORKERS"); do
    wait_for "$dir/worker$i.log" "serving"
    sed -n 's/^subinterp worker \([0-9]*\): serving.*/worker \1 ready/p' "$dir/worker$i.log"
done

${CARGO:-cargo} run --release --quiet --example cluster -- "$url"
