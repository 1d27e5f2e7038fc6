/* Default actions, chosen by argv[1]: "abort" (SIGABRT, 134), "term"
 * (kill(getpid(), SIGTERM), 143), "alarm" (alarm(1) then pause(), 142),
 * "segv-ign" (a NULL write with SIGSEGV ignored still kills, 139),
 * "blocked-then-dfl" (a blocked SIGUSR2 kills when unblocked, 140),
 * "pause" (waits for ever: for --timeout). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *m = argc > 1 ? argv[1] : "";
	printf("mode %s\n", m);
	fflush(stdout);
	if (!strcmp(m, "abort"))
		abort();
	if (!strcmp(m, "term"))
		kill(getpid(), SIGTERM);
	if (!strcmp(m, "alarm")) {
		alarm(1);
		pause();
	}
	if (!strcmp(m, "pause"))
		pause();
	if (!strcmp(m, "segv-ign")) {
		signal(SIGSEGV, SIG_IGN);
		*(volatile int *)0 = 1;
	}
	if (!strcmp(m, "blocked-then-dfl")) {
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, SIGUSR2);
		sigprocmask(SIG_BLOCK, &s, NULL);
		raise(SIGUSR2);
		printf("still here\n");
		fflush(stdout);
		sigprocmask(SIG_UNBLOCK, &s, NULL);
	}
	printf("not reached\n");
	return 0;
}
