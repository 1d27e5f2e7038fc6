/* signalfd/signalfd4: whole signalfd_siginfo records for the blocked
 * signals watched (kill, tgkill, sigqueue, a timer, a child's exit), poll,
 * select and epoll on it, SFD_NONBLOCK and SFD_CLOEXEC, a new mask for an
 * existing fd, errors, blocking reads (woken by a signal, interrupted by a
 * handled one, in a thread). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "report.h"

static pid_t me;
static pthread_t main_thread;

static void describe(const char *what, const struct signalfd_siginfo *si)
{
	printf("%s: signo %u code %d pid %s uid %u int %d ptr %lu status %d errno %d\n", what,
	       si->ssi_signo, si->ssi_code,
	       si->ssi_pid == (unsigned)me ? "self" : si->ssi_pid == 0 ? "0" : "other",
	       si->ssi_uid, si->ssi_int, (unsigned long)si->ssi_ptr, si->ssi_status, si->ssi_errno);
}

static void read_one(int fd, const char *what)
{
	struct signalfd_siginfo si;
	memset(&si, 0xee, sizeof si);
	long n = read(fd, &si, sizeof si);
	if (n != sizeof si) {
		show(what, n);
		return;
	}
	describe(what, &si);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	while (nanosleep(&ts, &ts))
		;
}

static void *waker(void *arg)
{
	sleep_ms(50);
	pthread_kill(main_thread, SIGUSR2);
	return arg;
}

static void *reader(void *arg)
{
	int fd = *(int *)arg;
	read_one(fd, "thread's blocking read");
	return arg;
}

static void on_usr2(int sig)
{
	(void)sig;
}

int main(void)
{
	me = getpid();
	main_thread = pthread_self();
	sigset_t block, mask;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGRTMIN + 1);
	sigaddset(&block, SIGALRM);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, NULL);

	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	sigaddset(&mask, SIGKILL); /* silently left out */
	int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	printf("signalfd: %s\n", fd >= 0 ? "fd" : ename(errno));
	show("F_GETFD", fcntl(fd, F_GETFD));
	printf("O_NONBLOCK %d\n", (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
	char small[128];
	show("read nothing pending", read(fd, small, 128));
	show("read 64 bytes", read(fd, small, 64));
	show("write", write(fd, small, 8));
	struct pollfd pfd = { fd, POLLIN, 0 };
	show("poll, nothing pending", poll(&pfd, 1, 0));

	kill(me, SIGUSR1);
	show("poll after kill", poll(&pfd, 1, 0));
	printf("revents 0x%x\n", pfd.revents);
	read_one(fd, "kill");
	show("poll after read", poll(&pfd, 1, 0));

	raise(SIGUSR2);
	read_one(fd, "raise");
	union sigval v = { .sival_int = 42 };
	sigqueue(me, SIGUSR1, v);
	read_one(fd, "sigqueue");

	/* Two at once, in one read, lowest first. */
	kill(me, SIGUSR2);
	kill(me, SIGUSR1);
	struct signalfd_siginfo two[3];
	show("read two", read(fd, two, sizeof two));
	describe("  first", &two[0]);
	describe("  second", &two[1]);
	/* readv across two buffers */
	kill(me, SIGUSR1);
	char a[100], b[100];
	struct iovec iov[2] = { { a, sizeof a }, { b, sizeof b } };
	show("readv", readv(fd, iov, 2));
	struct signalfd_siginfo joined;
	memcpy(&joined, a, sizeof a);
	memcpy((char *)&joined + sizeof a, b, sizeof joined - sizeof a);
	describe("  readv", &joined);

	/* A signal not watched stays pending for someone else. */
	sigqueue(me, SIGRTMIN + 1, v);
	show("read, only an unwatched signal", read(fd, small, 128));
	/* A new mask for the same fd. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGRTMIN + 1);
	printf("new mask: same fd %d\n", signalfd(fd, &mask, 0) == fd);
	v.sival_int = 7;
	sigqueue(me, SIGRTMIN + 1, v);
	struct signalfd_siginfo rt[2];
	show("read queued real-time", read(fd, rt, sizeof rt));
	printf("  rt signo ok %d values %d %d\n", rt[0].ssi_signo == (unsigned)SIGRTMIN + 1,
	       rt[0].ssi_int, rt[1].ssi_int);

	/* Errors. */
	int pipefd[2];
	pipe(pipefd);
	show("signalfd of a pipe", signalfd(pipefd[0], &mask, 0));
	show("signalfd of a closed fd", signalfd(99, &mask, 0));
	show("signalfd fd -5", signalfd(-5, &mask, 0));
	show("signalfd4 size 4", syscall(SYS_signalfd4, -1, &mask, 4, 0));
	show("signalfd4 bad flags", syscall(SYS_signalfd4, -1, &mask, 8, 1));
	show("signalfd4 bad mask", syscall(SYS_signalfd4, -1, (void *)8, 8, 0));

	/* epoll and select. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	signalfd(fd, &mask, 0);
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 77 }, got;
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	show("epoll_wait, nothing", epoll_wait(ep, &got, 1, 0));
	kill(me, SIGUSR1);
	show("epoll_wait after kill", epoll_wait(ep, &got, 1, 1000));
	printf("  data %lu events 0x%x\n", (unsigned long)got.data.u64, got.events);
	fd_set rs;
	FD_ZERO(&rs);
	FD_SET(fd, &rs);
	struct timeval tv = { 1, 0 };
	show("select", select(fd + 1, &rs, NULL, NULL, &tv));
	read_one(fd, "after epoll");

	/* Blocking: a timer's SIGALRM wakes the read. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGALRM);
	sigaddset(&mask, SIGCHLD);
	int bfd = signalfd(-1, &mask, 0);
	printf("blocking fd: O_NONBLOCK %d F_GETFD %d\n", (fcntl(bfd, F_GETFL) & O_NONBLOCK) != 0,
	       fcntl(bfd, F_GETFD));
	struct itimerval it = { { 0, 0 }, { 0, 30000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	read_one(bfd, "timer");

	/* A child's exit. */
	fflush(stdout);
	pid_t child = fork();
	if (child == 0)
		_exit(3);
	struct signalfd_siginfo si;
	read(bfd, &si, sizeof si);
	printf("child: signo %u code %d pid matches %d status %d\n", si.ssi_signo, si.ssi_code,
	       si.ssi_pid == (unsigned)child, si.ssi_status);
	waitpid(child, NULL, 0);

	/* A handled signal interrupts a blocking read (no SA_RESTART). */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	sigset_t usr2;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_UNBLOCK, &usr2, NULL);
	pthread_t t;
	pthread_create(&t, NULL, waker, NULL);
	read_one(bfd, "interrupted read");
	pthread_join(t, NULL);

	/* A thread blocked in read, woken by a signal to the process. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	int tfd = signalfd(-1, &mask, SFD_CLOEXEC);
	pthread_create(&t, NULL, reader, &tfd);
	sleep_ms(30);
	kill(me, SIGUSR1);
	pthread_join(t, NULL);
	return 0;
}
