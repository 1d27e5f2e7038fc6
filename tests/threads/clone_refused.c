/* A process clone that shares what separate VMs cannot share (the fd
 * table, memory without CLONE_VFORK) is ENOSYS, and new namespaces are
 * EPERM as for an unprivileged process; hermitux names each once. */
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
		long f = syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, 0, 0, 0);
		printf("files %ld %s\n", f, f < 0 ? strerrorname_np(errno) : "");
		long n = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
		printf("newns %ld %s\n", n, n < 0 ? strerrorname_np(errno) : "");
	}
	return 0;
}
