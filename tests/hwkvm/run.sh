#!/usr/bin/env bash
# Runs one command inside a QEMU/TCG guest that has a /dev/kvm with hardware
# (AMD SVM) semantics, so hermitux can be tested against real KVM although
# this machine's own /dev/kvm is kvm_pvm. See ARCHITECTURE.md, "The hardware
# path can be tested here".
#
#   tests/hwkvm/run.sh CMD [ARGS...]
#
# The guest boots Debian's stock kernel, loads kvm + kvm-amd, mounts the
# host's / read-only and chroots into it, so CMD sees the same files, the same
# cwd and the same PATH as on the host. Its stdout and stderr (merged) arrive
# on our stdout; we exit with its status.
#
# Inside the guest:
#   /          the host's /, read-only (9p)
#   /tmp       a fresh tmpfs (HOME=/tmp, DENO_DIR=/tmp/deno-dir), holding the
#              caller's cwd (read-only) when that is under /tmp
#   $HWKVM_SCRATCH  read-write, at the same path as on the host; put files
#              there to hand them in or get them out (e.g. a test binary)
#   stdin      /dev/null
#   HWKVM_GUEST=1  set, so a test can tell it runs in here
#
# Environment:
#   HWKVM_CACHE    kernel + scratch dir (default /tmp/hermitux-hwkvm)
#   HWKVM_SCRATCH  read-write share (default $HWKVM_CACHE/scratch)
#   HWKVM_TIMEOUT  seconds before QEMU is killed (default 600)
#   HWKVM_ENV      names of variables to pass through, space or comma
#                  separated; they override the defaults above (e.g. DENO_DIR)
#   HWKVM_KERNEL_PKG  force a kernel package (default: what
#                  linux-image-amd64 depends on, or whatever is cached)
#   HWKVM_VERBOSE=1   show kernel messages and the guest init's steps
#
# Exit status: CMD's status; 124 if HWKVM_TIMEOUT expired; 125 if the guest
# could not be set up (no /dev/kvm, boot failure, missing package...).
#
# Needs root (apt-get, and QEMU must read the whole host / to export it).
# kvm_hlt.c beside this script is a smoke test that KVM really runs code.

# No early-exiting readers (head, grep -q) in pipelines below: with pipefail
# the writer's SIGPIPE would fail the whole pipeline.
set -euo pipefail
export LC_ALL=C

CACHE=${HWKVM_CACHE:-/tmp/hermitux-hwkvm}
SCRATCH=${HWKVM_SCRATCH:-$CACHE/scratch}
TIMEOUT=${HWKVM_TIMEOUT:-600}
VERBOSE=${HWKVM_VERBOSE:-0}
SETUP_FAILED=125

say() { echo "hwkvm: $*" >&2; }
die() {
	say "$*"
	exit $SETUP_FAILED
}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# Single-quotes a word for sh, so any argument survives the trip into the guest.
q() {
	local s=${1//\'/\'\\\'\'}
	printf "'%s'" "$s"
}

if [ $# -eq 0 ]; then
	sed -n '2,/^$/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
fi
[ "$(id -u)" = 0 ] || die "must run as root"
case $TIMEOUT in '' | *[!0-9]*) die "HWKVM_TIMEOUT must be a number of seconds" ;; esac

# ---------------------------------------------------------------- host tools
apt_updated=0
apt_update() {
	# Once per run at most, and only when something is missing: a fresh
	# machine has no package lists, a prepared one should not pay for this.
	if [ $apt_updated = 0 ]; then
		say "apt-get update"
		apt-get update -qq >&2 || die "apt-get update failed"
		apt_updated=1
	fi
}
need=""
command -v qemu-system-x86_64 >/dev/null || need="$need qemu-system-x86"
command -v cpio >/dev/null || need="$need cpio"
command -v xz >/dev/null || need="$need xz-utils" # to unpack the kernel, see below
# The initramfs has no libc, so only the static busybox will do.
dpkg -s busybox-static >/dev/null 2>&1 || need="$need busybox-static"
if [ -n "$need" ]; then
	apt_update
	say "installing$need"
	# shellcheck disable=SC2086 # $need is a list of package names
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >&2 ||
		die "apt-get install$need failed"
fi
busybox=$(dpkg -L busybox-static | grep '/busybox$' | sed -n 1p) || die "busybox-static has no busybox binary?"

mkdir -p "$CACHE/kernel" "$SCRATCH"
SCRATCH=$(cd "$SCRATCH" && pwd -P) # the guest mounts it at this exact path

# -------------------------------------------------------------------- kernel
# Debian's own kernel, never installed on the host: only unpacked into the
# cache, which is kept between runs (delete it to move to a newer kernel).
t0=$(now)
exec 9>"$CACHE/.lock"
flock 9 # two runs starting on an empty cache must not both unpack it
kernel_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | sed -n 1p
}
pkg=${HWKVM_KERNEL_PKG:-}
if [ -z "$pkg" ]; then
	# Any kernel already unpacked will do: the point is hardware KVM
	# semantics, not the latest kernel, and this avoids needing apt lists.
	pkg=$(cd "$CACHE/kernel" && ls -d linux-image-*/.complete 2>/dev/null |
		sed 's,/.complete$,,' | sort -V | tail -n 1) || true
fi
if [ -z "$pkg" ]; then
	pkg=$(kernel_pkg)
	[ -n "$pkg" ] || {
		apt_update
		pkg=$(kernel_pkg)
	}
	[ -n "$pkg" ] || die "cannot tell which kernel package linux-image-amd64 depends on"
fi
ktree=$CACHE/kernel/$pkg
kernel_note="cached"
if [ ! -e "$ktree/.complete" ]; then
	tmp=$(mktemp -d "$CACHE/kernel/.fetch.XXXXXX")
	say "downloading $pkg"
	# The sandbox option only silences apt's warning that _apt cannot write
	# into a root-owned directory.
	if ! (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2); then
		apt_update
		(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) ||
			{ rm -rf "$tmp"; die "apt-get download $pkg failed"; }
	fi
	dpkg-deb -x "$tmp"/*.deb "$tmp/tree" || { rm -rf "$tmp"; die "dpkg-deb -x failed"; }
	touch "$tmp/tree/.complete"
	rm -rf "$ktree"
	mv "$tmp/tree" "$ktree" # whole or not at all: .complete marks a usable tree
	rm -rf "$tmp"
	kernel_note="downloaded and unpacked"
fi
kver=$(ls "$ktree/lib/modules" | sed -n 1p)
vmlinuz=$ktree/boot/vmlinuz-$kver
[ -f "$vmlinuz" ] || die "no $vmlinuz (remove $ktree to fetch it again)"
# Under TCG the bzImage's own xz decompressor takes ~3 s of every boot, so
# unpack its payload once here (offsets from the x86 boot protocol header)
# and let QEMU load the plain ELF through its PVH entry point instead.
kernel=$vmlinuz
if [ ! -e "$ktree/.vmlinux-tried" ]; then
	if grep -q '^CONFIG_PVH=y' "$ktree/boot/config-$kver" &&
		[ "$(od -An -c -j 514 -N 4 "$vmlinuz" | tr -d ' ')" = HdrS ]; then
		setup_sects=$(od -An -tu1 -j $((0x1f1)) -N 1 "$vmlinuz" | tr -d ' ')
		payload_off=$(od -An -tu4 -j $((0x248)) -N 4 "$vmlinuz" | tr -d ' ')
		start=$(((setup_sects + 1) * 512 + payload_off))
		# Only xz is handled (Debian's choice); other kernels keep the bzImage.
		if [ "$(od -An -tx1 -j "$start" -N 6 "$vmlinuz" | tr -d ' ')" = fd377a585a00 ] &&
			command -v xz >/dev/null &&
			(
				set +o pipefail # xz stops reading at the end of its stream
				tail -c +$((start + 1)) "$vmlinuz" | xz -dc --single-stream >"$ktree/vmlinux.tmp"
			); then
			mv "$ktree/vmlinux.tmp" "$ktree/vmlinux"
		fi
		rm -f "$ktree/vmlinux.tmp"
	fi
	touch "$ktree/.vmlinux-tried"
fi
[ ! -f "$ktree/vmlinux" ] || kernel=$ktree/vmlinux
flock -u 9
exec 9>&-
t1=$(now)
say "kernel $pkg ($kver, ${kernel##*/}): $kernel_note in $(secs "$t0" "$t1") s"

# ----------------------------------------------------------------- initramfs
# Rebuilt on every run (well under a second): it embeds this script's init,
# so a cached copy could silently go stale.
t2=$(now)
moddir=$ktree/lib/modules/$kver
# The package has no modules.dep (depmod runs at install time, which we skip),
# so dependencies come from each module's own .modinfo "depends=" field.
modules_all=$(find "$moddir/kernel" -name '*.ko*')
modcat() {
	case $1 in
	*.ko) cat "$1" ;;
	*.ko.xz) "$busybox" xzcat "$1" ;; # busybox insmod cannot decompress
	*.ko.gz) "$busybox" zcat "$1" ;;
	*.ko.zst) zstd -qdc "$1" ;;
	*) die "unknown module format: $1" ;;
	esac
}
# Module names use '_' where file names may use '-' (kvm_amd is kvm-amd.ko).
modfile() {
	printf '%s\n' "$modules_all" | awk -v n="$1" '{
		b = $0; sub(/.*\//, "", b); sub(/\.ko(\.[a-z]+)?$/, "", b); gsub(/-/, "_", b)
		if (b == n && !found) { print; found = 1 }
	}'
}
modbuiltin() { tr '-' '_' <"$moddir/modules.builtin" | grep "/$1\.ko$" >/dev/null; }
mod_order=()
mod_seen=" "
# Depth-first, so every module is loaded after what it depends on.
visit() {
	local name=${1//-/_} f d
	case $mod_seen in *" $name "*) return ;; esac
	mod_seen="$mod_seen$name "
	f=$(modfile "$name")
	if [ -z "$f" ]; then
		modbuiltin "$name" && return # =y in this kernel's config: nothing to load
		die "kernel module $name not found in $pkg"
	fi
	for d in $(modcat "$f" | grep -ao 'depends=[A-Za-z0-9_,-]*' | sed -n '1s/^depends=//p' | tr ',' ' '); do
		visit "$d"
	done
	mod_order+=("$f")
}
# kvm-amd is the point (it drags in kvm, irqbypass and ccp); the rest is what a
# virtio-9p mount needs (9p drags in netfs and fscache, virtio_pci the virtio
# core), for Debian's kernel builds all of it as modules.
for m in kvm_amd virtio_pci 9pnet_virtio 9p; do visit "$m"; done

work=$(mktemp -d)
run_id=$$.$RANDOM
rundir=$SCRATCH/.runs/$run_id
cleanup() { rm -rf "$work" "$rundir"; }
trap cleanup EXIT
# Once QEMU runs, a signal is passed on to it (it may have come to us alone,
# e.g. from a CI runner) and we exit after it, as 130/143; before that, at once.
qpid=""
interrupted=0
on_signal() {
	[ -n "$qpid" ] || exit "$1"
	interrupted=$1
	kill -TERM "$qpid" 2>/dev/null || true
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,host,scratch,lib/modules}
cp "$busybox" "$root/bin/busybox"
i=10
for f in "${mod_order[@]}"; do
	b=${f##*/}
	modcat "$f" >"$root/lib/modules/$i-${b%%.ko*}.ko"
	i=$((i + 1))
done
# The kernel opens /dev/console for init before anything is mounted.
mknod -m 600 "$root/dev/console" c 5 1

cat >"$root/init" <<'EOF'
#!/bin/busybox sh
# PID 1 of the hwkvm guest. Any way out ends in power-off, since a returning
# init would only panic (then panic=-1 and -no-reboot end QEMU).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# Loopback up: a test talks to a server in the guest (gdb to --gdb's stub).
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
exec </dev/null >/dev/console 2>&1
# The command's bytes should reach the host as written, without the \r that
# the serial line discipline would add before each \n.
stty -onlcr </dev/console

run_id=$(sed -n 's/.* hwkvm\.run=\([^ ]*\).*/\1/p' /proc/cmdline)
verbose=$(sed -n 's/.* hwkvm\.verbose=\([^ ]*\).*/\1/p' /proc/cmdline)
log() { [ "$verbose" != 1 ] || echo "hwkvm-guest: $*"; }

# Exit QEMU with status v through isa-debug-exit at 0xf4 (QEMU then exits with
# (v << 1) | 1); /dev/port is how a shell does an outb.
bye() {
	sync
	printf "\\$(printf %03o $(($1 & 255)))" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
	echo o >/proc/sysrq-trigger # no debug-exit device: power off anyway
	sleep 5
	poweroff -f
}
fail() {
	echo "hwkvm: $*"
	[ ! -d "/scratch/.runs/$run_id" ] || echo "$*" >"/scratch/.runs/$run_id/error"
	bye 125
}

# kvm-amd refuses to load without SVM; say why rather than just "insmod failed".
grep -qw svm /proc/cpuinfo || fail "the guest CPU has no svm flag, so no /dev/kvm (QEMU needs -accel tcg -cpu max)"
for m in /lib/modules/*.ko; do
	log "insmod $m"
	insmod "$m" || fail "insmod $m failed"
done
[ -c /dev/kvm ] || fail "no /dev/kvm although kvm_amd loaded; dmesg says: $(dmesg | grep -i -e kvm -e svm | tail -n 3)"

# The 9p devices are probed as virtio_pci loads; retry briefly in case the
# probe is still settling.
mount9p() {
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		mount -t 9p -o "$1" "$2" "$3" 2>/dev/null && return 0
		sleep 0.2
	done
	mount -t 9p -o "$1" "$2" "$3" # once more, for its error message
}
# The host root is read-only, so the page cache may keep what it read
# (cache=loose): executables like deno are read once instead of per page
# fault. The scratch share must stay coherent with the host (cache=mmap also
# allows shared writable mmaps, e.g. SQLite's -shm files).
mount9p trans=virtio,version=9p2000.L,msize=512000,ro,cache=loose hostroot /host ||
	fail "cannot mount the host root (9p tag hostroot)"
mount9p trans=virtio,version=9p2000.L,msize=512000,cache=mmap scratch /scratch ||
	fail "cannot mount the scratch share (9p tag scratch)"
run=/scratch/.runs/$run_id
[ -f "$run/cmd.sh" ] || fail "no $run/cmd.sh in the scratch share"
scratch_path=$(cat "$run/scratch_path")

# Everything written below goes to mounts laid over the read-only root; their
# mount points already exist in the host's tree (or, under /tmp, in the tmpfs).
mount -t devtmpfs devtmpfs /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts devpts /host/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /host/dev/shm
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
# A cwd under /tmp (CI clones there) would vanish under the fresh tmpfs:
# hold on to it through a bind mount and put it back at the same path.
cwd=$(cat "$run/cwd")
case $cwd in /tmp/*)
	mkdir -p /keep-cwd
	mount --bind "/host$cwd" /keep-cwd || cwd=""
	;;
*) cwd="" ;;
esac
mount -t tmpfs -o mode=1777 tmpfs /host/tmp
if [ -n "$cwd" ]; then
	mkdir -p "/host$cwd"
	mount --bind /keep-cwd "/host$cwd"
fi
mkdir -p "/host$scratch_path" 2>/dev/null
mount --bind /scratch "/host$scratch_path" || fail "cannot mount the scratch share at $scratch_path"

log "running $(tail -n 1 "$run/cmd.sh")"
start=$(cut -d' ' -f1 /proc/uptime)
# Through a pipe, so the command's stdout is not a terminal, as it would not be
# on the host when run.sh's own output goes to a file or a pipe (Deno's test
# reporter, for one, redraws lines on a terminal). The price: output only ends
# when every process holding the pipe has exited.
(
	env -i chroot /host /bin/sh "$scratch_path/.runs/$run_id/cmd.sh" </dev/null
	echo $? >"$run/status"
) 2>&1 | cat
end=$(cut -d' ' -f1 /proc/uptime)
echo "$start $end" >"$run/times"
status=$(cat "$run/status") || fail "the command's status was lost"
bye "$status"
EOF
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) >"$work/initramfs" || die "cpio failed"
t3=$(now)
say "initramfs (${#mod_order[@]} modules: $(for f in "${mod_order[@]}"; do b=${f##*/}; printf '%s ' "${b%%.ko*}"; done)) built in $(secs "$t2" "$t3") s"

# ------------------------------------------------------------------- command
mkdir -p "$rundir"
printf '%s\n' "$SCRATCH" >"$rundir/scratch_path"
printf '%s\n' "$PWD" >"$rundir/cwd"
{
	echo "# written by tests/hwkvm/run.sh, run by sh inside chroot /host"
	echo "export PATH=$(q "$PATH") HOME=/tmp DENO_DIR=/tmp/deno-dir NO_COLOR=1 HWKVM_GUEST=1 HWKVM_SCRATCH=$(q "$SCRATCH")"
	for v in $(echo "${HWKVM_ENV:-}" | tr , " "); do
		case $v in *[!A-Za-z0-9_]* | [0-9]*) die "HWKVM_ENV: bad variable name '$v'" ;; esac
		[ -z "${!v+set}" ] || echo "export $v=$(q "${!v}")"
	done
	echo "cd $(q "$PWD") || { echo 'hwkvm: the cwd is not visible in the guest' >&2; exit 125; }"
	printf 'exec'
	for a in "$@"; do printf ' %s' "$(q "$a")"; done
	echo
} >"$rundir/cmd.sh"

append="console=ttyS0 panic=-1 hwkvm.run=$run_id"
if [ "$VERBOSE" = 1 ]; then append="$append hwkvm.verbose=1"; else append="$append quiet"; fi # quiet still shows errors and oopses
# -display none -serial stdio -monitor none is -nographic without the
# Ctrl-A monitor multiplexed into the stream; -nodefaults drops the NIC and
# VGA that TCG would otherwise have to emulate. stdin is /dev/null: the guest
# command must not wait on a terminal, and QEMU must not put ours in raw mode.
# multidevs=remap: / spans several host file systems, whose inode numbers
# would otherwise collide in the guest.
# QEMU runs in the background because bash defers a trap until a foreground
# child has exited, so a TERM sent to us alone would wait for HWKVM_TIMEOUT;
# `wait` is cut short instead. --foreground keeps QEMU in our process group,
# so a Ctrl-C reaches it directly.
t4=$(now)
set +e
timeout --foreground -k 10 "$TIMEOUT" qemu-system-x86_64 \
	-accel tcg -cpu max -m 4G -smp 1 \
	-nodefaults -no-user-config -display none -monitor none -serial stdio -no-reboot \
	-kernel "$kernel" -initrd "$work/initramfs" -append "$append" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	-virtfs "local,path=${SCRATCH//,/,,},mount_tag=scratch,security_model=none,multidevs=remap" \
	-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
	</dev/null &
qpid=$!
while :; do
	wait "$qpid"
	qrc=$?
	kill -0 "$qpid" 2>/dev/null || break # else a signal cut the wait short
done
set -e
t5=$(now)
[ "$interrupted" = 0 ] || {
	say "interrupted"
	exit "$interrupted"
}

# The guest's own reports come first: QEMU's exit status alone is ambiguous
# (a debug-exit of 68 gives 137, as does timeout's KILL).
if [ -f "$rundir/status" ]; then
	status=$(cat "$rundir/status")
elif [ -f "$rundir/error" ]; then
	say "guest setup failed: $(cat "$rundir/error")"
	exit $SETUP_FAILED
elif [ "$qrc" = 124 ] || { [ "$qrc" = 137 ] && [ "$(secs "$t4" "$t5" | cut -d. -f1)" -ge "$TIMEOUT" ]; }; then
	say "timed out after $TIMEOUT s (HWKVM_TIMEOUT), QEMU killed"
	exit 124
elif [ "$qrc" -gt 1 ] && [ $((qrc % 2)) = 1 ]; then
	# The status file is missing but the guest did reach debug-exit; only
	# the low 7 bits survive QEMU's (v << 1) | 1.
	status=$(((qrc - 1) / 2))
	[ "$status" != $SETUP_FAILED ] || {
		say "guest setup failed (see its messages above)"
		exit $SETUP_FAILED
	}
else
	say "the guest never ran the command (QEMU exit status $qrc); try HWKVM_VERBOSE=1"
	exit $SETUP_FAILED
fi

total=$(secs "$t4" "$t5")
if read -r gs ge <"$rundir/times" 2>/dev/null; then
	# Guest uptime runs at wall-clock speed under TCG; what QEMU spent
	# outside the command is boot (firmware, kernel, init) plus power-off.
	cmd=$(secs "$gs" "$ge")
	say "boot to command $(secs "$cmd" "$total") s, command $cmd s (status $status), QEMU total $total s"
else
	say "QEMU total $total s (status $status)"
fi
exit "$status"
