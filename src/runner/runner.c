/*
 * The vCPU runner: a host thread (started with pthread_create from Deno's
 * FFI) that only calls KVM_RUN for one vCPU and hands every exit to the
 * main thread through a struct runner in shared host memory. It replaces a
 * Deno Worker: a Worker costs 13-25 ms to start (a V8 isolate) and ~50 us
 * per exit to hand over; this costs a pthread and a futex wake. When its
 * vCPU's process ends the thread idles, and main may point it at another
 * vCPU (mod.ts: Runner.start), which saves a thread's start and end.
 *
 * Built position-independent with no data, relocations or libc, so its
 * bytes can be copied into an executable page as they are (build.sh).
 */

#define KVM_RUN 0xae80
#define SIGALRM 14
#define EINTR 4

/* struct runner.state, as WSTATE in src/vm/wire.ts */
#define IDLE 0
#define RUN 1
#define EXITED 2
#define QUIT 3
#define CALL 4   /* main asks for one vCPU ioctl, made on this thread */

/* Shared with src/vm/wire.ts (RUNNER): field order and offsets are ABI. */
struct runner {
	volatile int state;             /* 0: futex word; the side that hands over writes it */
	volatile int tid;               /* 4: this thread's id, once it runs */
	volatile int done;              /* 8: 1 when the thread has left */
	volatile int intr;              /* 12: main sets 1 to ask for a report; 2 when reported */
	int fd;                         /* 16: the vCPU */
	int pid;                        /* 20 */
	volatile unsigned char *run;    /* 24: the vCPU's struct kvm_run */
	volatile int *door;             /* 32: bumped and woken at every exit */
	volatile unsigned char *kick_run; /* 40: kvm_run of a vCPU the main thread runs itself */
	int kick_tid;                   /* 48: main thread's id (0: nothing to kick) */
	volatile int err;               /* 52: -errno of a failed KVM_RUN, else 0 */
	volatile long call_req;         /* 56: CALL: ioctl request */
	volatile long call_arg;         /* 64: CALL: its argument */
	volatile long call_ret;         /* 72: CALL: its result (-errno) */
	volatile int call_back;         /* 80: CALL: the state to return to */
	int wake_fd;                    /* 84: an eventfd written at every exit too, or -1 */
	volatile int rest;              /* 88: 1 while idle, past every use of the fields above */
	int later_n;                    /* 92: how many ioctls wait in later[] */
	long later[8];                  /* 96: (request, argument) pairs, made before the next KVM_RUN */
};

#include "sys.h"

#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129

static inline void wait_while(volatile int *w, int v)
{
	while (*w == v)
		sys(202, (long)w, FUTEX_WAIT_PRIVATE, v, 0);
}

static inline void wake(volatile int *w)
{
	sys(202, (long)w, FUTEX_WAKE_PRIVATE, 0x7fffffff, 0);
}

/*
 * The ioctls main queued for this vCPU without waiting for them (a vfork
 * parent's FPU state and segments put back): made in order, before
 * anything else reaches the vCPU. 0, or the first one's -errno that failed.
 */
static inline long run_later(struct runner *r)
{
	long rc = 0;
	int n = r->later_n;

	for (int i = 0; i < n && rc >= 0; i++)
		rc = sys(16, r->fd, r->later[2 * i], r->later[2 * i + 1], 0);
	r->later_n = 0;
	return rc < 0 ? rc : 0;
}

/*
 * kvm_pvm keeps a vCPU's FPU state with the thread that runs it: an
 * XSAVE read or written from another thread can be stale. So every vCPU
 * ioctl of a vCPU we run is made here, while it is out of KVM_RUN.
 */
static inline void serve_call(struct runner *r)
{
	long rc = run_later(r);

	r->call_ret = rc < 0 ? rc : sys(16, r->fd, r->call_req, r->call_arg, 0);
	r->state = r->call_back;
	wake(&r->state);
}

__attribute__((section(".text.entry")))
void *runner(struct runner *r)
{
	r->tid = (int)sys(186, 0, 0, 0, 0); /* gettid */
	wake(&r->tid);
	for (;;) {
		int s;
		/* Idle until given a thread to run, or told to leave. */
		while ((s = r->state) != RUN) {
			if (s == QUIT) {
				r->done = 1;
				wake(&r->done);
				return 0;
			}
			if (s == CALL) {
				serve_call(r);
			} else {
				/* Done with the last vCPU's door, eventfd and kick: main
				 * may now point this thread at another vCPU (mod.ts). */
				r->rest = 1;
				wake(&r->rest);
				wait_while(&r->state, s);
			}
		}
		/* Running again; main's halt may have taken RUN back meanwhile, so
		 * the state is read once more after rest is cleared (each side
		 * writes its word, then reads the other's). */
		r->rest = 0;
		__sync_synchronize();
		if (r->state != RUN)
			continue;
		for (;;) {
			long rc = run_later(r);

			if (rc == 0)
				rc = sys(16, r->fd, KVM_RUN, 0, 0);
			r->err = rc < 0 && rc != -EINTR ? (int)rc : 0;
			if (rc == -EINTR) {
				/* A kick: immediate_exit (or a signal) got us out. */
				r->run[1] = 0;
				if (r->state != RUN)
					break;
				/* Main asked this thread to act on a signal: report it as an exit. */
				if (!__sync_bool_compare_and_swap(&r->intr, 1, 2))
					continue;
			}
			/* Main may have told us to quit meanwhile: that stands. */
			if (!__sync_bool_compare_and_swap(&r->state, RUN, EXITED))
				break;
			__sync_fetch_and_add(r->door, 1);
			wake(r->door);
			if (r->wake_fd >= 0) {
				/* Main may sleep on the eventfd that guests' kicks write. */
				unsigned long one = 1;
				sys(1, r->wake_fd, (long)&one, 8, 0); /* write */
			}
			/* The main thread is in its own KVM_RUN: get it out to serve us.
			 * Main clears the tid before the kvm_run (setKick): read in the
			 * other order, with both checked, a kick being turned off meanwhile
			 * is skipped or complete; never a write through a null kvm_run
			 * (two host crashes, "segfault at 1"). */
			int kick = __atomic_load_n(&r->kick_tid, __ATOMIC_ACQUIRE);
			volatile unsigned char *kick_run = __atomic_load_n(&r->kick_run, __ATOMIC_ACQUIRE);
			if (kick && kick_run) {
				kick_run[1] = 1;
				sys(234, r->pid, kick, SIGALRM, 0); /* tgkill */
			}
			while ((s = r->state) == EXITED || s == CALL) {
				if (s == CALL)
					serve_call(r);
				else
					wait_while(&r->state, EXITED);
			}
			if (r->state != RUN)
				break;
		}
	}
}
