#!/usr/bin/env bash
# Development stack: the mjpeg-fcgi responder behind a web server, on
# 127.0.0.1.
#
#   conf/stack.sh run   PORT [CONFIG]   foreground; Ctrl-C or SIGTERM stops it
#   conf/stack.sh start PORT [CONFIG]   background; returns once /status answers
#   conf/stack.sh stop  PORT            stops what start started; harmless if idle
#
# SERVER (environment) picks the web server and how it runs the responder;
# each has one file of hooks, conf/servers/SERVER.sh, that this core sources:
#
#   nginx          (default) stack.sh starts the responder on a unix socket
#                  (--listen) and nginx in front of it: conf/nginx.conf.in
#   lighttpd       lighttpd starts the responders itself (bin-path,
#                  max-procs 2): conf/lighttpd.conf.in
#   apache         Apache runs the responder as a plain CGI program, one
#                  process per request, set up by the .htaccess of shared
#                  hosting: conf/apache-cgi.conf.in, conf/apache/htaccess
#   apache-fcgid   Apache with mod_fcgid, which starts the responders (one
#                  request per process at a time): conf/apache-fcgid.conf.in
#   apache-proxy   Apache with mod_proxy_fcgi in front of the responder that
#                  stack.sh starts, as with nginx: conf/apache-proxy-fcgi.conf.in
#   balancer       nginx alone, balancing over the edges whose ports
#                  BALANCER_EDGES lists: conf/nginx-balancer.conf.example
#                  (conf/cluster.sh starts a whole cluster)
#
# Processes: stack.sh starts the web server (in the foreground, never as a
# daemon) and, for nginx and apache-proxy, the responder, each in a session
# of its own: its pid is its process group, and everything it forks (nginx
# workers, Apache children, the responders lighttpd, mod_fcgid or mod_cgid
# spawn, the responder's own workers) stays in that group. The groups are
# recorded in run/PORT/responder.pgid and run/PORT/server.pgid ("PGID
# STARTTIME", the start time telling a live group from a reused pid), and
# stop signals those groups and lists their members with ps (by session
# id), so no process is ever found by its name or command line.
#
# Everything lives in run/PORT/ inside the repo (sockets, pid files, logs, the
# rendered server config, temp dirs, Apache's document root), plus the frame
# bus directory /dev/shm/mjpeg-fcgi-PORT; stacks on different ports never
# meet. run/PORT/server names the server that runs there: stop needs no
# SERVER.
#
# Environment: BIN overrides the responder (default fcgi/mjpeg-fcgi), NGINX,
# LIGHTTPD and APACHE the server binaries (default: on PATH, else /usr/sbin),
# WORKERS the number of responder processes (--workers with nginx and
# apache-proxy, max-procs with lighttpd, default 2 there; Apache CGI and
# mod_fcgid start one process per concurrent request and ignore it),
# APACHE_USER the user Apache's children run as when started as root
# (default www-data).
#
# TLS=1 serves https instead of http on PORT, with HTTP/2 where the server
# offers it (nginx; Apache with mod_ssl and mod_http2; lighttpd, with
# mod_openssl, over HTTP/1.1 only: conf/lighttpd.conf.in says why) and
# HTTP/1.1 for clients that ask for it. The certificate is self-signed for
# 127.0.0.1, made once with openssl (OPENSSL overrides the binary) into
# run/PORT/tls/ (cert.pem, key.pem) and kept across stops, so a browser
# told to trust it once keeps trusting it; the stack's own readiness check
# verifies it. Delete run/PORT/tls/ for a new one.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
TOP=$(dirname "$HERE")
BIN=${BIN:-$TOP/fcgi/mjpeg-fcgi}
SERVERS="nginx lighttpd apache apache-fcgid apache-proxy balancer"

STOP_GRACE_TENTHS=50    # first signal to SIGKILL, tenths of a second
SPAWNED_GRACE_TENTHS=20 # server-spawned responders: SIGTERM to SIGKILL
SOCKET_WAIT_TENTHS=50   # responder start to socket present
PIDFILE_WAIT_TENTHS=50  # server start to its pid file written
LEFTOVER_GRACE_TENTHS=10 # what is left of a group: SIGTERM to SIGKILL
LEADER_WAIT_HUNDREDTHS=100 # launch to setsid() done
STATUS_WAIT_USEC=10000000
SOCKET_PATH_MAX=107     # sun_path is 108 bytes including the NUL
NOFILE_WANTED=65536     # soft open-file limit asked for the responder

say() { printf 'stack.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

usage() {
    cat >&2 <<'EOF'
usage: conf/stack.sh run   PORT [CONFIG]   start responder + web server in the foreground
       conf/stack.sh start PORT [CONFIG]   start them in the background
       conf/stack.sh stop  PORT            stop what start started
PORT is 1-65535; CONFIG is the responder's INI file (optional).
SERVER=nginx|lighttpd|apache|apache-fcgid|apache-proxy|balancer picks the web server
(default nginx); stop finds it by itself. TLS=1 serves https (HTTP/2) on
PORT with a self-signed certificate made once in run/PORT/tls/.
EOF
    exit 2
}

# --- arguments -------------------------------------------------------------

[[ $# -ge 2 ]] || usage
MODE=$1
PORT=$2
CONFIG=${3:-}
case $MODE in
    run | start) [[ $# -le 3 ]] || usage ;;
    stop) [[ $# -eq 2 ]] || usage ;;
    *) usage ;;
esac

if [[ ! $PORT =~ ^[0-9]{1,5}$ ]] || ((10#$PORT < 1 || 10#$PORT > 65535)); then
    die "PORT must be a number from 1 to 65535, not '$PORT'"
fi
PORT=$((10#$PORT))   # one spelling per port: 08080 and 8080 share a run dir

WORKERS=${WORKERS:-}
if [[ -n $WORKERS ]] && { [[ ! $WORKERS =~ ^[1-9][0-9]?$ ]] || ((WORKERS > 64)); }; then
    die "WORKERS must be a number from 1 to 64, not '$WORKERS'"
fi

SERVER=${SERVER:-nginx}
known_server() {
    case " $SERVERS " in
        *" $1 "*) return 0 ;;
        *) return 1 ;;
    esac
}
known_server "$SERVER" || die "SERVER must be one of: ${SERVERS// /, }; not '$SERVER'"

TLS=${TLS:-0}
[[ $TLS == 0 || $TLS == 1 ]] || die "TLS must be 0 or 1, not '$TLS'"
# stop finds a stack's processes by their process group, with ps
command -v ps >/dev/null || die "ps not found (install procps)"

if [[ -n $CONFIG ]]; then
    [[ -e $CONFIG ]] || die "config file '$CONFIG' does not exist"
    [[ -f $CONFIG && -r $CONFIG ]] || die "config file '$CONFIG' is not a readable file"
    CONFIG=$(cd "$(dirname "$CONFIG")" && pwd -P)/$(basename "$CONFIG")
fi

RUN=$TOP/run/$PORT
SOCK=$RUN/mjpeg-fcgi.sock
RESP_PIDFILE=$RUN/mjpeg-fcgi.pid
RESP_LOG=$RUN/mjpeg-fcgi.log
SERVER_FILE=$RUN/server   # which server this stack runs
BUS=/dev/shm/mjpeg-fcgi-$PORT
TLS_DIR=$RUN/tls            # kept by stop: one certificate per port
TLS_CERT=$TLS_DIR/cert.pem
TLS_KEY=$TLS_DIR/key.pem
TLS_DAYS=3650               # validity of the self-signed certificate
OPENSSL=${OPENSSL:-openssl}
if ((TLS)); then
    URL=https://127.0.0.1:$PORT/
else
    URL=http://127.0.0.1:$PORT/
fi

# The stack's own server, for stop: what start wrote down (SERVER names the
# one to start, and stop can be called without it).
if [[ $MODE == stop && -r $SERVER_FILE ]]; then
    read -r recorded <"$SERVER_FILE" || true
    ! known_server "${recorded:-none}" || SERVER=$recorded
fi

# --- the server's hooks ----------------------------------------------------
#
# conf/servers/SERVER.sh sets, for that server:
#   SERVER_TEMPLATE       the config template under conf/
#   SERVER_CONF           the rendered config, under run/PORT/
#   SERVER_PIDFILE        the pid file the server writes
#   SERVER_ERRLOG         its error log
#   SERVER_STATE          further files and directories stop removes
#   SERVER_OWN_RESPONDER  1: stack.sh starts the responder on $SOCK and the
#                         server connects to it; 0: the server spawns the
#                         responders (they are in the server's group)
# and defines:
#   server_check_tools    dies when the server or a module is missing
#   server_check_paths    dies on paths the server cannot take (optional)
#   server_check_tls      TLS=1: dies when the server's TLS or HTTP/2
#                         module is missing
#   server_render         prepares what the config needs (sets RENDER_USER,
#                         RENDER_CONFIG; fills a document root); the core
#                         then renders the template
#   server_command        sets SRV_CMD: the server in the foreground
#   server_socket_ready   after the responder's socket appeared (optional)
#   server_stop_begin SRV stop begins: the server's graceful stop, or the
#                         responders it spawned first (optional)
#   server_stop_end SRV   the responder stack.sh started is gone (optional)
#
# Every server runs in the foreground (none of them then calls setsid), so
# all it forks stays in the group stack.sh made for it.

# server_exe GIVEN NAME: the server executable GIVEN if set, else NAME on PATH,
# else /usr/sbin/NAME (for the server's file).
server_exe() {
    local given=$1 name=$2
    [[ -n $given ]] && { printf '%s\n' "$given"; return 0; }
    command -v "$name" || printf '/usr/sbin/%s\n' "$name"
}

# true if EXE (a path or a name on PATH) can be run
runnable() {
    [[ -x $1 ]] || command -v "$1" >/dev/null
}

server_check_paths() { :; }
server_check_tls() { :; }
server_socket_ready() { :; }
server_stop_begin() { :; }
server_stop_end() { :; }
SERVER_STATE=()
# shellcheck source=/dev/null # one of conf/servers/*.sh, chosen at run time
source "$HERE/servers/$SERVER.sh"

# --- processes -------------------------------------------------------------

# Prints the pid stored in FILE, or nothing.
pid_from() {
    local pid=""
    if [[ -r $1 ]]; then
        read -r pid <"$1" 2>/dev/null || true
    fi
    [[ $pid =~ ^[1-9][0-9]*$ ]] && printf '%s\n' "$pid"
    return 0
}

# The fields of /proc/PID/stat after the command name, as the array STAT:
# STAT[0] is the state (field 3), STAT[2] the process group (5), STAT[19]
# the start time in clock ticks since boot (22). False if PID is gone.
read_stat() {
    local line
    read -r line 2>/dev/null <"/proc/$1/stat" || return 1
    read -r -a STAT <<<"${line##*) }"
}

# True while PID exists and is not a zombie (children stay zombies until
# waited for, and kill -0 still succeeds on them).
alive() {
    local STAT
    read_stat "$1" || return 1
    [[ ${STAT[0]} != Z ]]
}

# The live (not zombie) members of process group PGID, on one line. The
# group was made by setsid, so it is also a session: ps lists that session
# by its id, and the members that left the group (none of the servers
# does) are not ours to stop. ps shows zombies, which kill -0 would count:
# a dead leader waits as one until its new parent (init, after start
# returned) reaps it.
group_members() {
    local pid pgid stat list=()
    while read -r pid pgid stat; do
        [[ $pgid == "$1" && $stat != Z* ]] && list+=("$pid")
    done < <(ps -o pid=,pgid=,stat= --sid "$1" 2>/dev/null)
    printf '%s' "${list[*]}"
}

# The members of group PGID that its leader did not fork itself: what the
# leader's children started (mod_cgid's CGI processes, mod_fcgid's
# responders), found by their parents, never by their names.
grandchildren_in() {
    local pid ppid pgid stat list=()
    while read -r pid ppid pgid stat; do
        [[ $pgid == "$1" && $stat != Z* && $pid != "$1" && $ppid != "$1" ]] && list+=("$pid")
    done < <(ps -o pid=,ppid=,pgid=,stat= --sid "$1" 2>/dev/null)
    printf '%s' "${list[*]}"
}

# record_group ROLE PID: PID, just started by setsid, leads a group of its
# own; notes it in run/PORT/ROLE.pgid as "PGID STARTTIME" (the start time
# tells it from a later process that gets the same pid). setsid(1) needs no
# fork here (this script has no job control, so its background children
# lead no group): waits the moment until it has run setsid().
record_group() {
    local role=$1 pid=$2 hundredths=$LEADER_WAIT_HUNDREDTHS STAT
    while read_stat "$pid" && [[ ${STAT[2]} != "$pid" ]]; do
        if ((hundredths-- <= 0)); then
            say "warning: $role (pid $pid) did not become a process group leader; stop may miss what it forks"
            break
        fi
        sleep 0.01
    done
    read_stat "$pid" || return 0   # already gone: nothing to stop
    printf '%s %s\n' "$pid" "${STAT[19]}" >"$RUN/$role.pgid"
}

# Prints the group that run/PORT/ROLE.pgid records if processes of it still
# run: its leader with the recorded start time, or, the leader gone, other
# members (the kernel hands out no pid that still names a group, so a live
# group under that number is this one). A record whose pid now names a
# younger process is stale.
group_of() {
    local pgid="" start="" STAT
    [[ -r $RUN/$1.pgid ]] || return 0
    read -r pgid start <"$RUN/$1.pgid" 2>/dev/null || true
    [[ $pgid =~ ^[1-9][0-9]*$ ]] || return 0
    if read_stat "$pgid" && [[ ${STAT[19]} != "$start" ]]; then
        return 0
    fi
    if alive "$pgid" || [[ -n $(group_members "$pgid") ]]; then
        printf '%s\n' "$pgid"
    fi
    return 0
}

# Waits up to TENTHS tenths of a second for PID to end; true if it did.
wait_gone() {
    local pid=$1 tenths=$2
    while alive "$pid"; do
        ((tenths-- > 0)) || return 1
        sleep 0.1
    done
    return 0
}

# Waits up to TENTHS tenths of a second for group PGID to empty.
wait_group_gone() {
    local pgid=$1 tenths=$2
    while [[ -n $(group_members "$pgid") ]]; do
        ((tenths-- > 0)) || return 1
        sleep 0.1
    done
    return 0
}

# Ends whatever still runs in group PGID (WHAT names it): the workers of a
# master that was killed, a responder's workers, anything the server
# spawned. SIGTERM first (a responder then ends its streams), SIGKILL
# after a second.
end_group() {
    local pgid=$1 what=$2 left
    [[ -n $pgid ]] || return 0
    left=$(group_members "$pgid")
    [[ -n $left ]] || return 0
    say "stopping what is left of the $what (process group $pgid): $left"
    kill -TERM -- "-$pgid" 2>/dev/null || true
    wait_group_gone "$pgid" "$LEFTOVER_GRACE_TENTHS" && return 0
    kill -KILL -- "-$pgid" 2>/dev/null || true
    wait_group_gone "$pgid" 20 || say "processes of group $pgid survive SIGKILL: $(group_members "$pgid")"
}

# stop_pids WHAT PIDS...: SIGTERM to the pids (responders a server spawned:
# each ends its stream with the closing boundary), SIGKILL to those still
# there after SPAWNED_GRACE_TENTHS.
stop_pids() {
    local what=$1 pid tenths=$SPAWNED_GRACE_TENTHS left=()
    shift
    (($#)) || return 0
    kill -TERM "$@" 2>/dev/null || true
    for pid in "$@"; do
        while alive "$pid" && ((tenths-- > 0)); do sleep 0.1; done
        ! alive "$pid" || left+=("$pid")
    done
    if ((${#left[@]})); then
        say "$what still running $((SPAWNED_GRACE_TENTHS / 10)) s after SIGTERM; sending SIGKILL: ${left[*]}"
        kill -KILL "${left[@]}" 2>/dev/null || true
    fi
}

# Stops the responders (SIGTERM: each ends every stream with its closing
# boundary) and the server, so that those last parts reach the viewers.
# server_stop_begin starts the server's own way of stopping (nginx: SIGQUIT,
# lighttpd: SIGINT, Apache: the responders it spawned first); once the
# responder stack.sh started is gone, server_stop_end (Apache: SIGTERM).
# Escalates to the server's SIGTERM and finally SIGKILL to its group;
# whatever is left in either group is ended last. RESP and SRV are the
# groups (and leaders' pids) of the responder stack.sh started and of the
# server; empty ones are skipped.
stop_groups() {
    local resp=$1 srv=$2 srv_grace=$STOP_GRACE_TENTHS
    ((!SERVER_OWN_RESPONDER)) || srv_grace=20   # the responder had its grace already
    [[ -z $srv ]] || server_stop_begin "$srv"
    if [[ -n $resp ]]; then
        kill -TERM "$resp" 2>/dev/null || true
        if ! wait_gone "$resp" "$STOP_GRACE_TENTHS"; then
            say "responder (pid $resp) did not stop in time; sending SIGKILL"
            kill -KILL -- "-$resp" 2>/dev/null || true
            wait_gone "$resp" 20 || say "responder (pid $resp) survives SIGKILL"
        fi
    fi
    if [[ -n $srv ]]; then
        server_stop_end "$srv"
        if ! wait_gone "$srv" "$srv_grace"; then
            kill -TERM "$srv" 2>/dev/null || true
            if ! wait_gone "$srv" 20; then
                say "$SERVER (pid $srv) did not stop in time; sending SIGKILL"
                kill -KILL -- "-$srv" 2>/dev/null || true
                wait_gone "$srv" 20 || say "$SERVER (pid $srv) survives SIGKILL"
            fi
        fi
    fi
    end_group "$resp" "responder"
    end_group "$srv" "$SERVER"
}

remove_state() {
    rm -f -- "$RESP_PIDFILE" "$SERVER_PIDFILE" "$SOCK" "$SOCK"-[0-9]* "$SERVER_FILE" \
        "$RUN/responder.pgid" "$RUN/server.pgid"
    ((${#SERVER_STATE[@]} == 0)) || rm -rf -- "${SERVER_STATE[@]}"
    rm -rf -- "$BUS"
}

# Prints the tail of the given logs, or of both.
show_logs() {
    local f
    (($#)) || set -- "$RESP_LOG" "$SERVER_ERRLOG"
    for f in "$@"; do
        [[ -s $f ]] || continue
        say "--- last lines of ${f#"$TOP"/} ---"
        tail -n 20 -- "$f" >&2
    done
}

# --- preparing a start -----------------------------------------------------

port_answers() {
    (: <"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

status_answers() {
    local tls=()
    ((!TLS)) || tls=(--cacert "$TLS_CERT")
    curl -fsS --noproxy '*' --max-time 2 "${tls[@]}" -o /dev/null "${URL}status" 2>/dev/null
}

# Refuses to start over a stack that runs, or over what is left of one (a
# group whose leader died and whose other members still run: the workers
# of a master killed by SIGKILL), or on a port another program holds.
check_not_running() {
    local role pgid name
    for role in responder server; do
        pgid=$(group_of "$role")
        [[ -n $pgid ]] || continue
        if alive "$pgid"; then
            name=$role
            if [[ $role == server ]]; then
                read -r name <"$SERVER_FILE" 2>/dev/null || name=server
            fi
            die "a stack already runs on port $PORT from ${RUN#"$TOP"/} ($name pid $pgid); stop it with: conf/stack.sh stop $PORT"
        fi
        die "processes of a dead stack still run for port $PORT (pids $(group_members "$pgid") in process group $pgid); clear them with: conf/stack.sh stop $PORT"
    done
    if port_answers; then
        local who=
        command -v ss >/dev/null && who=$(ss -Hltnp "sport = :$PORT" 2>/dev/null | head -n 3 || true)
        die "port $PORT is already taken by another program${who:+:
$who}"
    fi
    # nothing of ours runs: whatever is left over is stale
    remove_state
}

check_tools() {
    [[ -x $BIN ]] || die "responder $BIN not found or not executable (run make first, or set BIN)"
    server_check_tools
    command -v curl >/dev/null || die "curl not found (install curl)"
    [[ -f $TOP/html/index.html ]] || say "warning: $TOP/html/index.html missing; / will answer 404"
    [[ -f $SERVER_TEMPLATE ]] || die "$SERVER_TEMPLATE missing"
    if ((TLS)); then
        runnable "$OPENSSL" || die "$OPENSSL not found (install openssl, or set OPENSSL); TLS=1 makes a certificate with it"
        server_check_tls
    fi
}

# TLS=1: the stack's self-signed certificate for 127.0.0.1, made once.
# The key is the user's alone; the server reads it before dropping root.
make_cert() {
    ((TLS)) || return 0
    [[ -s $TLS_CERT && -s $TLS_KEY ]] && return 0
    mkdir -p -- "$TLS_DIR"
    chmod 0755 -- "$TLS_DIR"
    # umask: the key is never readable by others, not even for a moment
    if ! (umask 077 && "$OPENSSL" req -x509 -newkey rsa:2048 -nodes -days "$TLS_DAYS" \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$TLS_KEY.new" -out "$TLS_CERT.new" 2>"$TLS_DIR/openssl.log"); then
        cat -- "$TLS_DIR/openssl.log" >&2
        rm -f -- "$TLS_KEY.new" "$TLS_CERT.new"
        die "openssl could not make the certificate in $TLS_DIR"
    fi
    rm -f -- "$TLS_DIR/openssl.log"
    chmod 0600 -- "$TLS_KEY.new"
    chmod 0644 -- "$TLS_CERT.new"
    mv -f -- "$TLS_KEY.new" "$TLS_KEY"
    mv -f -- "$TLS_CERT.new" "$TLS_CERT"
    say "made a self-signed certificate for 127.0.0.1: ${TLS_CERT#"$TOP"/}"
}

# nginx, lighttpd and Apache (quoted strings, variables) and sed
# (replacement text) would misread these in a path; refusing is clearer
# than a broken config. The server may refuse more (server_check_paths).
check_paths() {
    case $TOP in
        *[\"\'\\\$\;\{\}\|\&]* | *$'\n'*)
            die "the checkout path '$TOP' contains a character nginx cannot take (\" ' \\ \$ ; { } | & or newline)" ;;
        *) ;;
    esac
    server_check_paths
    if ((${#SOCK} + 2 > SOCKET_PATH_MAX)); then
        die "socket path $SOCK is ${#SOCK} bytes, over what a unix socket allows; use a shorter checkout path"
    fi
}

# For server_check_paths: lighttpd's bin-path and mod_fcgid's wrapper are
# split into arguments on spaces, so there the responder's paths cannot
# hold one either.
check_paths_for_command_line() {
    local path what
    for what in checkout responder config; do
        case $what in
            checkout) path=$TOP ;;
            responder) path=$BIN ;;
            config) path=$CONFIG ;;
        esac
        case $path in
            *[[:space:]\"\'\\\$\;\{\}\|\&]*)
                die "the $what path '$path' contains a space or a character $SERVER cannot take in a command line (\" ' \\ \$ ; { } | &)" ;;
            *) ;;
        esac
    done
}

# Renders SERVER_TEMPLATE into SERVER_CONF. server_render first sets what
# differs per server: RENDER_USER (the user directive, when root),
# RENDER_CONFIG (the config path the server's responders read).
render_conf() {
    RENDER_USER="" RENDER_CONFIG=$CONFIG
    server_render
    local resp_args="--bus-dir $BUS${RENDER_CONFIG:+ --config $RENDER_CONFIG}"
    local wrapper="\"$BIN $resp_args\"" procs=${WORKERS:-2}
    # Lines starting with @TLS@ are kept (without the mark) only with TLS=1,
    # lines starting with @PLAIN@ only without; comment lines keep the
    # placeholders: they document the template
    local keep=PLAIN drop=TLS
    ((!TLS)) || { keep=TLS; drop=PLAIN; }
    sed -e "/^[[:space:]]*@$drop@/d" \
        -e "s|^\([[:space:]]*\)@$keep@|\1|" \
        -e "/^[[:space:]]*#/!{
            s|@PORT@|$PORT|g
            s|@RUNDIR@|$RUN|g
            s|@HTMLDIR@|$TOP/html|g
            s|@SOCKET@|$SOCK|g
            s|@USER_DIRECTIVE@|$RENDER_USER|g
            s|@USER@|$RENDER_USER|g
            s|@BIN@|$BIN|g
            s|@ARGS@|$resp_args|g
            s|@WRAPPER@|$wrapper|g
            s|@MAX_PROCS@|$procs|g
            s|@MODDIR@|${APACHE_MODDIR:-}|g
            s|@CERT@|$TLS_CERT|g
            s|@KEY@|$TLS_KEY|g
        }" \
        "$SERVER_TEMPLATE" >"$SERVER_CONF.new"
    mv -f -- "$SERVER_CONF.new" "$SERVER_CONF"
}

# Each viewer holds descriptors in the responder; take what the hard limit
# allows (nginx raises its own workers' limit, worker_rlimit_nofile).
raise_nofile() {
    local hard want=$NOFILE_WANTED
    hard=$(ulimit -Hn)
    [[ $hard != unlimited ]] && ((hard < want)) && want=$hard
    ulimit -Sn "$want" 2>/dev/null || true
    if [[ $hard != unlimited ]] && ((hard < 8192)); then
        say "warning: open-file limit is $hard; the server wants 8192 per process for 2048 viewers"
    fi
}

responder_args() {
    RESP_ARGS=(--listen "unix:$SOCK" --bus-dir "$BUS" --pid-file "$RESP_PIDFILE")
    [[ -n $CONFIG ]] && RESP_ARGS+=(--config "$CONFIG")
    [[ -n $WORKERS ]] && RESP_ARGS+=(--workers "$WORKERS")
    return 0
}

# Waits for the responder's socket; fails if the responder dies first.
wait_socket() {
    local pid=$1 tenths=$SOCKET_WAIT_TENTHS
    until [[ -S $SOCK ]]; do
        ((!STOP_REQUESTED)) || return 1
        alive "$pid" || { say "responder exited during startup"; return 1; }
        ((tenths-- > 0)) || { say "responder socket $SOCK did not appear within 5 s"; return 1; }
        sleep 0.1
    done
    # the responder writes its own pid file; make sure it is there
    [[ -s $RESP_PIDFILE ]] || printf '%s\n' "$pid" >"$RESP_PIDFILE"
    server_socket_ready
}

# Waits for the server's pid file, which tests and tools read; fails if the
# server dies first.
wait_pidfile() {
    local pid=$1 tenths=$PIDFILE_WAIT_TENTHS
    until [[ $(pid_from "$SERVER_PIDFILE") == "$pid" ]]; do
        ((!STOP_REQUESTED)) || return 1
        alive "$pid" || { say "$SERVER exited during startup"; return 1; }
        ((tenths-- > 0)) || { say "$SERVER wrote no pid file"; return 1; }
        sleep 0.1
    done
}

# Polls /status every 0.1 s for up to 10 s while both processes live.
wait_status() {
    local resp=$1 srv=$2 deadline now
    now=${EPOCHREALTIME/./}
    deadline=$((now + STATUS_WAIT_USEC))
    until status_answers; do
        ((!STOP_REQUESTED)) || return 1
        [[ -z $resp ]] || alive "$resp" || { say "responder exited during startup"; return 1; }
        [[ -z $srv ]] || alive "$srv" || { say "$SERVER exited during startup"; return 1; }
        now=${EPOCHREALTIME/./}
        ((now < deadline)) || { say "${URL}status did not answer within 10 s"; return 1; }
        sleep 0.1
    done
}

# --- start -----------------------------------------------------------------

STARTED_RESP=
STARTED_SRV=
STOP_REQUESTED=0   # set by SIGINT/SIGTERM; the wait loops give up on it

# On any failure after launching, stop exactly what this invocation started.
abort_start() {
    if ((STOP_REQUESTED)); then
        say "interrupted; stopping what was started"
    else
        show_logs
    fi
    stop_groups "$STARTED_RESP" "$STARTED_SRV"
    remove_state
    exit 1
}

# Checks before anything starts; they change nothing of a stack that runs.
prepare() {
    check_tools
    check_paths
    check_not_running
    make_cert
    mkdir -p -- "$RUN/tmp"
    printf '%s\n' "$SERVER" >"$SERVER_FILE"
    render_conf
    raise_nofile
    responder_args
}

# launch ROLE LOG COMMAND...: runs COMMAND in the background in a session
# of its own, so that a Ctrl-C in this terminal reaches only this script
# (which then stops the stack in order) and stop finds all it forks by its
# group. This script runs without job control, so its background children
# lead no group and setsid(1) needs no fork: $! is the new session's leader,
# and its pid the group's id. start: output to LOG; run: output to the
# terminal, and to LOG if one is given (through a tee that ignores Ctrl-C,
# so that the last words still arrive). Sets LAUNCHED.
launch() {
    local role=$1 log=$2
    shift 2
    if [[ $MODE == start ]]; then
        setsid nohup "$@" </dev/null >>"$log" 2>&1 &
    elif [[ -n $log ]]; then
        setsid "$@" </dev/null 2> >(trap '' INT TERM; exec tee -a "$log" >&2) &
    else
        setsid "$@" </dev/null &
    fi
    LAUNCHED=$!
    record_group "$role" "$LAUNCHED"
}

launch_responder() {
    # private (0700, as the responder wants it) and new: a directory that
    # another user made since remove_state is refused, never used
    mkdir -m 0700 -- "$BUS" 2>/dev/null ||
        die "cannot create the frame bus directory $BUS: it exists again (another user's?) or /dev/shm is not writable"
    printf '\n%s stack.sh %s %s\n' "$(date '+%F %T')" "$MODE" "$PORT" >>"$RESP_LOG"
    launch responder "$RESP_LOG" "$BIN" "${RESP_ARGS[@]}"
    STARTED_RESP=$LAUNCHED
}

# The server runs in the foreground in both modes (start puts it in the
# background itself); its messages go to its error log.
launch_server() {
    server_command
    if [[ $MODE == start ]]; then
        launch server "$SERVER_ERRLOG" "${SRV_CMD[@]}"
    else
        launch server "" "${SRV_CMD[@]}"
    fi
    STARTED_SRV=$LAUNCHED
}

cmd_start() {
    trap 'STOP_REQUESTED=1' INT TERM
    prepare
    if ((SERVER_OWN_RESPONDER)); then
        launch_responder
        wait_socket "$STARTED_RESP" || abort_start
    fi
    launch_server
    wait_pidfile "$STARTED_SRV" || abort_start
    wait_status "$STARTED_RESP" "$STARTED_SRV" || abort_start
    if ((SERVER_OWN_RESPONDER)); then
        printf 'mjpeg-fcgi runs at %s (responder pid %s, %s pid %s); stop: conf/stack.sh stop %s\n' \
            "$URL" "$STARTED_RESP" "$SERVER" "$STARTED_SRV" "$PORT"
    elif [[ $SERVER == balancer ]]; then
        printf 'the balancer runs at %s (nginx pid %s, edges %s); stop: conf/stack.sh stop %s\n' \
            "$URL" "$STARTED_SRV" "$BALANCER_EDGES" "$PORT"
    else
        printf 'mjpeg-fcgi runs at %s (%s pid %s, which starts the responders); stop: conf/stack.sh stop %s\n' \
            "$URL" "$SERVER" "$STARTED_SRV" "$PORT"
    fi
}

# --- stop ------------------------------------------------------------------

cmd_stop() {
    local resp srv role
    for role in responder server; do
        if [[ -r $RUN/$role.pgid && -z $(group_of "$role") ]]; then
            say "stale ${RUN#"$TOP"/}/$role.pgid: nothing of that group runs any more; not signalled"
        fi
    done
    resp=$(group_of responder)
    srv=$(group_of server)
    stop_groups "$resp" "$srv"
    remove_state
    if [[ -n $resp$srv ]]; then
        printf 'stopped the stack on port %s\n' "$PORT"
    else
        printf 'nothing runs on port %s\n' "$PORT"
    fi
}

# --- run -------------------------------------------------------------------

cmd_run() {
    trap 'STOP_REQUESTED=1' INT TERM
    prepare
    # covers every early exit from here on; the normal path clears it
    trap 'stop_groups "$STARTED_RESP" "$STARTED_SRV"; remove_state' EXIT

    local failed="" status=0 which="" ready=1
    if ((SERVER_OWN_RESPONDER)); then
        launch_responder
        wait_socket "$STARTED_RESP" || ready=0
    fi
    if ((ready)); then
        launch_server
        if wait_status "$STARTED_RESP" "$STARTED_SRV"; then
            printf 'mjpeg-fcgi runs at %s behind %s (Ctrl-C stops it)\n' "$URL" "$SERVER"
        elif ((!STOP_REQUESTED)); then
            failed=startup
        fi
    elif ((!STOP_REQUESTED)); then
        failed=startup
    fi

    local watched=()
    [[ -z $STARTED_SRV ]] || watched+=("$STARTED_SRV")
    [[ -z $STARTED_RESP ]] || watched+=("$STARTED_RESP")
    while [[ -z $failed ]] && ((!STOP_REQUESTED)); do
        # returns when either child ends, or early (>128, no pid) when a
        # trapped signal arrives
        which="" status=0
        wait -n -p which "${watched[@]}" || status=$?
        if [[ -n $STARTED_RESP && ${which:-} == "$STARTED_RESP" ]]; then
            failed="the responder (pid $which) exited with status $status"
        elif [[ -n ${which:-} ]]; then
            failed="$SERVER (pid $which) exited with status $status"
            show_logs "$SERVER_ERRLOG"
        fi
    done

    trap '' INT TERM   # a second Ctrl-C must not cut the orderly stop short
    if [[ $failed == startup ]]; then
        show_logs "$SERVER_ERRLOG"
        say "the stack did not come up; stopping"
    elif [[ -n $failed ]]; then
        say "$failed; stopping the stack"
    else
        say "stopping"
    fi
    stop_groups "$STARTED_RESP" "$STARTED_SRV"
    # shellcheck disable=SC2086 # empty pids drop out
    wait $STARTED_RESP $STARTED_SRV 2>/dev/null || true   # reap them
    STARTED_RESP="" STARTED_SRV=""
    remove_state
    trap - EXIT
    [[ -z $failed ]] || exit 1
    say "stopped"
}

case $MODE in
    run) cmd_run ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    *) usage ;;
esac
