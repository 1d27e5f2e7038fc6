/* Orphans and fork from a multithreaded process. A child forks a grandchild
 * and exits: the grandchild is reparented (its getppid changes away from
 * the child's pid) and reports through a pipe. Then fork while a second
 * thread runs: the child has that one thread only, pthread_atfork handlers
 * run, and the child can use malloc and printf, start a thread and exit 0.
 * Prints relations, never raw pids. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "proc.h"

static void put(int fd, const char *s)
{
	write(fd, s, strlen(s));
}

static volatile unsigned long spins;
static volatile int stop;

/* Busy: allocates and frees (malloc's locks are often held at fork). */
static void *spinner(void *arg)
{
	(void)arg;
	while (!stop) {
		free(malloc(1 + spins % 4096));
		spins++;
	}
	return NULL;
}

static void *child_thread(void *arg)
{
	return (char *)arg + 1;
}

static char trail[64];
static void at_prepare(void) { strcat(trail, "prepare "); }
static void at_parent(void) { strcat(trail, "parent "); }
static void at_child(void) { strcat(trail, "child "); }

int main(void)
{
	int st;

	/* The grandchild writes its findings to the pipe; EOF once it is gone. */
	int p[2], q[2];
	if (pipe(p) || pipe(q))
		return 90;
	pid_t c = fork();
	if (c < 0) {
		say("fork: %s\n", errname(errno));
		return 91;
	}
	if (c == 0) {
		close(p[0]);
		pid_t child = getpid();
		pid_t g = fork();
		if (g < 0)
			_exit(92);
		if (g == 0) {
			char msg[160];
			snprintf(msg, sizeof msg, "grandchild: ppid==child %d\n", getppid() == child);
			put(p[1], msg);
			write(q[1], "r", 1); /* the child may exit now */
			/* Wait (5 s at most) for the child to exit. */
			int changed = 0;
			for (int i = 0; i < 5000 && !changed; i++) {
				changed = getppid() != child;
				if (!changed)
					sleep_ms(1);
			}
			snprintf(msg, sizeof msg, "grandchild: ppid changed %d\n", changed);
			put(p[1], msg);
			_exit(0);
		}
		char r;
		read(q[0], &r, 1);
		_exit(6);
	}
	close(p[1]);
	close(q[0]);
	close(q[1]);
	waitpid(c, &st, 0);
	status("child", st);
	char buf[512];
	size_t got = 0;
	ssize_t n;
	while ((n = read(p[0], buf + got, sizeof buf - 1 - got)) > 0)
		got += n;
	buf[got] = 0;
	close(p[0]);
	say("%s", buf);
	errno = 0;
	pid_t w = waitpid(-1, &st, WNOHANG);
	say("the grandchild is not ours: %s %s\n", res(w), errname(errno));

	/* fork while another thread runs. */
	pthread_atfork(at_prepare, at_parent, at_child);
	pthread_t t;
	if (pthread_create(&t, NULL, spinner, NULL))
		return 93;
	while (spins < 1000)
		sleep_ms(1);
	if (pipe(p))
		return 94;
	c = fork();
	if (c == 0) {
		close(p[0]);
		unsigned long before = spins;
		sleep_ms(50);
		int gone = spins == before;
		char *m = malloc(100);
		snprintf(m, 100, "malloc ok");
		pthread_t t2;
		void *ret = NULL;
		int made = pthread_create(&t2, NULL, child_thread, m) == 0 && pthread_join(t2, &ret) == 0;
		char msg[256];
		snprintf(msg, sizeof msg, "forked child: atfork '%s', spinner gone %d, %s, thread %d %d\n",
			 trail, gone, m, made, ret == m + 1);
		put(p[1], msg);
		free(m);
		printf("forked child: printf works\n");
		exit(0);
	}
	close(p[1]);
	got = 0;
	while ((n = read(p[0], buf + got, sizeof buf - 1 - got)) > 0)
		got += n;
	buf[got] = 0;
	close(p[0]);
	waitpid(c, &st, 0);
	say("%s", buf);
	status("forked child", st);
	/* It goes on (5 s at most: a loaded host may not run it at once). */
	unsigned long before = spins;
	for (int i = 0; i < 5000 && spins == before; i++)
		sleep_ms(1);
	say("parent: atfork '%s', spinner still runs %d\n", trail, spins != before);
	stop = 1;
	pthread_join(t, NULL);
	return 0;
}
