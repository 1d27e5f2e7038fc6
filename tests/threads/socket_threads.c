/* A thread blocked in accept, then in recv, while the main thread computes,
 * connects and sends; then the main thread blocked in recv while the thread
 * replies. Loopback TCP. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int listener;

static void *server(void *arg) {
	int c = accept(listener, NULL, NULL);
	char buf[16] = { 0 };
	long n = recv(c, buf, sizeof buf - 1, 0);
	printf("server got %ld '%s'\n", n, buf);
	fflush(stdout);
	usleep(20000);
	send(c, "pong", 4, 0);
	close(c);
	return NULL;
}

int main(void) {
	listener = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bind(listener, (struct sockaddr *)&a, sizeof a);
	socklen_t len = sizeof a;
	getsockname(listener, (struct sockaddr *)&a, &len);
	listen(listener, 1);
	pthread_t t;
	pthread_create(&t, NULL, server, NULL);
	volatile unsigned long spin = 0;
	for (unsigned long i = 0; i < 20000000; i++)
		spin += i;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	connect(s, (struct sockaddr *)&a, sizeof a);
	usleep(20000);
	send(s, "ping", 4, 0);
	char buf[16] = { 0 };
	long n = recv(s, buf, sizeof buf - 1, 0);
	printf("client got %ld '%s'\n", n, buf);
	pthread_join(t, NULL);
	return 0;
}
