/* Signals to oneself in a tight loop: each a tgkill, a handler and an
 * rt_sigreturn, with FPU state to keep. Under the exitless transport none
 * of the three needs a VM exit. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile int handled;
static volatile double acc;

static void on_signal(int sig)
{
	acc = acc * 0.5 + 1.0; /* the handler's own FPU use */
	handled++;
	(void)sig;
}

int main(void)
{
	signal(SIGUSR1, on_signal);
	long pid = getpid(), tid = syscall(SYS_gettid);
	double sum = 0;
	for (int i = 1; i <= 500; i++) {
		sum += 1.0 / i;
		syscall(SYS_tgkill, pid, tid, SIGUSR1);
	}
	double check = 0;
	for (int i = 1; i <= 500; i++)
		check += 1.0 / i;
	printf("handled %d, sums equal %d\n", handled, sum == check);
	return 0;
}
