/* Resource limits from inside the guest, for tests/limits_test.ts: run
 * natively under prlimit(1) and under hermitux with the flag that grants
 * the same limit, the output must match.
 *   nofile   RLIMIT_NOFILE: open/dup/pipe/socket/dup2/F_DUPFD at the limit,
 *            and after setrlimit lowers it
 *   fsize    RLIMIT_FSIZE: short writes, EFBIG and SIGXFSZ, truncate, append,
 *            pipes unaffected; last, SIGXFSZ's default action kills
 *   cpu      RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL at the hard one
 *   nproc    RLIMIT_NPROC: threads until pthread_create fails, then fork
 *   raise    setrlimit within and past RLIMIT_NOFILE's hard limit */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *name(int e)
{
	switch (e) {
	case EMFILE: return "EMFILE";
	case EFBIG: return "EFBIG";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case EPERM: return "EPERM";
	case EAGAIN: return "EAGAIN";
	default: return strerror(e);
	}
}

static void show(const char *what, long r)
{
	if (r < 0)
		printf("%s: -1 %s\n", what, name(errno));
	else
		printf("%s: %ld\n", what, r);
}

static void limit(const char *what, int res)
{
	struct rlimit r;
	getrlimit(res, &r);
	printf("%s %lld %lld\n", what, (long long)r.rlim_cur, (long long)r.rlim_max);
}

static int nofile(void)
{
	limit("nofile", RLIMIT_NOFILE);
	struct rlimit r;
	getrlimit(RLIMIT_NOFILE, &r);
	int n = 0, last = -1, fd;
	while ((fd = open("/dev/null", O_RDONLY)) >= 0) {
		n++;
		last = fd;
	}
	printf("opened %d (last fd %d), then %s\n", n, last, name(errno));
	int p[2];
	show("dup", dup(0));
	show("pipe", pipe(p));
	show("socket", socket(AF_UNIX, SOCK_STREAM, 0));
	show("dup2 to the limit", dup2(0, (int)r.rlim_cur));
	show("dup2 below the limit", dup2(0, (int)r.rlim_cur - 1));
	show("F_DUPFD from the limit", fcntl(0, F_DUPFD, (int)r.rlim_cur));
	close(5);
	show("open after a close", open("/dev/null", O_RDONLY));
	struct rlimit low = { 10, r.rlim_max };
	show("setrlimit soft 10", setrlimit(RLIMIT_NOFILE, &low));
	close(7);
	show("open below the new limit", open("/dev/null", O_RDONLY));
	for (int i = 20; i < 30; i++) close(i);
	show("open past the new limit", open("/dev/null", O_RDONLY));
	show("dup past the new limit", dup(0));
	limit("nofile", RLIMIT_NOFILE);
	return 0;
}

static volatile int xfsz;

static void on_xfsz(int sig)
{
	(void)sig;
	xfsz++;
}

static int fsize(void)
{
	limit("fsize", RLIMIT_FSIZE);
	signal(SIGXFSZ, on_xfsz);
	static char buf[12000];
	memset(buf, 'x', sizeof buf);
	int fd = open("big.dat", O_CREAT | O_TRUNC | O_RDWR, 0644);
	show("write 8000", write(fd, buf, 8000));
	show("write 8000 more", write(fd, buf, 8000));
	show("write at the limit", write(fd, buf, 10));
	printf("SIGXFSZ %d\n", xfsz);
	show("pwrite past the limit", pwrite(fd, buf, 10, 20000));
	show("pwrite across the limit", pwrite(fd, buf, 100, 9950));
	struct iovec iov[2] = { { buf, 10 }, { buf, 10 } };
	show("writev at the limit", writev(fd, iov, 2));
	show("pwritev across the limit", pwritev(fd, iov, 2, 9995));
	show("ftruncate past the limit", ftruncate(fd, 20000));
	show("ftruncate to shrink", ftruncate(fd, 5000));
	show("ftruncate within", ftruncate(fd, 9000));
	show("write after seeking to the end", (lseek(fd, 0, SEEK_END), write(fd, buf, 8000)));
	int a = open("big.dat", O_WRONLY | O_APPEND);
	show("append at the limit", write(a, buf, 10));
	show("truncate past the limit", truncate("big.dat", 10001));
	show("zero-length write at the limit", write(a, buf, 0));
	printf("SIGXFSZ %d\n", xfsz);
	int p[2];
	pipe(p);
	show("pipe write past the limit", write(p[1], buf, 12000));
	struct stat st;
	fstat(fd, &st);
	printf("size %lld\n", (long long)st.st_size);
	unlink("big.dat");
	fflush(stdout);
	signal(SIGXFSZ, SIG_DFL);
	write(a, buf, 1); /* killed by SIGXFSZ */
	printf("still alive\n");
	return 0;
}

static volatile sig_atomic_t xcpu;

static void on_xcpu(int sig)
{
	(void)sig;
	write(1, "SIGXCPU\n", 8);
	xcpu = 1;
}

static int cpu(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	limit("cpu", RLIMIT_CPU);
	signal(SIGXCPU, on_xcpu);
	volatile unsigned long x = 0;
	while (!xcpu)
		x++;
	printf("spinning on\n");
	for (;;)
		x++;
}

static void *wait_forever(void *arg)
{
	int fd = *(int *)arg;
	char c;
	read(fd, &c, 1);
	return NULL;
}

static int nproc(void)
{
	limit("nproc", RLIMIT_NPROC);
	int p[2];
	pipe(p);
	pthread_t t[64];
	int n = 0, e = 0;
	while (n < 64 && (e = pthread_create(&t[n], NULL, wait_forever, &p[0])) == 0)
		n++;
	printf("threads started %d, then %s\n", n, name(e));
	pid_t pid = fork();
	if (pid == 0) _exit(0);
	if (pid > 0) waitpid(pid, NULL, 0);
	printf("fork at the limit: %s\n", pid < 0 ? name(errno) : "ok");
	char bytes[64] = { 0 };
	write(p[1], bytes, n);
	for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
	struct rlimit two = { 2, 2 };
	show("setrlimit NPROC 2", setrlimit(RLIMIT_NPROC, &two));
	n = 0;
	while (n < 64 && (e = pthread_create(&t[n], NULL, wait_forever, &p[0])) == 0)
		n++;
	printf("threads started %d, then %s\n", n, name(e));
	write(p[1], bytes, n);
	for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
	return 0;
}

static int raise_limits(void)
{
	struct rlimit r;
	getrlimit(RLIMIT_NOFILE, &r);
	limit("nofile", RLIMIT_NOFILE);
	struct rlimit up = { r.rlim_cur, r.rlim_max + 1 }, inf = { RLIM_INFINITY, RLIM_INFINITY };
	struct rlimit low = { 10, r.rlim_max }, back = r, lower = { 10, 20 };
	show("raise hard past the grant", setrlimit(RLIMIT_NOFILE, &up));
	show("raise to infinity", setrlimit(RLIMIT_NOFILE, &inf));
	show("lower soft", setrlimit(RLIMIT_NOFILE, &low));
	show("raise soft back", setrlimit(RLIMIT_NOFILE, &back));
	show("lower hard", setrlimit(RLIMIT_NOFILE, &lower));
	show("raise hard back to the grant", setrlimit(RLIMIT_NOFILE, &back));
	limit("nofile", RLIMIT_NOFILE);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	if (!strcmp(mode, "nofile")) return nofile();
	if (!strcmp(mode, "fsize")) return fsize();
	if (!strcmp(mode, "cpu")) return cpu();
	if (!strcmp(mode, "nproc")) return nproc();
	if (!strcmp(mode, "raise")) return raise_limits();
	fprintf(stderr, "usage: limits nofile|fsize|cpu|nproc|raise\n");
	return 2;
}
