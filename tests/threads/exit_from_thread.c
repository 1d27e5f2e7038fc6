/* exit() called from a non-main thread ends the whole process with its
 * status, while the main thread is blocked in pthread_join. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *quitter(void *arg) {
	usleep(20000);
	printf("thread exits the process\n");
	fflush(stdout);
	exit(42);
}

static void *sleeper(void *arg) {
	for (;;)
		pause();
}

int main(void) {
	pthread_t a, b;
	pthread_create(&b, NULL, sleeper, NULL);
	pthread_create(&a, NULL, quitter, NULL);
	pthread_join(a, NULL);
	printf("not reached\n");
	return 0;
}
