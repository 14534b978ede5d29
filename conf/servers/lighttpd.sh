# shellcheck shell=bash disable=SC2034 # the settings are read by conf/stack.sh
# SERVER=lighttpd: lighttpd starts the responders itself (bin-path,
# max-procs WORKERS, default 2: conf/lighttpd.conf.in); they run in its
# process group. Sourced by conf/stack.sh, which describes the hooks.

LIGHTTPD=$(server_exe "${LIGHTTPD:-}" lighttpd)
SERVER_TEMPLATE=$HERE/lighttpd.conf.in
SERVER_CONF=$RUN/lighttpd.conf
SERVER_PIDFILE=$RUN/lighttpd.pid
SERVER_ERRLOG=$RUN/lighttpd-error.log
SERVER_OWN_RESPONDER=0

server_check_tools() {
    runnable "$LIGHTTPD" || die "lighttpd not found (install lighttpd, or set LIGHTTPD)"
}

server_check_paths() {
    check_paths_for_command_line
}

server_check_tls() {
    local moddir=${LIGHTTPD_MODDIR:-/usr/lib/lighttpd}
    [[ -f $moddir/mod_openssl.so ]] ||
        die "$moddir/mod_openssl.so missing (install lighttpd-mod-openssl, or set LIGHTTPD_MODDIR)"
}

server_render() { :; }

server_command() {
    # spawned responders log into RESP_LOG (server.breakagelog)
    printf '\n%s stack.sh %s %s\n' "$(date '+%F %T')" "$MODE" "$PORT" >>"$RESP_LOG"
    SRV_CMD=("$LIGHTTPD" -D -f "$SERVER_CONF")
}

# SIGINT to the whole group: lighttpd stops gracefully (it finishes the
# responses under way; it may respawn a responder meanwhile, and stops that
# one itself), and the responders it spawned, which take SIGINT as SIGTERM,
# end their streams with the closing boundary.
server_stop_begin() {
    kill -INT -- "-$1" 2>/dev/null || true
}
