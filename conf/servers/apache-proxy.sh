# shellcheck shell=bash disable=SC2034 # the settings are read by conf/stack.sh
# SERVER=apache-proxy: Apache with mod_proxy_fcgi in front of the responder
# that stack.sh starts, as with nginx: conf/apache-proxy-fcgi.conf.in.
# Sourced by conf/stack.sh, which describes the hooks.

# shellcheck source=conf/servers/apache-common.sh
source "$HERE/servers/apache-common.sh"
SERVER_TEMPLATE=$HERE/apache-proxy-fcgi.conf.in
SERVER_OWN_RESPONDER=1

server_check_tools() {
    apache_check_tools env proxy proxy_fcgi
}

server_render() {
    apache_user_directives
    apache_check_access "$TOP/html/index.html"
}

# Apache started as root connects as its own user.
server_socket_ready() {
    ((EUID == 0)) || return 0
    chgrp "$(id -gn "$(apache_user)")" "$SOCK" && chmod 0660 "$SOCK"
}
