/* The auxiliary vector: values that must match a native run, and
 * relations for the ones that are addresses. `auxv random` prints only the
 * AT_RANDOM bytes, in hex. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/auxv.h>
#include <elf.h>
extern char **environ;

/* AT_BASE: 0 without an interpreter, else where ld.so's first mapping starts. */
static void at_base(Elf64_Phdr *ph, unsigned long n)
{
	unsigned long base = getauxval(AT_BASE), bias = 0;
	const char *interp = 0;
	for (unsigned long i = 0; i < n; i++)
		if (ph[i].p_type == PT_PHDR) bias = (unsigned long)ph - ph[i].p_vaddr;
	for (unsigned long i = 0; i < n; i++)
		if (ph[i].p_type == PT_INTERP) interp = (const char *)(bias + ph[i].p_vaddr);
	if (!interp) {
		printf(base == 0 ? "AT_BASE static\n" : "AT_BASE %#lx without an interpreter\n", base);
		return;
	}
	char real[PATH_MAX], line[PATH_MAX + 128];
	if (!realpath(interp, real)) {
		printf("AT_BASE: realpath %s failed\n", interp);
		return;
	}
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long first = 0;
	while (f && fgets(line, sizeof line, f)) {
		char *path = strchr(line, '/');
		if (!path) continue;
		path[strcspn(path, "\n")] = 0;
		if (strcmp(path, real) == 0) {
			first = strtoul(line, 0, 16);
			break;
		}
	}
	if (f) fclose(f);
	if (base != 0 && base == first)
		printf("AT_BASE ok\n");
	else
		printf("AT_BASE %#lx, but %s is first mapped at %#lx\n", base, real, first);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "random") == 0) {
		unsigned char *r = (unsigned char *)getauxval(AT_RANDOM);
		for (int i = 0; i < 16; i++) printf("%02x", r[i]);
		printf("\n");
		return 0;
	}
	printf("AT_PAGESZ %lu\n", getauxval(AT_PAGESZ));
	printf("AT_PHENT %lu\n", getauxval(AT_PHENT));
	printf("AT_PHNUM %lu\n", getauxval(AT_PHNUM));
	printf("AT_CLKTCK %lu\n", getauxval(AT_CLKTCK));
	printf("AT_SECURE %lu\n", getauxval(AT_SECURE));
	printf("AT_HWCAP %#lx\n", getauxval(AT_HWCAP));
	printf("AT_HWCAP2 %#lx\n", getauxval(AT_HWCAP2));
	printf("AT_PLATFORM %s\n", (char *)getauxval(AT_PLATFORM));
	printf("AT_MINSIGSTKSZ %lu\n", getauxval(AT_MINSIGSTKSZ));
	printf("AT_UID matches %d\n", getauxval(AT_UID) == getuid() && getauxval(AT_EUID) == geteuid());
	printf("AT_GID matches %d\n", getauxval(AT_GID) == getgid() && getauxval(AT_EGID) == getegid());
	printf("AT_EXECFN ends like argv[0] %d\n",
	       strcmp((char *)getauxval(AT_EXECFN) + strlen((char *)getauxval(AT_EXECFN)) - 4,
		      argv[0] + strlen(argv[0]) - 4) == 0);
	unsigned char *r = (unsigned char *)getauxval(AT_RANDOM);
	int nonzero = 0;
	for (int i = 0; i < 16; i++) nonzero |= r[i];
	printf("AT_RANDOM present %d\n", r != 0 && nonzero);
	Elf64_Phdr *ph = (Elf64_Phdr *)getauxval(AT_PHDR);
	int load = 0;
	for (unsigned long i = 0; i < getauxval(AT_PHNUM); i++) load += ph[i].p_type == PT_LOAD;
	printf("AT_PHDR has PT_LOAD %d\n", load > 0);
	at_base(ph, getauxval(AT_PHNUM));
	printf("AT_ENTRY nonzero %d\n", getauxval(AT_ENTRY) != 0);
	printf("stack order %d\n", (char *)argv < (char *)environ && (char *)environ < (char *)r);
	return 0;
}
