/*
 * --rewrite=stub: a `syscall` that traps is rewritten, when the instruction
 * I right before it is whole, 2 to 5 bytes long and able to run elsewhere
 * (`mov $NR, %eax`, b8 imm32, in glibc's and musl's usual wrapper; `xor
 * %eax, %eax` in glibc's read), into
 *
 *	I (5 bytes):  e9 rel32   jmp stub
 *	I (2-4):      eb rel8    jmp to `e9 rel32` (jmp stub) in padding nearby
 *	syscall:      0f 0b      ud2             (was 0f 05)
 *
 * The host proves I whole from the code's unwind tables or symbols, finds
 * padding that never runs for a short I, and writes the stub, one per site
 * in the shared area at STUB_ADDR (HC_REWRITE, src/vm/stubs.ts):
 *
 *	I, nops    what the site did before its syscall
 *	b9 imm32   mov $(site + 2), %ecx       where syscall returns
 *	e9 rel32   jmp stub_entry              entry.S: r11, rsp, as syscall
 *	cc
 *
 * A jmp, not a call: nothing is pushed, so the red zone of a leaf wrapper
 * survives (a call's push would land on it), and I may use rsp. Page 0
 * stays unmapped. A jump that lands on the old `syscall` meets the ud2: the
 * host recognises the site by the jump before it and its stub and enters
 * stub_entry as if the syscall had run, with the caller's rax; any other
 * ud2 raises SIGILL as on Linux.
 *
 * Writing code another thread may be running: the jump goes first, in one
 * locked store of the aligned 8 or 16 bytes that hold it (the host declines
 * other sites unless no other thread runs), then the ud2, one byte
 * (05 -> 0b). Every state a fetch can see is correct: I+syscall,
 * jump+syscall (the stub never comes back to the syscall; a jump there
 * still traps as a syscall), jump+ud2. The other order would show I+ud2,
 * a #UD whose jump is not there yet for the host to recognise. The stub
 * and the padding's jmp are complete before the jump that makes them
 * reachable (the host wrote them before answering; x86 keeps stores in
 * order). Two vCPUs rewriting one site: the first compare-exchange wins,
 * the other's stub stays unused.
 */
#include "kernel.h"

/*
 * Traps by site. A site is asked about at its second trap: one that runs
 * once is not worth asking (an answer costs a host call and the host's
 * decoding, ~0.2 ms in a process just started, a trap 17-34 us); 16 of the
 * 44 sites python3 -c pass runs are run once. Open addressing, never
 * emptied; a site that finds its window full is never asked about.
 */
#define SEEN_SLOTS 1024
#define SEEN_PROBE 16
#define ASK_AT     2
#define COUNT(n) ((u32 *)STUB_ADDR + (n)) /* the area's header (abi.h) */
static struct { u64 site; u32 traps, pad; } seen[SEEN_SLOTS];

/* Which trap at `site` this is (1: its first), or 0 if the table is full there. */
static u32 count_trap(u64 site)
{
	u64 h = (site * 0x9e3779b97f4a7c15UL) >> 54;
	int i;

	for (i = 0; i < SEEN_PROBE; i++) {
		__typeof__(&seen[0]) e = &seen[(h + i) % SEEN_SLOTS];
		u64 v = __atomic_load_n(&e->site, __ATOMIC_RELAXED);

		if (!v && !__atomic_compare_exchange_n(&e->site, &v, site, 0, __ATOMIC_RELAXED,
						       __ATOMIC_RELAXED) && v != site)
			continue;
		if (v && v != site)
			continue;
		return __atomic_add_fetch(&e->traps, 1, __ATOMIC_RELAXED);
	}
	return 0;
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
 * Replaces the n bytes at `at` (old) by `new`: atomically when they lie in
 * one aligned 16-byte block, else (any_align: no other thread) plainly.
 */
static int write_code(u64 at, const volatile u8 *old, const u8 *new, int n, int any_align)
{
	u64 block = at & ~15UL, off = at - block;
	union { u64 q[2]; u8 b[16]; } cur, next;
	int i;

	if (off + n > 16) {
		volatile u8 *p = (u8 *)at;

		if (!any_align)
			return 0;
		for (i = 0; i < n; i++)
			if (p[i] != old[i])
				return 0;
		for (i = n - 1; i >= 0; i--)
			p[i] = new[i];
		return 1;
	}
	cur.q[0] = ((volatile u64 *)block)[0];
	cur.q[1] = ((volatile u64 *)block)[1];
	for (i = 0; i < n; i++)
		if (cur.b[off + i] != old[i])
			return 0;
	next = cur;
	for (i = 0; i < n; i++)
		next.b[off + i] = new[i];
	if (off + n <= 8)
		return __atomic_compare_exchange_n((u64 *)block, &cur.q[0], next.q[0], 0,
						   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	if (off >= 8)
		return __atomic_compare_exchange_n((u64 *)block + 1, &cur.q[1], next.q[1], 0,
						   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	return cas16(block, cur.q[0], cur.q[1], next.q[0], next.q[1]);
}

/*
 * After the host's yes: the stub's address (| 1: any alignment will do),
 * I's length in bits 32-39, a short jump's rel8 in bits 40-47.
 */
static int patch(u64 site, u64 answer)
{
	u8 *stub = (u8 *)(answer & 0xfffffff0UL), jump[5];
	int len = (answer >> 32) & 0xff, n, i;
	u32 rel = (u64)stub - site;
	unsigned char five = 0x05;

	if ((u64)stub < STUB_FIRST || (u64)stub >= STUB_END || len < 2 || len > 5)
		return 0;
	if (len == 5) {
		jump[0] = 0xe9;
		for (i = 0; i < 4; i++)
			jump[i + 1] = rel >> (8 * i);
		n = 5;
	} else {
		jump[0] = 0xeb;
		jump[1] = answer >> 40;
		n = 2;
	}
	/* The stub begins with the instruction it replaces: the bytes expected. */
	if (!write_code(site - len, stub, jump, n, answer & 1))
		return 0;
	__atomic_compare_exchange_n((u8 *)site + 1, &five, 0x0b, 0, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST);
	__atomic_fetch_add(COUNT(1), 1, __ATOMIC_RELAXED);
	return 1;
}

/*
 * Called for every syscall while BOOT->rewrite is REWRITE_STUB. A trap (the
 * site still holds 0f 05) is counted; at a site's second, it is asked
 * about, once; the host checks everything. The instruction before must share the
 * site's page (the page before may not be mapped). Counts, for --stats:
 * traps, and trapped sites not asked about.
 */
void stub_site(struct frame *f)
{
	u64 site = f->rcx - 2;
	long answer;

	if (site < USER_MIN || site + 2 > BOOT->mem_size || *(volatile unsigned short *)site != 0x050f)
		return; /* not a trap: a stub, or a jump onto a ud2 */
	__atomic_fetch_add(COUNT(2), 1, __ATOMIC_RELAXED);
	if (count_trap(site) != ASK_AT)
		return;
	if (site - 5 < USER_MIN || (site & (PAGE_SIZE - 1)) < 5) {
		__atomic_fetch_add(COUNT(3), 1, __ATOMIC_RELAXED);
		return;
	}
	answer = hostcall(HC_REWRITE, 0, site, 0, 0, 0, 0, 0);
	if (answer > 0)
		patch(site, answer);
}
