/* fork with a breakpoint set: gdb follows the parent, so the child must run
 * the function the breakpoint is in without stopping (and without dying of
 * SIGTRAP); the parent stops there after the child has ended, and after a
 * vfork child's memory was copied back over its own. */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int __attribute__((noinline)) work(int x)
{
	return x * 2 + 1;
}

int main(void)
{
	pid_t c = fork();
	if (c == 0) {
		printf("child: %d\n", work(20));
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(c, &st, 0);
	printf("child status %d signaled %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
	       WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	/* A vfork child's memory is copied back: the breakpoint must stay. */
	pid_t v = vfork();
	if (v == 0)
		_exit(5);
	waitpid(v, &st, 0);
	printf("vfork child status %d\n", WEXITSTATUS(st));
	printf("parent: %d\n", work(1));
	return 0;
}
