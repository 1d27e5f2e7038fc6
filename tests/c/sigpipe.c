/* Writing to a pipe nobody reads: EPIPE when SIGPIPE is ignored or
 * handled (the handler runs), death by SIGPIPE (141) by default. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "report.h"

static volatile sig_atomic_t got;
static void on_pipe(int sig) { got = sig; }

int main(int argc, char **argv)
{
	int p[2];
	pipe(p);
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	show("write, SIGPIPE ignored", write(p[1], "x", 1));
	signal(SIGPIPE, on_pipe);
	show("write, SIGPIPE handled", write(p[1], "x", 1));
	printf("handler got %d\n", got);
	fflush(stdout);
	signal(SIGPIPE, SIG_DFL);
	write(p[1], "x", 1);
	printf("not reached\n");
	return 0;
}
