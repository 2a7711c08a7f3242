#include "shim/record/recorder.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim/record/real_functions.h"
#include "shim/record/granule_marks.h"
#include "shim/runtime/checkpoint.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/lifecycle.h"
#include "shim/runtime/log.h"
#include "shim/sample/sampler.h"
#include "shim/stack/capture.h"

namespace leakwatch::shim {

SampledSet g_samples;
StackTable g_stacks;
MappingSet g_mappings;
std::atomic<uint64_t> g_dropped_samples{0};

namespace {

constexpr std::size_t kPage = 4096;

bool ensure_real() { return real_functions_ready() || resolve_real_functions(); }

// Weights are never negative: rounding is +0.5 and a truncation (libm's
// llround cost ~80 instructions a call, twice per allocation at S = 1).
uint64_t round_weight(double x) { return static_cast<uint64_t>(x + 0.5); }
uint64_t count_fp(float w) { return round_weight(static_cast<double>(w) * kCountScale); }

void forget(const SampleInfo& info) { g_stacks.on_free(info.stack, info.bytes_w, count_fp(info.count_w)); }

// The sampled set and the granule marks change together: marked before the
// block is handed out, unmarked once its record is gone.
bool track(void* p, const SampleInfo& info) {
  if (!g_samples.insert(reinterpret_cast<uintptr_t>(p), info)) return false;
  granule_mark(p);
  return true;
}

bool untrack(void* p, SampleInfo* info) {
  if (!g_samples.erase(reinterpret_cast<uintptr_t>(p), info)) return false;
  granule_unmark(p);
  return true;
}

// The unsampled path: exactly what the host would have got without us.
void* plain(Op op, std::size_t n, std::size_t align) {
  switch (op) {
    case Op::kMalloc:
    case Op::kNew: return g_real.malloc(n);
    case Op::kCalloc: return g_real.calloc(n, 1);
    case Op::kMemalign: return g_real.memalign ? g_real.memalign(align, n) : nullptr;
    case Op::kAlignedAlloc: return g_real.aligned_alloc ? g_real.aligned_alloc(align, n) : nullptr;
    case Op::kValloc: return g_real.valloc ? g_real.valloc(n) : nullptr;
    case Op::kPvalloc: return g_real.pvalloc ? g_real.pvalloc(n) : nullptr;
    case Op::kNewAligned: {
      void* p = nullptr;
      return g_real.posix_memalign(&p, align, n) == 0 ? p : nullptr;
    }
  }
  return nullptr;
}

// A block for a sampled allocation: what the program asked for, from its
// allocator (free() finds it by its granule mark). Fails as the aligned
// functions do: NULL with errno set.
void* sampled_block(std::size_t n, std::size_t align) {
  if (align <= 16) return g_real.malloc(n);
  void* p = nullptr;
  int rc = g_real.posix_memalign(&p, align, n ? n : 1);
  if (rc == 0) return p;
  errno = rc;
  return nullptr;
}

SampleInfo sample_info(uint32_t stack, std::size_t n, double count_w) {
  return SampleInfo{stack, static_cast<float>(count_w), round_weight(static_cast<double>(n) * count_w), n};
}

// The weight of a sampled block resized to n bytes. It was drawn with the
// inclusion probability p(G) of all the bytes it ever grew by (G: its first
// size plus every growth since), so its estimate is n / p(G): growth adds
// to G, a shrink leaves it (a block shrunk from 8 MiB to 100 bytes stands
// for 100 bytes, not for 100 / p(100)).
SampleInfo resized_info(const SampleInfo& info, std::size_t n) {
  double count_w = info.count_w;
  if (n > info.size) count_w = grown_count(count_w, static_cast<double>(n - info.size), g_config.sample_bytes);
  return sample_info(info.stack, n, count_w);
}

void record(void* p, std::size_t n, const uintptr_t* frames, int depth) {
  uint32_t id = g_stacks.intern(frames, static_cast<uint32_t>(depth));
  if (g_stacks.full())
    log_once(Once::kStackTableFull, "too many distinct call stacks; further ones are counted as [other]");
  SampleInfo info = sample_info(id, n, sample_weight(n, g_config.sample_bytes).count);
  SampleInfo stale;
  // The same address live twice means it was freed behind our back (e.g.
  // by an allocator-specific API): retire the old record.
  if (untrack(p, &stale)) forget(stale);
  if (!track(p, info)) {
    g_dropped_samples.fetch_add(1, std::memory_order_relaxed);
    log_once(Once::kSampleTableFull, "sample table full; some samples are dropped (the dumps count them)");
    return;
  }
  g_stacks.on_alloc(id, info.bytes_w, count_fp(info.count_w));
}

bool valid_alignment(Op op, std::size_t align) {
  if (op != Op::kMemalign && op != Op::kAlignedAlloc && op != Op::kNewAligned) return true;
  return align && (align & (align - 1)) == 0;
}

}  // namespace

RecorderSizes recorder_sizes(uint64_t sample_bytes) {
  // Sparse mode: live samples are few (heap / S); dense mode: up to every
  // live allocation. Memory is reserved, not committed.
  RecorderSizes s;
  s.dense = sample_bytes < kDenseBelow;
  s.log2_buckets = 15;
  if (s.dense) {
    s.log2_buckets = 21;
    if (sample_bytes > 1) {
      uint64_t scale = kDenseBelow / sample_bytes;
      s.log2_buckets = 15;
      while (scale > 1 && s.log2_buckets < 21) scale >>= 1, ++s.log2_buckets;
    }
  }
  return s;
}

std::size_t recorder_reserve_bytes(const RecorderSizes& s) {
  return SampledSet::reserve_bytes(s.log2_buckets) + StackTable::reserve_bytes(s.max_stacks) +
         MappingSet::reserve_bytes(s.max_mappings);
}

bool recorder_shrink(RecorderSizes* s) {
  const bool set_larger = SampledSet::reserve_bytes(s->log2_buckets) >= StackTable::reserve_bytes(s->max_stacks);
  if ((set_larger || s->max_stacks <= RecorderSizes::kMinStacks) && s->log2_buckets > RecorderSizes::kMinLog2Buckets)
    --s->log2_buckets;
  else if (s->max_stacks > RecorderSizes::kMinStacks)
    s->max_stacks >>= 1;
  else
    return false;
  return true;
}

bool recorder_init(const RecorderSizes& s) {
  // Homes start in the first 2^10 buckets (256 KiB) in sparse mode, where a
  // lookup for each extra level is paid only by the frees of marked
  // granules; dense mode probes on every free, so it starts 4 levels down.
  // Dense mode's keys land on every page of the levels in use: huge pages
  // past the start level (where THP is allowed) -- on CPython with every
  // allocation sampled, 4 KiB pages took 102,600 faults (53,600 now; the
  // program alone 29,400).
  const int log2_start = s.dense ? s.log2_buckets - 4 : std::min(10, s.log2_buckets);
  return g_samples.init(s.log2_buckets, log2_start, s.dense) && g_stacks.init(s.max_stacks) &&
         g_mappings.init(s.max_mappings);
}

void recorder_release() {
  g_samples.release();
  g_stacks.release();
  g_mappings.release();
}

namespace {

// Inlined into alloc_slow: one frame fewer for every stack to unwind.
inline __attribute__((always_inline)) void* alloc_sampled(Op op, std::size_t n, std::size_t align) {
  if (!ensure_real()) {
    std::size_t a = (op == Op::kMalloc || op == Op::kCalloc || op == Op::kNew) ? 16 : align;
    return bootstrap_alloc(n, a);
  }
  int state = g_state.load(std::memory_order_acquire);
  if (state != kEnabled || Guard::active() || !valid_alignment(op, align)) {
    if (state == kDisabled) sample_never();
    return plain(op, n, align);
  }
  Guard guard;
  if (op == Op::kPvalloc) {
    if (n > SIZE_MAX - (kPage - 1)) {  // rounding up would wrap: glibc says ENOMEM
      errno = ENOMEM;
      return nullptr;
    }
    n = (n + kPage - 1) & ~(kPage - 1);
  }
  if (op == Op::kValloc || op == Op::kPvalloc) align = kPage;
  if (!sample_slow(n, g_config.sample_bytes)) return plain(op, n, align);
  uintptr_t frames[kMaxFramesLimit];
  int depth = capture_stack(frames, g_config.max_frames);
  void* p = sampled_block(n, align);
  if (!p) return nullptr;
  if (op == Op::kCalloc) std::memset(p, 0, n);
  record(p, n, frames, depth);
  return p;
}

}  // namespace

void* alloc_slow(Op op, std::size_t n, std::size_t align) {
  void* p = alloc_sampled(op, n, align);
  maybe_checkpoint();
  return p;
}

int posix_memalign_slow(void** out, std::size_t align, std::size_t n) {
  if (!ensure_real()) {
    void* p = bootstrap_alloc(n, align);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
  }
  if (align < sizeof(void*) || (align & (align - 1)) || !enabled() || Guard::active()) {
    if (g_state.load(std::memory_order_relaxed) == kDisabled) sample_never();
    return g_real.posix_memalign(out, align, n);
  }
  void* p = alloc_slow(Op::kNewAligned, n, align);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

void free_slow(void* p) {
  if (!p || in_bootstrap(p)) return;  // bootstrap blocks are never reused
  SampleInfo info;
  if (untrack(p, &info)) forget(info);
  if (g_real.free) g_real.free(p);
  maybe_checkpoint();
}

bool forget_if_sampled(void* p) {
  SampleInfo info;
  if (!untrack(p, &info)) return false;
  forget(info);
  return true;
}

namespace {

// A sampled block that realloc resizes keeps its record and the stack of
// the allocation that was sampled. Growth must not move and re-record it
// on every call (a string builder, a vector): it is resized in place when
// the block has room, else moved once with headroom. A shrink goes to the
// allocator, so the memory is given back as it would be without the shim,
// unless it is by less than glibc's smallest chunk (32 bytes), which glibc
// keeps in the block too: a buffer that shrinks and grows back by a few
// bytes then costs one update, not an erase, a call and an insert.
constexpr std::size_t kKeptSlack = 32;

void* resize_sampled(void* p, std::size_t n, std::size_t usable, SampleInfo* entry) {
  const SampleInfo info = *entry;
  SampleInfo next = resized_info(info, n);
  SampleInfo old;
  const bool fits = n <= usable && (n >= info.size || usable - n < kKeptSlack);
  if (fits) {  // in place: same key, same mark
    old = info;
    SampledSet::replace(entry, next);
    g_stacks.on_resize(next.stack, old.bytes_w, count_fp(old.count_w), next.bytes_w, count_fp(next.count_w));
    return p;
  }
  void* q;
  bool had = untrack(p, &old);  // before p can be given back and handed out again
  if (n < info.size) {
    q = g_real.realloc(p, n);
  } else {
    // The allocator's own realloc extends in place when it can (no copy: a
    // malloc + memcpy here made the realloc-growth benchmark copy 8% more).
    std::size_t room = n + n / 2;
    if (room < n) room = n;  // overflow
    const int saved_errno = errno;
    q = g_real.realloc(p, room);
    if (!q && room != n && (q = g_real.realloc(p, n)) != nullptr) errno = saved_errno;  // the headroom is ours
  }
  if (!q) {  // the old block stays valid, and tracked
    if (had && !track(p, old)) forget(old);
    return nullptr;
  }
  if (!track(q, next)) {
    if (had) forget(old);
    g_dropped_samples.fetch_add(1, std::memory_order_relaxed);
    return q;
  }
  if (had)
    g_stacks.on_resize(next.stack, old.bytes_w, count_fp(old.count_w), next.bytes_w, count_fp(next.count_w));
  else
    g_stacks.on_alloc(next.stack, next.bytes_w, count_fp(next.count_w));
  return q;
}

// An unsampled block grown to r (n bytes) whose growth ran the countdown
// out: sampled as a fresh allocation of n bytes would be (inclusion
// probability 1 - exp(-n/S)), with the stack of the realloc.
inline __attribute__((always_inline)) void* sample_grown(void* r, std::size_t n, std::size_t growth) {
  const int state = g_state.load(std::memory_order_acquire);
  if (state != kEnabled || Guard::active()) {
    if (state == kDisabled) sample_never();
    return r;
  }
  Guard guard;
  if (!sample_slow(growth, g_config.sample_bytes)) return r;
  uintptr_t frames[kMaxFramesLimit];
  int depth = capture_stack(frames, g_config.max_frames);
  record(r, n, frames, depth);
  return r;
}

inline __attribute__((always_inline)) void* realloc_sampled(void* p, std::size_t n) {
  if (!ensure_real()) {
    void* q = bootstrap_alloc(n, 16);
    if (q && p) std::memcpy(q, p, std::min(n, bootstrap_size(p)));
    return q;
  }
  if (in_bootstrap(p)) {
    // Moving out of the bootstrap arena into the real heap.
    void* q = alloc_slow(Op::kMalloc, n, 0);
    if (q) std::memcpy(q, p, std::min(n, bootstrap_size(p)));
    return q;
  }
  SampleInfo* entry = g_samples.entry(reinterpret_cast<uintptr_t>(p));
  if (entry == nullptr) return realloc_unsampled(p, n);  // a neighbour on a marked granule
  if (!enabled() || Guard::active() || n == 0) {
    // We cannot follow the block: stop tracking it rather than guess.
    SampleInfo info;
    if (untrack(p, &info)) forget(info);
    return g_real.realloc(p, n);
  }
  Guard guard;
  // What to copy is what the allocator says the block holds: a record can
  // be stale if the block was freed behind our back and its address reused.
  return resize_sampled(p, n, real_usable_size(p), entry);
}

}  // namespace

void* realloc_slow(void* p, std::size_t n) {
  void* q = realloc_sampled(p, n);
  maybe_checkpoint();
  return q;
}

void* realloc_grew_slow(void* r, std::size_t n, std::size_t growth) {
  void* q = sample_grown(r, n, growth);
  maybe_checkpoint();
  return q;
}

void* realloc_unsampled_measured(void* p, std::size_t n) {
  const std::size_t h = glibc_chunk_word(p);
  void* r = g_real.realloc(p, n);
  if (__builtin_expect(r == nullptr, 0)) return r;
  const std::size_t h2 = glibc_chunk_word(r);
  // A chunk mmapped by itself has a longer header: compare usable sizes.
  if (((h | h2) & kGlibcMmapped) != 0) return charge_growth(r, n, glibc_usable_of(h), glibc_usable_of(h2));
  return charge_growth(r, n, h & ~kGlibcFlags, h2 & ~kGlibcFlags);
}

void* realloc_then_grew_slow(void* p, std::size_t n, std::size_t growth) {
  void* r = g_real.realloc(p, n);
  if (r == nullptr) return r;  // nothing grew: nothing charged
  return realloc_grew_slow(r, n, growth);
}

void* realloc_unsampled_other(void* p, std::size_t n) {
  const std::size_t before = other_usable_size(p);
  void* r = g_real.realloc(p, n);
  if (__builtin_expect(r == nullptr, 0)) return r;
  return charge_growth(r, n, before, other_usable_size(r));
}

// ---- Anonymous mappings.

namespace {

uintptr_t g_alloc_lo = 0, g_alloc_hi = 0;
constexpr uintptr_t kPageMask = 4095;

uintptr_t page_up(std::size_t n) { return (n + kPageMask) & ~kPageMask; }

void apply_change(const MappingSet::Change& c, void*) {
  if (c.new_bytes == 0 && c.new_count_fp == 0) g_stacks.on_free(c.stack, c.old_bytes, c.old_count_fp);
  else g_stacks.on_resize(c.stack, c.old_bytes, c.old_count_fp, c.new_bytes, c.new_count_fp);
}

// Tracks [start, start + len) as a sampled mapping of `stack` with weight w.
void track_mapping(uintptr_t start, std::size_t len, uint32_t stack, double count_w) {
  Mapping m{start, start + page_up(len), stack, static_cast<float>(count_w),
            round_weight(static_cast<double>(page_up(len)) * count_w), count_fp(static_cast<float>(count_w))};
  bool added;
  {
    LockGuard lock(g_mappings.lock());
    added = g_mappings.add(m);
  }
  if (!added) {
    g_dropped_samples.fetch_add(1, std::memory_order_relaxed);
    log_once(Once::kSampleTableFull, "sample table full; some samples are dropped (the dumps count them)");
    return;
  }
  g_stacks.on_alloc(stack, m.bytes_w, m.count_fp);
}

void untrack_range(uintptr_t start, std::size_t len) {
  if (g_mappings.empty()) return;
  LockGuard lock(g_mappings.lock());
  g_mappings.remove(start, start + page_up(len), apply_change, nullptr);
}

uint32_t mapping_stack() {
  uintptr_t frames[kMaxFramesLimit];
  int depth = capture_stack(frames, g_config.max_frames);
  uint32_t id = g_stacks.intern(frames, static_cast<uint32_t>(depth), kMmapStack);
  if (g_stacks.full())
    log_once(Once::kStackTableFull, "too many distinct call stacks; further ones are counted as [other]");
  return id;
}

void* real_mmap(void* addr, std::size_t len, int prot, int flags, int fd, off_t off) {
  if (g_real.mmap) return g_real.mmap(addr, len, prot, flags, fd, off);
  return reinterpret_cast<void*>(syscall(SYS_mmap, addr, len, prot, flags, fd, off));
}

}  // namespace

void recorder_set_allocator_range(uintptr_t lo, uintptr_t hi) { g_alloc_lo = lo, g_alloc_hi = hi; }

namespace {
void* map_sampled(void* addr, std::size_t len, int prot, int flags, int fd, off_t off, uintptr_t caller) {
  if (!enabled() || Guard::active() || (caller >= g_alloc_lo && caller < g_alloc_hi))
    return real_mmap(addr, len, prot, flags, fd, off);
  Guard guard;
  const uint64_t mean = mapping_sample_bytes(g_config.sample_bytes);
  const bool sampled = (flags & MAP_ANONYMOUS) && sample_mapping(page_up(len), mean);
  // The stack before the call: a fixed mapping replaces what was there.
  uint32_t stack = sampled ? mapping_stack() : 0;
  if (flags & MAP_FIXED) untrack_range(reinterpret_cast<uintptr_t>(addr), len);
  void* p = real_mmap(addr, len, prot, flags, fd, off);
  if (p != MAP_FAILED && sampled)
    track_mapping(reinterpret_cast<uintptr_t>(p), len, stack, sample_weight(page_up(len), mean).count);
  return p;
}
}  // namespace

void* mmap_slow(void* addr, std::size_t len, int prot, int flags, int fd, off_t off, uintptr_t caller) {
  void* p = map_sampled(addr, len, prot, flags, fd, off, caller);
  maybe_checkpoint();
  return p;
}

int munmap_slow(void* addr, std::size_t len) {
  // Out of the table first: once the range is unmapped another thread may
  // map it again, and its new mapping must not be trimmed by ours.
  if (!Guard::active()) {
    Guard guard;
    untrack_range(reinterpret_cast<uintptr_t>(addr), len);
  }
  int r = g_real.munmap ? g_real.munmap(addr, len) : static_cast<int>(syscall(SYS_munmap, addr, len));
  maybe_checkpoint();
  return r;
}

namespace {
void* remap_sampled(void* old_addr, std::size_t old_len, std::size_t new_len, int flags, void* new_addr) {
  auto call = [&] {
    return g_real.mremap ? g_real.mremap(old_addr, old_len, new_len, flags, new_addr)
                         : reinterpret_cast<void*>(syscall(SYS_mremap, old_addr, old_len, new_len, flags, new_addr));
  };
  if (!enabled() || Guard::active()) return call();
  Guard guard;
  auto old_start = reinterpret_cast<uintptr_t>(old_addr);
  Mapping was{};
  bool tracked;
  {
    LockGuard lock(g_mappings.lock());
    tracked = g_mappings.find(old_start, &was);
    if (tracked) g_mappings.remove(old_start, old_start + page_up(old_len), apply_change, nullptr);
  }
  if (flags & MREMAP_FIXED) untrack_range(reinterpret_cast<uintptr_t>(new_addr), new_len);
  void* q = call();
  if (q == MAP_FAILED) {
    if (tracked) track_mapping(old_start, old_len, was.stack, was.count_w);  // still where it was
    return q;
  }
  if (tracked) {
    // Moved or resized: same stack; growth adds to what it was sampled over.
    double w = was.count_w;
    if (new_len > old_len)
      w = grown_count(w, static_cast<double>(new_len - old_len), mapping_sample_bytes(g_config.sample_bytes));
    track_mapping(reinterpret_cast<uintptr_t>(q), new_len, was.stack, w);
  } else if (new_len > old_len && sample_mapping(page_up(new_len) - page_up(old_len), mapping_sample_bytes(g_config.sample_bytes))) {
    // An unsampled mapping whose growth was sampled: as a fresh one of
    // new_len (unsampled before, sampled now: p(new_len) in all).
    track_mapping(reinterpret_cast<uintptr_t>(q), new_len, mapping_stack(),
                  sample_weight(page_up(new_len), mapping_sample_bytes(g_config.sample_bytes)).count);
  }
  return q;
}

}  // namespace

void* mremap_slow(void* old_addr, std::size_t old_len, std::size_t new_len, int flags, void* new_addr) {
  void* q = remap_sampled(old_addr, old_len, new_len, flags, new_addr);
  maybe_checkpoint();
  return q;
}

}  // namespace leakwatch::shim
