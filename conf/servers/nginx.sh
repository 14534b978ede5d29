# shellcheck shell=bash disable=SC2034 # the settings are read by conf/stack.sh
# SERVER=nginx: stack.sh starts the responder on a unix socket and nginx in
# front of it (conf/nginx.conf.in). Sourced by conf/stack.sh, which
# describes the hooks.

NGINX=$(server_exe "${NGINX:-}" nginx)
SERVER_TEMPLATE=$HERE/nginx.conf.in
SERVER_CONF=$RUN/nginx.conf
SERVER_PIDFILE=$RUN/nginx.pid
SERVER_ERRLOG=$RUN/nginx-error.log
SERVER_OWN_RESPONDER=1

server_check_tools() {
    runnable "$NGINX" || die "nginx not found (install nginx-light, or set NGINX)"
}

server_render() {
    # as root, workers would otherwise become nobody, who can neither read
    # a 0700 checkout nor connect to the socket
    ((EUID != 0)) || RENDER_USER="user $(id -un) $(id -gn);"
}

# In the foreground: as a daemon nginx would call setsid and leave the
# group stack.sh made for it.
server_command() {
    SRV_CMD=("$NGINX" -p "$RUN/" -c "$SERVER_CONF" -e "$SERVER_ERRLOG" -g 'daemon off;')
}

# SIGQUIT: graceful, it finishes the responses under way (the responder
# ends them).
server_stop_begin() {
    kill -QUIT "$1" 2>/dev/null || true
}
