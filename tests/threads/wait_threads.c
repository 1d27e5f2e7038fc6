/* Threads waiting in epoll_wait, poll and select with no timeout while the
 * main thread runs, computes, makes calls and then writes what wakes each;
 * then the main thread waits in each while a thread writes. A wait in one
 * thread may not hold the others up. */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <unistd.h>

static int p[3][2], back[2];

static int wait_on(int kind, int fd) {
	if (kind == 0) {
		int ep = epoll_create1(0);
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd }, out;
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
		int n = epoll_wait(ep, &out, 1, -1);
		close(ep);
		return n == 1 && out.data.fd == fd;
	}
	if (kind == 1) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		return poll(&pfd, 1, -1) == 1 && (pfd.revents & POLLIN);
	}
	fd_set set;
	FD_ZERO(&set);
	FD_SET(fd, &set);
	return select(fd + 1, &set, NULL, NULL, NULL) == 1 && FD_ISSET(fd, &set);
}

static const char *name[] = { "epoll_wait", "poll", "select" };

static void *waiter(void *arg) {
	int k = (int)(long)arg;
	int ok = wait_on(k, p[k][0]);
	char c;
	read(p[k][0], &c, 1);
	printf("thread woke from %s: %d '%c'\n", name[k], ok, c);
	fflush(stdout);
	return NULL;
}

static void *writer(void *arg) {
	(void)arg;
	usleep(20000);
	write(back[1], "!", 1);
	return NULL;
}

int main(void) {
	pthread_t t[3];
	for (int k = 0; k < 3; k++) {
		pipe(p[k]);
		pthread_create(&t[k], NULL, waiter, (void *)(long)k);
	}
	volatile unsigned long spin = 0;
	for (unsigned long i = 0; i < 20000000; i++)
		spin += i;
	for (int k = 0; k < 3; k++) {
		usleep(10000);
		getpid();
		write(p[k][1], "abc" + k, 1);
		pthread_join(t[k], NULL);
	}
	for (int k = 0; k < 3; k++) {
		pipe(back);
		pthread_t w;
		pthread_create(&w, NULL, writer, NULL);
		int ok = wait_on(k, back[0]);
		printf("main woke from %s: %d\n", name[k], ok);
		pthread_join(w, NULL);
		close(back[0]);
		close(back[1]);
	}
	return 0;
}
