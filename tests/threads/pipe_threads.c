/* Threads talking through pipes: a thread blocked in read while the main
 * thread runs and then writes, and the main thread blocked in read while a
 * thread writes. Neither read may hold the other thread up. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static int a[2], b[2];

static void *reader(void *arg) {
	char buf[16] = { 0 };
	long n = read(a[0], buf, sizeof buf - 1);
	printf("thread read %ld '%s'\n", n, buf);
	fflush(stdout);
	usleep(20000);
	write(b[1], "pong", 4);
	return NULL;
}

int main(void) {
	pipe(a);
	pipe(b);
	pthread_t t;
	pthread_create(&t, NULL, reader, NULL);
	volatile unsigned long spin = 0;
	for (unsigned long i = 0; i < 20000000; i++)
		spin += i; /* the main thread computes while the reader waits */
	write(a[1], "ping", 4);
	char buf[16] = { 0 };
	long n = read(b[0], buf, sizeof buf - 1);
	printf("main read %ld '%s'\n", n, buf);
	pthread_join(t, NULL);
	return 0;
}
