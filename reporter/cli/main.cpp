// leakwatch: the reporter's command line. Dispatch only.
#include <cstdio>
#include <cstring>

#include "reporter/cli/commands.h"

namespace {
const char kUsageText[] =
    "usage: leakwatch COMMAND ...\n"
    "  run [--dir D] [--sample-bytes N] [--interval S] [--match GLOBS] [--fail-on-growth[=BYTES_PER_S]] -- PROG ARGS...\n"
    "  report DIR|FILES... [--format text|json|folded|html|pprof|prom] [--top N] [--out F] [--root ROOTFS] [--debug-dir D]\n"
    "  diff A B            what grew between two dumps (or two directories)\n"
    "  inspect DUMP...     validate dumps and print what they hold\n"
    "  env-help            the shim's environment variables\n";
}

int main(int argc, char** argv) {
  using namespace leakwatch::cli;
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "help")) {
    std::fputs(kUsageText, argc < 2 ? stderr : stdout);
    return argc < 2 ? kUsage : kOk;
  }
  const char* cmd = argv[1];
  if (!std::strcmp(cmd, "report")) return cmd_report(argc - 2, argv + 2);
  if (!std::strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2);
  if (!std::strcmp(cmd, "diff")) return cmd_diff(argc - 2, argv + 2);
  if (!std::strcmp(cmd, "inspect")) return cmd_inspect(argc - 2, argv + 2);
  if (!std::strcmp(cmd, "env-help")) return cmd_env_help(argc - 2, argv + 2);
  std::fprintf(stderr, "leakwatch: unknown command '%s'\n%s", cmd, kUsageText);
  return kUsage;
}
