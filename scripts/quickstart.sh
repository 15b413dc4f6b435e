#!/usr/bin/env bash
# The main job on a bundled example, with no outside service:
#   installs micro-gw and gateway (cargo install), creates a project from
#   docs/examples/petstore.yaml, builds its gateway, starts it with the bundled backend
#   (micro-gw echo-backend, which describes every request it receives), sends requests through
#   it over HTTP/1.1 and HTTPS/h2, prints them, and stops everything it started.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=${MGW_QUICKSTART_DIR:-"$root/target/quickstart"}
bin=${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# Runs a cargo command and shows how far it is: cargo's own progress bar on a terminal; in a
# log (not a terminal), cargo's progress is forced on into a temporary file and its last state
# printed every 5 s ("97/205: hyper, tokio"). On failure, cargo's messages are printed.
with_progress() {
    if [ -t 2 ]; then
        "$@"
        return
    fi
    local log start rc=0 ticks=0 now
    log=$(mktemp)
    start=$SECONDS
    CARGO_TERM_PROGRESS_WHEN=always CARGO_TERM_PROGRESS_WIDTH=120 CARGO_TERM_COLOR=never \
        "$@" 2>"$log" &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        ticks=$((ticks + 1))
        if [ $((ticks % 5)) -eq 0 ]; then
            now=$(tail -c 4000 "$log" | tr '\r' '\n' \
                | sed -n 's/^ *\(Building\|Downloading\) \[[^]]*\] *\(.*[^ ]\) *$/\1 \2/p' | tail -n 1)
            echo "    $((SECONDS - start)) s: ${now:-starting}"
        fi
    done
    wait "$pid" || rc=$?
    if [ "$rc" -ne 0 ]; then
        tr '\r' '\n' <"$log" | grep -v -E '^ *(Building|Downloading) \[' >&2 || true
    fi
    rm -f "$log"
    return "$rc"
}

# The toolkit is installed into the target directory that `micro-gw build` uses for every
# gateway (its shared cache, ~/.cache/micro-gw/target unless MGW_CACHE_DIR or MGW_TARGET_DIR
# say otherwise): the TLS, HTTP, SQLite and serde crates it compiles are the ones the first
# gateway build needs, with the same features and settings, so that build finds them compiled.
# The bundled backend is a subcommand of the toolkit (micro-gw echo-backend): nothing else to build.
# For scripts/bench --build-times: MGW_INSTALL_TARGET_DIR (another target directory), extra
# cargo install flags (MGW_QUICKSTART_CARGO_FLAGS, e.g. --timings) and the CPU used after each
# step (MGW_QUICKSTART_TIMES).
if [ "$(uname -s)" = Darwin ]; then user_cache=$HOME/Library/Caches; else user_cache=${XDG_CACHE_HOME:-$HOME/.cache}; fi
cache_dir=${MGW_CACHE_DIR:-$user_cache/micro-gw}
install_dir=${MGW_INSTALL_TARGET_DIR:-${MGW_TARGET_DIR:-$cache_dir/target}}
read -r -a cargo_flags <<<"${MGW_QUICKSTART_CARGO_FLAGS:-}"
report_cpu() {  # `times` in this shell (a subshell would count from zero): children's user and sys
    if [ -n "${MGW_QUICKSTART_TIMES:-}" ]; then
        local file
        file=$(mktemp)
        times >"$file"
        echo "cpu-after-$1: $(tail -n 1 "$file")"
        rm -f "$file"
    fi
}
step "Installing micro-gw and gateway (cargo install --path toolkit; the first time takes a few minutes)"
started=$SECONDS
with_progress cargo install --locked ${cargo_flags[@]+"${cargo_flags[@]}"} --target-dir "$install_dir" \
    --path "$root/toolkit"
echo "installed in $((SECONDS - started)) s"
report_cpu install
export PATH="$bin:$PATH"
micro-gw version

mkdir -p "$work"
cd "$work"
step "micro-gw init petstore -a docs/examples/petstore.yaml"
micro-gw init petstore --force -a "$root/docs/examples/petstore.yaml"

step "micro-gw build petstore (the first build on a machine compiles the shared runtime once)"
micro-gw build petstore
report_cpu build

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# Wait (bounded) until a log file has a line matching a pattern; print the match.
wait_for() {
    local file=$1 pattern=$2
    for _ in $(seq 1 200); do
        if grep -q "$pattern" "$file" 2>/dev/null; then grep -m1 -o "$pattern" "$file"; return 0; fi
        sleep 0.05
    done
    echo "timed out waiting for '$pattern' in $file:" >&2; cat "$file" >&2; return 1
}

step "Starting the bundled backend and the gateway on free loopback ports"
micro-gw echo-backend --name petstore-backend > backend.log 2>&1 &
pids+=($!)
backend=$(wait_for backend.log 'http://127.0.0.1:[0-9]*')
echo "backend: $backend"

gateway petstore/target/petstore \
    --listener.host=127.0.0.1 --listener.http_port=0 --listener.https_port=0 --metrics.port=0 \
    --petstoreBackend_prod_endpoint_0="$backend" > gateway.log 2>&1 &
pids+=($!)
# Each listener's own start-up line (the metrics listener's comes first).
http=$(wait_for gateway.log 'HTTP listener is active on http://127.0.0.1:[0-9]*')
http=${http##* }
https=$(wait_for gateway.log 'HTTPS listener is active on https://127.0.0.1:[0-9]*')
https=${https##* }
metrics=$(wait_for gateway.log 'metrics listener is active on http://127.0.0.1:[0-9]*/metrics')
metrics=${metrics##* }
echo "gateway: $http and $https (metrics: $metrics)"

show() {
    echo
    echo "\$ curl $*"
    curl --silent --show-error --include --max-time 10 "$@"
    echo
}
step "Requests through the gateway"
show "$http/petstore/v1/pet/42?verbose=true"
show -k --http2 "$https/petstore/v1/pet/findByStatus?status=available"
show -X POST -H 'content-type: application/json' -d '{"name":"Rex"}' "$http/petstore/v1/pet"
show -X PUT "$http/petstore/v1/pet/42"
show "$http/petstore/v2/unknown"
show "$http/health"

step "Metrics (Prometheus text; docs/operations.md)"
echo "\$ curl $metrics | grep '^mgw_requests_total'"
curl --silent --show-error --max-time 10 "$metrics" | grep '^mgw_requests_total' || true

step "Access log"
grep ' access: ' gateway.log || true
echo
echo "Done. The project is in $work/petstore; run it yourself with:"
echo "  gateway $work/petstore/target/petstore --petstoreBackend_prod_endpoint_0=<your backend URL>"
