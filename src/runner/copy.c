/*
 * A fork's copy into RAM that reads as zero (a new machine's, or one its
 * flush thread cleared: machine.ts), called from the main thread through
 * FFI (memory.ts: copyFrom). Pages of the parent that are all zero need no
 * write there: a small program's 2 MiB host pages (its image and heap, its
 * stack) are mostly such pages, and a read is cheaper than a write.
 *
 * Position-independent with no data or libc, as runner.c (build.sh).
 */

typedef unsigned long u64;

static int zero_page(const u64 *w)
{
	for (int i = 0; i < 512; i += 8) {
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7])
			return 0;
	}
	return 1;
}

static void copy(unsigned char *dst, const unsigned char *src, u64 len)
{
	__asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(len) : : "memory");
}

/*
 * Copies the pages of [src, src + len) that are not all zero to dst (len a
 * multiple of 4 KiB, dst reading as zero); returns the bytes written.
 */
__attribute__((section(".text.entry")))
u64 copy_nonzero(unsigned char *dst, const unsigned char *src, u64 len)
{
	u64 written = 0, run = 0;

	for (u64 off = 0; off < len; off += 4096) {
		if (!zero_page((const u64 *)(src + off))) {
			run += 4096;
			continue;
		}
		/* A zero page ends a run of pages to copy. */
		if (run) {
			copy(dst + off - run, src + off - run, run);
			written += run;
			run = 0;
		}
	}
	if (run)
		copy(dst + len - run, src + len - run, run);
	return written + run;
}
