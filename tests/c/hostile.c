/*
 * A hostile guest: the program and the guest kernel share one privilege
 * level, so it can write everything the guest kernel keeps, and the host
 * must hold whatever it finds there (tests/hostile_test.ts).
 *   forge SEED N    N forged host-call requests in this vCPU's block (random
 *                   kinds, numbers, arguments, sequence words), each rung
 *                   through the doorbell or posted to the exitless poller
 *   kernel SEED N   N random bytes over the guest kernel's image, stack and
 *                   data pages (boot information, host-call block, per-CPU
 *                   state, signal actions), then ordinary syscalls
 *   pool SEED N     N random bytes over the page-table pool at the top of
 *                   RAM while a thread runs, then mprotect, a thread,
 *                   syscalls (the per-vCPU blocks lie past RAM, where no
 *                   guest address reaches)
 * Arguments point anywhere, above RAM too (HC_PROT and HC_MOVE there make,
 * move and drop mappings the host backs). Addresses are abi.h's
 * (src/kernel/abi.ts). Prints "survived" if it gets
 * to the end; being killed is as good: what is tested is the host.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BOOT_INFO 0x10000UL
#define SIGACTIONS 0x10800UL
#define HOSTCALL 0x11000UL
#define PERCPU 0x12000UL
#define DOORBELL 0x80000UL
#define KERNEL 0x100000UL
#define HIGH 0x7ff000000000UL /* where the guest kernel places reservations above RAM */
#define KSTACK_TOP 0x200000UL
#define HUGE (2UL << 20)

struct hostcall {
	volatile uint64_t kind, nr, arg[6];
	volatile int64_t ret;
	volatile uint64_t site;
	volatile uint32_t seq, ack;
};

#define HC ((struct hostcall *)HOSTCALL)
#define POLLING (*(volatile uint64_t *)(BOOT_INFO + 112))

static uint64_t state;

static uint64_t next(void)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

static char scratch[1 << 16];

/* Syscalls that would end, replace, block or unmap the forger itself: a
 * forged request for one is sent with another number (the run would end
 * at once, and that is tested often enough by the other modes). */
static int denied(uint64_t nr)
{
	switch (nr) {
	case SYS_exit: case SYS_exit_group: case SYS_execve: case SYS_execveat: case SYS_kill:
	case SYS_tgkill: case SYS_tkill: case SYS_rt_sigqueueinfo: case SYS_rt_tgsigqueueinfo:
	case SYS_alarm: case SYS_setitimer: case SYS_timer_create: case SYS_rt_sigreturn:
	case SYS_rt_sigaction: case SYS_sigaltstack: case SYS_brk: case SYS_mmap: case SYS_munmap:
	case SYS_mremap: case SYS_madvise: case SYS_mprotect: case SYS_arch_prctl:
	case SYS_set_tid_address: case SYS_rseq: case SYS_pause: case SYS_rt_sigsuspend:
	case SYS_rt_sigtimedwait: case SYS_nanosleep: case SYS_clock_nanosleep: case SYS_select:
	case SYS_pselect6: case SYS_poll: case SYS_ppoll: case SYS_epoll_wait: case SYS_epoll_pwait:
	case SYS_epoll_pwait2: case SYS_futex: case 449: case SYS_wait4: case SYS_waitid:
	case SYS_accept: case SYS_accept4: case SYS_recvfrom: case SYS_recvmsg: case SYS_flock:
	case SYS_fcntl: case SYS_vfork: case SYS_fork: case SYS_clone: case SYS_clone3:
	case SYS_read: case SYS_readv: case SYS_preadv: case SYS_preadv2: case SYS_fallocate:
	case SYS_msgrcv: case SYS_semop: case SYS_semtimedop: case SYS_io_getevents:
	case SYS_mq_timedreceive: case SYS_pipe: case SYS_pipe2: case SYS_socketpair:
	case SYS_write: case SYS_writev: case SYS_pwrite64: case SYS_sendfile: case SYS_close:
	case SYS_dup2: case SYS_dup3: case SYS_close_range:
		return 1;
	}
	return 0;
}

/* The start of the last range above RAM an HC_PROT was forged for. */
static uint64_t last_high = HIGH;

static uint64_t arg(void)
{
	switch (next() % 9) {
	case 7: /* above RAM: often in the last range forged there */
		return next() % 2 ? last_high + next() % (1UL << 20) : HIGH + (next() % (1UL << 34) & ~4095UL);
	case 0: return next();
	case 1: return next() % 64;
	case 2: return (uint64_t)scratch + next() % sizeof scratch;
	case 3: return BOOT_INFO + next() % 0x10000; /* the guest kernel's own pages */
	case 4: return next() & 0xffffffffffffff00UL;
	case 5: return (uint64_t)-1 - next() % 4096;
	case 6: return KERNEL + next() % 0x100000;
	default: return 0;
	}
}

static void forge(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t r = next() % 10000, nr = next() % 512, kind;
		if (r < 7000) kind = 0; /* HC_SYSCALL */
		else if (r < 7500) kind = 1; /* HC_TRACE */
		else if (r < 8000) kind = 2; /* HC_CLOCK */
		else if (r < 9000) kind = 4; /* HC_ZERO: within the scratch buffer, or anywhere */
		else if (r < 9400) kind = 6; /* HC_PROT */
		else if (r < 9500) kind = 8; /* HC_MOVE: mremap above RAM */
		else if (r < 9998) kind = 5; /* HC_SIGNAL */
		else kind = next() % 2 ? 3 : next() & 0xffffffff; /* HC_UNKNOWN, anything: the end */
		if (next() % 8 == 0) kind |= 0x100; /* HC_POSTED */
		if (kind == 0 && (denied(nr) || next() % 16 == 0)) nr = next() % 16 == 0 ? next() : 39;
		HC->kind = kind;
		HC->nr = nr;
		for (int a = 0; a < 6; a++) HC->arg[a] = arg();
		if ((kind & 0xff) == 4 && next() % 4) {
			HC->arg[0] = (uint64_t)scratch + next() % 4096;
			HC->arg[1] = next() % 4096;
		}
		if (((kind & 0xff) == 6 || (kind & 0xff) == 8) && next() % 3 == 0) {
			/* Above RAM, page-aligned: mappings made, moved, taken away. */
			static const uint64_t prots[] = { 0, 1, 3, 0x100, 0x200 };
			HC->arg[0] = HIGH + (next() % (1UL << 34) & ~4095UL);
			if ((kind & 0xff) == 6)
				last_high = HC->arg[0];
			HC->arg[1] = next() % (64UL << 20) & ~4095UL;
			HC->arg[2] = (kind & 0xff) == 6 ? prots[next() % 5] : next() % (64UL << 20) & ~4095UL;
			if ((kind & 0xff) == 8)
				HC->arg[1] = HIGH + (next() % (1UL << 34) & ~4095UL);
		} else if ((kind & 0xff) == 6 && next() % 2) {
			HC->arg[0] = (uint64_t)scratch & ~4095UL; /* our own pages: harmless protections */
			HC->arg[1] = 4096;
			HC->arg[2] = 3;
		}
		HC->site = arg();
		if (next() % 4 == 0) HC->ack = (uint32_t)next();
		if (POLLING && next() % 2) {
			/* The exitless way: post it and wait a little for an answer. */
			uint32_t s = HC->seq + 1 + (next() % 8 == 0 ? (uint32_t)next() : 0);
			HC->seq = s;
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			for (int spin = 0; spin < 20000 && HC->ack != s && HC->ack != ~s; spin++)
				__builtin_ia32_pause();
			if (HC->ack == s) continue;
		}
		if (next() % 16 == 0) HC->seq = (uint32_t)next();
		*(volatile uint64_t *)DOORBELL = 0;
	}
}

static void scribble(uint64_t lo, uint64_t hi, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		*(volatile uint8_t *)(lo + next() % (hi - lo)) = (uint8_t)next();
}

static void *thread(void *a)
{
	return a;
}

static volatile int scribbling = 1;

/* A thread at work in its own vCPU block while that block is scribbled over. */
static void *busy(void *a)
{
	while (scribbling) {
		getpid();
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		close(open("/dev/null", 0));
	}
	return a;
}

static void ordinary(void)
{
	char buf[64];
	getpid();
	snprintf(buf, sizeof buf, "pid %d\n", getpid());
	write(2, buf, 0);
	void *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m != MAP_FAILED) {
		memset(m, 1, 1 << 20);
		mprotect(m, 4096, PROT_READ);
		mprotect((char *)m + 8192, 8192, PROT_NONE);
		munmap(m, 1 << 20);
	}
	pthread_t t;
	if (pthread_create(&t, NULL, thread, NULL) == 0) pthread_join(t, NULL);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	close(open("/dev/null", 0));
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: hostile forge|kernel|pool SEED N\n");
		return 2;
	}
	state = strtoull(argv[2], NULL, 0) * 0x9e3779b97f4a7c15UL | 1;
	uint64_t n = strtoull(argv[3], NULL, 0);
	for (int i = 0; i < 16; i++) next();
	if (!strcmp(argv[1], "forge")) {
		forge(n);
	} else if (!strcmp(argv[1], "kernel")) {
		/* The kernel image (its header says where it ends) and stack, then its
		 * data pages: a quarter each. */
		uint64_t end = *(volatile uint64_t *)(KERNEL + 40); /* bss_end */
		if (end <= KERNEL || end > KSTACK_TOP) end = KSTACK_TOP;
		scribble(KERNEL, end, n / 4 + 1);
		scribble(KSTACK_TOP - 4 * 4096, KSTACK_TOP, n / 4 + 1);
		scribble(BOOT_INFO, PERCPU + 0x1000, n / 4 + 1);
		scribble(SIGACTIONS, SIGACTIONS + 0x800, n / 4 + 1);
		for (int i = 0; i < 20; i++) ordinary();
	} else if (!strcmp(argv[1], "pool")) {
		uint64_t size = *(volatile uint64_t *)(BOOT_INFO + 48);
		uint64_t sp = *(volatile uint64_t *)(BOOT_INFO + 16);
		uint64_t top = (sp + HUGE - 1) & ~(HUGE - 1); /* the stack's top: the pool is above */
		ordinary(); /* some page tables in use first */
		pthread_t t;
		int started = pthread_create(&t, NULL, busy, NULL) == 0;
		scribble(top, size, n + 1); /* the page-table pool */
		scribbling = 0;
		if (started) pthread_join(t, NULL);
		for (int i = 0; i < 20; i++) ordinary();
	}
	printf("survived\n");
	return 0;
}
