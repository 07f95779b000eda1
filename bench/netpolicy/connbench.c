// SPDX-License-Identifier: Apache-2.0
/*
 * Load for the network policy benchmark (bench/netpolicy/run.mjs).
 *
 *   connbench server ADDR PORT conn     accept, then close at once with an RST
 *                                       (SO_LINGER 0: no TIME_WAIT piles up at
 *                                       tens of thousands of connections a second)
 *   connbench server ADDR PORT echo     echo what each connection sends (a thread each)
 *   connbench conn ADDR PORT SECONDS [THREADS]
 *                                       connect, wait for the server's close (so the
 *                                       accept happened), close; as often as it can,
 *                                       in THREADS threads (default 1)
 *   connbench rr ADDR PORT SECONDS CONNS SIZE
 *                                       CONNS connections, each a loop of SIZE bytes
 *                                       out and SIZE bytes back
 *
 * Clients print one JSON line: {"ops": N, "seconds": S, "per_s": R, "all_ops": A,
 * "cpu_s": C, "errors": E, "first_error": "..."}: ops and per_s over the measured
 * S seconds (the first 0.5 s are warm-up and not counted), all_ops and cpu_s (the
 * client's user+system CPU) over its whole run.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in addr;
static double seconds;
static int size;
static atomic_long ops, all_ops, errors;
static atomic_int first_errno;
static atomic_int counting, stop;

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(int err)
{
	int zero = 0;
	atomic_fetch_add(&errors, 1);
	atomic_compare_exchange_strong(&first_errno, &zero, err);
}

static void *echo_conn(void *arg)
{
	int fd = (int)(long)arg;
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n <= 0)
			break;
		if (write(fd, buf, n) != n)
			break;
	}
	close(fd);
	return NULL;
}

static int serve(const char *mode)
{
	int one = 1;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(s, (struct sockaddr *)&addr, sizeof addr) || listen(s, 4096)) {
		perror("bind/listen");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	int echo = !strcmp(mode, "echo");
	struct linger rst = { .l_onoff = 1, .l_linger = 0 };
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c < 0)
			continue;
		if (echo) {
			pthread_t t;
			setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			pthread_create(&t, NULL, echo_conn, (void *)(long)c);
			pthread_detach(t);
		} else {
			setsockopt(c, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
			close(c);
		}
	}
}

static void *conn_loop(void *arg)
{
	(void)arg;
	char b;
	while (!atomic_load(&stop)) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0) {
			fail(errno);
			continue;
		}
		if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) {
			fail(errno);
			close(fd);
			if (errno == EPERM || errno == ECONNREFUSED)
				usleep(1000);
			continue;
		}
		/* the server closes (RST) right after accept: wait for it */
		ssize_t n = read(fd, &b, 1);
		if (n < 0 && errno != ECONNRESET)
			fail(errno);
		else {
			atomic_fetch_add(&all_ops, 1);
			if (atomic_load(&counting))
				atomic_fetch_add(&ops, 1);
		}
		close(fd);
	}
	return NULL;
}

static void *rr_loop(void *arg)
{
	(void)arg;
	int one = 1;
	char *buf = calloc(1, size);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) {
		fail(errno);
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	while (!atomic_load(&stop)) {
		if (write(fd, buf, size) != size) {
			fail(errno);
			break;
		}
		int got = 0;
		while (got < size) {
			ssize_t n = read(fd, buf + got, size - got);
			if (n <= 0) {
				fail(n < 0 ? errno : EPIPE);
				goto out;
			}
			got += n;
		}
		atomic_fetch_add(&all_ops, 1);
		if (atomic_load(&counting))
			atomic_fetch_add(&ops, 1);
	}
out:
	close(fd);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: connbench server ADDR PORT conn|echo | conn ADDR PORT SECONDS [THREADS] | rr ADDR PORT SECONDS CONNS SIZE\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	addr.sin_family = AF_INET;
	addr.sin_port = htons(atoi(argv[3]));
	if (inet_pton(AF_INET, argv[2], &addr.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", argv[2]);
		return 2;
	}
	if (!strcmp(argv[1], "server"))
		return serve(argv[4]);
	seconds = atof(argv[4]);
	int threads = 1;
	void *(*loop)(void *) = conn_loop;
	if (!strcmp(argv[1], "conn") && argc > 5)
		threads = atoi(argv[5]);
	if (!strcmp(argv[1], "rr")) {
		if (argc < 7)
			return 2;
		threads = atoi(argv[5]);
		size = atoi(argv[6]);
		loop = rr_loop;
	}
	pthread_t t[256];
	if (threads < 1 || threads > 256)
		return 2;
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, loop, NULL);
	usleep(500000);
	double t0 = now();
	atomic_store(&counting, 1);
	usleep((useconds_t)(seconds * 1e6));
	atomic_store(&counting, 0);
	double t1 = now();
	long n = atomic_load(&ops);
	atomic_store(&stop, 1);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	int e = atomic_load(&first_errno);
	printf("{\"ops\": %ld, \"seconds\": %.6f, \"per_s\": %.1f, \"all_ops\": %ld, \"cpu_s\": %.4f, "
	       "\"errors\": %ld, \"first_error\": \"%s\"}\n",
	       n, t1 - t0, n / (t1 - t0), atomic_load(&all_ops), cpu_seconds(), atomic_load(&errors), e ? strerror(e) : "");
	return 0;
}
