/* Creates and joins many threads one after another (argv[1], default 1000),
 * then a few at once, checking each one's result. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void *square(void *arg) {
	long v = (long)arg;
	return (void *)(v * v);
}

int main(int argc, char **argv) {
	long n = argc > 1 ? atol(argv[1]) : 1000, sum = 0;
	for (long i = 0; i < n; i++) {
		pthread_t t;
		void *r;
		if (pthread_create(&t, NULL, square, (void *)i)) {
			printf("create %ld failed\n", i);
			return 1;
		}
		pthread_join(t, &r);
		sum += (long)r;
	}
	pthread_t many[16];
	for (long i = 0; i < 16; i++)
		pthread_create(&many[i], NULL, square, (void *)i);
	for (long i = 0; i < 16; i++) {
		void *r;
		pthread_join(many[i], &r);
		sum += (long)r;
	}
	printf("%ld threads, sum of squares %ld\n", n + 16, sum);
	return 0;
}
