#!/bin/sh
# Installs what the tests need on a fresh Debian machine: compilers for the
# C fixtures, Debian's static busybox, and setpriv. Idempotent and quiet when
# everything is present.
set -eu
need=""
command -v gcc >/dev/null || need="$need gcc libc6-dev"
command -v musl-gcc >/dev/null || need="$need musl-tools"
[ -x /bin/busybox ] && file_is_static=$(/bin/busybox --help >/dev/null 2>&1 && echo y) || file_is_static=""
dpkg -s busybox-static >/dev/null 2>&1 || need="$need busybox-static"
command -v setpriv >/dev/null || need="$need util-linux"
[ -f /usr/include/linux/kvm.h ] || need="$need linux-libc-dev"
if [ -n "$need" ]; then
	echo "tests/setup.sh: installing$need" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq $need >&2
fi
