/* execve: of itself with new argv and envp (from a child and from the
 * first process, which keeps its pid), failures the caller survives
 * (ENOENT, EACCES for a directory and for a file without x, ENOEXEC), a
 * #! script, and FD_CLOEXEC (O_CLOEXEC, F_SETFD, pipe2) closing fds in the
 * new image while the others stay open. Prints relations, never raw pids. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "proc.h"

extern char **environ;

/* The new image: its argv, environ, and fds named "name=N" in argv. */
static int image(int argc, char **argv)
{
	say("image %s: argc %d\n", argv[1], argc);
	for (int i = 2; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!strncmp(argv[i], "pid=", 4)) {
			say("  pid kept %d\n", atoi(argv[i] + 4) == getpid());
		} else if (!strncmp(argv[i], "ppid=", 5)) {
			say("  ppid kept %d\n", atoi(argv[i] + 5) == getppid());
		} else if (eq && eq != argv[i] && eq[1] >= '0' && eq[1] <= '9') {
			int fd = atoi(eq + 1);
			errno = 0;
			int f = fcntl(fd, F_GETFD);
			say("  fd %.*s: F_GETFD %d %s\n", (int)(eq - argv[i]), argv[i], f,
			    f < 0 ? errname(errno) : "open");
		} else {
			say("  argv[%d] '%s'\n", i, argv[i]);
		}
	}
	int n = 0;
	for (char **e = environ; *e; e++)
		say("  env[%d] '%s'\n", n++, *e);
	const char *v = getenv("PROC_EXEC_VAR");
	say("  PROC_EXEC_VAR %s\n", v ? v : "(unset)");
	return !strcmp(argv[1], "final") ? 42 : 43;
}

static void try_exec(const char *what, const char *path, char **argv, char **envp)
{
	errno = 0;
	int r = execve(path, argv, envp);
	say("execve %s: %d %s\n", what, r, errname(errno));
}

int main(int argc, char **argv)
{
	if (argc > 1)
		return image(argc, argv);

	char *envp[] = { "PROC_EXEC_VAR=hello world", "SECOND=2", NULL };
	char *args[] = { argv[0], "x", NULL };

	/* Failures: the caller goes on. */
	char dir[] = "/tmp/proc_exec.XXXXXX";
	if (!mkdtemp(dir))
		return 90;
	char missing[80], garbage[80], plain[80], script[80];
	snprintf(missing, sizeof missing, "%s/missing", dir);
	snprintf(garbage, sizeof garbage, "%s/garbage", dir);
	snprintf(plain, sizeof plain, "%s/plain", dir);
	snprintf(script, sizeof script, "%s/script", dir);
	int fd = open(garbage, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	write(fd, "\x01\x02garbage, neither ELF nor #!\n", 30);
	close(fd);
	fd = open(plain, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	write(fd, "#!/bin/sh\necho no\n", 18);
	close(fd);
	fd = open(script, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	const char *text = "#!/bin/sh\necho \"script: ${0##*/} $1 PROC_EXEC_VAR=$PROC_EXEC_VAR\"\nexit 4\n";
	write(fd, text, strlen(text));
	close(fd);
	try_exec("missing file", missing, args, envp);
	try_exec("directory", dir, args, envp);
	try_exec("file without x", plain, args, envp);
	try_exec("garbage", garbage, args, envp);
	say("still running after failed execs\n");

	/* A #! script, from a child. */
	pid_t c = fork();
	if (c < 0) {
		say("fork: %s\n", errname(errno));
		return 91;
	}
	if (c == 0) {
		char *sargs[] = { script, "arg1", NULL };
		execve(script, sargs, envp);
		_exit(127);
	}
	int st;
	waitpid(c, &st, 0);
	status("script child", st);
	unlink(missing);
	unlink(garbage);
	unlink(plain);
	unlink(script);
	rmdir(dir);

	/* FD_CLOEXEC, from a child: fds named in argv are checked by the image. */
	int keep = open("/dev/null", O_RDONLY);
	int gone = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int setfd = open("/dev/null", O_RDONLY);
	fcntl(setfd, F_SETFD, FD_CLOEXEC);
	int cleared = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fcntl(cleared, F_SETFD, 0);
	int dupped = dup(gone); /* dup does not copy FD_CLOEXEC */
	int p[2];
	pipe2(p, O_CLOEXEC);
	char a[7][32];
	snprintf(a[0], 32, "keep=%d", keep);
	snprintf(a[1], 32, "ocloexec=%d", gone);
	snprintf(a[2], 32, "setfd=%d", setfd);
	snprintf(a[3], 32, "cleared=%d", cleared);
	snprintf(a[4], 32, "dup=%d", dupped);
	snprintf(a[5], 32, "pipe2=%d", p[0]);
	snprintf(a[6], 32, "ppid=%d", getpid());
	say("before exec: keep %d ocloexec %d\n", fcntl(keep, F_GETFD), fcntl(gone, F_GETFD));
	c = fork();
	if (c == 0) {
		char *cargs[] = { argv[0], "child", "two words", "", a[0], a[1], a[2], a[3], a[4], a[5], a[6], NULL };
		execve(argv[0], cargs, envp);
		say("child execve failed: %s\n", errname(errno));
		_exit(127);
	}
	waitpid(c, &st, 0);
	status("exec child", st);

	/* The first process replaces itself: same pid, same stdout. */
	char pid[32];
	snprintf(pid, sizeof pid, "pid=%d", getpid());
	char *fargs[] = { argv[0], "final", pid, a[0], a[1], NULL };
	char *fenv[] = { "PROC_EXEC_VAR=final", NULL };
	execve(argv[0], fargs, fenv);
	say("final execve failed: %s\n", errname(errno));
	return 92;
}
