#!/bin/sh
# Installs what the tests need on a fresh Debian machine: compilers for the
# C fixtures, binutils (readelf), file, Debian's static busybox, the kernel
# headers for the layout checks, setpriv, and the real programs and
# compilers tests/programs_test.ts runs, git and script(1) for the pager
# test in tests/process_test.ts, gdb for tests/gdb_test.ts, and containerd,
# runc and umoci for tests/oci_containerd_test.ts, a JVM for tests/high_test.ts.
# Quiet when all is present.
set -eu
need=""
command -v gcc >/dev/null || need="$need gcc libc6-dev"
command -v musl-gcc >/dev/null || need="$need musl-tools"
command -v readelf >/dev/null || need="$need binutils"
command -v file >/dev/null || need="$need file"
command -v setpriv >/dev/null || need="$need util-linux"
dpkg -s busybox-static >/dev/null 2>&1 || need="$need busybox-static"
[ -f /usr/include/linux/kvm.h ] || need="$need linux-libc-dev"
command -v g++ >/dev/null || need="$need g++"
command -v gfortran >/dev/null || need="$need gfortran"
command -v gdb >/dev/null || need="$need gdb"
for pkg in containerd runc umoci default-jre-headless python3 lua5.4 perl sqlite3 gawk jq xz-utils gzip tar diffutils findutils grep sed git bsdutils procps; do
	dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"
done
if [ -n "$need" ]; then
	echo "tests/setup.sh: installing$need" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq $need >&2
fi
