/* Shared by the process test programs (proc_*.c): output that compares
 * with the native run whatever the pids are, and never left in a stdio
 * buffer for fork to copy. */
#include <sys/wait.h>
#include <time.h>
#include "report.h"

static const char *errname(int e)
{
	return e == ENOEXEC ? "ENOEXEC" : e == ECHILD ? "ECHILD" : ename(e);
}

/* Flushed at once: nothing is left in a stdio buffer for fork to copy. */
#define say(...) (printf(__VA_ARGS__), fflush(stdout))

/* A pid-returning call's result: "pid" for any pid (never a raw number),
 * else the value. */
static __attribute__((unused)) const char *res(long r)
{
	static char b[4][24];
	static int i;
	if (r > 0)
		return "pid";
	i = (i + 1) % 4;
	snprintf(b[i], sizeof b[i], "%ld", r);
	return b[i];
}

static __attribute__((unused)) void status(const char *what, int st)
{
	if (WIFEXITED(st))
		say("%s: exited %d\n", what, WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		say("%s: signaled %d\n", what, WTERMSIG(st));
	else
		say("%s: other 0x%x\n", what, st);
}

static __attribute__((unused)) void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}
