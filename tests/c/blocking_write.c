/* A write to a full pipe waits for room, and a signal interrupts the wait:
 * EINTR with a plain handler; with SA_RESTART the write goes on after the
 * handler, and completes once a later tick's handler drains the pipe. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include "report.h"

static int p[2], ticks;
static char buf[65536];

static void tick(int sig) {
	/* Every tick from the third on makes room: under load the write may
	 * start blocking only after the third. */
	if (++ticks >= 3) {
		/* Make room: read what fills the pipe. */
		char drain[4096];
		for (int i = 0; i < 16; i++)
			read(p[0], drain, sizeof drain);
	}
}

static void arm(int restart) {
	struct sigaction sa = { .sa_handler = tick, .sa_flags = restart ? SA_RESTART : 0 };
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 20000 }, { 0, 20000 } };
	setitimer(ITIMER_REAL, &it, NULL);
}

static void disarm(void) {
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
}

/* Fills the pipe without blocking, then leaves it blocking. */
static void fill(void) {
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	while (write(p[1], buf, sizeof buf) > 0 || write(p[1], buf, 1) > 0)
		;
	fcntl(p[1], F_SETFL, 0);
}

int main(void) {
	pipe(p);
	fcntl(p[0], F_SETFL, O_NONBLOCK); /* a drain never blocks in the handler */
	fill();
	arm(0);
	long r = write(p[1], "x", 1);
	int seen = ticks;
	disarm();
	show("write to a full pipe without SA_RESTART", r);
	/* At least one: under load more may come before the write starts. */
	printf("ticks before EINTR at least 1: %d\n", seen >= 1);
	ticks = 0;
	fill(); /* a late third tick of the first round may have made room */
	arm(1);
	show("write to a full pipe with SA_RESTART", write(p[1], "y", 1));
	disarm();
	/* The third tick makes room; under load a fourth may come before the write ends. */
	printf("written after the third tick: %d\n", ticks >= 3);
	return 0;
}
