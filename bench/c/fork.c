/* Times fork + _exit in the child + waitpid in the parent, COUNT times
 * (default 20), after touching MB MiB of heap (default 0), and prints the
 * median per iteration in ms to stderr: "fork 0.145 ms". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 20;
	long mb = argc > 2 ? atol(argv[2]) : 0;
	if (n < 1 || n > 10000)
		return 2;
	if (mb > 0) {
		char *p = malloc(mb << 20);
		if (!p)
			return 3;
		memset(p, 1, mb << 20); /* every page resident, and dirty */
	}
	double *t = calloc(n, sizeof *t);
	for (int i = 0; i < n; i++) {
		double t0 = now();
		pid_t c = fork();
		if (c == 0)
			_exit(0);
		int st;
		if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st)) {
			perror("fork/waitpid");
			return 1;
		}
		t[i] = now() - t0;
	}
	qsort(t, n, sizeof *t, cmp);
	fprintf(stderr, "fork %.3f ms (min %.3f, max %.3f, %d runs, %ld MiB touched)\n", t[n / 2], t[0],
		t[n - 1], n, mb);
	return 0;
}
