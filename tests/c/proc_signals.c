/* Signals between processes: SIGTERM's default action in a child, kill of
 * a process group (setpgid, getpgid), a SIGCHLD handler (SA_SIGINFO,
 * SA_RESTART across a blocking read), SA_NOCLDWAIT and SIG_IGN reaping
 * children themselves, setsid/getsid/getpgrp. Prints relations, never raw
 * pids. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "proc.h"

static volatile sig_atomic_t chld_count, last_code, last_status, last_pid;

static void on_chld(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	chld_count++;
	last_code = si->si_code;
	last_status = si->si_status;
	last_pid = si->si_pid;
}

/* Waits until the child says it is ready (one byte on the pipe). */
static void ready(int fd)
{
	char b;
	if (read(fd, &b, 1) != 1)
		say("ready: no byte\n");
}

int main(void)
{
	int st;
	pid_t c, w;

	/* SIGTERM with its default action. */
	c = fork();
	if (c < 0) {
		say("fork: %s\n", errname(errno));
		return 90;
	}
	if (c == 0) {
		for (;;)
			pause();
	}
	say("kill SIGTERM: %d\n", kill(c, SIGTERM));
	waitpid(c, &st, 0);
	status("terminated child", st);
	say("WTERMSIG==15 %d\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);

	/* A process group of two children, signalled together. */
	pid_t pgrp = getpgrp();
	say("getpgrp==getpgid(0) %d\n", pgrp == getpgid(0));
	int p[2];
	if (pipe(p))
		return 91;
	pid_t c1 = fork();
	if (c1 == 0) {
		setpgid(0, 0);
		write(p[1], "1", 1);
		for (;;)
			pause();
	}
	setpgid(c1, c1); /* both sides, as shells do: no race */
	pid_t c2 = fork();
	if (c2 == 0) {
		setpgid(0, c1);
		write(p[1], "2", 1);
		for (;;)
			pause();
	}
	setpgid(c2, c1);
	ready(p[0]);
	ready(p[0]);
	say("c1 leads its group %d, c2 in c1's group %d, ours unchanged %d\n", getpgid(c1) == c1,
	    getpgid(c2) == c1, getpgrp() == pgrp);
	errno = 0;
	int r = setpgid(c1, getpgrp() + 1000000);
	say("setpgid to a missing group: %d %s\n", r, errname(errno));
	say("kill -pgid SIGTERM: %d\n", kill(-c1, SIGTERM));
	waitpid(c1, &st, 0);
	status("group child 1", st);
	waitpid(c2, &st, 0);
	status("group child 2", st);
	errno = 0;
	r = kill(-c1, SIGTERM);
	say("kill -pgid of an empty group: %d %s\n", r, errname(errno));

	/* A SIGCHLD handler, once per child: SIGCHLD blocked except in sigsuspend. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_chld;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &old);
	int matched = 0;
	for (int i = 1; i <= 3; i++) {
		c = fork();
		if (c == 0)
			_exit(i);
		while (chld_count < i)
			sigsuspend(&old);
		matched += last_code == CLD_EXITED && last_status == i && last_pid == c;
		waitpid(c, &st, 0);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	say("SIGCHLD handled %d times, siginfo matched %d\n", (int)chld_count, matched);

	/* SA_RESTART: a read goes on across SIGCHLD. */
	chld_count = 0;
	if (pipe(p))
		return 92;
	c1 = fork();
	if (c1 == 0)
		_exit(0); /* its SIGCHLD arrives while we read */
	c2 = fork();
	if (c2 == 0) {
		sleep_ms(300);
		write(p[1], "x", 1);
		_exit(0);
	}
	char b = 0;
	errno = 0;
	ssize_t n = read(p[0], &b, 1);
	say("read across SIGCHLD: %d '%c' %s\n", (int)n, n == 1 ? b : '-', n < 0 ? errname(errno) : "ok");
	waitpid(c1, &st, 0);
	waitpid(c2, &st, 0);
	say("SIGCHLD seen for both: %d\n", chld_count == 2);
	close(p[0]);
	close(p[1]);

	/* SA_NOCLDWAIT: children are not left as zombies; wait ends in ECHILD. */
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDWAIT;
	sigaction(SIGCHLD, &sa, NULL);
	for (int i = 0; i < 2; i++) {
		if (fork() == 0)
			_exit(1);
	}
	errno = 0;
	w = wait(&st);
	say("wait with SA_NOCLDWAIT: %s %s\n", res(w), errname(errno));

	/* SIGCHLD ignored: the same, and the child's pid is gone. */
	signal(SIGCHLD, SIG_IGN);
	c = fork();
	if (c == 0)
		_exit(1);
	errno = 0;
	w = wait(&st);
	say("wait with SIGCHLD ignored: %s %s\n", res(w), errname(errno));
	errno = 0;
	r = kill(c, 0);
	say("the child was reaped: %d %s\n", r, errname(errno));
	signal(SIGCHLD, SIG_DFL);

	/* setsid in a child: a new session and group it leads. */
	int go[2];
	if (pipe(p) || pipe(go))
		return 93;
	c = fork();
	if (c == 0) {
		int same_group = getpgrp() == pgrp;
		pid_t s = setsid();
		say("child: in parent's group before %d, setsid==getpid %d, getsid(0)==getpid %d, "
		    "getpgrp==getpid %d, getpgid(0)==getpid %d\n",
		    same_group, s == getpid(), getsid(0) == getpid(), getpgrp() == getpid(),
		    getpgid(0) == getpid());
		errno = 0;
		int again = setsid();
		say("child: setsid again: %d %s\n", again, errname(errno));
		write(p[1], "s", 1);
		char g;
		read(go[0], &g, 1);
		_exit(0);
	}
	ready(p[0]);
	say("parent: getsid(child)==child %d, getpgid(child)==child %d, own session kept %d\n",
	    getsid(c) == c, getpgid(c) == c, getsid(0) == getsid(getpid()) && getsid(0) != c);
	errno = 0;
	r = setpgid(c, c);
	say("parent: setpgid of a child in another session: %d %s\n", r, errname(errno));
	write(go[1], "g", 1);
	waitpid(c, &st, 0);
	status("session child", st);
	errno = 0;
	r = getsid(0x7ffffff0);
	say("getsid of a missing pid: %s %s\n", res(r), errname(errno));
	return 0;
}
