/*
 * storm: fork+exec a program N times, keeping at most P children alive at
 * once, and report the wall time as one JSON line on stdout.
 *
 *   storm N P PROGRAM [ARG...]
 *
 * Every child must exit 0; any that does not (or any fork/exec failure) is
 * counted in "failed" and the exit status is 1, so a broken run is never
 * mistaken for a fast one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long parse_count(const char *what, const char *s, long max) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || !end || *end || v < 1 || v > max) {
    fprintf(stderr, "storm: %s must be an integer in 1..%ld, got '%s'\n", what, max, s);
    exit(2);
  }
  return v;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: storm N PARALLEL PROGRAM [ARG...]\n");
    return 2;
  }
  long n = parse_count("N", argv[1], 100000000L);
  long par = parse_count("PARALLEL", argv[2], 64);
  char **child_argv = &argv[3];
  char *empty_env[] = {NULL};

  long started = 0, finished = 0, failed = 0, running = 0;
  double t0 = now_s();
  while (finished < n) {
    while (running < par && started < n) {
      pid_t pid = fork();
      if (pid < 0) {
        /* count it as a failed exec and carry on: the run is marked failed */
        fprintf(stderr, "storm: fork: %s\n", strerror(errno));
        started++;
        finished++;
        failed++;
        continue;
      }
      if (pid == 0) {
        execve(child_argv[0], child_argv, empty_env);
        _exit(127);
      }
      started++;
      running++;
    }
    if (running == 0) break;
    int status = 0;
    pid_t w = wait(&status);
    if (w < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "storm: wait: %s\n", strerror(errno));
      return 1;
    }
    running--;
    finished++;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
  }
  double wall = now_s() - t0;

  struct rusage ru;
  getrusage(RUSAGE_CHILDREN, &ru);
  double child_cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  getrusage(RUSAGE_SELF, &ru);
  double self_cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  printf("{\"execs\":%ld,\"parallel\":%ld,\"failed\":%ld,\"wall_s\":%.6f,"
         "\"self_cpu_s\":%.6f,\"children_cpu_s\":%.6f}\n",
         n, par, failed, wall, self_cpu, child_cpu);
  return failed ? 1 : 0;
}
