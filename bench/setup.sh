#!/bin/sh
# Installs what `deno task bench:compare` runs beside hermitux on a fresh
# Debian machine: qemu-user (qemu-x86_64) and gVisor (runsc), plus the C
# compilers for bench/c, dash for the shell row, and redis-server with
# redis-benchmark (redis-tools) for the network row. Quiet when all is present.
set -eu
need=""
command -v gcc >/dev/null || need="$need gcc libc6-dev"
command -v musl-gcc >/dev/null || need="$need musl-tools"
command -v qemu-x86_64 >/dev/null || need="$need qemu-user"
command -v runsc >/dev/null || need="$need runsc"
command -v dash >/dev/null || need="$need dash"
command -v redis-server >/dev/null || need="$need redis-server"
command -v redis-benchmark >/dev/null || need="$need redis-tools"
if [ -n "$need" ]; then
	echo "bench/setup.sh: installing$need" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends $need >&2
fi
