/* The files the kernel provides: devices, /proc/cpuinfo, /proc/meminfo,
 * /proc/self/exe and /proc/self/maps. Prints relations only. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char buf[4096];
	int fd = open("/dev/null", O_RDWR);
	printf("null write %zd read %zd\n", write(fd, "x", 1), read(fd, buf, 10));
	close(fd);
	fd = open("/dev/zero", O_RDONLY);
	memset(buf, 1, 64);
	ssize_t n = read(fd, buf, 64);
	printf("zero read %zd all zero %d\n", n, buf[0] == 0 && buf[63] == 0);
	close(fd);
	fd = open("/dev/urandom", O_RDONLY);
	unsigned char r1[16] = {0}, r2[16] = {0};
	read(fd, r1, 16);
	read(fd, r2, 16);
	printf("urandom differs %d\n", memcmp(r1, r2, 16) != 0);
	close(fd);
	struct stat st;
	printf("stat /dev/null chr %d\n", stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode));
	FILE *f = fopen("/proc/cpuinfo", "r");
	int procs = 0;
	while (f && fgets(buf, sizeof buf, f)) procs += !strncmp(buf, "processor", 9);
	if (f) fclose(f);
	printf("cpuinfo has processors %d\n", procs > 0);
	f = fopen("/proc/meminfo", "r");
	printf("meminfo MemTotal %d\n", f && fgets(buf, sizeof buf, f) && !strncmp(buf, "MemTotal:", 9));
	if (f) fclose(f);
	n = readlink("/proc/self/exe", buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = 0;
	printf("exe ends like argv[0] %d\n", n > 0 && !strcmp(buf + strlen(buf) - strlen(strrchr(argv[0], '/')), strrchr(argv[0], '/')));
	fd = open("/proc/self/exe", O_RDONLY);
	char elf[4] = {0};
	read(fd, elf, 4);
	printf("exe is ELF %d\n", !memcmp(elf, "\177ELF", 4));
	close(fd);
	void *m = mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	f = fopen("/proc/self/maps", "r");
	int code = 0, heap = 0, stack = 0, mine = 0;
	unsigned long main_addr = (unsigned long)&main;
	while (fgets(buf, sizeof buf, f)) {
		unsigned long lo, hi;
		char perms[5];
		sscanf(buf, "%lx-%lx %4s", &lo, &hi, perms);
		code |= lo <= main_addr && main_addr < hi && perms[2] == 'x';
		stack |= strstr(buf, "[stack]") != 0;
		heap |= strstr(buf, "[heap]") != 0;
		mine |= lo <= (unsigned long)m && (unsigned long)m < hi && perms[0] == 'r' && perms[1] == 'w';
	}
	fclose(f);
	printf("maps: main in an x mapping %d, stack %d, new mapping rw %d\n", code, stack, mine);
	int xf = open("fdlink.txt", O_CREAT | O_RDWR | O_TRUNC, 0644);
	write(xf, "hello", 5);
	char link[64], target[512];
	sprintf(link, "/proc/self/fd/%d", xf);
	n = readlink(link, target, sizeof target - 1);
	target[n > 0 ? n : 0] = 0;
	printf("fd link ends with the name %d\n", n > 10 && !strcmp(target + n - 10, "fdlink.txt"));
	int again = open(link, O_RDONLY);
	char five[6] = { 0 };
	read(again, five, 5);
	printf("reopened through /proc/self/fd reads %s\n", five);
	int pp[2];
	pipe(pp);
	sprintf(link, "/proc/self/fd/%d", pp[0]);
	n = readlink(link, target, sizeof target - 1);
	printf("pipe link %d\n", n > 6 && !strncmp(target, "pipe:[", 6));
	unlink("fdlink.txt");
	errno = 0;
	printf("write exe %d %s\n", open("/proc/self/exe", O_WRONLY), strerror(errno));
	return 0;
}
