/* rt_sigaction as Linux does it: looking dispositions up, installing a
 * handler (flags and mask read back), SIG_IGN dropping a pending signal,
 * SIG_DFL, and the errors. The guest kernel serves most of these itself. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

struct k_sigaction { unsigned long handler, flags, restorer, mask; };

static volatile int got;
static void on_usr1(int sig) { got = sig; }

static long rt(int sig, const struct k_sigaction *act, struct k_sigaction *old, long size) {
	long r = syscall(SYS_rt_sigaction, sig, act, old, size);
	return r < 0 ? -errno : r;
}

int main(void) {
	struct sigaction sa, old;
	int handlers = 0;
	for (int s = 1; s < 65; s++) {
		if (sigaction(s, NULL, &old) == 0 && old.sa_handler != SIG_DFL) handlers++;
	}
	printf("non-default at start: %d\n", handlers);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR2);
	sigaddset(&sa.sa_mask, SIGKILL); /* dropped: cannot be blocked */
	printf("install: %d\n", sigaction(SIGUSR1, &sa, NULL));
	sigaction(SIGUSR1, NULL, &old);
	printf("read back: handler %d restart %d usr2 %d kill %d\n", old.sa_handler == on_usr1,
	       (old.sa_flags & SA_RESTART) != 0, sigismember(&old.sa_mask, SIGUSR2),
	       sigismember(&old.sa_mask, SIGKILL));
	kill(getpid(), SIGUSR1);
	printf("delivered: %d\n", got);

	/* Blocked and pending, then ignored: it is gone when unblocked. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	kill(getpid(), SIGUSR2);
	sigpending(&set);
	printf("pending: %d\n", sigismember(&set, SIGUSR2));
	signal(SIGUSR2, SIG_IGN);
	sigpending(&set);
	printf("pending after SIG_IGN: %d\n", sigismember(&set, SIGUSR2));
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	signal(SIGUSR2, SIG_DFL);

	/* Back to the default, and the old action returned in the same call. */
	struct k_sigaction dfl = { 0 }, prev;
	long r = rt(SIGUSR1, &dfl, &prev, 8);
	printf("to SIG_DFL: %ld, was ours %d\n", r, prev.handler == (unsigned long)on_usr1);
	struct k_sigaction h = { (unsigned long)on_usr1, 0, 0, 0 };
	printf("SIGKILL: %ld, SIGSTOP: %ld\n", rt(SIGKILL, &h, NULL, 8), rt(SIGSTOP, &h, NULL, 8));
	printf("SIGKILL lookup: %ld\n", rt(SIGKILL, NULL, &prev, 8));
	printf("signal 0: %ld, 65: %ld\n", rt(0, NULL, &prev, 8), rt(65, NULL, &prev, 8));
	printf("size 4: %ld\n", rt(SIGUSR1, &h, NULL, 4));
	printf("bad act: %ld, bad old: %ld\n", rt(SIGUSR1, (void *)8, NULL, 8),
	       rt(SIGUSR1, NULL, (void *)8, 8));
	/* The same buffer for both: the new action is read before the old is written. */
	struct k_sigaction both = { (unsigned long)on_usr1, 0, 0, 0 };
	rt(SIGUSR1, &both, &both, 8);
	sigaction(SIGUSR1, NULL, &old);
	printf("aliased: installed %d, old was default %d\n", old.sa_handler == on_usr1,
	       both.handler == 0);
	return 0;
}
