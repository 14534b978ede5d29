# shellcheck shell=bash disable=SC2034 # the settings are read by conf/stack.sh
# SERVER=apache: Apache runs the responder as a plain CGI program, one
# process per request (mod_cgid, in Apache's process group), set up by the
# .htaccess of shared hosting: conf/apache-cgi.conf.in,
# conf/apache/htaccess. Sourced by conf/stack.sh, which describes the hooks.

# shellcheck source=conf/servers/apache-common.sh
source "$HERE/servers/apache-common.sh"
SERVER_TEMPLATE=$HERE/apache-cgi.conf.in
SERVER_OWN_RESPONDER=0
WWW=$RUN/www              # the document root, as on a web host
CGI=$WWW/mjpeg.cgi

server_check_tools() {
    apache_check_tools env rewrite cgid
    [[ -f $HERE/apache/htaccess ]] || die "$HERE/apache/htaccess missing"
}

# The document root, filled as README's hosting recipe says: the page, the
# responder as mjpeg.cgi, conf/apache/htaccess as .htaccess and
# mjpeg-fcgi.ini (CONFIG's contents, then this stack's bus directory: the
# last value wins, as --bus-dir on the command line would).
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

server_stop_begin() {
    apache_stop_spawned "$1"
}

server_render() {
    apache_user_directives
    fill_www
    apache_check_access "$WWW/index.html" "$CGI"
    apache_note_workers
}
