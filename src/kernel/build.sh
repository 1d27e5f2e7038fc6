#!/bin/sh
# Builds the guest kernel image (kernel.bin) from these sources. The image
# is committed; CI rebuilds it and checks the bytes are identical, so the
# flags below must stay free of paths, dates and build ids.
set -eu
cd "$(dirname "$0")"
out=${1:-kernel.bin}
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
