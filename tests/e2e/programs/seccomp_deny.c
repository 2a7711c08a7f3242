// Runs a command under a seccomp filter that kills the process on the
// given system calls, as a hardened service manager would (systemd's
// SystemCallFilter= kills on any call outside its list by default).
// Usage: seccomp_deny NAME[,NAME...] COMMAND [ARGS...]
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const struct {
  const char* name;
  long nr;
} kCalls[] = {
    {"mincore", SYS_mincore},         {"process_vm_readv", SYS_process_vm_readv},
    {"process_vm_writev", SYS_process_vm_writev}, {"ptrace", SYS_ptrace},
    {"perf_event_open", SYS_perf_event_open},   {"msync", SYS_msync},
};

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: seccomp_deny NAME[,NAME...] COMMAND [ARGS...]\n");
    return 2;
  }
  struct sock_filter prog[64];
  int n = 0;
  prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
  prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
  char list[512];
  snprintf(list, sizeof list, "%s", argv[1]);
  for (char* name = strtok(list, ","); name; name = strtok(NULL, ",")) {
    long nr = -1;
    for (size_t i = 0; i < sizeof kCalls / sizeof kCalls[0]; ++i)
      if (strcmp(kCalls[i].name, name) == 0) nr = kCalls[i].nr;
    if (nr < 0 || n > 60) {
      fprintf(stderr, "seccomp_deny: unknown system call %s\n", name);
      return 2;
    }
    prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1);
    prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  }
  prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct sock_fprog fprog = {(unsigned short)n, prog};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) != 0) {
    fprintf(stderr, "seccomp_deny: cannot install the filter: %s\n", strerror(errno));
    return 2;
  }
  execvp(argv[2], argv + 2);
  fprintf(stderr, "seccomp_deny: cannot run %s: %s\n", argv[2], strerror(errno));
  return 127;
}
