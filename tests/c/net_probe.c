/* One network operation per argument, one line each with its errno name,
 * for the network grant tests (tests/grants_test.ts):
 *   tcp:ADDR:PORT    connect, send "ping", read the reply
 *   udp:ADDR:PORT    sendto "ping" (no connect)
 *   udpc:ADDR:PORT   connect, then send "ping"
 *   msg:ADDR:PORT    sendmsg "ping" with msg_name
 *   tcp6:ADDR:PORT   as tcp on an AF_INET6 socket (ADDR may be ::ffff:a.b.c.d)
 *   bind:ADDR:PORT   bind a TCP socket and listen
 *   listen           listen on an unbound TCP socket (any address, a free port)
 *   unix:PATH        connect to a Unix stream socket, send "ping"
 *   unixmsg:PATH     sendto "ping" on a Unix datagram socket, msg_name PATH
 *   own:PATH         bind a Unix socket at PATH, listen, connect to it, unlink
 *   raw              a raw ICMP socket
 *   lookup:NAME      getaddrinfo (the answer's first address)
 * Arguments are split at the last ':' (ADDR may be IPv6). */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

static const char *name(int e)
{
	switch (e) {
	case 0: return "OK";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ENOENT: return "ENOENT";
	case EINVAL: return "EINVAL";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case EADDRINUSE: return "EADDRINUSE";
	case ENETUNREACH: return "ENETUNREACH";
	default: return "other";
	}
}

static int in4(const char *a, int port, struct sockaddr_in *s)
{
	memset(s, 0, sizeof *s);
	s->sin_family = AF_INET;
	s->sin_port = htons(port);
	return inet_pton(AF_INET, a, &s->sin_addr) == 1 ? 0 : -1;
}

static int in6(const char *a, int port, struct sockaddr_in6 *s)
{
	memset(s, 0, sizeof *s);
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(port);
	return inet_pton(AF_INET6, a, &s->sin6_addr) == 1 ? 0 : -1;
}

static socklen_t un(const char *path, struct sockaddr_un *s)
{
	memset(s, 0, sizeof *s);
	s->sun_family = AF_UNIX;
	strncpy(s->sun_path, path, sizeof s->sun_path - 1);
	return sizeof *s;
}

/* Sends "ping" and reads a reply: "" when the peer sends none. */
static int ping(int fd, char *reply, size_t cap)
{
	if (send(fd, "ping", 4, 0) != 4) return -1;
	shutdown(fd, SHUT_WR);
	ssize_t n = recv(fd, reply, cap - 1, 0);
	reply[n > 0 ? n : 0] = 0;
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	for (int i = 1; i < argc; i++) {
		char op[16] = "", a[256] = "", reply[64] = "";
		int port = 0;
		char *colon = strchr(argv[i], ':');
		size_t oplen = colon ? (size_t)(colon - argv[i]) : strlen(argv[i]);
		snprintf(op, sizeof op, "%.*s", (int)oplen, argv[i]);
		if (colon) {
			snprintf(a, sizeof a, "%s", colon + 1);
			char *last = strrchr(a, ':');
			if (last && strcmp(op, "unix") && strcmp(op, "unixmsg") && strcmp(op, "own") &&
			    strcmp(op, "lookup")) {
				*last = 0;
				port = atoi(last + 1);
			}
		}
		errno = 0;
		int fd = -1;
		struct sockaddr_in s4;
		struct sockaddr_in6 s6;
		struct sockaddr_un su;
		if (!strcmp(op, "tcp")) {
			fd = socket(AF_INET, SOCK_STREAM, 0);
			if (in4(a, port, &s4) == 0 && connect(fd, (void *)&s4, sizeof s4) == 0)
				ping(fd, reply, sizeof reply);
		} else if (!strcmp(op, "tcp6")) {
			fd = socket(AF_INET6, SOCK_STREAM, 0);
			if (fd >= 0 && in6(a, port, &s6) == 0 && connect(fd, (void *)&s6, sizeof s6) == 0)
				ping(fd, reply, sizeof reply);
		} else if (!strcmp(op, "udp")) {
			fd = socket(AF_INET, SOCK_DGRAM, 0);
			if (in4(a, port, &s4) == 0) sendto(fd, "ping", 4, 0, (void *)&s4, sizeof s4);
		} else if (!strcmp(op, "udpc")) {
			fd = socket(AF_INET, SOCK_DGRAM, 0);
			if (in4(a, port, &s4) == 0 && connect(fd, (void *)&s4, sizeof s4) == 0)
				send(fd, "ping", 4, 0);
		} else if (!strcmp(op, "msg")) {
			fd = socket(AF_INET, SOCK_DGRAM, 0);
			in4(a, port, &s4);
			struct iovec iov = { "ping", 4 };
			struct msghdr m = { .msg_name = &s4, .msg_namelen = sizeof s4, .msg_iov = &iov, .msg_iovlen = 1 };
			sendmsg(fd, &m, 0);
		} else if (!strcmp(op, "bind")) {
			fd = socket(AF_INET, SOCK_STREAM, 0);
			int one = 1;
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
			if (in4(a, port, &s4) == 0 && bind(fd, (void *)&s4, sizeof s4) == 0) listen(fd, 1);
		} else if (!strcmp(op, "listen")) {
			fd = socket(AF_INET, SOCK_STREAM, 0);
			listen(fd, 1);
		} else if (!strcmp(op, "unix")) {
			fd = socket(AF_UNIX, SOCK_STREAM, 0);
			socklen_t l = un(a, &su);
			if (connect(fd, (void *)&su, l) == 0) ping(fd, reply, sizeof reply);
		} else if (!strcmp(op, "unixmsg")) {
			fd = socket(AF_UNIX, SOCK_DGRAM, 0);
			socklen_t l = un(a, &su);
			struct iovec iov = { "ping", 4 };
			struct msghdr m = { .msg_name = &su, .msg_namelen = l, .msg_iov = &iov, .msg_iovlen = 1 };
			sendmsg(fd, &m, 0);
		} else if (!strcmp(op, "own")) {
			int l = socket(AF_UNIX, SOCK_STREAM, 0);
			socklen_t len = un(a, &su);
			unlink(a);
			errno = 0;
			if (bind(l, (void *)&su, len) == 0 && listen(l, 1) == 0) {
				fd = socket(AF_UNIX, SOCK_STREAM, 0);
				if (connect(fd, (void *)&su, len) == 0) {
					int c = accept(l, NULL, NULL);
					send(fd, "ping", 4, 0);
					ssize_t n = recv(c, reply, sizeof reply - 1, 0);
					reply[n > 0 ? n : 0] = 0;
					close(c);
				}
			}
			int e = errno;
			unlink(a);
			close(l);
			errno = e;
		} else if (!strcmp(op, "raw")) {
			fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
		} else if (!strcmp(op, "lookup")) {
			struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res;
			int r = getaddrinfo(a, NULL, &hints, &res);
			if (r == 0) {
				inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, reply, sizeof reply);
				freeaddrinfo(res);
			} else {
				snprintf(reply, sizeof reply, "failed");
			}
			errno = 0;
		}
		int e = errno;
		if (fd >= 0) close(fd);
		printf("%s %s%s%s\n", argv[i], name(e), reply[0] ? " " : "", reply);
	}
	return 0;
}
