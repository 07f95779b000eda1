/*
 * openloop: open a file O_RDONLY and close it N times, as fast as it can or
 * paced at RATE opens per second, and report one JSON line on stdout.
 *
 *   openloop N PATH [RATE]
 *
 * RATE 0 (or none) runs flat out. Paced runs check the clock every 64 opens
 * and sleep while they are ahead of the schedule, so the rate holds over the
 * run without a syscall per open beyond openat and close themselves (the
 * sleeps are few: at most one per 64 opens). A paced run that falls behind
 * does not sprint to catch up by more than 64 opens at a time; how far behind
 * it ended is reported (behind_s), so an unreached rate is visible.
 *
 * One open before the clock starts checks that PATH opens at all; it is
 * reported as probe_opens, since a policy watching PATH sees it too.
 *
 * Any failed open or close is counted in "failed" and makes the exit status
 * 1: a broken run is never mistaken for a fast one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double parse_num(const char *what, const char *s, double min, double max) {
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || !end || *end || v < min || v > max) {
    fprintf(stderr, "openloop: %s must be a number in %.0f..%.0f, got '%s'\n", what, min, max, s);
    exit(2);
  }
  return v;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: openloop N PATH [RATE]\n");
    return 2;
  }
  long n = (long)parse_num("N", argv[1], 1, 1e10);
  const char *path = argv[2];
  double rate = argc == 4 ? parse_num("RATE", argv[3], 0, 1e9) : 0;

  /* fail before the clock starts, not a million times */
  int probe = open(path, O_RDONLY | O_CLOEXEC);
  if (probe < 0) {
    fprintf(stderr, "openloop: open %s: %s\n", path, strerror(errno));
    return 1;
  }
  close(probe);

  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  long failed = 0, sleeps = 0;
  double start = now_s();
  double sched = start; /* when open 0 was due; moves forward when the run falls behind */
  double slip = 0;
  for (long i = 0; i < n; i++) {
    if (rate > 0 && (i & 63) == 0) {
      double due = sched + (double)i / rate; /* when open number i is due */
      double t = now_s();
      if (t < due) {
        double d = due - t;
        struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        sleeps++;
      } else if (t - due > 64.0 / rate) {
        /* more than one batch behind: move the schedule, never sprint */
        double move = t - due - 64.0 / rate;
        sched += move;
        slip += move;
      }
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      failed++;
      continue;
    }
    if (close(fd) != 0) failed++;
  }
  double wall = now_s() - start;
  getrusage(RUSAGE_SELF, &ru1);
  double user = tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime);
  double sys = tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime);
  /* probe_opens: the open before the clock started, which a policy sees too */
  printf("{\"opens\":%ld,\"probe_opens\":1,\"failed\":%ld,\"rate_target\":%.0f,\"wall_s\":%.6f,\"user_s\":%.6f,"
         "\"sys_s\":%.6f,\"opens_per_s\":%.1f,\"sleeps\":%ld,\"behind_s\":%.6f,"
         "\"vol_ctx_switches\":%ld,\"invol_ctx_switches\":%ld}\n",
         n, failed, rate, wall, user, sys, (double)n / wall, sleeps, slip,
         ru1.ru_nvcsw - ru0.ru_nvcsw, ru1.ru_nivcsw - ru0.ru_nivcsw);
  return failed ? 1 : 0;
}
