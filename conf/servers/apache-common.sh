# shellcheck shell=bash disable=SC2034 # the settings are read by conf/stack.sh
# What the three Apache stacks share (apache, apache-fcgid, apache-proxy):
# the binary, its modules, the user its children run as. Sourced by their
# files in conf/servers/.

APACHE=$(server_exe "${APACHE:-}" apache2)
APACHE_MODDIR=${APACHE_MODDIR:-/usr/lib/apache2/modules}
SERVER_CONF=$RUN/apache.conf
SERVER_PIDFILE=$RUN/apache2.pid
SERVER_ERRLOG=$RUN/apache-error.log

# apache_check_tools MODULE...: the binary and the modules the stack loads
apache_check_tools() {
    runnable "$APACHE" || die "apache2 not found (install apache2, or set APACHE)"
    local m pkg
    for m in mpm_event authz_core mime dir "$@"; do
        pkg=apache2-bin
        [[ $m == fcgid ]] && pkg=libapache2-mod-fcgid
        [[ -f $APACHE_MODDIR/mod_$m.so ]] ||
            die "$APACHE_MODDIR/mod_$m.so missing (install $pkg, or set APACHE_MODDIR)"
    done
}

# TLS=1: mod_ssl, mod_http2 and the session cache (all in apache2-bin).
server_check_tls() {
    apache_check_tools socache_shmcb ssl http2
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
apache_check_access() {
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

# The User and Group directives that drop root, for RENDER_USER.
apache_user_directives() {
    ((EUID == 0)) || return 0
    local u
    u=$(apache_user)
    RENDER_USER="User $u\\nGroup $(id -gn "$u")"
}

# Apache CGI and mod_fcgid start one responder per concurrent request.
apache_note_workers() {
    [[ -z $WORKERS ]] ||
        say "note: WORKERS has no effect with SERVER=$SERVER (one responder process per concurrent request)"
}

# In the foreground: as a daemon (-k start) Apache would call setsid and
# leave the group stack.sh made for it.
server_command() {
    SRV_CMD=("$APACHE" -f "$SERVER_CONF" -DFOREGROUND)
}

# The responders Apache spawned (mod_cgid's CGI processes, mod_fcgid's
# responders) are the children of its children: SIGTERM ends their
# streams with the closing boundary while Apache still passes it on. With
# Apache dead (SIGKILL) there is nobody to pass it on, and its children
# are no longer told apart: stop then ends the whole group.
apache_stop_spawned() {
    local spawned
    alive "$1" || return 0
    spawned=$(grandchildren_in "$1")
    # shellcheck disable=SC2086 # word splitting of the pid list is intended
    stop_pids "responders Apache started" $spawned
}

# SIGTERM once the responders are gone: Apache's graceful stop would wait
# for streams without ever ending them.
server_stop_end() {
    kill -TERM "$1" 2>/dev/null || true
}
