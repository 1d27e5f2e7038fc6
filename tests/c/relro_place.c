/* Where each loaded object's RELRO starts: on a 2 MiB boundary under
 * hermitux (src/loader/relro.ts), so that the mprotect that makes it
 * read-only does not split the object's text into 4 KiB pages. */
#define _GNU_SOURCE
#include <link.h>
#include <stdio.h>
#include <string.h>

static int each(struct dl_phdr_info *info, size_t size, void *data) {
	(void)size, (void)data;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_GNU_RELRO || !info->dlpi_addr) continue;
		unsigned long at = (info->dlpi_addr + ph->p_vaddr) & ~4095UL;
		const char *name = strrchr(info->dlpi_name, '/');
		printf("%s relro on 2 MiB: %d\n", name ? name + 1 : info->dlpi_name, at % (2UL << 20) == 0);
	}
	return 0;
}

int main(void) {
	dl_iterate_phdr(each, NULL);
	return 0;
}
