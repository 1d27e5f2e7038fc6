/* timed TIMEOUT CMD ARGS...: runs CMD in a process group of its own and
 * prints, after it ends, one line to stderr:
 *   "timed: wall 12.345 ms maxrss 2048 KiB status 0"
 * (the wall time from fork to wait4, the peak RSS wait4 reports for CMD and
 * the descendants it waited for). Its exit status is CMD's (128 + N for a
 * signal; 124 after TIMEOUT seconds).
 *
 * Nothing outlives it: after TIMEOUT seconds, on SIGTERM or SIGINT, or when
 * its own parent dies (PR_SET_PDEATHSIG), it sends SIGTERM to CMD's group,
 * then SIGKILL 3 s later; and when CMD ends, whatever is left in CMD's
 * group gets SIGKILL. CMD itself gets SIGKILL if this process dies. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int s) { stop = s; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: timed TIMEOUT CMD ARGS...\n");
		return 2;
	}
	pid_t parent = getppid();
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		return 1;
	unsigned timeout = (unsigned)atoi(argv[1]);
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	double t0 = now();
	pid_t child = fork();
	if (child < 0) {
		perror("fork");
		return 1;
	}
	if (child == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		execvp(argv[2], argv + 2);
		perror(argv[2]);
		_exit(127);
	}
	setpgid(child, child);
	if (timeout)
		alarm(timeout);
	int st = 0, phase = 0, timed_out = 0;
	struct rusage ru = { 0 };
	for (;;) {
		pid_t r = wait4(child, &st, 0, &ru);
		if (r == child)
			break;
		if (r < 0 && errno != EINTR) {
			perror("wait4");
			return 1;
		}
		if (!stop)
			continue;
		if (stop == SIGALRM && phase == 0)
			timed_out = 1;
		stop = 0;
		kill(-child, phase == 0 ? SIGTERM : SIGKILL);
		phase++;
		alarm(3);
	}
	double t1 = now();
	kill(-child, SIGKILL); /* what CMD left behind in its group */
	int code = timed_out ? 124 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	fprintf(stderr, "\ntimed: wall %.3f ms maxrss %ld KiB status %d\n", t1 - t0, ru.ru_maxrss,
		code);
	return code;
}
