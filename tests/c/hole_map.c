/* Asks for free pages just above libc's RELRO by address: a hint, then
 * MAP_FIXED_NOREPLACE, then mremap growing in place. Under hermitux that
 * space is the hole kept free in RELRO's 2 MiB page (src/kernel/mm.c),
 * which the program must see as free, as it is natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define PAGE 4096UL

static unsigned long relro;

static int each(struct dl_phdr_info *info, size_t size, void *data) {
	(void)size, (void)data;
	if (!strstr(info->dlpi_name, "libc.so"))
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_GNU_RELRO)
			relro = (info->dlpi_addr + info->dlpi_phdr[i].p_vaddr) & ~(PAGE - 1);
	return 0;
}

/* Whether /proc/self/maps shows nothing in [lo, hi). */
static int free_range(unsigned long lo, unsigned long hi) {
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long a, b;
	char line[512];
	int free = 1;

	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a < hi && lo < b)
			free = 0;
	if (f)
		fclose(f);
	return free;
}

int main(void) {
	dl_iterate_phdr(each, NULL);
	if (!relro) {
		puts("no libc RELRO");
		return 1;
	}
	unsigned long at = relro;
	while (!free_range(at, at + 2 * PAGE) && at < relro + (1UL << 30))
		at += PAGE;
	char *want = (char *)at;

	char *p = mmap(want, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("hint honored: %d\n", p == want);
	munmap(p, PAGE);

	p = mmap(want, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
		 -1, 0);
	printf("MAP_FIXED_NOREPLACE: %s\n", p == want ? "mapped there" : strerror(errno));
	if (p != want)
		return 1;
	p[0] = 'x';
	char *q = mremap(p, PAGE, 2 * PAGE, 0);
	printf("mremap in place: %s\n", q == want ? "grown" : strerror(errno));
	if (q == want) {
		q[PAGE] = 'y';
		printf("contents: %c%c\n", q[0], q[PAGE]);
	}
	/* Taken, it is no longer free: asking again is EEXIST. */
	char *r = mmap(want, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	printf("again: %s\n", r == MAP_FAILED ? strerror(errno) : "mapped");
	return 0;
}
