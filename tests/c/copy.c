/* sendfile and copy_file_range between files; offsets and their updates. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>
#include "report.h"

int main(void)
{
	int a = open("src.dat", O_CREAT | O_RDWR | O_TRUNC, 0644);
	for (int i = 0; i < 100; i++) write(a, "0123456789", 10);
	int b = open("dst.dat", O_CREAT | O_RDWR | O_TRUNC, 0644);
	off_t off = 10;
	show("sendfile", sendfile(b, a, &off, 50));
	printf("offset now %ld\n", (long)off);
	loff_t in = 0, out = 100;
	show("copy_file_range", copy_file_range(a, &in, b, &out, 200, 0));
	printf("in %ld out %ld size %ld\n", (long)in, (long)out, (long)lseek(b, 0, SEEK_END));
	char buf[8] = { 0 };
	pread(b, buf, 5, 100);
	printf("copied %s\n", buf);
	show("sendfile bad fd", sendfile(b, 99, NULL, 10));
	unlink("src.dat");
	unlink("dst.dat");
	return 0;
}
