# shellcheck shell=bash disable=SC2034 # the settings are read by conf/stack.sh
# SERVER=apache-fcgid: Apache with mod_fcgid, which starts the responders
# (one request per process at a time, in Apache's process group):
# conf/apache-fcgid.conf.in. Sourced by conf/stack.sh, which describes the
# hooks.

# shellcheck source=conf/servers/apache-common.sh
source "$HERE/servers/apache-common.sh"
SERVER_TEMPLATE=$HERE/apache-fcgid.conf.in
SERVER_OWN_RESPONDER=0
SERVER_STATE=("$RUN/mjpeg-fcgi.ini" "$RUN/fcgidsock")

server_check_tools() {
    apache_check_tools alias env fcgid
}

server_check_paths() {
    check_paths_for_command_line
}

server_stop_begin() {
    apache_stop_spawned "$1"
}

server_render() {
    apache_user_directives
    if [[ -n $CONFIG ]]; then
        # the responders run as Apache's user, who may not reach the file
        # where it is (a home directory, a private temp dir): they read a
        # copy, and a reload (SIGHUP) reads that copy
        RENDER_CONFIG=$RUN/mjpeg-fcgi.ini
        cp -- "$CONFIG" "$RENDER_CONFIG"
        chmod 0644 "$RENDER_CONFIG"
    fi
    apache_check_access "$TOP/html/index.html" "$BIN" "$RENDER_CONFIG"
    apache_note_workers
}
