/* A fault on a non-main thread kills the whole process (139) while the
 * main thread waits in pause(). */
#include <pthread.h>
#include <unistd.h>

static void *bad(void *arg) {
	usleep(10000);
	*(volatile int *)0 = 1;
	return arg;
}

int main(void) {
	pthread_t t;
	pthread_create(&t, NULL, bad, NULL);
	for (;;)
		pause();
}
