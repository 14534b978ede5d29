# shellcheck shell=bash disable=SC2034 # the settings are read by conf/stack.sh
# SERVER=balancer: nginx as the load balancer of a cluster, in front of
# edges that already run (conf/cluster.sh starts them first). No responder
# of its own: conf/nginx-balancer.conf.example, rendered with the port and
# with one "server" line per edge port in BALANCER_EDGES (environment,
# "8082 8083 8084"; at start). Sourced by conf/stack.sh, which describes
# the hooks.

NGINX=$(server_exe "${NGINX:-}" nginx)
SERVER_TEMPLATE=$HERE/nginx-balancer.conf.example
SERVER_CONF=$RUN/nginx.conf
SERVER_PIDFILE=$RUN/nginx.pid
SERVER_ERRLOG=$RUN/nginx-error.log
SERVER_STATE=("$RUN/nginx-balancer.conf.in")
SERVER_OWN_RESPONDER=0

server_check_tools() {
    runnable "$NGINX" || die "nginx not found (install nginx-light, or set NGINX)"
    if [[ $MODE != stop ]]; then
        [[ -n ${BALANCER_EDGES:-} ]] || die "BALANCER_EDGES must list the edges' ports (\"8082 8083\")"
        local edge
        for edge in $BALANCER_EDGES; do
            if [[ ! $edge =~ ^[1-9][0-9]{0,4}$ ]] || ((edge > 65535)); then
                die "BALANCER_EDGES: '$edge' is not a port from 1 to 65535"
            fi
        done
    fi
}

server_check_tls() {
    die "SERVER=balancer serves http only; README \"Scaling out\" shows TLS at a balancer"
}

# The example with this stack's port and edges, as the template the core
# renders: the "# edge" lines become one line per edge, the same
# max_fails and fail_timeout; listen takes PORT. As root, a user line for
# the workers, as with nginx.
server_render() {
    local template=$RUN/nginx-balancer.conf.in user=""
    ((EUID != 0)) || user="user $(id -un) $(id -gn);"
    awk -v edges="$BALANCER_EDGES" -v port="$PORT" -v user="$user" '
        NR == 1 && user != "" { print user }
        /^[[:space:]]*server 127\.0\.0\.1:[0-9]+ .*# edge$/ {
            if (!done) {
                match($0, /^[[:space:]]*/); indent = substr($0, 1, RLENGTH)
                rest = $0; sub(/^[[:space:]]*server [^ ]+ /, "", rest)
                n = split(edges, list, " ")
                for (i = 1; i <= n; i++)
                    print indent "server 127.0.0.1:" list[i] " " rest
                done = 1
            }
            next
        }
        /^[[:space:]]*listen 127\.0\.0\.1:[0-9]+;/ { sub(/:[0-9]+;/, ":" port ";") }
        { print }
    ' "$HERE/nginx-balancer.conf.example" >"$template"
    SERVER_TEMPLATE=$template
}

server_command() {
    SRV_CMD=("$NGINX" -p "$RUN/" -c "$SERVER_CONF" -e "$SERVER_ERRLOG" -g 'daemon off;')
}

# SIGQUIT: graceful, it finishes the responses under way.
server_stop_begin() {
    kill -QUIT "$1" 2>/dev/null || true
}
