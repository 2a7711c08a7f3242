#include "shim/dump/writer.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim/dump/elf_symbols.h"
#include "shim/dump/encoder.h"
#include "shim/dump/modules.h"
#include "shim/record/recorder.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/identity.h"
#include "shim/runtime/lifecycle.h"
#include "shim/runtime/log.h"

namespace leakwatch::shim {

namespace {
int sys_open(const char* p, int f, mode_t m) { return ::open(p, f, m); }
}  // namespace

FileOps g_file_ops = {sys_open, ::write, ::close, ::rename, ::unlink, ::mkdir};

namespace {

SpinLock g_dump_lock;
uint64_t g_seq = 0;
bool g_final_written = false;
bool g_dir_failing = false;
// Retention: sequence numbers of this process's files still on disk.
uint64_t* g_kept = nullptr;
int g_kept_count = 0;
// Cumulative sample count per stack at the last dump (to include stacks
// that allocated since, even if nothing of theirs is live now).
uint64_t* g_last_total = nullptr;
SymbolResolver* g_symbols = nullptr;
// Every ELF module seen by an earlier dump. Blocks allocated by a library
// that was dlclose'd since are still live, and their frames still point
// into its old range: they are named from this list (and from the symbol
// table the resolver keeps mapped) instead of becoming "[unknown]".
constexpr int kMaxKnownModules = 2048;
ModuleInfo* g_known = nullptr;
int g_known_count = 0;
Arena g_known_arena;

void remember_modules(const ModuleMap& mods) {
  if (!g_known) return;
  for (int i = 0; i < mods.count; ++i) {
    const ModuleInfo& m = mods.mods[i];
    if (m.kind != format::kElf) continue;
    bool seen = false;
    for (int k = g_known_count - 1; k >= 0 && !seen; --k)
      seen = g_known[k].start == m.start && g_known[k].bias == m.bias && std::strcmp(g_known[k].path, m.path) == 0;
    if (seen || g_known_count >= kMaxKnownModules) continue;
    std::size_t n = std::strlen(m.path) + 1;
    char* path = static_cast<char*>(g_known_arena.alloc(n, 1));
    if (!path) return;
    std::memcpy(path, m.path, n);
    g_known[g_known_count] = m;
    g_known[g_known_count++].path = path;
  }
}

// The most recently seen module that covered addr, or -1.
int find_known(uintptr_t addr) {
  for (int k = g_known_count - 1; k >= 0; --k)
    if (addr >= g_known[k].start && addr < g_known[k].end) return k;
  return -1;
}
alignas(SymbolResolver) char g_symbols_storage[sizeof(SymbolResolver)];

const char* errno_text(int e) {
  const char* d = strerrordesc_np(e);  // no locale, no allocation
  return d ? d : "unknown error";
}

void file_name(char* out, int cap, uint64_t seq, bool tmp) {
  char base[72];
  int n = 0;
  for (const char* s = g_identity.exe_base; *s && n < 64; ++s) {
    char c = *s;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    base[n++] = ok ? c : '_';
  }
  if (!n) base[n++] = 'x';
  base[n] = '\0';
  char inst[17];
  for (int i = 0; i < 16; ++i) inst[i] = "0123456789abcdef"[(g_identity.instance >> (60 - 4 * i)) & 15];
  inst[16] = '\0';
  char seqs[8];
  for (int i = 5; i >= 0; --i) seqs[i] = static_cast<char>('0' + (seq % 10)), seq /= 10;
  seqs[6] = '\0';
  format(out, cap, "%s/%s%s.%d.%s.%s%s%s", g_config.dir, tmp ? "." : "", base, g_identity.pid, inst, seqs,
         format::kFileSuffix, tmp ? ".tmp" : "");
}

// mkdir -p. Returns the errno of the first component that could not be
// created (0 if all exist), so a failing open can say why: "Read-only
// file system" is more use to a user than the ENOENT that follows it.
int make_dirs(const char* dir) {
  char path[kMaxPath];
  std::size_t n = std::strlen(dir);
  if (n >= sizeof path) return ENAMETOOLONG;
  std::memcpy(path, dir, n + 1);
  int err = 0;
  for (std::size_t i = 1; i <= n; ++i) {
    if (path[i] == '/' || path[i] == '\0') {
      char c = path[i];
      path[i] = '\0';
      if (g_file_ops.mkdir(path, 0700) != 0 && errno != EEXIST) err = errno;
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
    log_once(Once::kDumpDirUnwritable, "cannot write dumps in %s: %s; will retry every interval", g_config.dir,
             errno_text(e));
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

void retain(uint64_t seq) {
  if (!g_kept) return;
  g_kept[g_kept_count++] = seq;
  if (g_kept_count <= g_config.max_dumps) return;
  // Thin the older half: keep the very first dump and every other one after it.
  int half = g_kept_count / 2;
  int w = 1;
  for (int r = 1; r < g_kept_count; ++r) {
    if (r < half && (r % 2) == 1) {
      char path[kMaxPath + 128];
      file_name(path, sizeof path, g_kept[r], false);
      g_file_ops.unlink(path);
      continue;
    }
    g_kept[w++] = g_kept[r];
  }
  g_kept_count = w;
}

struct Selected {
  uint32_t id;
  uint64_t live_bytes;
};

bool build_payload(PayloadBuilder& b, Arena& scratch, bool final_dump, uint64_t seq) {
  uint32_t nstacks = g_stacks.count();
  auto* sel = static_cast<Selected*>(scratch.alloc(sizeof(Selected) * (nstacks ? nstacks : 1)));
  if (!sel) return false;
  uint32_t nsel = 0;
  for (uint32_t id = 0; id < nstacks; ++id) {
    StackEntry* e = g_stacks.get(id);
    uint64_t total = e->total_samples();
    uint64_t live = e->live_samples();
    if (static_cast<int64_t>(live) > 0 || total != g_last_total[id]) sel[nsel++] = {id, e->live_bytes()};
    g_last_total[id] = total;
  }
  uint32_t nkept = nsel;
  if (nsel > kMaxRecords) {
    nkept = kMaxRecords - 1;
    std::nth_element(sel, sel + nkept, sel + nsel,
                     [](const Selected& a, const Selected& b) { return a.live_bytes > b.live_bytes; });
  }

  ModuleMap mods;
  if (!collect_modules(&scratch, g_identity.exe, &mods)) return false;
  remember_modules(mods);

  // Frame table: unique addresses among the kept stacks.
  uint64_t fcap = 1024;
  uint64_t nframes_total = 0;
  for (uint32_t i = 0; i < nkept; ++i) nframes_total += g_stacks.get(sel[i].id)->depth;
  while (fcap < nframes_total * 2) fcap <<= 1;
  auto* fkeys = static_cast<uintptr_t*>(scratch.alloc(sizeof(uintptr_t) * fcap));
  auto* fidx = static_cast<uint32_t*>(scratch.alloc(sizeof(uint32_t) * fcap));
  auto* faddr = static_cast<uintptr_t*>(scratch.alloc(sizeof(uintptr_t) * (nframes_total + 1)));
  auto* stack_frames = static_cast<uint32_t*>(scratch.alloc(sizeof(uint32_t) * (nframes_total + 1)));
  if (!fkeys || !fidx || !faddr || !stack_frames) return false;
  std::memset(fkeys, 0, sizeof(uintptr_t) * fcap);
  uint32_t nuniq = 0;
  uint64_t pos = 0;
  for (uint32_t i = 0; i < nkept; ++i) {
    StackEntry* e = g_stacks.get(sel[i].id);
    for (uint32_t f = 0; f < e->depth; ++f) {
      uintptr_t a = e->frames[f];
      uint64_t h = (a * 0x9E3779B97F4A7C15ULL) >> 20;
      for (uint64_t j = h & (fcap - 1);; j = (j + 1) & (fcap - 1)) {
        if (fkeys[j] == a + 1) {  // +1: 0 marks an empty slot
          stack_frames[pos++] = fidx[j];
          break;
        }
        if (fkeys[j] == 0) {
          fkeys[j] = a + 1;
          fidx[j] = nuniq;
          faddr[nuniq] = a;
          stack_frames[pos++] = nuniq++;
          break;
        }
      }
    }
  }

  // IDNT
  Identity& id = g_identity;
  b.begin_section(format::kIdentity);
  b.put(uint32_t{30});
  b.field_str("shim_version", "leakwatch 0.1.0");
  b.field_u64("pid", static_cast<uint64_t>(id.pid));
  b.field_u64("ppid", static_cast<uint64_t>(id.ppid));
  b.field_u64("instance", id.instance);
  b.field_str("exe", id.exe);
  b.field_str("argv0", id.argv0);
  b.field_str("cmdline", id.cmdline);
  b.field_str("hostname", id.hostname);
  b.field_str("container_id", id.container_id);
  b.field_u64("pid_ns", id.pid_ns);
  b.field_u64("mnt_ns", id.mnt_ns);
  b.field_u64("start_wall_ns", id.start_wall_ns);
  b.field_u64("start_mono_ns", id.start_mono_ns);
  b.field_u64("wall_ns", now_wall_ns());
  b.field_u64("mono_ns", now_mono_ns());
  b.field_u64("seq", seq);
  b.field_u64("final", final_dump ? 1 : 0);
  b.field_u64("sample_bytes", g_config.sample_bytes);
  b.field_f64("interval_s", g_config.interval_s);
  b.field_u64("max_frames", static_cast<uint64_t>(g_config.max_frames));
  b.field_u64("dropped_samples", g_dropped_samples.load(std::memory_order_relaxed));
  b.field_u64("stack_table_full", g_stacks.full() ? 1 : 0);
  b.field_u64("stacks_total", nstacks);
  b.field_u64("records_selected", nsel);
  b.field_u64("records_folded", nsel - nkept);
  b.field_u64("live_samples", g_samples.size());
  b.field_u64("shim_mapped_bytes", mapped_bytes());
  b.field_u64("dense_mode", dense_mode() ? 1 : 0);
  b.field_str("dump_dir", g_config.dir);
  b.field_str("match", g_config.match);
  b.end_section();

  // Frames outside every loaded module: look in modules unloaded since.
  auto* frame_mod = static_cast<int*>(scratch.alloc(sizeof(int) * (nuniq + 1)));
  auto* extra = static_cast<int*>(scratch.alloc(sizeof(int) * kMaxKnownModules));
  if (!frame_mod || !extra) return false;
  int nextra = 0;
  for (uint32_t i = 0; i < nuniq; ++i) {
    int mi = mods.find(faddr[i]);
    if (mi < 0) {
      int k = find_known(faddr[i]);
      if (k >= 0) {
        int e = 0;
        while (e < nextra && extra[e] != k) ++e;
        if (e == nextra) extra[nextra++] = k;
        mi = mods.count + e;
      }
    }
    frame_mod[i] = mi;
  }
  auto module_at = [&](int mi) -> const ModuleInfo& {
    return mi < mods.count ? mods.mods[mi] : g_known[extra[mi - mods.count]];
  };

  // MODS
  b.begin_section(format::kModules);
  b.put(static_cast<uint32_t>(mods.count + nextra));
  b.put(static_cast<uint32_t>(sizeof(format::Module)));
  for (int i = 0; i < mods.count + nextra; ++i) {
    const ModuleInfo& m = module_at(i);
    format::Module fm{m.start, m.end, m.bias, b.str(m.path), b.str(m.build_id), m.kind, 0};
    b.put(fm);
  }
  b.end_section();

  // FRMS
  b.begin_section(format::kFrames);
  b.put(nuniq);
  b.put(static_cast<uint32_t>(sizeof(format::Frame)));
  for (uint32_t i = 0; i < nuniq; ++i) {
    int mi = frame_mod[i];
    format::Frame fr{faddr[i], mi < 0 ? format::kNoModule : static_cast<uint32_t>(mi), 0, 0};
    if (mi >= 0) {
      SymbolHit hit = g_symbols->resolve(module_at(mi), faddr[i]);
      if (hit.name) fr.symbol = b.str(hit.name), fr.symbol_offset = hit.offset;
    }
    b.put(fr);
  }
  b.end_section();

  // STKS
  b.begin_section(format::kStacks);
  b.put(nkept);
  pos = 0;
  for (uint32_t i = 0; i < nkept; ++i) {
    uint32_t depth = g_stacks.get(sel[i].id)->depth;
    b.put(depth);
    b.append(stack_frames + pos, sizeof(uint32_t) * depth);
    pos += depth;
  }
  b.end_section();

  // RECS
  b.begin_section(format::kRecords);
  uint32_t nrec = nkept + (nsel > nkept ? 1 : 0);
  b.put(nrec);
  b.put(static_cast<uint32_t>(sizeof(format::Record)));
  // Counters are updated without a lock, so a snapshot can catch a free
  // half-way; live values are read as signed and never shown negative.
  auto nonneg = [](uint64_t v) {
    int64_t x = static_cast<int64_t>(v);
    return x < 0 ? uint64_t{0} : static_cast<uint64_t>(x);
  };
  auto rec_of = [&](StackEntry* e, uint32_t stack) {
    return format::Record{stack,
                          0,
                          nonneg(e->live_count_fp()) / kCountScale,
                          static_cast<double>(nonneg(e->live_bytes())),
                          e->alloc_count_fp() / kCountScale,
                          static_cast<double>(e->alloc_bytes()),
                          nonneg(e->live_samples()),
                          e->total_samples()};
  };
  for (uint32_t i = 0; i < nkept; ++i) {
    b.put(rec_of(g_stacks.get(sel[i].id), i));
  }
  if (nsel > nkept) {
    format::Record other{format::kOtherStack, 0, 0, 0, 0, 0, 0, 0};
    for (uint32_t i = nkept; i < nsel; ++i) {
      format::Record r = rec_of(g_stacks.get(sel[i].id), 0);
      other.live_count += r.live_count, other.live_bytes += r.live_bytes;
      other.alloc_count += r.alloc_count, other.alloc_bytes += r.alloc_bytes;
      other.live_samples += r.live_samples, other.total_samples += r.total_samples;
    }
    b.put(other);
  }
  b.end_section();
  return b.finish();
}

void* writer_main(void*) {
  Guard guard;  // for the thread's whole life: its allocations are never sampled
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  const double interval = g_config.interval_s;
  const long long step_ns = static_cast<long long>(interval * 1e9);
  for (;;) {
    long long ns = next.tv_nsec + step_ns;
    next.tv_sec += ns / 1000000000;
    next.tv_nsec = ns % 1000000000;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr) == EINTR) {
    }
    dump_now(false);
    // After a long stall (suspended process), do not write a burst.
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > next.tv_sec + static_cast<time_t>(interval) + 1) next = now;
  }
  return nullptr;
}

}  // namespace

SpinLock& dump_lock() { return g_dump_lock; }

bool writer_init() {
  g_symbols = new (g_symbols_storage) SymbolResolver();
  g_kept = static_cast<uint64_t*>(map_pages(sizeof(uint64_t) * (g_config.max_dumps + 2)));
  g_last_total = static_cast<uint64_t*>(map_pages(sizeof(uint64_t) * (1u << 18), true));
  g_known = static_cast<ModuleInfo*>(map_pages(sizeof(ModuleInfo) * kMaxKnownModules, true));
  return g_kept && g_last_total && g_known;
}

bool writer_start() {
  // Block every signal while creating the thread so it inherits a full
  // mask: the host's handlers never run on our thread.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_t t;
  int rc = pthread_create(&t, &attr, writer_main, nullptr);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) {
    log_line("cannot start the dump thread (%s); only the final dump will be written", errno_text(rc));
    return false;
  }
  pthread_setname_np(t, "leakwatch");
  return true;
}

bool dump_now(bool final_dump) {
  Guard guard;
  LockGuard lock(g_dump_lock);
  if (g_final_written) return false;
  Arena scratch;
  bool ok = false;
  {
    PayloadBuilder b(&scratch);
    ByteBuffer file;
    uint64_t seq = g_seq;
    if (build_payload(b, scratch, final_dump, seq) && seal_dump(b.bytes(), &scratch, &file)) {
      ok = write_file(file, seq);
      if (ok) {
        ++g_seq;
        retain(seq);
      }
    } else {
      log_once(Once::kInternalOom, "out of memory while building a dump; skipping it");
    }
  }
  scratch.reset();
  if (final_dump) g_final_written = true;
  return ok;
}

void writer_after_fork_child() {
  g_dump_lock.reset();
  g_seq = 0;
  g_kept_count = 0;
  g_final_written = false;
  g_dir_failing = false;
  writer_start();
}

}  // namespace leakwatch::shim
