#include "shim/dump/payload.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <sys/mman.h>

#include "shim/dump/elf_symbols.h"
#include "shim/dump/modules.h"
#include "shim/record/recorder.h"
#include "shim/sample/sampler.h"
#include "shim/runtime/clock.h"
#include "shim/runtime/identity.h"
#include "shim/runtime/internal_alloc.h"
#include "shim/runtime/lifecycle.h"
#include "shim/runtime/proc_memory.h"

namespace leakwatch::shim {

const char* dump_reason_name(DumpReason r) {
  switch (r) {
    case DumpReason::kPeriodic: return "periodic";
    case DumpReason::kFinal: return "final";
    case DumpReason::kTrigger: return "trigger";
    case DumpReason::kHighWater: return "high-water";
  }
  return "periodic";
}

namespace {

// Cumulative sample count per stack at the last dump: a stack that
// allocated since is written even if nothing of it is live now.
uint64_t* g_last_total = nullptr;

SymbolResolver* g_symbols = nullptr;
alignas(SymbolResolver) char g_symbols_storage[sizeof(SymbolResolver)];

// Every ELF module seen by an earlier dump. Blocks allocated by a library
// that was dlclose'd since are still live, and their frames still point
// into its old range: they are named from this list (and from the symbol
// table the resolver keeps mapped) instead of becoming "[unknown]".
constexpr int kMaxKnownModules = 2048;
ModuleInfo* g_known = nullptr;
int g_known_count = 0;
Arena g_known_arena;

void remember_modules(const ModuleMap& mods) {
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

struct Selected {
  uint32_t id;
  uint64_t live_bytes;
};

// The resident part of each mmap stack's sampled mappings, scaled by their
// weights: what the process's RSS counts of them. Ranges are copied under
// the table's lock and measured after it (a range unmapped meanwhile
// counts as nothing).
struct Residency {
  double* by_stack = nullptr;  // nstacks entries, or null when nothing is mapped
};

bool measure_residency(Arena& scratch, uint32_t nstacks, Residency* out) {
  int n;
  Mapping* ranges;
  {
    LockGuard lock(g_mappings.lock());
    n = g_mappings.size();
    if (n == 0) return true;
    ranges = static_cast<Mapping*>(scratch.alloc(sizeof(Mapping) * static_cast<std::size_t>(n)));
    if (!ranges) return false;
    n = g_mappings.copy(ranges, n);
  }
  constexpr std::size_t kEntries = 8 * 1024;  // 64 KiB of pagemap: 32 MiB of address space a read
  auto* buf = static_cast<uint64_t*>(scratch.alloc(kEntries * sizeof(uint64_t), alignof(uint64_t)));
  out->by_stack = static_cast<double*>(scratch.alloc(sizeof(double) * (nstacks + 1)));
  if (!buf || !out->by_stack) return false;
  std::memset(out->by_stack, 0, sizeof(double) * (nstacks + 1));
  const ResidentPages pagemap;
  for (int i = 0; i < n; ++i)
    if (ranges[i].stack < nstacks)
      out->by_stack[ranges[i].stack] += static_cast<double>(pagemap.bytes(ranges[i].start, ranges[i].end, buf, kEntries)) *
                                         static_cast<double>(ranges[i].count_w);
  return true;
}

// The stacks this dump writes: those with live samples or new samples since
// the last dump, the largest kMaxRecords - 1 of them (the rest fold into
// one "[other]" record).
struct Selection {
  Selected* sel = nullptr;
  uint32_t nstacks = 0, nsel = 0, nkept = 0;
};

bool select_records(Arena& scratch, Selection* s) {
  s->nstacks = std::min(g_stacks.count(), g_stacks.capacity());
  s->sel = static_cast<Selected*>(scratch.alloc(sizeof(Selected) * (s->nstacks ? s->nstacks : 1)));
  if (!s->sel) return false;
  for (uint32_t id = 0; id < s->nstacks; ++id) {
    StackEntry* e = g_stacks.get(id);
    if (!e) continue;
    uint64_t total = e->total_samples();
    if (static_cast<int64_t>(e->live_samples()) > 0 || total != g_last_total[id]) s->sel[s->nsel++] = {id, e->live_bytes()};
    g_last_total[id] = total;
  }
  s->nkept = s->nsel;
  if (s->nsel > format::kMaxRecords) {
    s->nkept = format::kMaxRecords - 1;
    std::nth_element(s->sel, s->sel + s->nkept, s->sel + s->nsel,
                     [](const Selected& a, const Selected& b) { return a.live_bytes > b.live_bytes; });
  }
  return true;
}

// Unique return addresses among the kept stacks, and each stack as indices.
struct FrameTable {
  uintptr_t* addr = nullptr;       // nuniq addresses
  uint32_t nuniq = 0;
  uint32_t* stack_frames = nullptr;  // all kept stacks' frames, as indices into addr
};

// The hash of addresses grows with the unique ones (a few thousand, where
// the kept stacks can hold millions of frames): sized for every frame, it
// was zeroed and faulted in at each dump (deep-stacks: 4 MiB a dump). The
// tables it outgrows stay in the dump's arena until the dump ends.
struct FrameHash {
  uintptr_t* keys = nullptr;  // address + 1; 0: empty
  uint32_t* idx = nullptr;
  uint64_t cap = 0;
  bool make(Arena& scratch, uint64_t n) {
    keys = static_cast<uintptr_t*>(scratch.alloc(sizeof(uintptr_t) * n));
    idx = static_cast<uint32_t*>(scratch.alloc(sizeof(uint32_t) * n));
    if (!keys || !idx) return false;
    std::memset(keys, 0, sizeof(uintptr_t) * n);
    cap = n;
    return true;
  }
  uint64_t slot(uintptr_t a) const {
    for (uint64_t j = ((a * 0x9E3779B97F4A7C15ULL) >> 20) & (cap - 1);; j = (j + 1) & (cap - 1))
      if (keys[j] == a + 1 || keys[j] == 0) return j;
  }
  void put(uint64_t j, uintptr_t a, uint32_t u) {
    keys[j] = a + 1;
    idx[j] = u;
  }
  // Rehashes the n unique addresses so far into twice the room, to stay at
  // most half full.
  bool grow(Arena& scratch, const uintptr_t* addr, uint32_t n) {
    FrameHash bigger;
    if (!bigger.make(scratch, cap * 2)) return false;
    for (uint32_t u = 0; u < n; ++u) bigger.put(bigger.slot(addr[u]), addr[u], u);
    *this = bigger;
    return true;
  }
};

bool build_frame_table(Arena& scratch, const Selection& s, FrameTable* t) {
  uint64_t total = 0;
  for (uint32_t i = 0; i < s.nkept; ++i) total += g_stacks.get(s.sel[i].id)->depth;
  // addr is written only as far as there are unique frames: its pages past
  // that are never touched.
  t->addr = static_cast<uintptr_t*>(scratch.alloc(sizeof(uintptr_t) * (total + 1)));
  t->stack_frames = static_cast<uint32_t*>(scratch.alloc(sizeof(uint32_t) * (total + 1)));
  FrameHash h;
  if (!t->addr || !t->stack_frames || !h.make(scratch, 1024)) return false;
  uint64_t pos = 0;
  for (uint32_t i = 0; i < s.nkept; ++i) {
    StackEntry* e = g_stacks.get(s.sel[i].id);
    for (uint32_t f = 0; f < e->depth; ++f) {
      const uintptr_t a = e->frames[f];
      uint64_t j = h.slot(a);
      if (h.keys[j] == 0) {
        if ((uint64_t{t->nuniq} + 1) * 2 > h.cap) {
          if (!h.grow(scratch, t->addr, t->nuniq)) return false;
          j = h.slot(a);
        }
        h.put(j, a, t->nuniq);
        t->addr[t->nuniq++] = a;
      }
      t->stack_frames[pos++] = h.idx[j];
    }
  }
  return true;
}

void put_identity(PayloadBuilder& b, const DumpFacts& f, const Selection& s) {
  const Identity& id = g_identity;
  const ProcMemory& m = f.memory;
  b.begin_section(format::kIdentity);
  b.begin_fields();
  b.field_str("shim_version", "leakwatch 0.2.0");
  b.field_u64("pid", static_cast<uint64_t>(id.pid));
  b.field_u64("ppid", static_cast<uint64_t>(id.ppid));
  b.field_u64("instance", id.instance);
  b.field_str("exe", id.exe);
  b.field_str("argv0", id.argv0);
  b.field_str("cmdline", id.cmdline);
  b.field_str("hostname", id.hostname);
  b.field_str("container_id", id.container_id);
  b.field_str("boot_id", id.boot_id);
  b.field_u64("pid_ns", id.pid_ns);
  b.field_u64("mnt_ns", id.mnt_ns);
  b.field_u64("start_wall_ns", id.start_wall_ns);
  b.field_u64("start_mono_ns", id.start_mono_ns);
  b.field_u64("wall_ns", f.wall_ns);
  b.field_u64("mono_ns", f.mono_ns);
  b.field_u64("seq", f.seq);
  b.field_u64("final", f.reason == DumpReason::kFinal ? 1 : 0);
  b.field_str("reason", dump_reason_name(f.reason));
  b.field_u64("retention_level", f.retention_level);
  b.field_u64("sample_bytes", g_config.sample_bytes);
  b.field_u64("mapping_sample_bytes", mapping_sample_bytes(g_config.sample_bytes));
  b.field_f64("interval_s", g_config.interval_s);
  b.field_u64("max_frames", static_cast<uint64_t>(g_config.max_frames));
  b.field_u64("dropped_samples", g_dropped_samples.load(std::memory_order_relaxed));
  b.field_u64("stack_table_full", g_stacks.full() ? 1 : 0);
  b.field_u64("stacks_total", s.nstacks);
  b.field_u64("records_selected", s.nsel);
  b.field_u64("records_folded", s.nsel - s.nkept);
  b.field_u64("live_samples", g_samples.size());
  b.field_u64("shim_mapped_bytes", mapped_bytes());
  b.field_u64("shim_resident_bytes", resident_own_bytes());
  b.field_u64("dense_mode", dense_mode() ? 1 : 0);
  b.field_str("dump_dir", g_config.dir);
  b.field_str("match", g_config.match);
  b.field_u64("rss_bytes", m.rss);
  b.field_u64("rss_anon_bytes", m.rss_anon);
  b.field_u64("rss_file_bytes", m.rss_file);
  b.field_u64("rss_shmem_bytes", m.rss_shmem);
  b.field_u64("rss_peak_bytes", m.hwm);
  b.field_u64("swap_bytes", m.swap);
  b.field_u64("vm_size_bytes", m.vm_size);
  b.field_u64("threads", m.threads);
  b.end_fields();
  b.end_section();
}

// Which module each unique frame is in: the current map first, then
// modules unloaded since an earlier dump (appended after the current ones).
struct FrameModules {
  int* of_frame = nullptr;
  int* extra = nullptr;  // indices into g_known
  int nextra = 0;
};

bool assign_modules(Arena& scratch, const ModuleMap& mods, const FrameTable& t, FrameModules* fm) {
  fm->of_frame = static_cast<int*>(scratch.alloc(sizeof(int) * (t.nuniq + 1)));
  fm->extra = static_cast<int*>(scratch.alloc(sizeof(int) * kMaxKnownModules));
  if (!fm->of_frame || !fm->extra) return false;
  for (uint32_t i = 0; i < t.nuniq; ++i) {
    int mi = mods.find(t.addr[i]);
    if (mi < 0) {
      int k = find_known(t.addr[i]);
      if (k >= 0) {
        int e = 0;
        while (e < fm->nextra && fm->extra[e] != k) ++e;
        if (e == fm->nextra) fm->extra[fm->nextra++] = k;
        mi = mods.count + e;
      }
    }
    fm->of_frame[i] = mi;
  }
  return true;
}

const ModuleInfo& module_at(const ModuleMap& mods, const FrameModules& fm, int mi) {
  return mi < mods.count ? mods.mods[mi] : g_known[fm.extra[mi - mods.count]];
}

void put_modules(PayloadBuilder& b, const ModuleMap& mods, const FrameModules& fm) {
  b.begin_section(format::kModules);
  b.put(static_cast<uint32_t>(mods.count + fm.nextra));
  b.put(static_cast<uint32_t>(sizeof(format::Module)));
  for (int i = 0; i < mods.count + fm.nextra; ++i) {
    const ModuleInfo& m = module_at(mods, fm, i);
    b.put(format::Module{m.start, m.end, m.bias, b.str(m.path), b.str(m.build_id), m.kind, 0});
  }
  b.end_section();
}

void put_frames(PayloadBuilder& b, const ModuleMap& mods, const FrameModules& fm, const FrameTable& t) {
  b.begin_section(format::kFrames);
  b.put(t.nuniq);
  b.put(static_cast<uint32_t>(sizeof(format::Frame)));
  for (uint32_t i = 0; i < t.nuniq; ++i) {
    int mi = fm.of_frame[i];
    format::Frame fr{t.addr[i], mi < 0 ? format::kNoModule : static_cast<uint32_t>(mi), 0, 0};
    if (mi >= 0) {
      SymbolHit hit = g_symbols->resolve(module_at(mods, fm, mi), t.addr[i]);
      if (hit.name) fr.symbol = b.str(hit.name), fr.symbol_offset = hit.offset;
    }
    b.put(fr);
  }
  b.end_section();
}

// Varints: frame indices are mostly below 128 (one byte, not four), and
// deflate's time goes with the bytes it reads (deep stacks: the stack
// section was three quarters of the payload). A stack's varints go to the
// buffer in one append, not one a value.
void put_stacks(PayloadBuilder& b, const Selection& s, const FrameTable& t) {
  b.begin_section(format::kStacksV);
  b.varint(s.nkept);
  uint8_t buf[kVarintMax * (1 + kMaxFramesLimit)];
  uint64_t pos = 0;
  for (uint32_t i = 0; i < s.nkept; ++i) {
    const uint32_t depth = g_stacks.get(s.sel[i].id)->depth;
    std::size_t n = put_varint(buf, depth);
    for (uint32_t j = 0; j < depth; ++j) n += put_varint(buf + n, t.stack_frames[pos + j]);
    b.append(buf, n);
    pos += depth;
  }
  b.end_section();
}

// Counters are updated without a lock, so a snapshot can catch a free
// half-way: live values are read as signed and never written negative.
uint64_t nonneg(uint64_t v) { return static_cast<int64_t>(v) < 0 ? 0 : v; }

// An mmap stack's live bytes are its resident bytes; its mapped (virtual)
// bytes go in their own field.
format::Record record_of(const StackEntry* e, uint32_t stack, const Residency& res) {
  const bool mapped = e->kind == kMmapStack;
  const double live = static_cast<double>(nonneg(e->live_bytes()));
  return format::Record{stack,
                        mapped ? format::kMmapRecord : format::kMallocRecord,
                        static_cast<double>(nonneg(e->live_count_fp())) / kCountScale,
                        mapped ? (res.by_stack ? res.by_stack[e->id] : 0) : live,
                        static_cast<double>(e->alloc_count_fp()) / kCountScale,
                        static_cast<double>(e->alloc_bytes()),
                        nonneg(e->live_samples()),
                        e->total_samples(),
                        mapped ? live : 0};
}

void put_records(PayloadBuilder& b, const Selection& s, const Residency& res) {
  b.begin_section(format::kRecords);
  b.put(s.nkept + (s.nsel > s.nkept ? 1u : 0u));
  b.put(static_cast<uint32_t>(sizeof(format::Record)));
  for (uint32_t i = 0; i < s.nkept; ++i) b.put(record_of(g_stacks.get(s.sel[i].id), i, res));
  if (s.nsel > s.nkept) {
    format::Record other{format::kOtherStack, 0, 0, 0, 0, 0, 0, 0, 0};
    for (uint32_t i = s.nkept; i < s.nsel; ++i) {
      format::Record r = record_of(g_stacks.get(s.sel[i].id), 0, res);
      if (r.kind != format::kMallocRecord) continue;  // [other] is a malloc record
      other.live_count += r.live_count, other.live_bytes += r.live_bytes;
      other.alloc_count += r.alloc_count, other.alloc_bytes += r.alloc_bytes;
      other.live_samples += r.live_samples, other.total_samples += r.total_samples;
    }
    b.put(other);
  }
  b.end_section();
}

}  // namespace

bool payload_init() {
  g_symbols = new (g_symbols_storage) SymbolResolver();
  g_last_total = static_cast<uint64_t*>(map_pages_wiped_on_fork(sizeof(uint64_t) * g_stacks.capacity()));
  g_known = static_cast<ModuleInfo*>(map_pages(sizeof(ModuleInfo) * kMaxKnownModules, true));
  if (g_last_total && g_known) return true;
  payload_release();
  return false;
}

void payload_release() {
  if (g_last_total) unmap_pages(g_last_total, sizeof(uint64_t) * g_stacks.capacity());
  if (g_known) unmap_pages(g_known, sizeof(ModuleInfo) * kMaxKnownModules);
  g_last_total = nullptr;
  g_known = nullptr;
}

void payload_after_fork_child() {
  g_symbols = new (g_symbols_storage) SymbolResolver();  // the parent's mappings stay, unused
  g_known_arena.abandon();
  g_known_count = 0;
}

BuildResult build_payload(PayloadBuilder& b, Arena& scratch, const DumpFacts& facts) {
  Selection s;
  FrameTable t;
  ModuleMap mods;
  FrameModules fm;
  Residency res;
  if (!select_records(scratch, &s)) return BuildResult::kNoMemory;
  if (CollectResult c = collect_modules(&scratch, &mods); c != CollectResult::kOk)
    return c == CollectResult::kNoMaps ? BuildResult::kNoMaps : BuildResult::kNoMemory;
  if (!measure_residency(scratch, s.nstacks, &res)) return BuildResult::kNoMemory;
  remember_modules(mods);
  if (!build_frame_table(scratch, s, &t) || !assign_modules(scratch, mods, t, &fm)) return BuildResult::kNoMemory;
  put_identity(b, facts, s);
  put_modules(b, mods, fm);
  put_frames(b, mods, fm, t);
  put_stacks(b, s, t);
  put_records(b, s, res);
  return b.finish() ? BuildResult::kOk : BuildResult::kNoMemory;
}

}  // namespace leakwatch::shim
