/* A blocking read on an empty pipe is interrupted by a signal: EINTR with
 * a plain handler; with SA_RESTART the read starts again after the handler
 * and returns what a later tick's handler writes. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include "report.h"

static int p[2], ticks, written;

static void tick(int sig) {
	/* From the third tick on, until the reader has it (it may start late). */
	if (++ticks >= 3 && !written)
		written = write(p[1], "x", 1) == 1;
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

int main(void) {
	char c = 0;
	pipe(p);
	arm(0);
	/* Count at once: under load, the next tick may come before disarm(). */
	long r = read(p[0], &c, 1);
	int seen = ticks;
	disarm();
	show("read without SA_RESTART", r);
	/* At least one: under load more may come before the read starts. */
	printf("ticks before EINTR at least 1: %d\n", seen >= 1);
	/* A late third tick of the first round may have written: start empty. */
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	while (read(p[0], &c, 1) == 1)
		;
	fcntl(p[0], F_SETFL, 0);
	ticks = written = 0;
	arm(1);
	show("read with SA_RESTART", read(p[0], &c, 1));
	disarm();
	/* The third tick writes; under load a fourth may come before the read ends. */
	printf("got '%c' after the third tick: %d\n", c, ticks >= 3);
	return 0;
}
