// run_if_cpu_runs SET TEST [ARGS...]: runs TEST, a test compiled with the kernel set SET's
// flags, if this CPU runs that set, else exits with ctest's "skipped" code. The check cannot be
// the test's own: its code may hold the set's instructions anywhere, even in what would run
// before or during such a check (a sanitized build poisons the stack with them).
#include <unistd.h>

#include <cstdio>

#include "check.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: run_if_cpu_runs SET TEST [ARGS...]\n");
    return 2;
  }
  if (!eigengru_test::cpu_runs(argv[1])) return eigengru_test::kSkipped;
  execv(argv[2], argv + 2);
  std::perror(argv[2]);
  return 1;
}
