#!/usr/bin/env bash
# A whole cluster on 127.0.0.1, for trying it out and for the tests: an
# origin, EDGES edges that relay all of its streams, and an nginx balancer
# in front of the edges.
#
#   conf/cluster.sh start PORT EDGES [CONFIG]   returns once every part answers
#   conf/cluster.sh stop  PORT                  stops exactly what start started
#
#   PORT           the balancer (open http://127.0.0.1:PORT/ in a browser)
#   PORT+1         the origin: a normal stack with CONFIG (default: the
#                  built-in demo and bars streams)
#   PORT+2 ...     the edges, PORT+1+EDGES the last: stacks whose config is
#                  conf/edge.ini.example (or EDGE_CONFIG, environment) with
#                  origin = http://127.0.0.1:PORT+1
#
# Each part is its own conf/stack.sh stack under run/PORT+i/ (the
# balancer's is SERVER=balancer, conf/servers/balancer.sh), with its
# process groups in run/PORT+i/*.pgid. run/PORT/cluster lists the parts
# ("ROLE PORT" lines), and stop stops those and nothing else. BIN and
# WORKERS (environment) go to every stack.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
TOP=$(dirname "$HERE")
STACK=$HERE/stack.sh
EDGES_MAX=16

say() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

usage() {
    cat >&2 <<'USAGE'
usage: conf/cluster.sh start PORT EDGES [CONFIG]   balancer on PORT, origin on PORT+1,
                                                 edges on PORT+2 .. PORT+1+EDGES
       conf/cluster.sh stop  PORT                  stop them
EDGES is 1-16; CONFIG is the origin's INI file (optional); EDGE_CONFIG
(environment) the edges' (default conf/edge.ini.example; its origin is set).
USAGE
    exit 2
}

[[ $# -ge 2 ]] || usage
MODE=$1
PORT=$2
if [[ ! $PORT =~ ^[0-9]{1,5}$ ]] || ((10#$PORT < 1 || 10#$PORT > 65535)); then
    die "PORT must be a number from 1 to 65535, not '$PORT'"
fi
PORT=$((10#$PORT))
# The parts talk plain http to each other on loopback; TLS for viewers
# belongs at the balancer (README "Scaling out"), which this one does not do.
[[ ${TLS:-0} == 0 || $MODE == stop ]] ||
    die "TLS=1 is not for a local cluster: its parts speak http on 127.0.0.1; see README \"Scaling out\" for TLS at the balancer"
export TLS=0
RUN=$TOP/run/$PORT
LIST=$RUN/cluster

# Stops the parts listed in LIST, the balancer first (no new viewers), the
# origin last (the edges no longer retry it).
stop_listed() {
    local role port failed=0 roles=() ports=() i
    [[ -r $LIST ]] || return 0
    while read -r role port; do
        [[ $port =~ ^[0-9]+$ ]] || continue
        roles+=("$role") ports+=("$port")
    done <"$LIST"
    for ((i = ${#ports[@]} - 1; i >= 0; i--)); do
        "$STACK" stop "${ports[i]}" >/dev/null || { say "stopping the ${roles[i]} on ${ports[i]} failed"; failed=1; }
    done
    rm -f -- "$LIST"
    return "$failed"
}

cmd_start() {
    local edges=$1 config=${2:-} edge_template=${EDGE_CONFIG:-$HERE/edge.ini.example}
    if [[ ! $edges =~ ^[1-9][0-9]?$ ]] || ((edges > EDGES_MAX)); then
        die "EDGES must be a number from 1 to $EDGES_MAX, not '$edges'"
    fi
    local origin=$((PORT + 1)) last=$((PORT + 1 + edges)) port pids=() edge_ports=() failed=0
    ((last <= 65535)) || die "the edges would need ports up to $last, over 65535"
    [[ -f $edge_template && -r $edge_template ]] || die "edge config '$edge_template' is not a readable file"
    grep -q '^origin[[:space:]]*=' "$edge_template" || die "edge config '$edge_template' has no origin = line under [relay]"
    if [[ -r $LIST ]]; then
        die "a cluster was started on port $PORT (${LIST#"$TOP"/}); stop it with: conf/cluster.sh stop $PORT"
    fi
    mkdir -p -- "$RUN"
    # every part, before it starts: a failed start stops what came up
    : >"$LIST"
    trap 'say "start failed; stopping what was started"; stop_listed || true; exit 1' ERR

    printf 'origin %s\n' "$origin" >>"$LIST"
    "$STACK" start "$origin" ${config:+"$config"}

    # The edges' config: the template with this origin.
    sed -e "s|^origin[[:space:]]*=.*|origin = http://127.0.0.1:$origin|" \
        "$edge_template" >"$RUN/edge.ini"
    for ((port = PORT + 2; port <= last; port++)); do
        printf 'edge %s\n' "$port" >>"$LIST"
        edge_ports+=("$port")
        # side by side: each waits for its own /status
        "$STACK" start "$port" "$RUN/edge.ini" &
        pids+=($!)
    done
    for port in "${pids[@]}"; do
        wait "$port" || failed=1
    done
    ((!failed)) || false

    printf 'balancer %s\n' "$PORT" >>"$LIST"
    SERVER=balancer BALANCER_EDGES="${edge_ports[*]}" "$STACK" start "$PORT"
    trap - ERR
    printf 'cluster runs at http://127.0.0.1:%s/ (origin %s, edges %s-%s); stop: conf/cluster.sh stop %s\n' \
        "$PORT" "$origin" "$((PORT + 2))" "$last" "$PORT"
}

cmd_stop() {
    if [[ ! -r $LIST ]]; then
        printf 'no cluster on port %s\n' "$PORT"
        return 0
    fi
    stop_listed
    rm -f -- "$RUN/edge.ini"
    printf 'stopped the cluster on port %s\n' "$PORT"
}

case $MODE in
    start) { [[ $# -ge 3 && $# -le 4 ]] || usage; }; cmd_start "$3" "${4:-}" ;;
    stop) { [[ $# -eq 2 ]] || usage; }; cmd_stop ;;
    *) usage ;;
esac
