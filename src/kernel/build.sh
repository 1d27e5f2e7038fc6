#!/bin/sh
# Builds the guest kernel image (kernel.bin) and the vDSO (vdso/vdso.so)
# from these sources. Both are committed; CI rebuilds them and checks the
# bytes are identical, so the flags below must stay free of paths, dates
# and build ids. Usage: build.sh [kernel.bin [vdso.so]]
set -eu
cd "$(dirname "$0")"
out=${1:-kernel.bin}
vdso=${2:-vdso/vdso.so}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CFLAGS="-O2 -std=gnu11 -ffreestanding -fno-pic -fno-pie -mno-red-zone \
 -mgeneral-regs-only -mcmodel=small -fno-stack-protector \
 -fno-asynchronous-unwind-tables -fno-builtin -fcf-protection=none \
 -Wall -Wno-unused-parameter -Werror -nostdinc -ffile-prefix-map=$PWD=."
for f in entry.S main.c hostcall.c mm.c time.c proc.c lib.c stub.c; do
	gcc $CFLAGS -c "$f" -o "$tmp/${f%.*}.o"
done
ld -nostdlib -static --build-id=none -z noexecstack --no-warn-rwx-segments -T link.ld -o "$tmp/kernel.elf" \
	"$tmp/entry.o" "$tmp/main.o" "$tmp/hostcall.o" "$tmp/mm.o" "$tmp/time.o" \
	"$tmp/proc.o" "$tmp/lib.o" "$tmp/stub.o"
objcopy -O binary "$tmp/kernel.elf" "$out"
nm -n "$tmp/kernel.elf" > "${out%.bin}.map"

# The vDSO: a shared object with no relocations, its unwind tables kept
# (a backtrace from a signal handler may pass through it).
VFLAGS="-O2 -std=gnu11 -ffreestanding -fPIC -mno-red-zone -mgeneral-regs-only \
 -fno-stack-protector -fasynchronous-unwind-tables -fno-builtin -fcf-protection=none \
 -Wall -Wno-unused-parameter -Werror -nostdinc -ffile-prefix-map=$PWD=."
gcc $VFLAGS -c vdso/vdso.c -o "$tmp/vdso.o"
ld -shared -nostdlib --build-id=none --hash-style=both --eh-frame-hdr -soname linux-vdso.so.1 \
	-z noexecstack -z max-page-size=4096 --no-undefined -T vdso/vdso.lds -o "$tmp/vdso.dbg" "$tmp/vdso.o"
objcopy --strip-all "$tmp/vdso.dbg" "$vdso"
