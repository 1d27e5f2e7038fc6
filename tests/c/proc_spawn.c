/* posix_spawn (glibc and musl use clone(CLONE_VM | CLONE_VFORK)) of itself
 * with file actions and a missing file, vfork + _exit, vfork + execve.
 * Prints relations, never raw pids. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "proc.h"

extern char **environ;

int main(int argc, char **argv)
{
	if (argc > 1) {
		/* A spawned or exec'd image. */
		say("%s: argc %d arg '%s' ppid matches %d\n", argv[1], argc, argc > 2 ? argv[2] : "",
		    argc > 3 && atoi(argv[3]) == getppid());
		return !strcmp(argv[1], "spawned") ? 11 : !strcmp(argv[1], "piped") ? 12 : 4;
	}
	char ppid[32];
	snprintf(ppid, sizeof ppid, "%d", getpid());
	int st;

	/* posix_spawn of itself; output straight to our stdout. */
	pid_t c = -1;
	char *a1[] = { argv[0], "spawned", "one", ppid, NULL };
	int r = posix_spawn(&c, argv[0], NULL, NULL, a1, environ);
	if (r) {
		say("posix_spawn: %s\n", errname(r));
		return 90;
	}
	/* Nothing printed before it is reaped: its output comes first. */
	pid_t w = waitpid(c, &st, 0);
	say("posix_spawn: 0\n");
	say("waitpid returned the spawned pid: %d\n", w == c);
	status("spawned", st);

	/* posix_spawn with file actions: its stdout is a pipe we read. */
	int p[2];
	if (pipe(p))
		return 91;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addclose(&fa, p[0]);
	posix_spawn_file_actions_addclose(&fa, p[1]);
	char *a2[] = { argv[0], "piped", "two", ppid, NULL };
	r = posix_spawn(&c, argv[0], &fa, NULL, a2, environ);
	posix_spawn_file_actions_destroy(&fa);
	say("posix_spawn with file actions: %s\n", r ? errname(r) : "0");
	close(p[1]);
	char buf[256];
	size_t got = 0;
	ssize_t n;
	while ((n = read(p[0], buf + got, sizeof buf - 1 - got)) > 0)
		got += n;
	buf[got] = 0;
	close(p[0]);
	say("read from its stdout: '%s'\n", buf);
	waitpid(c, &st, 0);
	status("piped", st);

	/* posix_spawn reports a failed exec. */
	char *a3[] = { "/nonexistent/prog", NULL };
	c = -1;
	r = posix_spawn(&c, a3[0], NULL, NULL, a3, environ);
	say("posix_spawn missing: %s\n", r ? errname(r) : "0");
	if (r == 0) {
		/* Some libcs report it as exit 127 instead. */
		waitpid(c, &st, 0);
		status("missing", st);
	}

	/* posix_spawnp finds a program in PATH. */
	char *a4[] = { "true", NULL };
	char *env4[] = { "PATH=/usr/bin:/bin", NULL };
	r = posix_spawnp(&c, "true", NULL, NULL, a4, env4);
	say("posix_spawnp true: %s\n", r ? errname(r) : "0");
	if (r == 0) {
		waitpid(c, &st, 0);
		status("true", st);
	}

	/* vfork + _exit: the parent resumes once the child is gone. */
	c = vfork();
	if (c < 0) {
		say("vfork: %s\n", errname(errno));
		return 92;
	}
	if (c == 0)
		_exit(3);
	w = waitpid(c, &st, 0);
	say("waitpid returned the vforked pid: %d\n", w == c);
	status("vfork _exit", st);

	/* vfork + execve. */
	char *a5[] = { argv[0], "vforked", "three", ppid, NULL };
	c = vfork();
	if (c == 0) {
		execve(argv[0], a5, environ);
		_exit(127);
	}
	waitpid(c, &st, 0);
	status("vfork execve", st);

	/* vfork + a failed execve: the child still _exits. */
	c = vfork();
	if (c == 0) {
		execve("/nonexistent/prog", a3, environ);
		_exit(errno == ENOENT ? 5 : 6);
	}
	waitpid(c, &st, 0);
	status("vfork failed execve", st);
	errno = 0;
	r = waitpid(-1, &st, 0);
	say("no children left: %s %s\n", res(r), errname(errno));
	return 0;
}
