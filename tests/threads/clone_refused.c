/* fork, vfork and clone without CLONE_VM (a new process) are not
 * provided: each fails with ENOSYS, and hermitux names each once. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(void) {
	for (int i = 0; i < 2; i++) {
		long f = syscall(SYS_fork);
		printf("fork %ld %s\n", f, f < 0 ? strerrorname_np(errno) : "");
		long v = syscall(SYS_vfork);
		printf("vfork %ld %s\n", v, v < 0 ? strerrorname_np(errno) : "");
		long c = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
		printf("clone %ld %s\n", c, c < 0 ? strerrorname_np(errno) : "");
	}
	return 0;
}
