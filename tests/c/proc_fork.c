/* Processes: fork, pipes between parent and child, waitpid statuses (exit
 * and SIGKILL), memory isolated after fork, an inherited fd sharing its
 * offset, getpid/getppid, ECHILD, WNOHANG, and a zombie that stays until
 * reaped (waitid WNOWAIT). Prints relations, never raw pids. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "proc.h"

static int counter = 1;

int main(void)
{
	pid_t self = getpid();
	int st;

	/* No children yet. */
	errno = 0;
	pid_t r = waitpid(-1, &st, 0);
	say("waitpid without children: %s %s\n", res(r), errname(errno));
	errno = 0;
	r = waitpid(-1, &st, WNOHANG);
	say("waitpid WNOHANG without children: %s %s\n", res(r), errname(errno));

	/* A child writes to a pipe and exits 7. */
	int p[2];
	if (pipe(p))
		return 90;
	pid_t c = fork();
	if (c < 0) {
		say("fork: %s\n", errname(errno));
		return 91;
	}
	if (c == 0) {
		close(p[0]);
		char msg[128];
		int n = snprintf(msg, sizeof msg, "child: fork returned 0, ppid==parent %d, pid!=parent %d",
				 getppid() == self, getpid() != self);
		write(p[1], msg, n);
		_exit(7);
	}
	close(p[1]);
	char buf[256];
	size_t got = 0;
	ssize_t n;
	while ((n = read(p[0], buf + got, sizeof buf - 1 - got)) > 0)
		got += n;
	buf[got] = 0;
	close(p[0]);
	say("parent read: '%s'\n", buf);
	say("parent pid unchanged %d, child pid differs %d\n", getpid() == self, c != self);
	pid_t w = waitpid(c, &st, 0);
	say("waitpid returned the child: %d\n", w == c);
	status("child", st);

	/* Memory is copied, not shared. */
	char *heap = malloc(64);
	strcpy(heap, "parent heap");
	c = fork();
	if (c == 0) {
		counter = 2;
		strcpy(heap, "child heap");
		say("child sees: counter %d heap '%s'\n", counter, heap);
		exit(0);
	}
	waitpid(c, &st, 0);
	status("memory child", st);
	say("parent sees: counter %d heap '%s'\n", counter, heap);
	free(heap);

	/* An fd inherited across fork shares its offset. */
	char dir[] = "/tmp/proc_fork.XXXXXX";
	if (!mkdtemp(dir))
		return 92;
	char path[64];
	snprintf(path, sizeof path, "%s/shared", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return 93;
	c = fork();
	if (c == 0) {
		write(fd, "child\n", 6);
		_exit(0);
	}
	waitpid(c, &st, 0);
	write(fd, "parent\n", 7);
	say("offset after both writes: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
	lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = 0;
	say("file holds: '%s'\n", buf);
	close(fd);
	unlink(path);
	rmdir(dir);

	/* WNOHANG: 0 while the child waits on a pipe; then its status. */
	if (pipe(p))
		return 94;
	c = fork();
	if (c == 0) {
		close(p[1]);
		char b;
		ssize_t k = read(p[0], &b, 1);
		_exit(k == 1 && b == 'g' ? 5 : 6);
	}
	close(p[0]);
	r = waitpid(c, &st, WNOHANG);
	say("WNOHANG while the child runs: %s\n", res(r));
	write(p[1], "g", 1);
	close(p[1]);
	r = waitpid(c, &st, 0);
	say("then waitpid returned the child: %d\n", r == c);
	status("released child", st);

	/* SIGKILL from the parent. */
	c = fork();
	if (c == 0) {
		for (;;)
			pause();
	}
	say("kill SIGKILL: %d\n", kill(c, SIGKILL));
	waitpid(c, &st, 0);
	status("killed child", st);
	say("WIFSIGNALED %d WTERMSIG %d WIFEXITED %d\n", WIFSIGNALED(st) != 0,
	    WIFSIGNALED(st) ? WTERMSIG(st) : -1, WIFEXITED(st) != 0);

	/* A zombie stays until reaped. */
	c = fork();
	if (c == 0)
		_exit(3);
	siginfo_t si;
	memset(&si, 0, sizeof si);
	int k = waitid(P_PID, c, &si, WEXITED | WNOWAIT);
	say("waitid WNOWAIT: %d pid matches %d code CLD_EXITED %d status %d\n", k, si.si_pid == c,
	    si.si_code == CLD_EXITED, si.si_status);
	say("zombie still there (kill 0): %d\n", kill(c, 0));
	r = waitpid(c, &st, WNOHANG);
	say("WNOHANG reaps it: %d\n", r == c);
	status("zombie", st);
	errno = 0;
	r = waitpid(c, &st, 0);
	say("waitpid again: %s %s\n", res(r), errname(errno));
	errno = 0;
	r = kill(c, 0);
	say("kill 0 after reaping: %d %s\n", (int)r, errname(errno));

	/* wait() picks any child. */
	c = fork();
	if (c == 0)
		_exit(9);
	r = wait(&st);
	say("wait returned the child: %d\n", r == c);
	status("wait", st);
	errno = 0;
	r = wait(&st);
	say("wait without children: %s %s\n", res(r), errname(errno));

	/* The clocks go on in the child (its TSC, its vDSO's page): never back,
	 * and not a leap ahead, five times (recycled machines among them). */
	int clocks_ok = 1;
	for (int i = 0; i < 5; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		c = fork();
		if (c == 0) {
			clock_gettime(CLOCK_MONOTONIC, &b);
			long long d = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
			_exit(d >= 0 && d < 10000000000LL ? 0 : 1);
		}
		waitpid(c, &st, 0);
		clocks_ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	say("the child's clock follows its parent's: %d\n", clocks_ok);

	/* The child's FPU registers are its parent's at the call: fork as a
	 * bare syscall, so that no libc code runs between (and uses xmm8). */
	double mine = 2.5, seen = 0;
	long r2;
	__asm__ volatile("movsd %1, %%xmm8\n\tsyscall"
			 : "=a"(r2)
			 : "m"(mine), "a"(57L)
			 : "rcx", "r11", "xmm8", "memory");
	if (r2 == 0) {
		__asm__ volatile("movsd %%xmm8, %0" : "=m"(seen) : : "xmm8");
		_exit(seen == 2.5 ? 0 : 1);
	}
	waitpid((pid_t)r2, &st, 0);
	say("the child's xmm8 is its parent's: %d\n", WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return 0;
}
