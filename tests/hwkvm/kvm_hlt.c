// Smoke test for tests/hwkvm/run.sh: proves the guest's /dev/kvm runs code.
// Creates a VM with one vCPU in real mode, runs a single `hlt` (expects
// KVM_EXIT_HLT), then times N I/O exits from an `out` loop.
//
//   gcc -O2 -o "$HWKVM_CACHE/scratch/kvm_hlt" tests/hwkvm/kvm_hlt.c
//   tests/hwkvm/run.sh "$HWKVM_CACHE/scratch/kvm_hlt" [N]
//
// Exits 0 when both behave, 1 otherwise.
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

int main(int argc, char **argv) {
  int loops = argc > 1 ? atoi(argv[1]) : 1000;
  double t0 = now();

  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("open /dev/kvm");
  if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) die("KVM_GET_API_VERSION");
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) die("KVM_CREATE_VM");

  // One page at guest-physical 0x1000: `hlt` at 0x1000, `out 0x10, al; jmp $-2`
  // at 0x1010.
  unsigned char *mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) die("mmap");
  mem[0x000] = 0xf4;
  memcpy(mem + 0x010, "\xe6\x10\xeb\xfc", 4);
  struct kvm_userspace_memory_region region = {
      .slot = 0, .guest_phys_addr = 0x1000, .memory_size = 0x1000,
      .userspace_addr = (unsigned long)mem};
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");

  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) die("KVM_CREATE_VCPU");
  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size < 0) die("KVM_GET_VCPU_MMAP_SIZE");
  struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");

  // Real mode with CS base 0, so rip is the physical address.
  struct kvm_sregs sregs;
  if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) die("KVM_GET_SREGS");
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) die("KVM_SET_SREGS");
  struct kvm_regs regs = {.rip = 0x1000, .rflags = 0x2};
  if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");
  double t1 = now();

  if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
  double t2 = now();
  if (run->exit_reason != KVM_EXIT_HLT) {
    fprintf(stderr, "kvm_hlt: expected KVM_EXIT_HLT (%d), got exit reason %u\n", KVM_EXIT_HLT,
            run->exit_reason);
    return 1;
  }
  printf("kvm_hlt: KVM_EXIT_HLT ok; setup %.1f ms, first KVM_RUN %.1f ms\n", (t1 - t0) * 1e3,
         (t2 - t1) * 1e3);

  regs = (struct kvm_regs){.rip = 0x1010, .rflags = 0x2};
  if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");
  double t3 = now();
  for (int i = 0; i < loops; i++) {
    if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
    if (run->exit_reason != KVM_EXIT_IO || run->io.port != 0x10) {
      fprintf(stderr, "kvm_hlt: loop %d: expected KVM_EXIT_IO on port 0x10, got reason %u\n", i,
              run->exit_reason);
      return 1;
    }
  }
  double t4 = now();
  if (ioctl(vcpu, KVM_GET_REGS, &regs) < 0) die("KVM_GET_REGS");
  printf("kvm_hlt: %d I/O exits, %.1f us each; rip after the last is 0x%llx (out at 0x1010)\n",
         loops, loops ? (t4 - t3) / loops * 1e6 : 0.0, (unsigned long long)regs.rip);
  return 0;
}
