/*
 * brk and anonymous mmap as allocator bookkeeping. All guest RAM is mapped
 * present and writable by the host before boot; we decide which addresses
 * are in use and keep the Linux promise that new anonymous memory reads as
 * zero. File mappings go to the host, and so do protections that take
 * access away (HC_PROT): the host owns the page tables.
 */
#include "kernel.h"

#define PROT_READ     0x1
#define PROT_WRITE    0x2
#define PROT_EXEC     0x4
#define MAP_SHARED    0x01
#define MAP_FIXED     0x10
#define MAP_ANONYMOUS 0x20
#define MAP_NORESERVE 0x4000
#define MAP_FIXED_NOREPLACE 0x100000
#define EEXIST        17
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED  2
#define MADV_DONTNEED 4
#define MAX_REGIONS   4096
/* Reservations this large go above RAM first, as Linux's would stay
 * untouched: RAM's own address space is kept for what programs use. */
#define HIGH_FIRST    (64UL << 20)

/* Global: the image header points the host at them for /proc/self/maps. */
struct region regions[MAX_REGIONS]; /* sorted by start, disjoint */
int nregions;
u64 brk_start, brk_cur;
static u64 brk_high;

#define PAGE_UP(x) (((x) + PAGE_SIZE - 1) & ~(u64)(PAGE_SIZE - 1))

void mm_init(void)
{
	brk_start = brk_cur = brk_high = BOOT->brk_start;
}

/*
 * Read-only and no-access mappings are enforced; every other protection
 * leaves the default entries (present, writable). Executable pages stay
 * writable: the lazy rewriter patches syscall sites in them in place.
 */
static int restricted(u64 prot)
{
	return !(prot & (PROT_WRITE | PROT_EXEC));
}

/* Asks the host to give [lo, hi) protection prot (or PROT_RESET). */
static void set_ptes(u64 lo, u64 hi, u64 prot)
{
	hostcall(HC_PROT, 10, lo, hi - lo, prot, 0, 0, 0);
}

/*
 * Make [lo, hi) read as zero again. Small ranges are cleared here; large ones
 * are handed back to the host, which drops the pages (and their memory), as
 * are pages we may not write (host_only).
 */
static void zero_range(u64 lo, u64 hi, int host_only)
{
	if (hi - lo <= 64 * 1024 && !host_only)
		memset((void *)lo, 0, hi - lo);
	else
		hostcall(HC_ZERO, 0, lo, hi - lo, 0, 0, 0, 0);
}

static void remove_at(int i)
{
	for (; i + 1 < nregions; i++)
		regions[i] = regions[i + 1];
	nregions--;
}

static int insert_at(int i, u64 start, u64 end, u8 written, u8 shared, u8 prot, u8 ptes, u8 hole,
		     u8 file)
{
	int j;

	if (nregions == MAX_REGIONS)
		return -1;
	for (j = nregions; j > i; j--)
		regions[j] = regions[j - 1];
	regions[i].start = start;
	regions[i].end = end;
	regions[i].written = written;
	regions[i].shared = shared;
	regions[i].prot = prot;
	regions[i].ptes = ptes;
	regions[i].hole = hole;
	regions[i].file = file;
	nregions++;
	return 0;
}

/*
 * Unmap [lo, hi): trim, split or drop every overlapping region. With
 * refill, a file mapping is about to take the range and the host writes
 * every byte of it, so it is not cleared first: clearing part of a 2 MiB
 * page costs the host its huge page (ld.so maps each segment of a library
 * over its reservation this way).
 */
static int unmap_range(u64 lo, u64 hi, int refill)
{
	int i = 0;

	while (i < nregions) {
		struct region *r = &regions[i];
		u64 s = r->start > lo ? r->start : lo;
		u64 e = r->end < hi ? r->end : hi;

		if (s >= e) {
			i++;
			continue;
		}
		if (r->shared)
			hostcall(HC_SYSCALL, 11, s, e - s, 0, 0, 0, 0); /* munmap: write back */
		if (r->ptes)
			set_ptes(s, e, PROT_UNMAP);
		/* Above RAM the host drops the pages at PROT_UNMAP. */
		if (r->written && !refill && !in_high(s, e - s))
			zero_range(s, e, 0);
		if (r->start < s && r->end > e) {
			if (insert_at(i + 1, e, r->end, r->written, r->shared, r->prot, r->ptes, r->hole,
				      r->file))
				return -ENOMEM;
			regions[i].end = s;
			return 0;
		}
		if (r->start < s) {
			r->end = s;
			i++;
		} else if (r->end > e) {
			r->start = e;
			i++;
		} else {
			remove_at(i);
		}
	}
	return 0;
}

/* Whether a mapping overlaps [lo, hi). Holes do not count: to the program
 * they are free space, which an address it names may take (unmap_range
 * trims them first); only placement by find_gap keeps out of them. */
static int overlaps(u64 lo, u64 hi)
{
	for (int i = 0; i < nregions; i++)
		if (!regions[i].hole && regions[i].start < hi && lo < regions[i].end)
			return 1;
	return 0;
}

static int add_region(u64 lo, u64 hi, u8 written, u8 shared, u8 prot, u8 file)
{
	int i = 0;

	while (i < nregions && regions[i].start < lo)
		i++;
	return insert_at(i, lo, hi, written, shared, prot, 0, 0, file);
}

/* Splits the region that strictly contains x in two at x. */
static int split_at(u64 x)
{
	for (int i = 0; i < nregions; i++) {
		struct region *r = &regions[i];

		if (r->start < x && x < r->end) {
			if (insert_at(i + 1, x, r->end, r->written, r->shared, r->prot, r->ptes, r->hole,
				      r->file))
				return -ENOMEM;
			regions[i].end = x;
			return 0;
		}
	}
	return 0;
}

/* The region holding addr, or 0. */
static struct region *region_at(u64 addr)
{
	for (int i = 0; i < nregions; i++)
		if (regions[i].start <= addr && addr < regions[i].end)
			return &regions[i];
	return 0;
}

#define HUGE 0x200000UL

/*
 * The highest start for len bytes in a gap of [floor, mmap_max), or 0.
 * With relro, for a library whose RELRO starts phase bytes in: the highest
 * start that puts RELRO at the start of a 2 MiB page lying wholly in the
 * gap, so the page mprotect will split holds only the library's data
 * (relro_phase checks it fits) and its text stays in whole 2 MiB pages.
 */
static u64 find_gap(u64 len, u64 floor, int relro, u64 phase)
{
	u64 top = BOOT->mmap_max;

	for (int i = nregions - 1; i >= -1; i--) {
		u64 bottom = i >= 0 ? regions[i].end : floor;

		if (bottom < floor)
			bottom = floor;
		if (!relro && top >= bottom + len && top - len >= bottom)
			return top - len;
		if (relro && top >= HUGE && top > bottom) {
			u64 b = (top - HUGE) & ~(HUGE - 1);

			if (b >= bottom + phase && b - phase >= bottom)
				return b - phase;
		}
		if (i >= 0 && regions[i].start < top)
			top = regions[i].start;
		if (top <= floor)
			return 0;
	}
	return 0;
}

/*
 * The highest start for len bytes in the address space above RAM, or 0.
 * Starts of mappings of 2 MiB or more are 2 MiB-aligned, so the host can
 * back them with whole huge pages.
 */
static u64 find_high_gap(u64 len)
{
	u64 lo = BOOT->high_min, top = BOOT->high_max;

	if (!top || len > top - lo)
		return 0;
	for (int i = nregions - 1; i >= -1; i--) {
		u64 bottom = i >= 0 ? regions[i].end : lo;

		if (bottom < lo)
			bottom = lo;
		if (top >= bottom + len) {
			u64 at = top - len;

			if (len >= HUGE && (at & ~(HUGE - 1)) >= bottom)
				at &= ~(HUGE - 1);
			return at;
		}
		if (i >= 0 && regions[i].start < top)
			top = regions[i].start;
		if (top <= lo)
			return 0;
	}
	return 0;
}

/* Whether [a, a + len) may be mapped: below the mmap area's top, or above RAM. */
static int room(u64 a, u64 len)
{
	return in_high(a, len) || (user_ok(a, len) && a + len <= BOOT->mmap_max);
}

/* The host's hint for a library mapped whole through fd (abi.h). */
static int relro_phase(u64 fd, u64 len, u64 *phase)
{
	volatile struct elf_hint *h = &((volatile struct elf_hint *)ELF_HINTS_ADDR)[fd % NR_ELF_HINTS];

	if (h->fd_plus1 != fd + 1 || h->extent != len || h->phase >= len || len - h->phase > HUGE)
		return 0;
	*phase = h->phase;
	return 1;
}

/*
 * File mappings are placed here like anonymous ones; the host then copies
 * the file's bytes in (and, for MAP_SHARED, writes them back on msync,
 * munmap and exit), and takes away the pages past the end of the file.
 */
static long do_mmap(u64 addr, u64 len, u64 prot, u64 flags, u64 fd, u64 off)
{
	u64 floor = brk_high > BOOT->mmap_min ? brk_high : BOOT->mmap_min;
	int file = !(flags & MAP_ANONYMOUS), shared = (flags & MAP_SHARED) != 0, high = 0;
	u64 start;
	long r;

	if (!len || (addr & (PAGE_SIZE - 1)) || (file && (off & (PAGE_SIZE - 1))))
		return -EINVAL;
	len = PAGE_UP(len);
	if (!len)
		return -ENOMEM;
	/* Linux's heuristic overcommit: private writable memory it would have
	 * to account is refused past all of RAM in one go; reservations
	 * (PROT_NONE, MAP_NORESERVE) are not counted. */
	if (!file && !shared && (prot & PROT_WRITE) && !(flags & MAP_NORESERVE) &&
	    len > BOOT->mem_size)
		return -ENOMEM;
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
		/* Shared pages are host mappings laid over RAM: not above it. */
		high = in_high(addr, len);
		if (high ? shared : !room(addr, len))
			return -ENOMEM;
		if ((flags & MAP_FIXED_NOREPLACE) && overlaps(addr, addr + len))
			return -EEXIST;
		if (unmap_range(addr, addr + len, file))
			return -ENOMEM;
		start = addr;
	} else if (addr && !shared && in_high(addr, len) && !overlaps(addr, addr + len)) {
		start = addr;
		high = 1;
	} else if (addr && addr >= floor && addr + len <= BOOT->mmap_max &&
		   addr + len > addr && !overlaps(addr, addr + len)) {
		if (unmap_range(addr, addr + len, 0)) /* holes only */
			return -ENOMEM;
		start = addr;
	} else {
		u64 phase;

		start = 0;
		if (!file && !shared && len >= HIGH_FIRST &&
		    (!(prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) || (flags & MAP_NORESERVE)))
			start = find_high_gap(len);
		if (file && relro_phase(fd, len, &phase)) {
			start = find_gap(len, floor, 1, phase);
			/* The rest of RELRO's 2 MiB page stays free: what was
			 * placed there would be split with it. */
			if (start && start + len < start + phase + HUGE) {
				u64 end = start + phase + HUGE;
				int i = 0;

				while (i < nregions && regions[i].start < start + len)
					i++;
				if (insert_at(i, start + len, end, 0, 0, 0, 0, 1, 0))
					return -ENOMEM;
			}
		}
		if (!start)
			start = find_gap(len, floor, 0, 0);
		if (!start && !shared)
			start = find_high_gap(len);
		if (!start)
			return -ENOMEM;
		high = in_high(start, len);
	}
	/* shared: 1 for a file's MAP_SHARED, 2 for anonymous MAP_SHARED (which
	 * the host shares with a child at fork: it must hear of its munmap). */
	if (add_region(start, start + len, file || (prot & PROT_WRITE) != 0,
		       (flags & MAP_SHARED) ? (file ? 1 : 2) : 0, prot, file))
		return -ENOMEM;
	/* Above RAM the host backs what the mapping allows, at first touch
	 * (and the file's bytes, which it writes in next). */
	if (high) {
		set_ptes(start, start + len, prot);
		region_at(start)->ptes = 1;
	}
	if (file) {
		r = hostcall(HC_SYSCALL, 9, start, len, prot, flags | MAP_FIXED, fd, off); /* mmap */
		if (r < 0) {
			region_at(start)->shared = 0;
			unmap_range(start, start + len, 0);
			return r;
		}
	}
	/* A file mapped with PROT_READ alone stays writable: ld.so maps each
	 * library whole that way before it maps the segments over it, and
	 * enforcing that split every 2 MiB page of every library into 4 KiB
	 * ones (python3's start-up: 82 -> 107 ms). mprotect's PROT_READ
	 * (RELRO) is enforced, as are anonymous read-only mappings. */
	if (!high && (!(prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) || (!file && restricted(prot)))) {
		set_ptes(start, start + len, prot);
		region_at(start)->ptes = 1;
	}
	return start;
}

static long do_munmap(u64 addr, u64 len, u64 c, u64 d, u64 e, u64 f)
{
	if ((addr & (PAGE_SIZE - 1)) || !len || !user_ok(addr, len))
		return -EINVAL;
	return unmap_range(addr, PAGE_UP(addr + len), 0);
}

/* Records protections (for /proc/self/maps), remembers possible writes,
 * and has the host enforce those that take access away. */
static long do_mprotect(u64 addr, u64 len, u64 prot, u64 d, u64 e, u64 f)
{
	u64 end = PAGE_UP(addr + len);

	if (addr & (PAGE_SIZE - 1))
		return -EINVAL;
	if (!user_ok(addr, PAGE_UP(len)))
		return -ENOMEM;
	if (split_at(addr) || split_at(end))
		return -ENOMEM;
	for (int i = 0; i < nregions; i++)
		if (regions[i].start >= addr && regions[i].end <= end) {
			struct region *r = &regions[i];

			if (restricted(prot) || r->ptes) {
				set_ptes(r->start, r->end, restricted(prot) ? prot : PROT_RESET);
				r->ptes = 1; /* a file's past-the-end pages stay the host's */
			}
			r->prot = prot;
			if (prot & PROT_WRITE)
				r->written = 1;
		}
	return 0;
}

/* brk grows up from the program image until it meets the mmap area. */
static long do_brk(u64 addr, u64 b, u64 c, u64 d, u64 e, u64 f)
{
	u64 limit = BOOT->mmap_max;
	u64 want = PAGE_UP(addr);

	for (int i = 0; i < nregions; i++)
		if (regions[i].start >= brk_cur && regions[i].start < limit)
			limit = regions[i].start;
	if (addr < brk_start || want > limit)
		return brk_cur;
	/* Memory given back and taken again must read as zero. */
	if (addr > brk_cur && brk_cur < brk_high)
		zero_range(brk_cur, addr < brk_high ? PAGE_UP(addr) : brk_high, 0);
	brk_cur = addr;
	if (want > brk_high)
		brk_high = want;
	return brk_cur;
}

/*
 * Joins the private anonymous regions that follow the one at addr, as long
 * as they touch and have its protection, until len bytes are one region:
 * Linux merges such neighbours (a hole unmapped and mapped again, two
 * mprotects that undo each other), and mremap takes one mapping.
 */
static void join_from(u64 addr, u64 len)
{
	int i = 0;

	while (i < nregions && !(regions[i].start <= addr && addr < regions[i].end))
		i++;
	while (i + 1 < nregions && regions[i].end < addr + len) {
		struct region *a = &regions[i], *b = &regions[i + 1];

		if (a->end != b->start || a->prot != b->prot || a->file || b->file || a->shared ||
		    b->shared || a->hole || b->hole)
			return;
		a->end = b->end;
		a->written |= b->written;
		a->ptes |= b->ptes;
		remove_at(i + 1);
	}
}

/*
 * mremap of a file's MAP_SHARED mapping: its pages are the file's, laid in
 * by the host, so nothing is copied; the host lays the file at the new
 * place (from the old mapping's offset), then the old place is unmapped.
 */
static long remap_shared(struct region *r, u64 old, u64 old_len, u64 new_len, u64 flags,
			 u64 new_addr, u8 prot, u64 floor)
{
	u64 to;
	long hr;

	if (new_len <= old_len && !(flags & MREMAP_FIXED)) {
		unmap_range(old + new_len, old + old_len, 0);
		return old;
	}
	if (!(flags & MREMAP_FIXED) && old + new_len <= BOOT->mmap_max &&
	    !overlaps(old + old_len, old + new_len)) {
		to = old;
	} else if (!(flags & MREMAP_MAYMOVE)) {
		return -ENOMEM;
	} else if (flags & MREMAP_FIXED) {
		to = new_addr;
		if ((to & (PAGE_SIZE - 1)) || !user_ok(to, new_len) || to + new_len > BOOT->mmap_max ||
		    (to < old + old_len && old < to + new_len))
			return -EINVAL;
		unmap_range(to, to + new_len, 0);
	} else {
		to = find_gap(new_len, floor, 0, 0);
		if (!to)
			return -ENOMEM;
	}
	if (to == old)
		r->end = old + new_len;
	else if (add_region(to, to + new_len, 1, 1, prot, 1))
		return -ENOMEM;
	set_ptes(to, to + new_len, PROT_UNMAP); /* no stale past-the-end entries */
	hr = hostcall(HC_SYSCALL, 25, old, old_len, new_len, to, 0, 0); /* mremap */
	if (hr < 0) {
		if (to == old) {
			region_at(old)->end = old + old_len;
		} else {
			region_at(to)->shared = 0;
			unmap_range(to, to + new_len, 0);
		}
		return hr;
	}
	if (to != old)
		unmap_range(old, old + old_len, 0);
	region_at(to)->ptes = 1;
	if (restricted(prot))
		set_ptes(to, to + new_len, prot);
	return to;
}

/* Grows or shrinks a mapping in place, or moves it when allowed. */
static long do_mremap(u64 old, u64 old_len, u64 new_len, u64 flags, u64 new_addr, u64 f)
{
	struct region *r = region_at(old);
	u8 prot = r ? r->prot : 0;
	u64 floor = brk_high > BOOT->mmap_min ? brk_high : BOOT->mmap_min;
	u64 to;
	u8 ptes;

	if ((old & (PAGE_SIZE - 1)) || !new_len || (flags & ~(u64)(MREMAP_MAYMOVE | MREMAP_FIXED)) ||
	    ((flags & MREMAP_FIXED) && !(flags & MREMAP_MAYMOVE)))
		return -EINVAL;
	old_len = PAGE_UP(old_len);
	new_len = PAGE_UP(new_len);
	if (r && old + old_len > r->end) {
		join_from(old, old_len);
		r = region_at(old);
	}
	if (!r || old + old_len > r->end)
		return -EFAULT;
	if (r->shared == 1)
		return remap_shared(r, old, old_len, new_len, flags, new_addr, prot, floor);
	if (!(flags & MREMAP_FIXED)) {
		if (new_len <= old_len) {
			unmap_range(old + new_len, old + old_len, 0);
			return old;
		}
		if (room(old, new_len) && !overlaps(old + old_len, old + new_len) &&
		    !unmap_range(old + old_len, old + new_len, 0) /* holes only */) {
			r = region_at(old);
			if (r->ptes && r->end < old + new_len)
				set_ptes(r->end, old + new_len, restricted(prot) ? prot : PROT_RESET);
			r->end = r->end > old + new_len ? r->end : old + new_len;
			/* Keep the array disjoint: a region ending at old+old_len grows. */
			return old;
		}
		if (!(flags & MREMAP_MAYMOVE))
			return -ENOMEM;
		to = in_high(old, old_len) ? find_high_gap(new_len) : 0;
		if (!to)
			to = find_gap(new_len, floor, 0, 0);
		if (!to)
			to = find_high_gap(new_len);
		if (!to)
			return -ENOMEM;
	} else {
		to = new_addr;
		if ((to & (PAGE_SIZE - 1)) || !room(to, new_len) ||
		    (to < old + old_len && old < to + new_len))
			return -EINVAL;
		unmap_range(to, to + new_len, 0);
	}
	ptes = r->ptes; /* add_region moves the array under r */
	if (add_region(to, to + new_len, 1, 0, prot, 0))
		return -ENOMEM;
	if (in_high(to, new_len)) {
		set_ptes(to, to + new_len, prot);
		region_at(to)->ptes = 1;
	}
	if (ptes) /* so that it can be read */
		set_ptes(old, old + old_len, PROT_RESET);
	/* Above RAM the host moves the pages it backs: a copy would touch all. */
	if (!in_high(old, old_len) || !in_high(to, new_len) ||
	    hostcall(HC_MOVE, 0, old, to, old_len < new_len ? old_len : new_len, 0, 0, 0))
		memcpy((void *)to, (void *)old, old_len < new_len ? old_len : new_len);
	unmap_range(old, old + old_len, 0);
	if (restricted(prot) && !in_high(to, new_len)) {
		set_ptes(to, to + new_len, prot);
		region_at(to)->ptes = 1;
	}
	return to;
}

/* MADV_DONTNEED makes private memory read as zero again; the rest is advice. */
static long do_madvise(u64 addr, u64 len, u64 advice, u64 d, u64 e, u64 f)
{
	if (addr & (PAGE_SIZE - 1))
		return -EINVAL;
	if (!user_ok(addr, PAGE_UP(len)))
		return -ENOMEM;
	if (advice == MADV_DONTNEED)
		for (int i = 0; i < nregions; i++) {
			u64 s = regions[i].start > addr ? regions[i].start : addr;
			u64 e = regions[i].end < addr + len ? regions[i].end : PAGE_UP(addr + len);

			if (s < e && regions[i].written && !regions[i].shared)
				zero_range(s, e, regions[i].ptes);
		}
	return 0;
}

/*
 * Threads run on several vCPUs at once and share the region list and the
 * break: each call holds one lock. A file mapping's host call happens with
 * it held, which only makes other vCPUs' mm calls wait for it.
 */
volatile int mm_lock; /* the host takes it too, to copy memory for fork */

#define LOCKED(name)                                                  \
	long sys_##name(u64 a, u64 b, u64 c, u64 d, u64 e, u64 f)     \
	{                                                             \
		long r;                                               \
		lock(&mm_lock);                                       \
		r = do_##name(a, b, c, d, e, f);                      \
		unlock(&mm_lock);                                     \
		return r;                                             \
	}

LOCKED(mmap)
LOCKED(munmap)
LOCKED(mprotect)
LOCKED(brk)
LOCKED(mremap)
LOCKED(madvise)
