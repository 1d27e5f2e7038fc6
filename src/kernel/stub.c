/*
 * --rewrite=stub: a `syscall` that traps right after `mov $NR, %eax`
 * (b8 imm32, glibc's and musl's usual wrapper) is rewritten, once the host
 * has proved from the code's unwind tables or symbols that the mov is a
 * whole instruction (HC_REWRITE), into
 *
 *	site - 5:  e9 rel32   jmp stub        (was b8 imm32: mov $NR, %eax)
 *	site:      0f 0b      ud2             (was 0f 05: syscall)
 *
 * and the stub, one per site in the shared area at STUB_ADDR, is
 *
 *	b8 imm32   mov $NR, %eax               what the mov did
 *	b9 imm32   mov $(site + 2), %ecx       where syscall returns
 *	e9 rel32   jmp stub_entry              entry.S: r11, rsp, SFMASK
 *	cc
 *
 * A jmp, not a call: nothing is pushed, so the red zone of a leaf wrapper
 * survives (a call's push would land on it). Page 0 stays unmapped. A jump
 * that lands on the old `syscall` meets the ud2: the host recognises the
 * site by the jmp before it and its stub (rewrite.ts) and enters
 * stub_entry as if the syscall had run, with the caller's rax; any other
 * ud2 raises SIGILL as on Linux.
 *
 * Writing code another thread may be running: the jmp goes first, in one
 * locked store of the aligned 8 or 16 bytes that hold all five (the host
 * declines other sites unless no other thread runs), then the ud2, one
 * byte (05 -> 0b). Every state a fetch can see is correct: mov+syscall,
 * jmp+syscall (the jmp never comes back to the syscall; a jump there still
 * traps as a syscall), jmp+ud2. The other order would show mov+ud2, a #UD
 * whose jmp is not there yet for the host to recognise. The stub is
 * written before the jmp that makes it reachable (x86 keeps stores in
 * order). Two vCPUs rewriting one site: the first compare-exchange wins,
 * the other leaves its stub unused.
 */
#include "kernel.h"

/* Sites the host said no to (or we could not patch): not asked again.
 * Open addressing, never emptied; a full window counts as seen. */
#define SEEN_SLOTS 1024
#define SEEN_PROBE 16
static u64 seen[SEEN_SLOTS];

static int seen_or_add(u64 site, int add)
{
	u64 h = (site * 0x9e3779b97f4a7c15UL) >> 54;
	int i;

	for (i = 0; i < SEEN_PROBE; i++) {
		u64 *slot = &seen[(h + i) % SEEN_SLOTS], v = __atomic_load_n(slot, __ATOMIC_RELAXED);

		if (v == site)
			return 1;
		if (v)
			continue;
		if (!add)
			return 0;
		if (__atomic_compare_exchange_n(slot, &v, site, 0, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED) || v == site)
			return 1;
	}
	return 1;
}

static int cas16(u64 at, u64 olo, u64 ohi, u64 nlo, u64 nhi)
{
	unsigned char ok;

	__asm__ volatile("lock cmpxchg16b %1\n\tsete %0"
			 : "=q"(ok), "+m"(*(volatile unsigned __int128 *)at), "+a"(olo), "+d"(ohi)
			 : "b"(nlo), "c"(nhi)
			 : "memory", "cc");
	return ok;
}

/*
 * Replaces the 5 bytes at `at` (old) by `new`: atomically when they lie in
 * one aligned 16-byte block, else (any_align: no other thread) plainly.
 */
static int write5(u64 at, const u8 *old, const u8 *new, int any_align)
{
	u64 block = at & ~15UL, off = at - block;
	union { u64 q[2]; u8 b[16]; } cur, next;
	int i;

	if (off > 11) {
		volatile u8 *p = (u8 *)at;

		if (!any_align)
			return 0;
		for (i = 0; i < 5; i++)
			if (p[i] != old[i])
				return 0;
		for (i = 4; i >= 0; i--)
			p[i] = new[i];
		return 1;
	}
	cur.q[0] = ((volatile u64 *)block)[0];
	cur.q[1] = ((volatile u64 *)block)[1];
	for (i = 0; i < 5; i++)
		if (cur.b[off + i] != old[i])
			return 0;
	next = cur;
	for (i = 0; i < 5; i++)
		next.b[off + i] = new[i];
	if (off + 5 <= 8)
		return __atomic_compare_exchange_n((u64 *)block, &cur.q[0], next.q[0], 0,
						   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	if (off >= 8)
		return __atomic_compare_exchange_n((u64 *)block + 1, &cur.q[1], next.q[1], 0,
						   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	return cas16(block, cur.q[0], cur.q[1], next.q[0], next.q[1]);
}

static void put32(u8 *p, u32 v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

extern char stub_entry[];

/* After the host's yes: a stub for the site, then the jmp, then the ud2. */
static int patch(u64 site, u32 nr, int any_align)
{
	u64 mov = site - 5;
	u32 slot = __atomic_fetch_add((u32 *)STUB_ADDR, 1, __ATOMIC_RELAXED);
	u8 *stub = (u8 *)(STUB_FIRST + (u64)slot * STUB_SIZE), old[5], jmp[5];
	long to_stub = (long)stub - (long)site, to_entry;
	unsigned char five = 0x05;
	int i;

	if (slot >= (STUB_END - STUB_FIRST) / STUB_SIZE)
		return 0;
	to_entry = (long)stub_entry - (long)(stub + 15);
	if (to_stub != (int)to_stub || to_entry != (int)to_entry || site + 2 > 0xffffffffUL)
		return 0;
	stub[0] = 0xb8;
	put32(stub + 1, nr);
	stub[5] = 0xb9;
	put32(stub + 6, site + 2);
	stub[10] = 0xe9;
	put32(stub + 11, to_entry);
	stub[15] = 0xcc;
	old[0] = 0xb8;
	for (i = 0; i < 4; i++)
		old[i + 1] = nr >> (8 * i);
	jmp[0] = 0xe9;
	put32(jmp + 1, to_stub);
	if (!write5(mov, old, jmp, any_align))
		return 0;
	__atomic_compare_exchange_n((u8 *)site + 1, &five, 0x0b, 0, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST);
	__atomic_fetch_add((u32 *)STUB_ADDR + 1, 1, __ATOMIC_RELAXED);
	return 1;
}

/*
 * Called for every syscall while BOOT->rewrite is REWRITE_STUB. Only a trap
 * (the site still holds 0f 05) right after `mov $imm32, %eax` with rax
 * still that value qualifies; the host checks the rest. The mov and the
 * syscall must share the site's page (the page before may not be mapped).
 */
void stub_site(struct frame *f)
{
	u64 site = f->rcx - 2, mov = site - 5;
	volatile u8 *p = (u8 *)mov;
	u32 nr;
	long ok;

	if (mov < USER_MIN || site + 2 > BOOT->mem_size || (site & (PAGE_SIZE - 1)) < 5)
		return;
	if (p[5] != 0x0f || p[6] != 0x05 || p[0] != 0xb8)
		return;
	nr = p[1] | p[2] << 8 | p[3] << 16 | (u32)p[4] << 24;
	if (nr != f->rax || seen_or_add(site, 0))
		return;
	ok = hostcall(HC_REWRITE, 0, site, 0, 0, 0, 0, 0);
	if (ok < 1 || !patch(site, nr, ok == 2))
		seen_or_add(site, 1);
}
