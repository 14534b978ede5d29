#!/usr/bin/env bash
# Development stack: the mjpeg-fcgi responder behind a web server, on
# 127.0.0.1.
#
#   conf/stack.sh run   PORT [CONFIG]   foreground; Ctrl-C or SIGTERM stops it
#   conf/stack.sh start PORT [CONFIG]   background; returns once /status answers
#   conf/stack.sh stop  PORT            stops what start started; harmless if idle
#
# SERVER (environment) picks the web server and how it runs the responder:
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
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
TOP=$(dirname "$HERE")
BIN=${BIN:-$TOP/fcgi/mjpeg-fcgi}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
LIGHTTPD=${LIGHTTPD:-$(command -v lighttpd || echo /usr/sbin/lighttpd)}
APACHE=${APACHE:-$(command -v apache2 || echo /usr/sbin/apache2)}
APACHE_MODDIR=${APACHE_MODDIR:-/usr/lib/apache2/modules}
SERVERS="nginx lighttpd apache apache-fcgid apache-proxy"

STOP_GRACE_TENTHS=50    # SIGTERM/SIGQUIT to SIGKILL, tenths of a second
SOCKET_WAIT_TENTHS=50   # responder start to socket present
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
SERVER=nginx|lighttpd|apache|apache-fcgid|apache-proxy picks the web server
(default nginx); stop finds it by itself.
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

SERVER_GIVEN=${SERVER:-}
SERVER=${SERVER:-nginx}
case " $SERVERS " in
    *" $SERVER "*) ;;
    *) die "SERVER must be one of: ${SERVERS// /, }; not '$SERVER'" ;;
esac

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
LIGHTTPD_PIDFILE=$RUN/lighttpd.pid
LIGHTTPD_CONF=$RUN/lighttpd.conf
LIGHTTPD_ERRLOG=$RUN/lighttpd-error.log
APACHE_PIDFILE=$RUN/apache2.pid
APACHE_CONF=$RUN/apache.conf
APACHE_ERRLOG=$RUN/apache-error.log
WWW=$RUN/www              # Apache CGI: the document root, as on a web host
CGI=$WWW/mjpeg.cgi
SERVER_FILE=$RUN/server   # which server this stack runs
BUS=/dev/shm/mjpeg-fcgi-$PORT
URL=http://127.0.0.1:$PORT/

# The stack's own server, for stop: what start wrote down (SERVER names the
# one to start, and stop can be called without it).
if [[ $MODE == stop && -r $SERVER_FILE ]]; then
    read -r recorded <"$SERVER_FILE" || true
    case " $SERVERS " in
        *" ${recorded:-none} "*) SERVER=$recorded ;;
        *) ;;
    esac
fi

# server_info KIND sets, for that server: its executable's name, pid file,
# config and error log, and whether stack.sh starts the responder itself
# (nginx, apache-proxy) or the server spawns responders (lighttpd,
# mod_fcgid, CGI).
server_info() {
    case $1 in
        nginx)
            SRV_NAME=nginx SRV_PIDFILE=$NGINX_PIDFILE
            SRV_CONF=$NGINX_CONF SRV_ERRLOG=$NGINX_ERRLOG OWN_RESPONDER=1 ;;
        lighttpd)
            SRV_NAME=lighttpd SRV_PIDFILE=$LIGHTTPD_PIDFILE
            SRV_CONF=$LIGHTTPD_CONF SRV_ERRLOG=$LIGHTTPD_ERRLOG OWN_RESPONDER=0 ;;
        apache | apache-fcgid)
            SRV_NAME=apache2 SRV_PIDFILE=$APACHE_PIDFILE
            SRV_CONF=$APACHE_CONF SRV_ERRLOG=$APACHE_ERRLOG OWN_RESPONDER=0 ;;
        apache-proxy)
            SRV_NAME=apache2 SRV_PIDFILE=$APACHE_PIDFILE
            SRV_CONF=$APACHE_CONF SRV_ERRLOG=$APACHE_ERRLOG OWN_RESPONDER=1 ;;
    esac
}
server_info "$SERVER"

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
# executable is nginx and that argv names this stack's config. lighttpd and
# Apache keep their command lines, which name this stack's config too.
is_our_server() {
    [[ -n $1 ]] && alive "$1" && exe_is "$1" "$SRV_NAME" || return 1
    [[ " $(cmdline_of "$1") " == *" $SRV_CONF "* ]]
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

# exe_is PID NAME: the process runs an executable called NAME* (nginx,
# lighttpd, apache2, mjpeg).
exe_is() {
    local exe
    exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
    exe=${exe% (deleted)}
    [[ $(basename "$exe") == "$2"* ]]
}

is_nginx_exe() {
    exe_is "$1" nginx
}

# Responder processes of this stack that stack.sh did not start itself: the
# ones lighttpd or mod_fcgid spawned (their arguments name this stack's bus
# directory), the CGI processes Apache runs (their executable is this
# stack's www/mjpeg.cgi), and the workers of a responder that was killed.
# Prints their pids on one line.
stack_responders() {
    local d pid exe list=() args i stat
    for d in /proc/[0-9]*; do
        # the name first: reading it costs no fork
        read -r stat 2>/dev/null <"$d/stat" || continue
        [[ $stat == *" (mjpeg"* ]] || continue
        pid=${d#/proc/}
        exe=$(readlink "$d/exe" 2>/dev/null) || continue
        exe=${exe% (deleted)}
        if [[ $exe == "$CGI" ]]; then
            list+=("$pid")
            continue
        fi
        [[ ${exe##*/} == mjpeg* ]] || continue
        mapfile -d '' args <"$d/cmdline" 2>/dev/null || continue
        for ((i = 1; i + 1 < ${#args[@]}; i++)); do
            if [[ ${args[i]} == --bus-dir && ${args[i + 1]} == "$BUS" ]]; then
                list+=("$pid")
                break
            fi
        done
    done
    printf '%s' "${list[*]}"
}

# Apache children outlive a parent killed by SIGKILL; they carry the
# parent's command line, naming this stack's config.
stray_apache_children() {
    local d pid list=() stat
    for d in /proc/[0-9]*; do
        read -r stat 2>/dev/null <"$d/stat" || continue
        [[ $stat == *" (apache2) "* ]] || continue
        pid=${d#/proc/}
        exe_is "$pid" apache2 || continue
        [[ " $(cmdline_of "$pid") " == *" $APACHE_CONF "* ]] && list+=("$pid")
    done
    printf '%s' "${list[*]}"
}

# Workers outlive a master killed by SIGKILL and keep serving the port. They
# are this stack's if their working directory is the run dir (the config's
# working_directory) and no nginx master is their parent any more.
stray_nginx_workers() {
    local d pid stat ppid list=()
    for d in /proc/[0-9]*; do
        # the process name first (/proc/PID/stat): reading it costs no fork
        read -r stat 2>/dev/null <"$d/stat" || continue
        [[ $stat == *" (nginx) "* ]] || continue
        [[ $(readlink "$d/cwd" 2>/dev/null) == "$RUN" ]] || continue
        pid=${d#/proc/}
        is_nginx_exe "$pid" || continue
        stat=$(cat "$d/stat" 2>/dev/null) || continue
        read -r _ ppid _ <<<"${stat##*) }"
        is_nginx_exe "$ppid" || list+=("$pid")
    done
    printf '%s' "${list[*]}"   # one line, pids separated by spaces
}

# Stops processes (pid list, space separated) that should not be there any
# more: SIGTERM (a responder then ends its streams), SIGKILL after a second.
stop_leftovers() {
    local what=$1 pids=$2 pid
    [[ -n $pids ]] || return 0
    say "stopping $what: $pids"
    # shellcheck disable=SC2086 # word splitting of the pid list is intended
    kill -TERM $pids 2>/dev/null || true
    for pid in $pids; do
        wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
    done
}

stop_stray_workers() {
    stop_leftovers "nginx workers left by a dead master" "$(stray_nginx_workers)"
    stop_leftovers "Apache processes left by a dead parent" "$(stray_apache_children)"
    stop_leftovers "responder processes left behind" "$(stack_responders)"
}

# Stops the responders (SIGTERM: each ends every stream with its closing
# boundary) and the server, so that those last parts reach the viewers:
#   nginx     SIGQUIT at once (it finishes the responses under way)
#   lighttpd  SIGINT at once (graceful: the same; it may respawn a responder
#             meanwhile, and stops that one itself)
#   Apache    SIGTERM once the responders are gone (its graceful-stop would
#             wait for streams without ever ending them)
# then escalates to the server's SIGTERM and finally SIGKILL. RESP is the
# responder stack.sh started; responders the server spawned are found by
# stack_responders. Empty pids are skipped.
stop_pids() {
    local resp=$1 srv=$2 spawned="" srv_grace=$STOP_GRACE_TENTHS pid tenths=20
    ((!OWN_RESPONDER)) || srv_grace=20   # the responder had its grace already
    ((OWN_RESPONDER)) || spawned=$(stack_responders)
    if [[ -n $srv ]]; then
        case $SRV_NAME in
            nginx) kill -QUIT "$srv" 2>/dev/null || true ;;
            lighttpd) kill -INT "$srv" 2>/dev/null || true ;;
            *) ;;
        esac
    fi
    [[ -z $resp ]] || kill -TERM "$resp" 2>/dev/null || true
    # shellcheck disable=SC2086 # word splitting of the pid list is intended
    [[ -z $spawned ]] || kill -TERM $spawned 2>/dev/null || true
    if [[ -n $resp ]] && ! wait_gone "$resp" "$STOP_GRACE_TENTHS"; then
        kill_hard "$resp" responder
    fi
    # spawned responders end their streams within 2 s; the server would
    # wait for one that does not, and then cut its stream anyway
    local left=()
    for pid in $spawned; do
        while alive "$pid" && ((tenths-- > 0)); do sleep 0.1; done
        ! alive "$pid" || left+=("$pid")
    done
    if ((${#left[@]})); then
        say "responders still running 2 s after SIGTERM; sending SIGKILL: ${left[*]}"
        kill -KILL "${left[@]}" 2>/dev/null || true
    fi
    [[ -z $srv || $SRV_NAME != apache2 ]] || kill -TERM "$srv" 2>/dev/null || true
    if [[ -n $srv ]] && ! wait_gone "$srv" "$srv_grace"; then
        kill -TERM "$srv" 2>/dev/null || true
        wait_gone "$srv" 20 || kill_hard "$srv" "$SERVER"
    fi
    stop_stray_workers
}

remove_state() {
    rm -f -- "$RESP_PIDFILE" "$NGINX_PIDFILE" "$LIGHTTPD_PIDFILE" "$APACHE_PIDFILE" "$SOCK" \
        "$SOCK"-[0-9]* "$SERVER_FILE"
    rm -f -- "$RUN/mjpeg-fcgi.ini"
    rm -rf -- "$BUS" "$RUN/fcgidsock"
}

# Prints the tail of the given logs, or of both.
show_logs() {
    local f
    (($#)) || set -- "$RESP_LOG" "$SRV_ERRLOG"
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
    local resp srv kind
    resp=$(pid_from "$RESP_PIDFILE")
    if is_our_responder "$resp"; then
        die "a stack already runs on port $PORT from ${RUN#"$TOP"/} (responder pid $resp); stop it with: conf/stack.sh stop $PORT"
    fi
    # whichever server an earlier start left running here
    for kind in nginx lighttpd apache; do
        server_info "$kind"
        srv=$(pid_from "$SRV_PIDFILE")
        if is_our_server "$srv"; then
            die "a stack already runs on port $PORT from ${RUN#"$TOP"/} ($kind pid $srv); stop it with: conf/stack.sh stop $PORT"
        fi
    done
    server_info "$SERVER"
    local strays
    strays="$(stray_nginx_workers) $(stray_apache_children) $(stack_responders)"
    if [[ -n ${strays// /} ]]; then
        die "processes of a dead stack still run for port $PORT (pids ${strays## }); clear them with: conf/stack.sh stop $PORT"
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
    case $SERVER in
        nginx)
            [[ -x $NGINX ]] || command -v "$NGINX" >/dev/null ||
                die "nginx not found (install nginx-light, or set NGINX)" ;;
        lighttpd)
            [[ -x $LIGHTTPD ]] || command -v "$LIGHTTPD" >/dev/null ||
                die "lighttpd not found (install lighttpd, or set LIGHTTPD)" ;;
        apache*)
            [[ -x $APACHE ]] || command -v "$APACHE" >/dev/null ||
                die "apache2 not found (install apache2, or set APACHE)"
            local mods=(mpm_event authz_core mime dir)
            case $SERVER in
                apache) mods+=(env rewrite cgid) ;;
                apache-fcgid) mods+=(alias env fcgid) ;;
                apache-proxy) mods+=(env proxy proxy_fcgi) ;;
            esac
            local m pkg
            for m in "${mods[@]}"; do
                pkg=apache2-bin
                [[ $m == fcgid ]] && pkg=libapache2-mod-fcgid
                [[ -f $APACHE_MODDIR/mod_$m.so ]] ||
                    die "$APACHE_MODDIR/mod_$m.so missing (install $pkg, or set APACHE_MODDIR)"
            done ;;
    esac
    command -v curl >/dev/null || die "curl not found (install curl)"
    [[ -f $TOP/html/index.html ]] || say "warning: $TOP/html/index.html missing; / will answer 404"
    [[ -f $(template) ]] || die "$(template) missing"
    [[ $SERVER != apache ]] || [[ -f $HERE/apache/htaccess ]] || die "$HERE/apache/htaccess missing"
}

template() {
    case $SERVER in
        nginx) echo "$HERE/nginx.conf.in" ;;
        lighttpd) echo "$HERE/lighttpd.conf.in" ;;
        apache) echo "$HERE/apache-cgi.conf.in" ;;
        apache-fcgid) echo "$HERE/apache-fcgid.conf.in" ;;
        apache-proxy) echo "$HERE/apache-proxy-fcgi.conf.in" ;;
    esac
}

# nginx, lighttpd and Apache (quoted strings, variables) and sed
# (replacement text) would misread these in a path; refusing is clearer
# than a broken config. lighttpd's bin-path and mod_fcgid's wrapper are
# split into arguments on spaces, so there the responder's paths cannot
# hold one either.
check_paths() {
    local path what
    case $TOP in
        *[\"\'\\\$\;\{\}\|\&]* | *$'\n'*)
            die "the checkout path '$TOP' contains a character nginx cannot take (\" ' \\ \$ ; { } | & or newline)" ;;
        *) ;;
    esac
    if [[ $SERVER == lighttpd || $SERVER == apache-fcgid ]]; then
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
    fi
    if ((${#SOCK} + 2 > SOCKET_PATH_MAX)); then
        die "socket path $SOCK is ${#SOCK} bytes, over what a unix socket allows; use a shorter checkout path"
    fi
}

# Apache refuses to serve as root; its children (and so the CGI and
# mod_fcgid responders) then run as APACHE_USER.
apache_user() {
    local user=${APACHE_USER:-www-data}
    if ! id -u "$user" >/dev/null 2>&1; then
        [[ -z ${APACHE_USER:-} ]] || die "APACHE_USER '$user' does not exist"
        user=nobody
    fi
    printf '%s\n' "$user"
}

# As root, Apache's user must reach the files it serves and runs.
check_apache_access() {
    ((EUID == 0)) || return 0
    local user f
    user=$(apache_user)
    command -v runuser >/dev/null || return 0
    for f in "$@"; do
        [[ -n $f ]] || continue
        runuser -u "$user" -- test -r "$f" 2>/dev/null ||
            die "Apache's user $user cannot read $f (a directory above it is closed to others?); make it readable, or set APACHE_USER"
    done
}

render() {
    # comment lines keep the placeholders: they document the template
    local user=$1 resp_args=$2 wrapper=$3 procs=$4
    sed -e "/^[[:space:]]*#/!{
            s|@PORT@|$PORT|g
            s|@RUNDIR@|$RUN|g
            s|@HTMLDIR@|$TOP/html|g
            s|@SOCKET@|$SOCK|g
            s|@USER_DIRECTIVE@|$user|g
            s|@USER@|$user|g
            s|@BIN@|$BIN|g
            s|@ARGS@|$resp_args|g
            s|@WRAPPER@|$wrapper|g
            s|@MAX_PROCS@|$procs|g
            s|@MODDIR@|$APACHE_MODDIR|g
        }" \
        "$(template)" >"$SRV_CONF.new"
    mv -f -- "$SRV_CONF.new" "$SRV_CONF"
}

# The document root of SERVER=apache, filled as README's hosting recipe
# says: the page, the responder as mjpeg.cgi, conf/apache/htaccess as
# .htaccess and mjpeg-fcgi.ini (CONFIG's contents, then this stack's bus
# directory: the last value wins, as --bus-dir on the command line would).
fill_www() {
    rm -rf -- "$WWW"
    mkdir -p -- "$WWW"
    cp -- "$TOP"/html/*.* "$WWW"/
    cp -- "$BIN" "$CGI"
    cp -- "$HERE/apache/htaccess" "$WWW/.htaccess"
    {
        if [[ -n $CONFIG ]]; then
            printf '; from %s\n' "$CONFIG"
            cat -- "$CONFIG"
            printf '\n'
        fi
        printf '; added by conf/stack.sh: this stack'"'"'s own frame bus\n[server]\nbus_dir = %s\n' "$BUS"
    } >"$WWW/mjpeg-fcgi.ini"
    chmod 0644 "$WWW"/.htaccess "$WWW"/*.*
    chmod 0755 "$RUN" "$WWW" "$CGI"
}

render_conf() {
    local user="" resp_args wrapper procs=${WORKERS:-2} config=$CONFIG
    if [[ $SERVER == apache-fcgid && -n $CONFIG ]]; then
        # the responders run as Apache's user, who may not reach the file
        # where it is (a home directory, a private temp dir): they read a
        # copy, and a reload (SIGHUP) reads that copy
        config=$RUN/mjpeg-fcgi.ini
        cp -- "$CONFIG" "$config"
        chmod 0644 "$config"
    fi
    resp_args="--bus-dir $BUS${config:+ --config $config}"
    wrapper="\"$BIN $resp_args\""
    case $SERVER in
        nginx)
            ((EUID != 0)) || user="user $(id -un) $(id -gn);" ;;
        apache*)
            if ((EUID == 0)); then
                local u
                u=$(apache_user)
                user="User $u\\nGroup $(id -gn "$u")"
            fi ;;
        *) ;;
    esac
    case $SERVER in
        apache)
            fill_www
            check_apache_access "$WWW/index.html" "$CGI" ;;
        apache-fcgid)
            check_apache_access "$TOP/html/index.html" "$BIN" "$config" ;;
        apache-proxy)
            check_apache_access "$TOP/html/index.html" ;;
        *) ;;
    esac
    if [[ -n $WORKERS ]] && [[ $SERVER == apache || $SERVER == apache-fcgid ]]; then
        say "note: WORKERS has no effect with SERVER=$SERVER (one responder process per concurrent request)"
    fi
    render "$user" "$resp_args" "$wrapper" "$procs"
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
    # the responder writes its own pid file; make sure stop finds it
    [[ -s $RESP_PIDFILE ]] || printf '%s\n' "$pid" >"$RESP_PIDFILE"
    # Apache started as root connects as its own user
    if [[ $SERVER == apache-proxy ]] && ((EUID == 0)); then
        chgrp "$(id -gn "$(apache_user)")" "$SOCK" && chmod 0660 "$SOCK" || return 1
    fi
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
    stop_pids "$STARTED_RESP" "$STARTED_SRV"
    remove_state
    exit 1
}

# Checks before anything starts; they change nothing of a stack that runs.
prepare() {
    check_tools
    check_paths
    check_not_running
    mkdir -p -- "$RUN/tmp"
    printf '%s\n' "$SERVER" >"$SERVER_FILE"
    render_conf
    raise_nofile
    responder_args
}

# The responder runs in a session of its own: a Ctrl-C in this terminal
# reaches only this script, which then stops the stack in order.
launch_responder() {
    # private (0700, as the responder wants it) and new: a directory that
    # another user made since remove_state is refused, never used
    mkdir -m 0700 -- "$BUS" 2>/dev/null ||
        die "cannot create the frame bus directory $BUS: it exists again (another user's?) or /dev/shm is not writable"
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

# The server's command line: daemon (start) or foreground (run).
server_command() {
    case $SERVER in
        nginx)
            SRV_CMD=("$NGINX" -p "$RUN/" -c "$NGINX_CONF" -e "$NGINX_ERRLOG")
            if [[ $MODE == start ]]; then SRV_CMD+=(-g 'daemon on;'); else SRV_CMD+=(-g 'daemon off;'); fi ;;
        lighttpd)
            # spawned responders log into RESP_LOG (server.breakagelog)
            printf '\n%s stack.sh %s %s\n' "$(date '+%F %T')" "$MODE" "$PORT" >>"$RESP_LOG"
            SRV_CMD=("$LIGHTTPD" -f "$LIGHTTPD_CONF")
            [[ $MODE == start ]] || SRV_CMD+=(-D) ;;
        apache*)
            SRV_CMD=("$APACHE" -f "$APACHE_CONF")
            if [[ $MODE == start ]]; then SRV_CMD+=(-k start); else SRV_CMD+=(-DFOREGROUND); fi ;;
    esac
}

cmd_start() {
    trap 'STOP_REQUESTED=1' INT TERM
    prepare
    if ((OWN_RESPONDER)); then
        launch_responder
        wait_socket "$STARTED_RESP" || abort_start
    fi

    # every server binds before it daemonizes: a taken port fails right here
    server_command
    if ! "${SRV_CMD[@]}" </dev/null; then
        say "$SERVER failed to start"
        abort_start
    fi
    # the daemon writes its pid file just after the fork
    local tenths=50
    until STARTED_SRV=$(pid_from "$SRV_PIDFILE") && [[ -n $STARTED_SRV ]]; do
        ((tenths-- > 0)) || { say "$SERVER wrote no pid file"; abort_start; }
        sleep 0.1
    done
    wait_status "$STARTED_RESP" "$STARTED_SRV" || abort_start
    if ((OWN_RESPONDER)); then
        printf 'mjpeg-fcgi runs at %s (responder pid %s, %s pid %s); stop: conf/stack.sh stop %s\n' \
            "$URL" "$STARTED_RESP" "$SERVER" "$STARTED_SRV" "$PORT"
    else
        printf 'mjpeg-fcgi runs at %s (%s pid %s, which starts the responders); stop: conf/stack.sh stop %s\n' \
            "$URL" "$SERVER" "$STARTED_SRV" "$PORT"
    fi
}

# --- stop ------------------------------------------------------------------

cmd_stop() {
    local resp srv found=0
    if [[ -n $SERVER_GIVEN && ! -r $SERVER_FILE ]]; then
        : # nothing recorded: SERVER says where to look
    elif [[ -z $SERVER_GIVEN && ! -r $SERVER_FILE ]]; then
        # no record (a stack of an older stack.sh, or nothing): look for
        # each server's pid file
        local kind
        for kind in nginx lighttpd apache; do
            server_info "$kind"
            if [[ -n $(pid_from "$SRV_PIDFILE") ]]; then
                SERVER=$kind
                break
            fi
        done
        server_info "$SERVER"
    fi
    resp=$(pid_from "$RESP_PIDFILE")
    srv=$(pid_from "$SRV_PIDFILE")
    if [[ -n $resp ]] && ! is_our_responder "$resp"; then
        say "stale ${RESP_PIDFILE#"$TOP"/}: pid $resp is gone or not this stack's responder; not signalled"
        resp=
    fi
    if [[ -n $srv ]] && ! is_our_server "$srv"; then
        say "stale ${SRV_PIDFILE#"$TOP"/}: pid $srv is gone or not this stack's $SRV_NAME; not signalled"
        srv=
    fi
    [[ -n $resp ]] && found=1
    [[ -n $srv ]] && found=1
    [[ -n $(stack_responders) ]] && found=1
    stop_pids "$resp" "$srv"
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
    trap 'stop_pids "$STARTED_RESP" "$STARTED_SRV"; remove_state' EXIT

    local failed="" status=0 which="" ready=1
    if ((OWN_RESPONDER)); then
        launch_responder
        wait_socket "$STARTED_RESP" || ready=0
    fi
    if ((ready)); then
        server_command
        setsid "${SRV_CMD[@]}" </dev/null &
        STARTED_SRV=$!
        if wait_status "$STARTED_RESP" "$STARTED_SRV"; then
            printf 'mjpeg-fcgi runs at %s behind %s (Ctrl-C stops it)\n' "$URL" "$SERVER"
        elif ((!STOP_REQUESTED)); then
            failed=startup
        fi
    elif ((!STOP_REQUESTED)); then
        failed=startup
    fi

    local watched=("$STARTED_SRV")
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
            show_logs "$SRV_ERRLOG"
        fi
    done

    trap '' INT TERM   # a second Ctrl-C must not cut the orderly stop short
    if [[ $failed == startup ]]; then
        show_logs "$SRV_ERRLOG"
        say "the stack did not come up; stopping"
    elif [[ -n $failed ]]; then
        say "$failed; stopping the stack"
    else
        say "stopping"
    fi
    stop_pids "$STARTED_RESP" "$STARTED_SRV"
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
