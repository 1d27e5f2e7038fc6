/* Identity, uname and friends that the guest kernel answers itself. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/utsname.h>
#include <sys/syscall.h>
#include <signal.h>
int main(void)
{
	struct utsname u;
	uname(&u);
	printf("sysname %s machine %s\n", u.sysname, u.machine);
	printf("pid positive: %d, tid == pid: %d\n", getpid() > 0, (pid_t)syscall(SYS_gettid) == getpid());
	printf("uid match: %d gid match: %d\n", getuid() == geteuid(), getgid() == getegid());
	sigset_t s, old;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigprocmask(SIG_BLOCK, &s, 0);
	sigprocmask(SIG_BLOCK, 0, &old);
	printf("SIGUSR1 blocked: %d\n", sigismember(&old, SIGUSR1));
	printf("bad how: %ld\n", syscall(SYS_rt_sigprocmask, 99, &s, 0, 8));
	printf("bad pointer uname: %ld\n", syscall(SYS_uname, (void *)8));
	return 0;
}
