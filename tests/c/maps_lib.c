/* /proc/self/maps names the libraries a dynamic program maps, with the
 * file offset of each mapping, as Linux does: the line holding libc's
 * code shows libc's path and the offset of its executable segment. */
#define _GNU_SOURCE
#include <link.h>
#include <stdio.h>
#include <string.h>

static unsigned long text, offset;

static int find(struct dl_phdr_info *info, size_t size, void *data) {
	(void)size, (void)data;
	if (!strstr(info->dlpi_name, "libc.so")) return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
			text = info->dlpi_addr + ph->p_vaddr;
			offset = ph->p_offset & ~4095UL;
		}
	}
	return 0;
}

int main(void) {
	dl_iterate_phdr(find, NULL);
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int found = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, hi, off;
		char perms[8], path[256] = "";
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %255s", &lo, &hi, perms, &off, path) < 4) continue;
		if (text < lo || text >= hi) continue;
		const char *base = strrchr(path, '/');
		printf("libc code: %s %s, offset matches %d\n", perms, base ? base + 1 : path,
		       off + (text & ~4095UL) - lo == offset);
		found = 1;
	}
	if (!found) printf("libc code not in maps\n");
	return 0;
}
