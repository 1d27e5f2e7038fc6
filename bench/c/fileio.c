/* File I/O in the working directory: sequential write and read of SIZE MiB
 * in 1 MiB chunks (MB/s), then stat and open+close latency (ns/op), printed
 * to stderr one per line. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }

int main(int argc, char **argv)
{
	long mib = argc > 1 ? atol(argv[1]) : 256, ops = argc > 2 ? atol(argv[2]) : 2000;
	static char buf[1 << 20];
	memset(buf, 'x', sizeof buf);
	int fd = open("bench.dat", O_CREAT | O_TRUNC | O_WRONLY, 0644);
	double t0 = now();
	for (long i = 0; i < mib; i++) write(fd, buf, sizeof buf);
	fsync(fd);
	double t1 = now();
	close(fd);
	fd = open("bench.dat", O_RDONLY);
	double t2 = now();
	while (read(fd, buf, sizeof buf) > 0) ;
	double t3 = now();
	close(fd);
	struct stat st;
	double t4 = now();
	for (long i = 0; i < ops; i++) stat("bench.dat", &st);
	double t5 = now();
	for (long i = 0; i < ops; i++) close(open("bench.dat", O_RDONLY));
	double t6 = now();
	unlink("bench.dat");
	fprintf(stderr, "write %.1f MB/s\nread %.1f MB/s\nstat %.0f ns/op\nopen+close %.0f ns/op\n",
		mib * 1.048576e9 / (t1 - t0), mib * 1.048576e9 / (t3 - t2),
		(t5 - t4) / ops, (t6 - t5) / ops);
	return 0;
}
