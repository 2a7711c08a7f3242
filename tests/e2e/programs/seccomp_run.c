// Runs a command under a seccomp filter, as a hardened service manager
// would: "deny" kills the process on the listed system calls, "allow"
// kills it on any other (systemd's SystemCallFilter= with its default
// action). System calls are given by number (x86-64).
// Usage: seccomp_run deny|allow NR[,NR...] COMMAND [ARGS...]
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 4 || (strcmp(argv[1], "deny") != 0 && strcmp(argv[1], "allow") != 0)) {
    fprintf(stderr, "usage: seccomp_run deny|allow NR[,NR...] COMMAND [ARGS...]\n");
    return 2;
  }
  const int allow = strcmp(argv[1], "allow") == 0;
  const unsigned listed = allow ? SECCOMP_RET_ALLOW : SECCOMP_RET_KILL_PROCESS;
  const unsigned others = allow ? SECCOMP_RET_KILL_PROCESS : SECCOMP_RET_ALLOW;
  size_t cap = 8 + 2 * (strlen(argv[2]) + 1);
  struct sock_filter* prog = calloc(cap, sizeof *prog);
  if (!prog) return 2;
  size_t n = 0;
  prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
  prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
  for (char* at = argv[2]; *at;) {
    char* end;
    long nr = strtol(at, &end, 10);
    if (end == at || nr < 0 || (*end != ',' && *end != '\0')) {
      fprintf(stderr, "seccomp_run: not a system call number: %s\n", at);
      return 2;
    }
    prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1);
    prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, listed);
    at = *end ? end + 1 : end;
  }
  prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, others);
  struct sock_fprog fprog = {(unsigned short)n, prog};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) != 0) {
    fprintf(stderr, "seccomp_run: cannot install the filter: %s\n", strerror(errno));
    return 2;
  }
  execvp(argv[3], argv + 3);
  fprintf(stderr, "seccomp_run: cannot run %s: %s\n", argv[3], strerror(errno));
  return 127;
}
