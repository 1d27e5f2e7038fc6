/* Sockets in one thread: a Unix socket pair, a Unix listener bound in the
 * working directory (connect completes through the backlog before accept),
 * TCP and UDP on loopback, sendmsg/recvmsg with two iovecs, socket options,
 * and Linux's errors. Output is relations only (ports and paths differ). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "report.h"

static void roundtrip(const char *what, int a, int b)
{
	char buf[64] = { 0 };
	show(what, send(a, "ping", 4, 0));
	long n = recv(b, buf, sizeof buf, 0);
	printf("%s received %ld '%s'\n", what, n, buf);
}

int main(void)
{
	int sv[2];
	show("socketpair", socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ? -1 : 0);
	printf("cloexec %d\n", (fcntl(sv[0], F_GETFD) & FD_CLOEXEC) != 0);
	roundtrip("pair", sv[0], sv[1]);
	show("write/read on a socket", write(sv[1], "abc", 3));
	char c[4] = { 0 };
	show("read", read(sv[0], c, 3));

	/* Unix listener in the working directory */
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	strcpy(un.sun_path, "sock.here");
	unlink(un.sun_path);
	show("bind unix", bind(l, (struct sockaddr *)&un, sizeof un));
	show("bind unix again", bind(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&un, sizeof un));
	show("listen", listen(l, 4));
	int cl = socket(AF_UNIX, SOCK_STREAM, 0);
	show("connect unix", connect(cl, (struct sockaddr *)&un, sizeof un));
	int srv = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	printf("accepted %d\n", srv >= 0);
	roundtrip("unix", cl, srv);
	struct sockaddr_un missing = { .sun_family = AF_UNIX, .sun_path = "no-such.sock" };
	show("connect missing", connect(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&missing, sizeof missing));
	unlink("sock.here");

	/* TCP on loopback */
	int t = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	show("setsockopt SO_REUSEADDR", setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
	int v = 0;
	socklen_t vl = sizeof v;
	show("getsockopt SO_REUSEADDR", getsockopt(t, SOL_SOCKET, SO_REUSEADDR, &v, &vl));
	printf("value %d len %u\n", v, vl);
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	show("bind tcp", bind(t, (struct sockaddr *)&in, sizeof in));
	socklen_t len = sizeof in;
	show("getsockname", getsockname(t, (struct sockaddr *)&in, &len));
	printf("port assigned %d len %u\n", ntohs(in.sin_port) != 0, len);
	show("listen tcp", listen(t, 4));
	int tc = socket(AF_INET, SOCK_STREAM, 0);
	show("connect tcp", connect(tc, (struct sockaddr *)&in, sizeof in));
	struct sockaddr_in peer;
	socklen_t plen = sizeof peer;
	int ts = accept(t, (struct sockaddr *)&peer, &plen);
	printf("accepted %d peer loopback %d plen %u\n", ts >= 0, peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK), plen);
	show("setsockopt TCP_NODELAY", setsockopt(tc, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
	roundtrip("tcp", tc, ts);
	struct iovec iov[2] = { { "hel", 3 }, { "lo", 2 } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
	show("sendmsg", sendmsg(ts, &m, 0));
	char a[3] = { 0 }, b[8] = { 0 };
	struct iovec rio[2] = { { a, 2 }, { b, sizeof b - 1 } };
	struct msghdr rm = { .msg_iov = rio, .msg_iovlen = 2 };
	show("recvmsg", recvmsg(tc, &rm, 0));
	printf("parts '%s' '%s' flags %d\n", a, b, rm.msg_flags);
	show("shutdown", shutdown(tc, SHUT_WR));
	show("recv after peer shutdown", recv(ts, b, sizeof b, 0));
	show("connect refused", connect(socket(AF_INET, SOCK_STREAM, 0), (struct sockaddr *)&(struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(1), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) }, sizeof in));

	/* UDP */
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in ua = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bind(u, (struct sockaddr *)&ua, sizeof ua);
	len = sizeof ua;
	getsockname(u, (struct sockaddr *)&ua, &len);
	int us = socket(AF_INET, SOCK_DGRAM, 0);
	show("sendto", sendto(us, "dgram", 5, 0, (struct sockaddr *)&ua, sizeof ua));
	struct sockaddr_in from;
	socklen_t flen = sizeof from;
	char d[16] = { 0 };
	show("recvfrom", recvfrom(u, d, sizeof d, 0, (struct sockaddr *)&from, &flen));
	printf("'%s' from loopback %d flen %u\n", d, from.sin_addr.s_addr == htonl(INADDR_LOOPBACK), flen);

	show("socket bad family", socket(12345, SOCK_STREAM, 0));
	show("connect on a non-socket", connect(0 + open("/dev/null", O_RDONLY), (struct sockaddr *)&in, sizeof in));
	show("bind bad length", bind(socket(AF_INET, SOCK_STREAM, 0), (struct sockaddr *)&in, 2));
	show("send on a bad fd", send(999, "x", 1, 0));
	return 0;
}
