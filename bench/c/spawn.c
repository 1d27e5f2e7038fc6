/* Times posix_spawn of PATH with ARGS + waitpid, COUNT times, and prints the
 * median per iteration in ms to stderr: "spawn 0.812 ms". With no arguments
 * it exits at once: `spawn 20 ./spawn` times the spawn of a static program
 * (itself). The spawned program must exit with 0. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

int main(int argc, char **argv)
{
	if (argc < 3)
		return 0;
	int n = atoi(argv[1]);
	if (n < 1 || n > 10000)
		return 2;
	double *t = calloc(n, sizeof *t);
	for (int i = 0; i < n; i++) {
		double t0 = now();
		pid_t c;
		int r = posix_spawn(&c, argv[2], NULL, NULL, argv + 2, environ), st;
		if (r) {
			fprintf(stderr, "posix_spawn %s: %s\n", argv[2], strerror(r));
			return 1;
		}
		if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "%s: status %#x\n", argv[2], st);
			return 1;
		}
		t[i] = now() - t0;
	}
	qsort(t, n, sizeof *t, cmp);
	fprintf(stderr, "spawn %.3f ms (min %.3f, max %.3f, %d runs)\n", t[n / 2], t[0], t[n - 1], n);
	return 0;
}
