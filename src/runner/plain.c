/*
 * The plain-call server: the exitless poller's inner loop, in C. Called
 * from the main thread through FFI, it spins over the vCPUs' host-call
 * blocks and serves the calls that need nothing of the TypeScript side:
 * read, write and their positioned and vector forms, lseek, fstat,
 * recvfrom/sendto with no address, and epoll_wait with events ready (a
 * server's loop: redis waits, reads, writes), on fds the TypeScript side marked plain
 * (a host fd with no file ops of hermitux's own), when the registry still
 * has the built-in handler and nothing traces. Everything else, and every
 * case below that is not sure, goes back to TypeScript untouched: that is
 * the slow path, with the same result.
 *
 * A served call costs a host syscall and a few loads here; through
 * TypeScript it costs microseconds of dispatch and BigInt arguments.
 *
 * The guest is untrusted: every guest pointer is checked against
 * [user_min, user_end) before the host kernel sees it, and the blocks are
 * read once into locals (the guest may change them meanwhile).
 *
 * Position-independent with no data or libc, as runner.c (build.sh).
 */

typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;
typedef int i32;

/* struct hostcall (src/kernel/abi.h) */
struct hostcall {
	u64 kind, nr, arg[6];
	i64 ret;
	u64 site;
	volatile u32 seq, ack;
};

#define HC_SYSCALL 0
#define MAX_CPUS 64
#define MAX_FDS 1024
#define MAX_IOV 64
#define MAX_EVENTS (1 << 20)   /* more, or fewer than one: TS (EINVAL) */
#define PIPE_BUF 4096

/* Shared with src/vm/plain.ts (PLAIN): field order and offsets are ABI. */
struct plain {
	u64 mem;                /* 0: host address of guest RAM */
	u64 user_min;           /* 8: guest buffers lie in [user_min, user_end) */
	u64 user_end;           /* 16 */
	volatile u32 *door;     /* 24: the runners' door word: its change means exits to serve */
	u32 door_seen;          /* 32 */
	u32 spin;               /* 36: TSC ticks to spin with nothing to serve */
	u32 calls;              /* 40: bit per CALL_*: the calls served here */
	u32 fsize;              /* 44: 1: RLIMIT_FSIZE is set, writes to files go to TS */
	u32 note_cpu;           /* 48: out: the vCPU whose read TS must finish (NOTE) */
	u32 ncpu;               /* 52 */
	u64 counts[16];         /* 56: calls served, per CALL_* */
	u64 block[MAX_CPUS];    /* 184: host address of each vCPU's block; 0: not here */
	i32 fds[MAX_FDS];       /* 696: host fd << 2 | FD_*, or -1: TS serves it */
};

/* Per-fd bits: what can wait (a pipe, socket or terminal). */
#define FD_READ_WAITS  1
#define FD_WRITE_WAITS 2

enum { CALL_READ, CALL_WRITE, CALL_PREAD, CALL_PWRITE, CALL_READV, CALL_WRITEV,
       CALL_LSEEK, CALL_FSTAT, CALL_RECVFROM, CALL_SENDTO, CALL_EPOLL_WAIT, CALL_EPOLL_PWAIT };

/* serve()'s result: calls served, and why it came back. */
#define SERVED_MASK 0xffff
#define BACK_TS     (1 << 16)  /* a call TS must serve */
#define BACK_DOOR   (1 << 17)  /* a runner exited */
#define BACK_NOTE   (1 << 18)  /* a read done, TS finishes it (note_cpu) */

#define EAGAIN 11
#define EPIPE 32
#define EOPNOTSUPP 95
#define O_NONBLOCK 04000
#define RWF_NOWAIT 8
#define MSG_DONTWAIT 0x40
#define MSG_WAITALL 0x100
#define POLLIN 1
#define POLLOUT 4
#define F_GETFL 3
#define NOT_HERE (-1000000)    /* not a result: TS serves the call */

static inline __attribute__((always_inline)) i64 sys6(i64 nr, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f)
{
	register i64 r10 __asm__("r10") = d;
	register i64 r8 __asm__("r8") = e;
	register i64 r9 __asm__("r9") = f;
	i64 ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/* Host address of guest [a, a + n), or 0 if any of it is outside user memory. */
static inline __attribute__((always_inline)) u64 guest(struct plain *s, u64 a, u64 n)
{
	if (a < s->user_min || a > s->user_end || n > s->user_end - a)
		return 0;
	return s->mem + a;
}

/* Whether a call on an fd that can wait may be made now without waiting. */
static inline __attribute__((always_inline)) int ready(i32 fd, u64 flags_nowait, short events)
{
	struct { i32 fd; short events, revents; } p = { fd, events, 0 };

	if (flags_nowait || (sys6(72, fd, F_GETFL, 0, 0, 0, 0) & O_NONBLOCK))
		return 1;
	return sys6(7, (i64)&p, 1, 0, 0, 0, 0) == 1; /* poll, no timeout */
}

/* Whether the fd is in O_NONBLOCK mode (an error counts as blocking). */
static inline __attribute__((always_inline)) int nonblocking(i32 fd)
{
	i64 fl = sys6(72, fd, F_GETFL, 0, 0, 0, 0);
	return fl >= 0 && (fl & O_NONBLOCK);
}

/* Guest iovecs to host ones, checked; -1 when TS must see them. */
static inline __attribute__((always_inline)) i64 iovecs(struct plain *s, u64 at, u64 n, u64 *out, u64 *total)
{
	u64 src = guest(s, at, n * 16), sum = 0;

	if (n > MAX_IOV || !src)
		return -1;
	for (u64 i = 0; i < n; i++) {
		u64 base = ((volatile u64 *)src)[2 * i], len = ((volatile u64 *)src)[2 * i + 1];
		u64 h = len ? guest(s, base, len) : 0;

		if (len && !h)
			return -1;
		out[2 * i] = h;
		out[2 * i + 1] = len;
		sum += len;
	}
	*total = sum;
	return 0;
}

/* A write to an fd that can wait, never waiting: all of a small one, or
 * TS (which parks the thread, or takes the doorbell). */
static inline __attribute__((always_inline)) i64 write_nowait(i32 fd, u64 iov, u64 n, u64 total)
{
	i64 r;

	if (nonblocking(fd))
		return sys6(20, fd, iov, n, 0, 0, 0); /* writev */
	if (total > PIPE_BUF)
		return NOT_HERE;
	r = sys6(328, fd, iov, n, -1, 0, RWF_NOWAIT); /* pwritev2 */
	return r == -EAGAIN || r == -EOPNOTSUPP ? NOT_HERE : r;
}

/* One call, or NOT_HERE. `a` holds the arguments, read once. */
static inline __attribute__((always_inline)) i64 call(struct plain *s, u64 nr, u64 *a, u32 *which)
{
	u64 iov[2 * MAX_IOV], total, h;
	i32 e, fd;
	int c;

	switch (nr) {
	case 0: c = CALL_READ; break;
	case 1: c = CALL_WRITE; break;
	case 17: c = CALL_PREAD; break;
	case 18: c = CALL_PWRITE; break;
	case 19: c = CALL_READV; break;
	case 20: c = CALL_WRITEV; break;
	case 8: c = CALL_LSEEK; break;
	case 5: c = CALL_FSTAT; break;
	case 45: c = CALL_RECVFROM; break;
	case 44: c = CALL_SENDTO; break;
	case 232: c = CALL_EPOLL_WAIT; break;
	case 281: c = CALL_EPOLL_PWAIT; break;
	default: return NOT_HERE;
	}
	if (!(s->calls & (1u << c)) || a[0] >= MAX_FDS || (e = s->fds[a[0]]) < 0)
		return NOT_HERE;
	fd = e >> 2;
	*which = c;
	switch (c) {
	case CALL_READ:
	case CALL_PREAD:
		if (!(h = guest(s, a[1], a[2])))
			return NOT_HERE;
		if (c == CALL_PREAD)
			return (e & FD_READ_WAITS) ? NOT_HERE : sys6(17, fd, h, a[2], a[3], 0, 0);
		if ((e & FD_READ_WAITS) && a[2] && !ready(fd, 0, POLLIN))
			return NOT_HERE;
		return sys6(0, fd, h, a[2], 0, 0, 0);
	case CALL_WRITE:
	case CALL_PWRITE:
		if (!(h = guest(s, a[1], a[2])))
			return NOT_HERE;
		if (c == CALL_PWRITE)
			return (e & FD_WRITE_WAITS) || s->fsize ? NOT_HERE : sys6(18, fd, h, a[2], a[3], 0, 0);
		if (!(e & FD_WRITE_WAITS))
			return s->fsize ? NOT_HERE : sys6(1, fd, h, a[2], 0, 0, 0);
		iov[0] = h;
		iov[1] = a[2];
		return a[2] ? write_nowait(fd, (u64)iov, 1, a[2]) : sys6(1, fd, h, 0, 0, 0, 0);
	case CALL_READV:
		if (iovecs(s, a[1], a[2], iov, &total) < 0)
			return NOT_HERE;
		if ((e & FD_READ_WAITS) && total && !ready(fd, 0, POLLIN))
			return NOT_HERE;
		return sys6(19, fd, (u64)iov, a[2], 0, 0, 0);
	case CALL_WRITEV:
		if (iovecs(s, a[1], a[2], iov, &total) < 0)
			return NOT_HERE;
		if (!(e & FD_WRITE_WAITS))
			return s->fsize ? NOT_HERE : sys6(20, fd, (u64)iov, a[2], 0, 0, 0);
		return total ? write_nowait(fd, (u64)iov, a[2], total) : sys6(20, fd, (u64)iov, a[2], 0, 0, 0);
	case CALL_LSEEK:
		return sys6(8, fd, a[1], a[2], 0, 0, 0);
	case CALL_FSTAT:
		return (h = guest(s, a[1], 144)) ? sys6(5, fd, h, 0, 0, 0, 0) : NOT_HERE;
	case CALL_RECVFROM:
		if (a[4] || (a[3] & MSG_WAITALL) || !(h = guest(s, a[1], a[2])))
			return NOT_HERE;
		if ((e & FD_READ_WAITS) && !ready(fd, a[3] & MSG_DONTWAIT, POLLIN))
			return NOT_HERE;
		return sys6(45, fd, h, a[2], a[3], 0, 0);
	case CALL_SENDTO: {
		i64 r;

		if (a[4] || !(h = guest(s, a[1], a[2])))
			return NOT_HERE;
		if (!(e & FD_WRITE_WAITS) || (a[3] & MSG_DONTWAIT) || nonblocking(fd))
			return sys6(44, fd, h, a[2], a[3], 0, 0);
		if (a[2] > PIPE_BUF)
			return NOT_HERE;
		r = sys6(44, fd, h, a[2], a[3] | MSG_DONTWAIT, 0, 0);
		return r == -EAGAIN ? NOT_HERE : r;
	}
	case CALL_EPOLL_PWAIT:
		/* A signal mask to wait under: TS, which knows the guest's. */
		if (a[4])
			return NOT_HERE;
		/* fall through */
	case CALL_EPOLL_WAIT: {
		i32 n = (i32)a[2], timeout = (i32)a[3];
		i64 r;

		/* Events ready are returned as Linux's ep_poll does, before it
		 * would look at signals; none ready and a wait asked for is TS's
		 * (it parks the thread, or times out). 12 bytes an event. */
		if (n <= 0 || n > MAX_EVENTS || !(h = guest(s, a[1], (u64)n * 12)))
			return NOT_HERE;
		r = sys6(281, fd, h, n, 0, 0, 8); /* epoll_pwait, no wait */
		return r > 0 || (r == 0 && timeout == 0) ? r : NOT_HERE;
	}
	}
	return NOT_HERE;
}

static inline __attribute__((always_inline)) u64 rdtsc(void)
{
	u32 lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

/*
 * Serves what it can until a call needs TS, a runner exits, `max` calls
 * are served, or `spin` TSC ticks pass with nothing to do. No `pause` in
 * the spin: a nested hypervisor may take it for a lock holder's wait and
 * deschedule us.
 */
__attribute__((section(".text.entry")))
u32 serve(struct plain *s, u32 max)
{
	u32 served = 0;
	u64 since = rdtsc(), last;

	for (;;) {
		int found = 0;

		if (*s->door != s->door_seen)
			return served | BACK_DOOR;
		for (u32 i = 0; i < s->ncpu && i < MAX_CPUS; i++) {
			struct hostcall *b = (struct hostcall *)s->block[i];
			u64 a[6];
			u32 seq, which = 0;
			i64 r;

			if (!b)
				continue;
			seq = b->seq;
			if (seq == b->ack || seq == ~b->ack)
				continue;
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			found = 1;
			if (b->kind != HC_SYSCALL)
				return served | BACK_TS;
			for (int k = 0; k < 6; k++)
				a[k] = b->arg[k];
			r = call(s, b->nr, a, &which);
			/* EPIPE also raises SIGPIPE: TS makes the call again for that. */
			if (r == NOT_HERE || r == -EPIPE)
				return served | BACK_TS;
			b->ret = r;
			s->counts[which]++;
			served++;
			/* ld.so reading a library's ELF header: TS notes it (relro.ts). */
			if ((which == CALL_READ) && r >= 64 &&
			    *(volatile u32 *)(s->mem + a[1]) == 0x464c457f) {
				s->note_cpu = i;
				return served | BACK_NOTE;
			}
			/* The result is in place before the guest sees its ack. */
			__atomic_store_n(&b->ack, seq, __ATOMIC_RELEASE);
		}
		last = rdtsc();
		if (served >= max)
			return served;
		if (found)
			since = last;
		else if (last - since > s->spin)
			return served;
	}
}
