/* Calls real programs make: splice, tee and vmsplice (a splice that waits
 * for data from a thread), fcntl F_GETPIPE_SZ/F_SETPIPE_SZ/F_NOTIFY,
 * pidfd_open, pidfd_send_signal and waitid(P_PIDFD), and, with every
 * capability dropped, clock_settime, settimeofday and chroot. With "priv",
 * only the chroot calls, with the run's capabilities. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "report.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef F_NOTIFY
#define F_NOTIFY 1026
#define DN_CREATE 4
#define DN_MULTISHOT 0x80000000
#endif

static int feed;

static void sleep_ms(int ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	while (nanosleep(&ts, &ts))
		;
}

static void *late_feed(void *arg)
{
	sleep_ms(30);
	write(feed, "late data", 9);
	return arg;
}

static void drain(int fd, const char *what)
{
	char buf[64] = { 0 };
	long n = read(fd, buf, sizeof buf - 1);
	printf("%s: %ld '%s'\n", what, n, n > 0 ? buf : "");
}

static void splices(void)
{
	int a[2], b[2];
	pipe(a);
	pipe(b);
	int f = open("data", O_RDWR | O_CREAT | O_TRUNC, 0600);
	write(f, "0123456789", 10);
	loff_t off = 2;
	show("splice file -> pipe at offset 2", splice(f, &off, a[1], NULL, 5, 0));
	printf("  offset now %ld\n", (long)off);
	show("tee a -> b", tee(a[0], b[1], 100, 0));
	drain(b[0], "  b holds");
	show("splice a -> b", splice(a[0], NULL, b[1], NULL, 100, 0));
	drain(b[0], "  b holds");
	show("splice empty pipe, NONBLOCK", splice(a[0], NULL, b[1], NULL, 10, SPLICE_F_NONBLOCK));
	show("splice pipe with offset", splice(a[0], &off, b[1], NULL, 10, 0));
	show("splice file -> file", splice(f, NULL, f, NULL, 10, 0));
	show("splice bad fd", splice(99, NULL, b[1], NULL, 10, 0));
	write(a[1], "abc", 3);
	off = 10;
	show("splice pipe -> file at offset 10", splice(a[0], NULL, f, &off, 3, 0));
	char buf[16] = { 0 };
	pread(f, buf, 15, 0);
	printf("  file '%s'\n", buf);

	/* A splice that waits for a thread's write. */
	pthread_t t;
	feed = a[1];
	pthread_create(&t, NULL, late_feed, NULL);
	show("splice waits for data", splice(a[0], NULL, b[1], NULL, 100, 0));
	pthread_join(t, NULL);
	drain(b[0], "  b holds");
	struct iovec iov[2] = { { "vm", 2 }, { "splice", 6 } };
	show("vmsplice to a pipe", vmsplice(a[1], iov, 2, 0));
	drain(a[0], "  a holds");
	close(a[1]);
	show("splice at EOF", splice(a[0], NULL, b[1], NULL, 10, 0));

	/* Pipe sizes, F_NOTIFY. */
	show("F_GETPIPE_SZ", fcntl(b[0], F_GETPIPE_SZ));
	show("F_SETPIPE_SZ 4096", fcntl(b[1], F_SETPIPE_SZ, 4096));
	show("F_GETPIPE_SZ after", fcntl(b[0], F_GETPIPE_SZ));
	show("F_SETPIPE_SZ 1 GiB", fcntl(b[1], F_SETPIPE_SZ, 1 << 30));
	show("F_GETPIPE_SZ of a file", fcntl(f, F_GETPIPE_SZ));
	int dir = open(".", O_RDONLY | O_DIRECTORY);
	show("F_NOTIFY on a directory", fcntl(dir, F_NOTIFY, DN_CREATE | DN_MULTISHOT));
	show("F_NOTIFY on a file", fcntl(f, F_NOTIFY, DN_CREATE));
	show("F_NOTIFY 0 on a file", fcntl(f, F_NOTIFY, 0));
	show("F_NOTIFY off", fcntl(dir, F_NOTIFY, 0));
	close(dir);
	close(f);
	unlink("data");
}

static void pidfds(void)
{
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		pause();
		_exit(1);
	}
	int pfd = syscall(SYS_pidfd_open, child, 0);
	printf("pidfd_open child: %s\n", pfd >= 0 ? "fd" : ename(errno));
	show("  F_GETFD", fcntl(pfd, F_GETFD));
	char buf[8];
	show("  read", read(pfd, buf, sizeof buf));
	struct pollfd p = { pfd, POLLIN, 0 };
	show("  poll while it runs", poll(&p, 1, 0));
	int nb = syscall(SYS_pidfd_open, child, O_NONBLOCK);
	siginfo_t si;
	show("  waitid P_PIDFD nonblocking, still running", waitid(P_PIDFD, nb, &si, WEXITED));
	show("  waitid P_PIDFD WNOHANG", waitid(P_PIDFD, pfd, &si, WEXITED | WNOHANG));
	show("  pidfd_send_signal SIGTERM", syscall(SYS_pidfd_send_signal, pfd, SIGTERM, NULL, 0));
	show("  poll after", poll(&p, 1, 5000));
	printf("  revents has POLLIN %d\n", (p.revents & POLLIN) != 0);
	memset(&si, 0, sizeof si);
	show("  waitid P_PIDFD", waitid(P_PIDFD, pfd, &si, WEXITED));
	printf("  si_code %d si_status %d pid matches %d\n", si.si_code, si.si_status,
	       si.si_pid == child);
	show("  pidfd_send_signal after reaping", syscall(SYS_pidfd_send_signal, pfd, SIGTERM, NULL, 0));
	show("  waitid P_PIDFD again", waitid(P_PIDFD, pfd, &si, WEXITED));
	close(pfd);
	close(nb);

	show("pidfd_open -1", syscall(SYS_pidfd_open, -1, 0));
	show("pidfd_open 0", syscall(SYS_pidfd_open, 0, 0));
	show("pidfd_open bad flags", syscall(SYS_pidfd_open, getpid(), 1));
	show("pidfd_open no such pid", syscall(SYS_pidfd_open, 0x3fffff0, 0));
	int self = syscall(SYS_pidfd_open, getpid(), 0);
	printf("pidfd_open self: %s\n", self >= 0 ? "fd" : ename(errno));
	show("  signal 0 to self", syscall(SYS_pidfd_send_signal, self, 0, NULL, 0));
	sigset_t usr1, pending;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	show("  SIGUSR1 to self", syscall(SYS_pidfd_send_signal, self, SIGUSR1, NULL, 0));
	sigpending(&pending);
	printf("  pending %d\n", sigismember(&pending, SIGUSR1));
	siginfo_t info;
	memset(&info, 0, sizeof info);
	info.si_signo = SIGUSR1;
	info.si_code = SI_QUEUE;
	info.si_value.sival_int = 9;
	show("  queued SIGUSR1 to self", syscall(SYS_pidfd_send_signal, self, SIGUSR1, &info, 0));
	info.si_signo = SIGUSR2;
	show("  info for another signal", syscall(SYS_pidfd_send_signal, self, SIGUSR1, &info, 0));
	show("  flags 3", syscall(SYS_pidfd_send_signal, self, SIGUSR1, NULL, 3));
	show("  flags 8", syscall(SYS_pidfd_send_signal, self, SIGUSR1, NULL, 8));
	sigset_t usr2;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr2, NULL);
	show("  PIDFD_SIGNAL_THREAD", syscall(SYS_pidfd_send_signal, self, SIGUSR2, NULL, 1));
	show("  signal 65", syscall(SYS_pidfd_send_signal, self, 65, NULL, 0));
	show("  bad info pointer", syscall(SYS_pidfd_send_signal, self, SIGUSR1, 8, 0));
	struct timespec zero = { 0, 0 };
	int got = sigtimedwait(&usr1, &info, &zero);
	printf("  took signal %d code %d\n", got, info.si_code);
	got = sigtimedwait(&usr2, &info, &zero);
	printf("  took signal %d code %d pid matches %d\n", got, info.si_code, info.si_pid == getpid());
	show("pidfd_send_signal to a pipe", syscall(SYS_pidfd_send_signal, 0, SIGUSR1, NULL, 0));
	close(self);
}

/* Setting the clock and the root: never allowed without capabilities. */
static void privileged(void)
{
	struct timespec ts = { 1, 0 };
	struct timeval tv = { 1, 0 };
	show("clock_settime REALTIME", clock_settime(CLOCK_REALTIME, &ts));
	show("settimeofday", settimeofday(&tv, NULL));
	show("settimeofday NULL NULL", syscall(SYS_settimeofday, NULL, NULL));
	tv.tv_usec = 1000001;
	show("settimeofday usec past 1e6", settimeofday(&tv, NULL));
	show("settimeofday bad pointer", syscall(SYS_settimeofday, 8, NULL));
	mkdir("jail", 0700);
	close(open("jail/file", O_CREAT | O_WRONLY, 0600));
	show("chroot jail", chroot("jail"));
	show("chroot /", chroot("/"));
	show("chroot missing", chroot("missing"));
	show("chroot a file", chroot("jail/file"));
	unlink("jail/file");
	rmdir("jail");
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "priv") == 0) {
		show("chroot /", chroot("/"));
		show("chroot . (not the root)", chroot("."));
		return 0;
	}
	splices();
	pidfds();
	struct { uint32_t version; int pid; } hdr = { 0x20080522, 0 };
	struct { uint32_t eff, prm, inh; } data[2] = { { 0 } };
	long r = syscall(SYS_capset, &hdr, data);
	show("drop capabilities", r);
	if (r == 0)
		privileged();
	return 0;
}
