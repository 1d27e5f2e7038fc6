/* capget and capset: the version probe, the sets of this process (as the
 * host process's own), dropping the effective set and raising it back,
 * and the EPERM for a permitted set that grows. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* <linux/capability.h>'s, which musl's headers lack. */
#define _LINUX_CAPABILITY_VERSION_3 0x20080522
struct __user_cap_header_struct {
	unsigned version;
	int pid;
};
struct __user_cap_data_struct {
	unsigned effective, permitted, inheritable;
};

static int capget_(struct __user_cap_header_struct *h, struct __user_cap_data_struct *d) {
	return syscall(SYS_capget, h, d);
}

static int capset_(struct __user_cap_header_struct *h, struct __user_cap_data_struct *d) {
	return syscall(SYS_capset, h, d);
}

static void show(const char *what) {
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	int r = capget_(&h, d);
	printf("%s: %d eff %08x%08x prm %08x%08x inh %08x%08x\n", what, r, d[1].effective,
	       d[0].effective, d[1].permitted, d[0].permitted, d[1].inheritable, d[0].inheritable);
}

int main(void) {
	struct __user_cap_header_struct h = {0x12345678, 0};
	int r = capget_(&h, NULL);
	printf("probe: %d version %#x\n", r, h.version);
	h.version = 0x12345678;
	r = capget_(&h, (struct __user_cap_data_struct[2]){0});
	printf("bad version: %d %s, then %#x\n", r, r ? strerror(errno) : "", h.version);
	h = (struct __user_cap_header_struct){_LINUX_CAPABILITY_VERSION_3, 999999};
	r = capget_(&h, (struct __user_cap_data_struct[2]){0});
	printf("other pid: %d %s\n", r, r ? strerror(errno) : "");
	show("start");

	struct __user_cap_data_struct d[2];
	h = (struct __user_cap_header_struct){_LINUX_CAPABILITY_VERSION_3, 0};
	capget_(&h, d);
	struct __user_cap_data_struct keep[2];
	memcpy(keep, d, sizeof d);
	d[0].effective = d[1].effective = 0;
	printf("drop effective: %d\n", capset_(&h, d));
	show("dropped");
	printf("raise it back: %d\n", capset_(&h, keep));
	show("raised");
	/* Bits past the last capability are dropped, not refused. */
	keep[1].permitted |= 0x80000000u;
	r = capset_(&h, keep);
	printf("a capability that does not exist: %d\n", r);
	show("after");
	/* One this process lacks, if any (CAP_CHECKPOINT_RESTORE, 40, is the
	 * last since Linux 5.9): refused. */
	int missing = -1;
	for (int c = 0; c <= 40 && missing < 0; c++)
		if (!((c < 32 ? d[0].permitted : d[1].permitted) & (1u << (c & 31))))
			missing = c;
	if (missing < 0) {
		puts("grow permitted: nothing lacking");
		return 0;
	}
	capget_(&h, keep);
	keep[missing / 32].permitted |= 1u << (missing & 31);
	r = capset_(&h, keep);
	printf("grow permitted: %d %s\n", r, r ? strerror(errno) : "");
	return 0;
}
