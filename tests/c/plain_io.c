/* The calls the plain-call server (src/runner/plain.c) serves, on each
 * kind of fd it takes: a file, /dev/null, a pipe (blocking and not), a
 * socket pair; bad pointers and fds; a write to a pipe with no reader
 * (EPIPE and SIGPIPE); a blocking read that must wait for a child;
 * epoll_wait and epoll_pwait with events ready, none, a wait, a mask. */
#include "report.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>

static int sigpipes;
static void on_pipe(int s) { (void)s; sigpipes++; }

/* 2,000 epoll_waits with an event ready, and nothing else. */
static int epoll_only(void)
{
	int sv[2], ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN }, evs[4];
	long ready = 0;

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	write(sv[0], "e", 1);
	epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev);
	for (int i = 0; i < 2000; i++)
		ready += epoll_wait(ep, evs, 4, 100);
	printf("epoll_wait ready %ld\n", ready);
	return 0;
}

/* After a fork (the run has several processes from then on): 2,000
 * writes and reads of /dev/null by the parent. */
static int forked(void)
{
	char buf[64] = { 0 };
	pid_t c = fork();
	if (c == 0)
		_exit(0);
	waitpid(c, NULL, 0);
	int null = open("/dev/null", O_RDWR);
	long total = 0;
	for (int i = 0; i < 2000; i++)
		total += write(null, buf, 64) + read(null, buf, 64);
	printf("/dev/null total %ld\n", total);
	return 0;
}

int main(int argc, char **argv) {
	if (argc > 1)
		return strcmp(argv[1], "forked") ? epoll_only() : forked();
	char buf[256];
	int fd = open("plain.dat", O_CREAT | O_RDWR | O_TRUNC, 0644);
	show("write", write(fd, "hello, plain world\n", 19));
	show("lseek", lseek(fd, 7, SEEK_SET));
	show("read", read(fd, buf, 5));
	printf("  '%.5s'\n", buf);
	show("pwrite64", pwrite(fd, "PLAIN", 5, 7));
	show("pread64", pread(fd, buf, 19, 0));
	printf("  '%.18s'\n", buf);
	struct iovec iov[3] = { { "a", 1 }, { "bc", 2 }, { "def\n", 4 } };
	show("writev", writev(fd, iov, 3));
	lseek(fd, 12, SEEK_SET);
	char x[2], y[5];
	struct iovec in[2] = { { x, 2 }, { y, 5 } };
	show("readv", readv(fd, in, 2));
	printf("  '%.2s' '%.5s'\n", x, y);
	struct stat st;
	show("fstat", fstat(fd, &st));
	printf("  size %ld\n", (long)st.st_size);
	show("read at end", read(fd, buf, sizeof buf));
	lseek(fd, 0, SEEK_SET);
	show("read bad buffer", read(fd, (void *)8, 4));
	show("write bad buffer", write(fd, (void *)8, 4));
	show("read bad fd", read(99, buf, 1));
	close(fd);
	unlink("plain.dat");

	int null = open("/dev/null", O_RDWR);
	long total = 0;
	for (int i = 0; i < 2000; i++)
		total += write(null, buf, 64) + read(null, buf, 64);
	printf("/dev/null total %ld\n", total);

	int p[2];
	pipe(p);
	show("pipe write", write(p[1], "ping", 4));
	show("pipe read", read(p[0], buf, sizeof buf));
	show("lseek pipe", lseek(p[0], 0, SEEK_CUR));
	show("pread pipe", pread(p[0], buf, 1, 0));
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	show("nonblocking empty read", read(p[0], buf, 1));
	fcntl(p[0], F_SETFL, 0);
	/* A blocking read that must wait: the child writes later. */
	pid_t child = fork();
	if (child == 0) {
		usleep(20000);
		write(p[1], "late", 4);
		_exit(0);
	}
	show("blocking read", read(p[0], buf, sizeof buf));
	waitpid(child, NULL, 0);

	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	show("sendto", sendto(sv[0], "sock", 4, 0, NULL, 0));
	show("recvfrom", recvfrom(sv[1], buf, sizeof buf, 0, NULL, NULL));
	printf("  '%.4s'\n", buf);
	show("recvfrom dontwait", recvfrom(sv[1], buf, sizeof buf, MSG_DONTWAIT, NULL, NULL));
	show("send on pipe", sendto(p[1], "x", 1, 0, NULL, 0));

	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x1234abcdULL }, evs[4];
	epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev);
	show("epoll_wait none ready", epoll_wait(ep, evs, 4, 0));
	show("epoll_wait none ready, 10 ms", epoll_wait(ep, evs, 4, 10));
	/* Events ready once the child has written: a wait that parks first. */
	child = fork();
	if (child == 0) {
		usleep(20000);
		write(sv[0], "e", 1);
		_exit(0);
	}
	show("epoll_wait that waits", epoll_wait(ep, evs, 4, -1));
	printf("  events %x data %llx\n", evs[0].events, (unsigned long long)evs[0].data.u64);
	waitpid(child, NULL, 0);
	long ready = 0;
	for (int i = 0; i < 1000; i++)
		ready += epoll_wait(ep, evs, 4, -1);
	printf("epoll_wait ready %ld\n", ready);
	show("epoll_pwait ready", epoll_pwait(ep, evs, 4, 1000, NULL));
	sigset_t none;
	sigemptyset(&none);
	show("epoll_pwait with a mask", epoll_pwait(ep, evs, 4, 1000, &none));
	show("epoll_wait bad buffer", epoll_wait(ep, (void *)8, 4, 0));
	show("epoll_wait no room", epoll_wait(ep, evs, 0, 0));
	show("epoll_wait bad fd", epoll_wait(99, evs, 4, 0));
	show("epoll_wait not epoll", epoll_wait(sv[0], evs, 4, 0));
	close(ep);

	signal(SIGPIPE, on_pipe);
	close(p[0]);
	show("write no reader", write(p[1], "x", 1));
	show("writev no reader", writev(p[1], iov, 3));
	printf("SIGPIPEs %d\n", sigpipes);
	return 0;
}
