/* Real-time signals queue (each sigqueue is delivered, in order, with its
 * value) while standard ones merge; sigtimedwait takes queued instances. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int seen[16], nseen;
static void on_rt(int sig, siginfo_t *si, void *uc) { seen[nseen++] = si->si_value.sival_int; }
static int usr1;
static void on_usr1(int sig) { usr1++; }

int main(void) {
	struct sigaction sa = { .sa_sigaction = on_rt, .sa_flags = SA_SIGINFO };
	sigaction(SIGRTMIN + 1, &sa, NULL);
	struct sigaction su = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &su, NULL);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGRTMIN + 1);
	sigaddset(&s, SIGUSR1);
	sigprocmask(SIG_BLOCK, &s, NULL);
	for (int v = 1; v <= 3; v++)
		sigqueue(getpid(), SIGRTMIN + 1, (union sigval){ .sival_int = v * 10 });
	kill(getpid(), SIGUSR1);
	kill(getpid(), SIGUSR1);
	sigset_t p;
	sigpending(&p);
	printf("pending rt %d usr1 %d\n", sigismember(&p, SIGRTMIN + 1), sigismember(&p, SIGUSR1));
	sigprocmask(SIG_UNBLOCK, &s, NULL);
	printf("rt handled %d:", nseen);
	for (int i = 0; i < nseen; i++)
		printf(" %d", seen[i]);
	printf("\nusr1 handled %d\n", usr1);

	/* sigtimedwait takes the queued instances one by one. */
	sigprocmask(SIG_BLOCK, &s, NULL);
	for (int v = 1; v <= 4; v++)
		sigqueue(getpid(), SIGRTMIN + 1, (union sigval){ .sival_int = v });
	struct timespec zero = { 0, 0 };
	siginfo_t si;
	int got = 0, sum = 0;
	while (sigtimedwait(&s, &si, &zero) == SIGRTMIN + 1) {
		got++;
		sum = sum * 10 + si.si_value.sival_int;
	}
	printf("sigtimedwait took %d in order %d\n", got, sum);
	sigpending(&p);
	printf("none left %d\n", !sigismember(&p, SIGRTMIN + 1));
	return 0;
}
