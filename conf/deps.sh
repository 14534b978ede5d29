#!/bin/sh
# The Debian packages mjpeg-fcgi needs, by what needs them, and the step
# that installs those that are missing.
#
#   conf/deps.sh build|run|test|bench ...   install what the groups need
#   conf/deps.sh --list GROUP ...           print their packages, install nothing
#
# build: compile the responder; run: a stack (make run, make start);
# test: every test (make test); bench: make bench, beyond build and run.
# The Makefile's deps (build run), deps-test (test) and deps-bench (bench)
# call this.  Missing packages are installed as root directly, else through
# sudo; with neither, the script prints the apt-get command and fails.
set -eu

# Packages are checked by name (dpkg); the COMMAND=PACKAGE entries by the
# command they provide, since any of several packages will do: nginx from
# any of Debian's nginx flavours, npm from Debian or NodeSource, ps
# (conf/stack.sh lists a stack's process groups with it) from procps.
BUILD="gcc make pkg-config libfcgi-dev libturbojpeg0-dev libinih-dev libcurl4-openssl-dev
	libjansson-dev libssl-dev"
BUILD_CMDS=""
RUN="curl"
RUN_CMDS="nginx=nginx-light ps=procps"
TEST="libcmocka-dev cppcheck valgrind clang libclang-rt-14-dev python3 python3-pytest
	python3-pytest-xdist python3-pil python3-numpy ffmpeg python3-opencv
	gstreamer1.0-tools gstreamer1.0-plugins-good chromium chromium-driver
	python3-selenium lighttpd lighttpd-mod-openssl apache2 libapache2-mod-fcgid spawn-fcgi stress-ng
	openssl python3-gi gir1.2-gst-rtsp-server-1.0"
TEST_CMDS="npm=npm"
# The FastAPI baseline, and tjbench (libjpeg-turbo-progs) for the encode
# figure.  perf (linux-perf) is optional, for --perf: not installed here.
BENCH="python3 python3-fastapi python3-uvicorn libjpeg-turbo-progs"
BENCH_CMDS=""

usage() {
	echo "usage: $0 [--list] build|run|test|bench ..." >&2
	exit 2
}

list=""
if [ "${1:-}" = --list ]; then list=1; shift; fi
[ $# -gt 0 ] || usage
packages=""
commands=""
for group in "$@"; do
	case $group in
	build) packages="$packages $BUILD"; commands="$commands $BUILD_CMDS" ;;
	run) packages="$packages $RUN"; commands="$commands $RUN_CMDS" ;;
	test) packages="$packages $TEST"; commands="$commands $TEST_CMDS" ;;
	bench) packages="$packages $BENCH"; commands="$commands $BENCH_CMDS" ;;
	*) usage ;;
	esac
done
# Word splitting of the lists is wanted from here on (no names with spaces).
packages=$(echo $packages)
commands=$(echo $commands)

if [ -n "$list" ]; then
	for pair in $commands; do packages="$packages ${pair#*=}"; done
	echo $packages
	exit 0
fi

installed=$(dpkg-query -W -f='${Status} ${Package}\n' $packages 2>/dev/null \
	| sed -n 's/^install ok installed //p' | tr '\n' ' ') || true
missing=""
for p in $packages; do
	case " $installed " in *" $p "*) ;; *) missing="$missing $p" ;; esac
done
for pair in $commands; do
	PATH="$PATH:/usr/sbin:/sbin" command -v "${pair%%=*}" >/dev/null 2>&1 \
		|| missing="$missing ${pair#*=}"
done
[ -n "$missing" ] || exit 0

if [ "$(id -u)" = 0 ]; then sudo=""
elif command -v sudo >/dev/null 2>&1; then sudo="sudo"
else
	echo "mjpeg-fcgi: missing Debian packages:$missing"
	echo "  install them as root: apt-get install$missing"
	exit 1
fi
echo "installing:$missing"
$sudo apt-get update -q
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	--no-install-recommends $missing
