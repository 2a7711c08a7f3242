#include "shim/dump/writer.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim/dump/dir_budget.h"
#include "shim/dump/encoder.h"
#include "shim/dump/retention.h"
#include "shim/runtime/clock.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/identity.h"
#include "shim/runtime/kept_dirs.h"
#include "shim/runtime/lifecycle.h"
#include "shim/runtime/log.h"
#include "shim/runtime/no_cancel.h"
#include "shim/runtime/own_fds.h"
#include "shim/runtime/own_stack.h"
#include "shim/runtime/spinlock.h"

namespace leakwatch::shim {

namespace {
// A path in the dump directory goes through the directory kept open when
// the process changed its view (a chroot: runtime/kept_dirs.h). Otherwise
// the same system calls as ever (rename, unlink: a seccomp allowlist or a
// tracer may know only those).
const char* at_dir(const char* path, int* dir) {
  *dir = kept_dump_dir();
  const std::size_t n = std::strlen(g_config.dir);
  if (*dir >= 0 && std::strncmp(path, g_config.dir, n) == 0 && path[n] == '/') return path + n + 1;
  *dir = AT_FDCWD;
  return path;
}
int sys_open(const char* p, int f, mode_t m) {
  int dir;
  const char* rel = at_dir(p, &dir);
  return dir == AT_FDCWD ? own_open(p, f, m) : own_openat(dir, rel, f, m);
}
int sys_rename(const char* from, const char* to) {
  int a, b;
  const char* ra = at_dir(from, &a);
  const char* rb = at_dir(to, &b);
  return a == AT_FDCWD && b == AT_FDCWD ? ::rename(from, to) : ::renameat(a, ra, b, rb);
}
int sys_unlink(const char* p) {
  int dir;
  const char* rel = at_dir(p, &dir);
  return dir == AT_FDCWD ? ::unlink(p) : ::unlinkat(dir, rel, 0);
}
}  // namespace

FileOps g_file_ops = {sys_open, ::write, own_close, sys_rename, sys_unlink, ::mkdir};

namespace {

SpinLock g_dump_lock;
__thread bool t_dumping __attribute__((tls_model("initial-exec")));  // this thread holds g_dump_lock
uint64_t g_seq = 0;
bool g_final_written = false;
bool g_dir_failing = false;
uint64_t g_dir_rng = 0;  // when to look at the whole directory (dump/dir_budget.h)
Retention g_retention;
std::atomic<uint64_t> g_max_rss{0};  // the highest resident size a kept dump recorded

const char* errno_text(int e) {
  const char* d = strerrordesc_np(e);  // no locale, no allocation
  return d ? d : "unknown error";
}

void file_name(char* out, int cap, uint64_t seq, bool tmp) {
  char base[72];
  int n = 0;
  for (const char* s = g_identity.exe_base; *s && n < format::kNameExeMax; ++s)
    base[n++] = format::name_exe_char(*s) ? *s : '_';
  if (!n) base[n++] = 'x';
  base[n] = '\0';
  char inst[format::kNameInstanceDigits + 1];
  for (int i = 0; i < format::kNameInstanceDigits; ++i)
    inst[i] = "0123456789abcdef"[(g_identity.instance >> (60 - 4 * i)) & 15];
  inst[format::kNameInstanceDigits] = '\0';
  char seqs[format::kNameSeqDigits + 1];
  for (int i = format::kNameSeqDigits - 1; i >= 0; --i) seqs[i] = static_cast<char>('0' + (seq % 10)), seq /= 10;
  seqs[format::kNameSeqDigits] = '\0';
  format(out, cap, "%s/%s%s.%d.%s.%s%s%s", g_config.dir, tmp ? "." : "", base, g_identity.pid, inst, seqs,
         format::kFileSuffix, tmp ? ".tmp" : "");
}

// mkdir -p. Returns the errno of the first component that could not be
// created (0 if all exist), so a failing open can say why: "Read-only
// file system" is more use to a user than the ENOENT that follows it.
// A directory made here is left as /tmp is (1777: anyone may add files,
// only their owner removes them; parents 0755): a server started as root
// forks workers that drop to another user, and those leak as much as
// anyone. Each dump stays 0600, readable by its writer and root only.
int make_dirs(const char* dir) {
  if (kept_dump_dir() >= 0) return 0;  // it exists, wherever the path leads now
  char path[kMaxPath];
  std::size_t n = std::strlen(dir);
  if (n >= sizeof path) return ENAMETOOLONG;
  std::memcpy(path, dir, n + 1);
  int err = 0;
  std::size_t leaf_end = n;  // "dir/" names dir
  while (leaf_end > 1 && path[leaf_end - 1] == '/') --leaf_end;
  for (std::size_t i = 1; i <= n; ++i) {
    if (path[i] == '/' || path[i] == '\0') {
      char c = path[i];
      path[i] = '\0';
      const mode_t mode = i >= leaf_end ? 01777 : 0755;
      if (g_file_ops.mkdir(path, mode) == 0) {
        ::chmod(path, mode);  // not narrowed by the host's umask
      } else if (errno != EEXIST) {
        err = errno;
      }
      path[i] = c;
      if (err) break;
    }
  }
  return err;
}

bool write_file(const ByteBuffer& bytes, uint64_t seq) {
  char tmp[kMaxPath + 128], final_path[kMaxPath + 128];
  file_name(tmp, sizeof tmp, seq, true);
  file_name(final_path, sizeof final_path, seq, false);
  int mkdir_err = make_dirs(g_config.dir);
  int fd = g_file_ops.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST) {  // a stale temp file of ours: replace it
    g_file_ops.unlink(tmp);
    fd = g_file_ops.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  }
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT && mkdir_err) e = mkdir_err;
    // EACCES is most often a process that changed user (a worker of a
    // server started as root) in a directory made for the first one.
    log_once(Once::kDumpDirUnwritable, "cannot write dumps in %s as uid %d: %s%s; will retry every interval",
             g_config.dir, static_cast<int>(geteuid()), errno_text(e),
             e == EACCES ? " (a process that changes user needs a directory that user may write: mode 1777 is how "
                           "leakwatch makes one)"
                         : "");
    g_dir_failing = true;
    return false;
  }
  const uint8_t* p = bytes.data();
  std::size_t left = bytes.size();
  int err = 0;
  while (left > 0) {
    ssize_t n = g_file_ops.write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : ENOSPC;
      break;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (g_file_ops.close(fd) != 0 && !err) err = errno;
  if (!err && g_file_ops.rename(tmp, final_path) != 0) err = errno;
  if (err) {
    g_file_ops.unlink(tmp);
    log_once(Once::kDumpWriteFailed, "cannot write dump %s: %s; will retry every interval", final_path,
             errno_text(err));
    g_dir_failing = true;
    return false;
  }
  if (g_dir_failing) {
    g_dir_failing = false;
    log_line("writing dumps to %s again", g_config.dir);
    reset_once(Once::kDumpDirUnwritable);
    reset_once(Once::kDumpWriteFailed);
  }
  return true;
}


void remove_dump(uint64_t seq, void*) {
  char path[kMaxPath + 128];
  file_name(path, sizeof path, seq, false);
  g_file_ops.unlink(path);
}

// A dump asked for is kept; so is the one with the highest resident size.
uint8_t pin_of(DumpReason r, uint64_t rss) {
  uint8_t pin = r == DumpReason::kTrigger ? kPinTrigger : kPinNone;
  if (rss > g_max_rss.load(std::memory_order_relaxed)) {
    g_max_rss.store(rss, std::memory_order_relaxed);
    pin |= kPinHighWater;
  }
  return pin;
}

// The directory as a whole (dump/dir_budget.h); this process's names
// start "exe.pid.instance.".
void trim_directory(uint64_t bytes, Arena* scratch) {
  char path[kMaxPath + 128];
  file_name(path, sizeof path, 0, false);
  char* base = std::strrchr(path, '/');
  base = base ? base + 1 : path;
  std::size_t n = std::strlen(base);
  const std::size_t tail = format::kNameSeqDigits + std::strlen(format::kFileSuffix);  // "000000.lwdump"
  if (n <= tail) return;
  base[n - tail] = '\0';
  if (!g_dir_rng) g_dir_rng = g_identity.instance | 1;
  dir_budget_after_write(g_config.dir, base, bytes, g_config.dir_max_bytes, &g_dir_rng, scratch);
}

struct DumpJob {
  DumpReason reason;
  bool ok;
};

// The dump itself, on the shim's own stack, with the dump lock held.
void write_dump(void* arg) {
  auto* job = static_cast<DumpJob*>(arg);
  Arena scratch;
  {
    PayloadBuilder b(&scratch);
    ByteBuffer file;
    DumpFacts facts;
    facts.seq = g_seq;
    facts.reason = job->reason;
    // One moment for the file and for retention: a write slowed down by a
    // busy machine must not move the dump into the next bucket (where it
    // would displace, or be displaced by, the next one).
    facts.mono_ns = mono_ns();
    facts.wall_ns = wall_ns();
    facts.retention_level = static_cast<uint64_t>(g_retention.level());
    read_proc_memory(&facts.memory);
    const BuildResult built = build_payload(b, scratch, facts);
    if (built == BuildResult::kOk && seal_dump(b.bytes(), &scratch, &file)) {
      job->ok = write_file(file, facts.seq);
      if (job->ok) {
        ++g_seq;
        uint8_t pin = pin_of(job->reason, facts.memory.rss);
        g_retention.add(KeptDump{facts.seq, facts.mono_ns - g_identity.start_mono_ns, file.size(), pin}, remove_dump,
                        nullptr);
        trim_directory(file.size(), &scratch);
      }
    } else if (built == BuildResult::kNoMaps) {
      log_once(Once::kNoProcMaps, "cannot read /proc/self/maps; no dumps while it cannot be read");
    } else {
      log_once(Once::kInternalOom, "out of memory while building a dump; skipping it");
    }
  }
  scratch.reset();
}

bool acquire_dump_lock(DumpReason reason) {
  if (g_dump_lock.try_lock()) return true;
  if (reason != DumpReason::kFinal) return false;  // someone is writing one now: skip this one
  if (t_dumping) return false;  // this thread, mid-dump (a signal handler calling exit): never wait for ourselves
  // The final dump waits for a dump in progress on another thread (a few
  // ms; longer only if that thread is descheduled on a loaded machine or
  // its disk stalls), then gives up rather than delay the exit further.
  // (Yields, not sleeps: nanosleep is a cancellation point.)
  const uint64_t give_up = mono_ns() + 1000ull * 1000000ull;
  while (mono_ns() < give_up) {
    sched_yield();
    if (g_dump_lock.try_lock()) return true;
  }
  return false;
}

}  // namespace

bool writer_init() {
  uint64_t width = static_cast<uint64_t>(g_config.interval_s * 1e9);
  // A process keeps at most half the directory's budget itself: the rest
  // is for the others (dump/dir_budget.h).
  const uint64_t own_bytes = std::min<uint64_t>(g_config.max_bytes, g_config.dir_max_bytes / 2);
  // The directory now, not at the first dump: a server started as root
  // may fork workers that drop to another user before it dumps at all.
  make_dirs(g_config.dir);
  if (g_retention.init(g_config.max_dumps, own_bytes, width) && payload_init() && own_stack_init()) return true;
  payload_release();
  g_retention.release();
  return false;
}

bool dump_now(DumpReason reason) {
  Guard guard;
  // A thread cancelled in write would keep the lock for good (and its
  // unwind would cross the shim's own stack).
  NoCancel no_cancel;
  DumpJob job{reason, false};
  if (acquire_dump_lock(reason)) {
    t_dumping = true;
    if (!g_final_written) {
      run_on_own_stack(write_dump, &job);
      if (reason == DumpReason::kFinal) g_final_written = true;
    }
    t_dumping = false;
    g_dump_lock.unlock();
  }
  return job.ok;
}

uint64_t writer_max_rss() { return g_max_rss.load(std::memory_order_relaxed); }

void writer_after_fork_child() {
  if (g_dump_lock.held()) payload_after_fork_child();
  g_dump_lock.reset();
  t_dumping = false;
  g_max_rss.store(0, std::memory_order_relaxed);
  g_seq = 0;
  g_retention.clear();
  g_final_written = false;
  g_dir_failing = false;
  g_dir_rng = 0;
}

}  // namespace leakwatch::shim
