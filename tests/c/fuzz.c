/*
 * Issues N random syscalls with random arguments (a seeded xorshift, so a
 * run can be repeated). Arguments are random 64-bit values, small ints, or
 * pointers into a scratch buffer; path arguments come from a list of
 * escape attempts. Syscalls that would end or block the fuzzer itself, or
 * rewrite its own memory, are left out (the list below says why). Exits 0
 * after the last call: reaching the end is the test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>

static unsigned long state;

static unsigned long next(void)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

static int denied(long nr)
{
	switch (nr) {
	/* would end the fuzzer or replace it */
	case SYS_exit: case SYS_exit_group: case SYS_execve: case SYS_execveat:
	case SYS_kill: case SYS_tgkill: case SYS_tkill: case SYS_rt_sigqueueinfo:
	case SYS_rt_tgsigqueueinfo: case SYS_alarm: case SYS_setitimer: case SYS_timer_create:
	case SYS_rt_sigreturn: case SYS_rt_sigaction: case SYS_sigaltstack: case SYS_reboot:
	/* would rewrite its own memory, stack, TLS or code */
	case SYS_brk: case SYS_mmap: case SYS_munmap: case SYS_mremap: case SYS_madvise:
	case SYS_mprotect:
	case SYS_arch_prctl: case SYS_set_tid_address: case SYS_rseq: case SYS_pkey_mprotect:
	case SYS_shmat: case SYS_remap_file_pages: case SYS_process_vm_writev:
	/* would block (nothing else runs to wake it) */
	case SYS_pause: case SYS_rt_sigsuspend: case SYS_rt_sigtimedwait: case SYS_nanosleep:
	case SYS_clock_nanosleep: case SYS_select: case SYS_pselect6: case SYS_poll: case SYS_ppoll:
	case SYS_epoll_wait: case SYS_epoll_pwait: case SYS_epoll_pwait2: case SYS_futex:
	case 449 /* futex_waitv */: case SYS_wait4: case SYS_waitid: case SYS_pipe: case SYS_pipe2:
	case SYS_socketpair: case SYS_accept: case SYS_accept4: case SYS_recvfrom: case SYS_recvmsg:
	case SYS_msgrcv: case SYS_semop: case SYS_semtimedop: case SYS_flock: case SYS_fcntl:
	case SYS_vfork: case SYS_fork: case SYS_clone: case SYS_clone3: case SYS_io_getevents:
	case SYS_mq_timedreceive: case SYS_read: case SYS_readv: case SYS_preadv: case SYS_preadv2:
	/* would make a FIFO, whose open then waits for a writer forever */
	case SYS_mknod: case SYS_mknodat:
	/* would fill the disk */
	case SYS_fallocate:
		return 1;
	}
	return 0;
}

static const char *paths[] = {
	"/", ".", "..", "../..", "../../../../../../etc/passwd", "/etc/shadow", "/proc/self/root",
	"/proc/self/exe", "/dev/null", "f", "d", "d/f", "link", "/tmp", "//", "", "/nonexistent/x",
};

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	state = argc > 2 ? strtoul(argv[2], 0, 0) : 0x9e3779b97f4a7c15UL;
	/*
	 * Pointers go into the first 64 KiB (and the paths at 8 MiB) of a 16 MiB
	 * mapping; a length that happens to be a pointer is then a high address and
	 * runs past guest memory (EFAULT) instead of over the fuzzer itself.
	 */
	char *scratch = mmap(0, 16 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/*
	 * Path strings are copied into the scratch area too: the program's own
	 * image is mapped writable, so a pointer into .rodata handed to, say,
	 * uname() would let the call overwrite the fuzzer's own image.
	 */
	enum { npaths = sizeof paths / sizeof *paths };
	char *path_copies[npaths];
	for (int i = 0; i < npaths; i++)
		path_copies[i] = strcpy(scratch + (8 << 20) + i * 64, paths[i]);
	/* Whatever the fuzzer writes must not reach our stdout/stderr. */
	dup2(2, 200);
	close(0);
	close(1);
	close(2);
	long done = 0;
	for (long i = 0; i < n; i++) {
		long nr = next() % 463;
		if (denied(nr))
			continue;
		long a[6];
		for (int k = 0; k < 6; k++) {
			switch (next() % 5) {
			case 0: a[k] = next(); break;
			case 1: a[k] = next() % 64; break;
			case 2: a[k] = (long)(scratch + next() % 65536); break;
			case 3: a[k] = (long)path_copies[next() % npaths]; break;
			default: a[k] = -(long)(next() % 200); break;
			}
		}
		if (nr == SYS_mmap)
			a[3] &= ~0x100010L; /* no MAP_FIXED / MAP_FIXED_NOREPLACE over ourselves */
		if (nr == SYS_write || nr == SYS_pwrite64 || nr == SYS_writev)
			a[2] &= 4095;
		syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
		done++;
	}
	dprintf(200, "fuzzed %ld syscalls\n", done);
	return 0;
}
