#!/usr/bin/env bash
# Development stack: the mjpeg-fcgi responder behind nginx, on 127.0.0.1.
#
#   conf/stack.sh run   PORT [CONFIG]   foreground; Ctrl-C or SIGTERM stops both
#   conf/stack.sh start PORT [CONFIG]   background; returns once /status answers
#   conf/stack.sh stop  PORT            stops what start started; harmless if idle
#
# Everything lives in run/PORT/ inside the repo (socket, pid files, logs, the
# rendered nginx.conf, nginx temp dirs), plus the frame bus directory
# /dev/shm/mjpeg-fcgi-PORT; stacks on different ports never meet.
#
# Environment: BIN overrides the responder (default fcgi/mjpeg-fcgi), NGINX
# the nginx binary (default: nginx on PATH, else /usr/sbin/nginx), WORKERS
# the number of responder processes (--workers; default 1).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
TOP=$(dirname "$HERE")
BIN=${BIN:-$TOP/fcgi/mjpeg-fcgi}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

STOP_GRACE_TENTHS=50    # SIGTERM/SIGQUIT to SIGKILL, tenths of a second
SOCKET_WAIT_TENTHS=50   # responder start to socket present
STATUS_WAIT_USEC=10000000
SOCKET_PATH_MAX=107     # sun_path is 108 bytes including the NUL
NOFILE_WANTED=65536     # soft open-file limit asked for the responder

say() { printf 'stack.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

usage() {
    cat >&2 <<'EOF'
usage: conf/stack.sh run   PORT [CONFIG]   start responder + nginx in the foreground
       conf/stack.sh start PORT [CONFIG]   start them in the background
       conf/stack.sh stop  PORT            stop what start started
PORT is 1-65535; CONFIG is the responder's INI file (optional).
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
if [[ -n $WORKERS && ! $WORKERS =~ ^[1-9][0-9]?$ ]]; then
    die "WORKERS must be a number from 1 to 64, not '$WORKERS'"
fi

if [[ -n $CONFIG ]]; then
    [[ -e $CONFIG ]] || die "config file '$CONFIG' does not exist"
    [[ -f $CONFIG && -r $CONFIG ]] || die "config file '$CONFIG' is not a readable file"
    CONFIG=$(cd "$(dirname "$CONFIG")" && pwd -P)/$(basename "$CONFIG")
fi

RUN=$TOP/run/$PORT
SOCK=$RUN/mjpeg-fcgi.sock
RESP_PIDFILE=$RUN/mjpeg-fcgi.pid
RESP_LOG=$RUN/mjpeg-fcgi.log
NGINX_PIDFILE=$RUN/nginx.pid
NGINX_CONF=$RUN/nginx.conf
NGINX_ERRLOG=$RUN/nginx-error.log
BUS=/dev/shm/mjpeg-fcgi-$PORT
URL=http://127.0.0.1:$PORT/

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

# True while PID exists and is not a zombie (our own children stay zombies
# until waited for, and kill -0 still succeeds on them).
alive() {
    local stat
    kill -0 "$1" 2>/dev/null || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

cmdline_of() {
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true
}

# A pid file names our responder only if that process still carries this
# stack's pid file and socket on its command line: a reused pid never does.
is_our_responder() {
    local cmd
    [[ -n $1 ]] && alive "$1" || return 1
    cmd=" $(cmdline_of "$1")"
    [[ $cmd == *" --pid-file $RESP_PIDFILE "* && $cmd == *" --listen unix:$SOCK "* ]]
}

# nginx rewrites its command line to "nginx: master process <argv>"; its
# executable is nginx and that argv names this stack's config.
is_our_nginx() {
    [[ -n $1 ]] && alive "$1" && is_nginx_exe "$1" || return 1
    [[ " $(cmdline_of "$1")" == *" $NGINX_CONF "* ]]
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

# Last resort: SIGKILL on a master would orphan nginx workers, so collect
# them first.
kill_hard() {
    local pid=$1 name=$2 children=
    command -v pgrep >/dev/null && children=$(pgrep -P "$pid" || true)
    say "$name (pid $pid) did not stop in time; sending SIGKILL"
    # shellcheck disable=SC2086 # word splitting of the pid list is intended
    kill -KILL "$pid" $children 2>/dev/null || true
    wait_gone "$pid" 20 || say "$name (pid $pid) survives SIGKILL"
}

is_nginx_exe() {
    local exe
    exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
    exe=${exe% (deleted)}
    [[ $(basename "$exe") == nginx* ]]
}

# Workers outlive a master killed by SIGKILL and keep serving the port. They
# are this stack's if their working directory is the run dir (the config's
# working_directory) and no nginx master is their parent any more.
stray_nginx_workers() {
    local d pid stat ppid list=()
    for d in /proc/[0-9]*; do
        [[ $(readlink "$d/cwd" 2>/dev/null) == "$RUN" ]] || continue
        pid=${d#/proc/}
        is_nginx_exe "$pid" || continue
        stat=$(cat "$d/stat" 2>/dev/null) || continue
        read -r _ ppid _ <<<"${stat##*) }"
        is_nginx_exe "$ppid" || list+=("$pid")
    done
    printf '%s' "${list[*]}"   # one line, pids separated by spaces
}

stop_stray_workers() {
    local strays pid
    strays=$(stray_nginx_workers)
    [[ -n $strays ]] || return 0
    say "stopping nginx workers left by a dead master: $strays"
    # shellcheck disable=SC2086 # word splitting of the pid list is intended
    kill -TERM $strays 2>/dev/null || true
    for pid in $strays; do
        wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
    done
}

# Stops the responder (SIGTERM: it ends every stream with its closing
# boundary) and nginx (SIGQUIT: it lets those responses finish) together,
# then escalates to nginx SIGTERM and finally SIGKILL. Empty pids are skipped.
stop_pids() {
    local resp=$1 ngx=$2
    [[ -z $resp ]] || kill -TERM "$resp" 2>/dev/null || true
    [[ -z $ngx ]] || kill -QUIT "$ngx" 2>/dev/null || true
    if [[ -n $resp ]] && ! wait_gone "$resp" "$STOP_GRACE_TENTHS"; then
        kill_hard "$resp" responder
    fi
    # with the responder gone, the last responses end at once
    if [[ -n $ngx ]] && ! wait_gone "$ngx" 20; then
        kill -TERM "$ngx" 2>/dev/null || true
        wait_gone "$ngx" 20 || kill_hard "$ngx" nginx
    fi
    stop_stray_workers
}

remove_state() {
    rm -f -- "$RESP_PIDFILE" "$NGINX_PIDFILE" "$SOCK"
    rm -rf -- "$BUS"
}

# Prints the tail of the given logs, or of both.
show_logs() {
    local f
    (($#)) || set -- "$RESP_LOG" "$NGINX_ERRLOG"
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
    curl -fsS --noproxy '*' --max-time 2 -o /dev/null "${URL}status" 2>/dev/null
}

check_not_running() {
    local resp ngx
    resp=$(pid_from "$RESP_PIDFILE")
    ngx=$(pid_from "$NGINX_PIDFILE")
    if is_our_responder "$resp" || is_our_nginx "$ngx"; then
        die "a stack already runs on port $PORT from ${RUN#"$TOP"/} (responder pid ${resp:-none}, nginx pid ${ngx:-none}); stop it with: conf/stack.sh stop $PORT"
    fi
    local strays
    strays=$(stray_nginx_workers)
    if [[ -n $strays ]]; then
        die "nginx workers of a dead stack still hold port $PORT (pids $strays); clear them with: conf/stack.sh stop $PORT"
    fi
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
    [[ -x $NGINX ]] || command -v "$NGINX" >/dev/null ||
        die "nginx not found (install nginx-light, or set NGINX)"
    command -v curl >/dev/null || die "curl not found (install curl)"
    [[ -f $TOP/html/index.html ]] || say "warning: $TOP/html/index.html missing; / will answer 404"
    [[ -f $HERE/nginx.conf.in ]] || die "$HERE/nginx.conf.in missing"
}

# Both nginx (quoted strings, variables) and sed (replacement text) would
# misread these in a path; refusing is clearer than a broken config.
check_paths() {
    case $TOP in
        *[\"\'\\\$\;\{\}\|\&]* | *$'\n'*)
            die "the checkout path '$TOP' contains a character nginx cannot take (\" ' \\ \$ ; { } | & or newline)" ;;
        *) ;;
    esac
    if ((${#SOCK} > SOCKET_PATH_MAX)); then
        die "socket path $SOCK is ${#SOCK} bytes, over the $SOCKET_PATH_MAX a unix socket allows; use a shorter checkout path"
    fi
}

render_nginx_conf() {
    local user_directive=
    if ((EUID == 0)); then
        user_directive="user $(id -un) $(id -gn);"
    fi
    mkdir -p -- "$RUN/tmp"
    # comment lines keep the placeholders: they document the template
    sed -e "/^[[:space:]]*#/!{
            s|@PORT@|$PORT|g
            s|@RUNDIR@|$RUN|g
            s|@HTMLDIR@|$TOP/html|g
            s|@SOCKET@|$SOCK|g
            s|@USER_DIRECTIVE@|$user_directive|g
        }" \
        "$HERE/nginx.conf.in" >"$NGINX_CONF.new"
    mv -f -- "$NGINX_CONF.new" "$NGINX_CONF"
}

# Each viewer holds descriptors in the responder; take what the hard limit
# allows (nginx raises its own workers' limit, worker_rlimit_nofile).
raise_nofile() {
    local hard want=$NOFILE_WANTED
    hard=$(ulimit -Hn)
    [[ $hard != unlimited ]] && ((hard < want)) && want=$hard
    ulimit -Sn "$want" 2>/dev/null || true
    if [[ $hard != unlimited ]] && ((hard < 8192)); then
        say "warning: open-file limit is $hard; nginx wants 8192 per worker for 2048 viewers"
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
    # the responder writes its own pid file; make sure stop finds it
    [[ -s $RESP_PIDFILE ]] || printf '%s\n' "$pid" >"$RESP_PIDFILE"
}

# Polls /status every 0.1 s for up to 10 s while both processes live.
wait_status() {
    local resp=$1 ngx=$2 deadline now
    now=${EPOCHREALTIME/./}
    deadline=$((now + STATUS_WAIT_USEC))
    until status_answers; do
        ((!STOP_REQUESTED)) || return 1
        alive "$resp" || { say "responder exited during startup"; return 1; }
        [[ -z $ngx ]] || alive "$ngx" || { say "nginx exited during startup"; return 1; }
        now=${EPOCHREALTIME/./}
        ((now < deadline)) || { say "${URL}status did not answer within 10 s"; return 1; }
        sleep 0.1
    done
}

# --- start -----------------------------------------------------------------

STARTED_RESP=
STARTED_NGINX=
STOP_REQUESTED=0   # set by SIGINT/SIGTERM; the wait loops give up on it

# On any failure after launching, stop exactly what this invocation started.
abort_start() {
    if ((STOP_REQUESTED)); then
        say "interrupted; stopping what was started"
    else
        show_logs
    fi
    stop_pids "$STARTED_RESP" "$STARTED_NGINX"
    remove_state
    exit 1
}

# Checks before anything starts; they change nothing of a stack that runs.
prepare() {
    check_tools
    check_paths
    check_not_running
    render_nginx_conf
    raise_nofile
    responder_args
}

# The responder runs in a session of its own: a Ctrl-C in this terminal
# reaches only this script, which then stops the stack in order.
launch_responder() {
    mkdir -p -- "$BUS"
    printf '\n%s stack.sh %s %s\n' "$(date '+%F %T')" "$MODE" "$PORT" >>"$RESP_LOG"
    if [[ $MODE == start ]]; then
        setsid nohup "$BIN" "${RESP_ARGS[@]}" </dev/null >>"$RESP_LOG" 2>&1 &
    else
        # to the terminal and the log; tee ignores Ctrl-C so that the
        # responder's last words still arrive
        setsid "$BIN" "${RESP_ARGS[@]}" </dev/null \
            2> >(trap '' INT TERM; exec tee -a "$RESP_LOG" >&2) &
    fi
    STARTED_RESP=$!
}

cmd_start() {
    trap 'STOP_REQUESTED=1' INT TERM
    prepare
    launch_responder
    wait_socket "$STARTED_RESP" || abort_start

    # nginx binds before it daemonizes: a taken port fails right here
    if ! "$NGINX" -p "$RUN/" -c "$NGINX_CONF" -e "$NGINX_ERRLOG" -g 'daemon on;' </dev/null; then
        say "nginx failed to start"
        abort_start
    fi
    # the daemon writes its pid file just after the fork
    local tenths=20
    until STARTED_NGINX=$(pid_from "$NGINX_PIDFILE") && [[ -n $STARTED_NGINX ]]; do
        ((tenths-- > 0)) || { say "nginx wrote no pid file"; abort_start; }
        sleep 0.1
    done
    wait_status "$STARTED_RESP" "$STARTED_NGINX" || abort_start
    printf 'mjpeg-fcgi runs at %s (responder pid %s, nginx pid %s); stop: conf/stack.sh stop %s\n' \
        "$URL" "$STARTED_RESP" "$STARTED_NGINX" "$PORT"
}

# --- stop ------------------------------------------------------------------

cmd_stop() {
    local resp ngx found=0
    resp=$(pid_from "$RESP_PIDFILE")
    ngx=$(pid_from "$NGINX_PIDFILE")
    if [[ -n $resp ]] && ! is_our_responder "$resp"; then
        say "stale ${RESP_PIDFILE#"$TOP"/}: pid $resp is gone or not this stack's responder; not signalled"
        resp=
    fi
    if [[ -n $ngx ]] && ! is_our_nginx "$ngx"; then
        say "stale ${NGINX_PIDFILE#"$TOP"/}: pid $ngx is gone or not this stack's nginx; not signalled"
        ngx=
    fi
    [[ -n $resp ]] && found=1
    [[ -n $ngx ]] && found=1
    stop_pids "$resp" "$ngx"
    remove_state
    if ((found)); then
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
    trap 'stop_pids "$STARTED_RESP" "$STARTED_NGINX"; remove_state' EXIT
    launch_responder

    local failed="" status=0 which=""
    if wait_socket "$STARTED_RESP"; then
        setsid "$NGINX" -p "$RUN/" -c "$NGINX_CONF" -e "$NGINX_ERRLOG" -g 'daemon off;' </dev/null &
        STARTED_NGINX=$!
        if wait_status "$STARTED_RESP" "$STARTED_NGINX"; then
            printf 'mjpeg-fcgi runs at %s (Ctrl-C stops it)\n' "$URL"
        elif ((!STOP_REQUESTED)); then
            failed=startup
        fi
    elif ((!STOP_REQUESTED)); then
        failed=startup
    fi

    while [[ -z $failed ]] && ((!STOP_REQUESTED)); do
        # returns when either child ends, or early (>128, no pid) when a
        # trapped signal arrives
        which="" status=0
        wait -n -p which "$STARTED_RESP" "$STARTED_NGINX" || status=$?
        if [[ ${which:-} == "$STARTED_RESP" ]]; then
            failed="the responder (pid $which) exited with status $status"
        elif [[ -n ${which:-} ]]; then
            failed="nginx (pid $which) exited with status $status"
            show_logs "$NGINX_ERRLOG"
        fi
    done

    trap '' INT TERM   # a second Ctrl-C must not cut the orderly stop short
    if [[ $failed == startup ]]; then
        show_logs "$NGINX_ERRLOG"
        say "the stack did not come up; stopping"
    elif [[ -n $failed ]]; then
        say "$failed; stopping the stack"
    else
        say "stopping"
    fi
    stop_pids "$STARTED_RESP" "$STARTED_NGINX"
    wait "$STARTED_RESP" "$STARTED_NGINX" 2>/dev/null || true   # reap them
    STARTED_RESP="" STARTED_NGINX=""
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
