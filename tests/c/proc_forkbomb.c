/* Forks until fork fails (at most 1000 children, so a run as root, where
 * RLIMIT_NPROC is not enforced, stays bounded): prints fork's errno name
 * and how many children there were, kills them all (each blocked reading
 * a pipe), reaps every one, and forks once more once they are gone. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "proc.h"

#define CAP 1000

static pid_t kids[CAP];

int main(void)
{
	int p[2];
	if (pipe(p))
		return 90;
	int n = 0, err = 0;
	while (n < CAP) {
		pid_t c = fork();
		if (c < 0) {
			err = errno;
			break;
		}
		if (c == 0) {
			close(p[1]);
			char b;
			for (;;)
				read(p[0], &b, 1); /* never written: blocks until killed */
		}
		kids[n++] = c;
	}
	if (err)
		say("fork failed: %s\n", errname(err));
	else
		say("fork did not fail in %d forks\n", CAP);
	say("children: %d\n", n);
	for (int i = 0; i < n; i++)
		kill(kids[i], SIGKILL);
	int reaped = 0, killed = 0, st;
	pid_t w;
	while ((w = waitpid(-1, &st, 0)) > 0) {
		reaped++;
		killed += WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
	}
	say("reaped all %d, all killed by SIGKILL %d, then %s\n", reaped == n, killed == n,
	    errname(errno));
	close(p[0]);
	close(p[1]);
	/* The limit counts live processes: forking works again. */
	pid_t c = fork();
	if (c == 0)
		_exit(8);
	if (c < 0) {
		say("fork after reaping: %s\n", errname(errno));
		return 1;
	}
	waitpid(c, &st, 0);
	say("fork after reaping: exited %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return 0;
}
