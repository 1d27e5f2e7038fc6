/*
 * The platform's floor, measured from C with no hermitux code involved: a
 * bare long-mode guest at CPL 3 that runs N `syscall` round trips (to a
 * handler that is a single `jmp *%rcx`), then N MMIO-store exits, each
 * answered by this process. Prints ns per round trip for both.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <linux/kvm.h>

#define N 20000
#define MMIO 0x400000UL

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR), vm = ioctl(kvm, KVM_CREATE_VM, 0);
	size_t size = 4 << 20;
	uint8_t *mem = mmap(0, size, 3, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct kvm_userspace_memory_region r = { 0, 0, 0, size, (uint64_t)mem };
	if (kvm < 0 || vm < 0 || ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r)) {
		perror("kvm");
		return 1;
	}
	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	struct kvm_run *run = mmap(0, ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), 3, MAP_SHARED, vcpu, 0);

	/* Identity map with 2 MiB user pages; the third has no memslot. */
	uint64_t *pml4 = (void *)(mem + 0x10000), *pdpt = (void *)(mem + 0x11000), *pd = (void *)(mem + 0x12000);
	pml4[0] = 0x11000 | 7;
	pdpt[0] = 0x12000 | 7;
	pd[0] = 0x87;
	pd[1] = 0x200000 | 0x87;
	pd[2] = MMIO | 0x87;
	uint64_t *gdt = (void *)(mem + 0x13000);
	gdt[2] = 0x00af9a000000ffff;
	gdt[3] = 0x00cf92000000ffff;
	gdt[4] = 0x00cffa000000ffff;
	gdt[5] = 0x00cff2000000ffff;
	gdt[6] = 0x00affa000000ffff;

	static const uint8_t code[] = {
		0x48, 0xc7, 0xc3, N & 0xff, N >> 8, 0, 0,           /* mov $N, %rbx */
		0x0f, 0x05,                                         /* 1: syscall */
		0x48, 0xff, 0xcb, 0x75, 0xf9,                       /* dec %rbx; jnz 1b */
		0x48, 0xc7, 0xc3, N & 0xff, N >> 8, 0, 0,           /* mov $N, %rbx */
		0x48, 0xc7, 0x04, 0x25, 0, 0, 0x40, 0, 0, 0, 0, 0, /* 2: movq $0, MMIO */
		0x48, 0xff, 0xcb, 0x75, 0xef,                       /* dec %rbx; jnz 2b */
		0x48, 0xc7, 0x04, 0x25, 8, 0, 0x40, 0, 0, 0, 0, 0, /* movq $0, MMIO+8 */
	};
	memcpy(mem + 0x1000, code, sizeof code);
	mem[0x2000] = 0xff; /* jmp *%rcx: the whole syscall handler */
	mem[0x2001] = 0xe1;

	struct kvm_sregs s;
	ioctl(vcpu, KVM_GET_SREGS, &s);
	struct kvm_segment cs = { 0, 0xffffffff, 0x33, 11, 1, 3, 0, 1, 1, 1 };
	struct kvm_segment ds = { 0, 0xffffffff, 0x2b, 3, 1, 3, 1, 1, 0, 1 };
	s.cs = cs;
	s.ds = s.es = s.fs = s.gs = s.ss = ds;
	s.gdt.base = 0x13000;
	s.gdt.limit = 0x4f;
	s.cr0 = 0x80050033;
	s.cr3 = 0x10000;
	s.cr4 = 0x620;
	s.efer = 0xd01;
	ioctl(vcpu, KVM_SET_SREGS, &s);
	struct { struct kvm_msrs m; struct kvm_msr_entry e[3]; } msrs = { .m = { .nmsrs = 3 } };
	msrs.e[0].index = 0xc0000081, msrs.e[0].data = 0x0023001000000000ULL; /* STAR */
	msrs.e[1].index = 0xc0000082, msrs.e[1].data = 0x2000;                /* LSTAR */
	msrs.e[2].index = 0xc0000084, msrs.e[2].data = 0x47700;               /* SFMASK */
	ioctl(vcpu, KVM_SET_MSRS, &msrs);
	struct kvm_regs g = { .rip = 0x1000, .rsp = 0x300000, .rflags = 2 };
	ioctl(vcpu, KVM_SET_REGS, &g);

	double t0 = now(), t1 = 0;
	long exits = 0;
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0 || run->exit_reason != KVM_EXIT_MMIO) {
			fprintf(stderr, "unexpected exit %d\n", run->exit_reason);
			return 1;
		}
		if (!t1)
			t1 = now(); /* the first exit ends the syscall loop */
		if (run->mmio.phys_addr == MMIO + 8)
			break;
		exits++;
	}
	double t2 = now();
	printf("syscall %.1f ns\nexit %.1f ns\n", (t1 - t0) / N, (t2 - t1) / exits);
	return 0;
}
