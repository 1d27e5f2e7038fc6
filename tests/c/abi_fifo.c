/* FIFOs in the working directory: mkfifo and mknod (devices EPERM for an
 * unprivileged process: capabilities are dropped first), opens that wait for
 * the other end (in another thread, in another process, interrupted by a
 * signal), O_NONBLOCK opens (ENXIO for a writer with no reader), O_RDWR,
 * data and EOF. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "report.h"

static void sleep_ms(int ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	while (nanosleep(&ts, &ts))
		;
}

static void kind(const char *path)
{
	struct stat st;
	if (lstat(path, &st)) {
		printf("%s: -1 %s\n", path, ename(errno));
		return;
	}
	const char *k = S_ISFIFO(st.st_mode) ? "fifo" : S_ISREG(st.st_mode) ? "file"
		: S_ISSOCK(st.st_mode) ? "socket" : S_ISCHR(st.st_mode) ? "chardev" : "other";
	printf("%s: %s mode %o rdev %u:%u\n", path, k, st.st_mode & 07777,
	       major(st.st_rdev), minor(st.st_rdev));
}

static void *late_writer(void *arg)
{
	sleep_ms(30);
	int fd = open("f", O_WRONLY);
	write(fd, "from a thread", 13);
	close(fd);
	return arg;
}

static void *blocked_reader(void *arg)
{
	int fd = open("f", O_RDONLY);
	char buf[32] = { 0 };
	long n = read(fd, buf, sizeof buf - 1);
	printf("thread read %ld '%s'\n", n, buf);
	n = read(fd, buf, sizeof buf);
	printf("thread read at EOF %ld\n", n);
	close(fd);
	return arg;
}

static void on_alarm(int sig)
{
	(void)sig;
}

int main(void)
{
	struct { uint32_t version; int pid; } hdr = { 0x20080522, 0 };
	struct { uint32_t eff, prm, inh; } data[2] = { { 0 } };
	show("drop capabilities", syscall(SYS_capset, &hdr, data));
	umask(022);

	show("mkfifo", mkfifo("f", 0666));
	kind("f");
	show("mkfifo again", mkfifo("f", 0600));
	show("mknod chardev", mknod("c", S_IFCHR | 0600, makedev(1, 3)));
	show("mknod blockdev", mknod("b", S_IFBLK | 0600, makedev(8, 0)));
	show("mknod dir", mknod("d", S_IFDIR | 0700, 0));
	show("mknod bad type", mknod("x", 0170000 | 0600, 0));
	show("mknod chardev over the fifo", mknod("f", S_IFCHR | 0600, makedev(1, 3)));
	show("mknod regular", mknod("r", S_IFREG | 0640, 0));
	kind("r");
	show("mknod type 0", mknod("z", 0644, 0));
	kind("z");
	show("mknod socket", mknod("s", S_IFSOCK | 0600, 0));
	kind("s");
	show("mknod whiteout", mknod("w", S_IFCHR | 0600, 0));
	kind("w");
	show("mknodat fifo", mknodat(AT_FDCWD, "g", S_IFIFO | 0600, 0));
	kind("g");
	show("mknod in a missing directory", mknod("nodir/f", S_IFIFO | 0600, 0));
	kind("c");

	/* O_NONBLOCK: a reader opens at once; a writer needs a reader. */
	show("open writer nonblocking, no reader", open("f", O_WRONLY | O_NONBLOCK));
	int r = open("f", O_RDONLY | O_NONBLOCK);
	printf("open reader nonblocking: %s\n", r >= 0 ? "fd" : ename(errno));
	char buf[64];
	show("read, no writer yet", read(r, buf, sizeof buf));
	int w = open("f", O_WRONLY | O_NONBLOCK);
	printf("open writer nonblocking, with a reader: %s\n", w >= 0 ? "fd" : ename(errno));
	show("write", write(w, "abc", 3));
	show("read", read(r, buf, sizeof buf));
	show("read, empty, writer open", read(r, buf, sizeof buf));
	close(w);
	show("read, writer gone", read(r, buf, sizeof buf));
	close(r);
	int rw = open("f", O_RDWR);
	printf("open O_RDWR: %s\n", rw >= 0 ? "fd" : ename(errno));
	show("write to itself", write(rw, "xy", 2));
	show("read from itself", read(rw, buf, sizeof buf));
	close(rw);

	/* A blocking reader waits for a writer in another thread. */
	pthread_t t;
	pthread_create(&t, NULL, late_writer, NULL);
	r = open("f", O_RDONLY);
	memset(buf, 0, sizeof buf);
	long n = read(r, buf, sizeof buf - 1);
	printf("main read %ld '%s'\n", n, buf);
	pthread_join(t, NULL);
	show("read at EOF", read(r, buf, sizeof buf));
	close(r);

	/* A thread blocks in open for reading; the main thread's writer wakes it. */
	pthread_create(&t, NULL, blocked_reader, NULL);
	sleep_ms(30);
	w = open("f", O_WRONLY);
	write(w, "to a thread", 11);
	sleep_ms(30);
	close(w);
	pthread_join(t, NULL);

	/* Across processes: the child's writer waits for the parent's reader. */
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		int fd = open("f", O_WRONLY);
		write(fd, "from the child", 14);
		_exit(fd >= 0 ? 0 : 1);
	}
	sleep_ms(30);
	r = open("f", O_RDONLY);
	memset(buf, 0, sizeof buf);
	n = 0;
	for (long k; (k = read(r, buf + n, sizeof buf - 1 - n)) > 0;)
		n += k;
	printf("parent read %ld '%s' then EOF\n", n, buf);
	int st;
	waitpid(child, &st, 0);
	printf("child exited %d\n", WEXITSTATUS(st));
	close(r);

	/* A signal ends a blocking open (no SA_RESTART): EINTR. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 0 }, { 0, 30000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	show("open reader, interrupted", open("f", O_RDONLY));
	setitimer(ITIMER_REAL, &it, NULL);
	show("open writer, interrupted", open("f", O_WRONLY));
	/* Nothing is left counted: a nonblocking writer still finds no reader. */
	show("open writer nonblocking again", open("f", O_WRONLY | O_NONBLOCK));

	const char *names[] = { "f", "g", "r", "z", "s", "w" };
	for (unsigned i = 0; i < sizeof names / sizeof *names; i++)
		unlink(names[i]);
	return 0;
}
