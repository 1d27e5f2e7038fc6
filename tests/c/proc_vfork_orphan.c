/* A vfork parent killed while its child runs (under hermitux the child
 * runs on the parent's machine: loan.ts): the child goes on, orphaned,
 * until it is killed in turn; with `leave`, the run ends while an orphaned
 * vfork child still spins. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "proc.h"

int main(int argc, char **argv)
{
	int leave = argc > 1 && !strcmp(argv[1], "leave");
	int fds[2];
	if (pipe(fds))
		return 1;
	pid_t p = fork();
	if (p == 0) {
		/* A first child of its own, so the vfork below is not its run's first. */
		pid_t f = fork();
		if (f == 0)
			_exit(0);
		int st;
		waitpid(f, &st, 0);
		pid_t c = vfork();
		if (c == 0) {
			pid_t me = (pid_t)syscall(SYS_getpid);
			if (write(fds[1], &me, sizeof me) != sizeof me)
				_exit(2);
			/* Holds no pipe of the test's, and spins, but not for ever:
			 * natively an orphan outlives the test. */
			for (int fd = 0; fd < 5; fd++)
				close(fd);
			struct timespec t0, t;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			do
				clock_gettime(CLOCK_MONOTONIC, &t);
			while (t.tv_sec - t0.tv_sec < 3);
			_exit(0);
		}
		for (;;)
			pause(); /* never reached while the child spins */
	}
	pid_t c;
	if (read(fds[0], &c, sizeof c) != sizeof c)
		return 1;
	say("the vfork child runs: %d\n", c > 0);
	kill(p, SIGKILL);
	int st;
	waitpid(p, &st, 0);
	status("the vfork parent", st);
	sleep_ms(50);
	say("the orphaned child still runs: %d\n", kill(c, 0) == 0);
	if (leave)
		return 0;
	say("killed in turn: %d\n", kill(c, SIGKILL) == 0);
	return 0;
}
