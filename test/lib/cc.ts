// Small C programs the tests run, compiled where the test keeps its scratch.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

/** Writes SOURCE to DIR/NAME.c and compiles it (-O2 -Wall, then FLAGS) to DIR/NAME; returns that path. */
export function compileC(dir: string, name: string, source: string, flags: readonly string[] = []): string {
  const src = path.join(dir, `${name}.c`);
  const out = path.join(dir, name);
  writeFileSync(src, source);
  execFileSync('cc', ['-O2', '-Wall', ...flags, '-o', out, src]);
  return out;
}

/**
 * The `connect ADDR PORT` op of the tests' syscall-script programs (an
 * `else if` branch of their op loop over argv, with i the op's index): a TCP
 * connect(2) to an IPv4 or IPv6 address, its result ignored. Needs
 * <arpa/inet.h>, <netinet/in.h>, <string.h>, <stdlib.h>, <sys/socket.h> and
 * <unistd.h>.
 */
export const CONNECT_OP_C = `		} else if (!strcmp(op, "connect")) {
			const char *a = argv[++i];
			int port = atoi(argv[++i]), fd;
			if (strchr(a, ':')) {
				struct sockaddr_in6 s = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
				inet_pton(AF_INET6, a, &s.sin6_addr);
				fd = socket(AF_INET6, SOCK_STREAM, 0);
				connect(fd, (void *)&s, sizeof s);
			} else {
				struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(port) };
				inet_pton(AF_INET, a, &s.sin_addr);
				fd = socket(AF_INET, SOCK_STREAM, 0);
				connect(fd, (void *)&s, sizeof s);
			}
			close(fd);`;
