#include "shim/stack/loaded_objects.h"

#include <atomic>
#include <cstring>
#include <pthread.h>
#include <sched.h>

#include "shim/runtime/clock.h"
#include "shim/runtime/internal_alloc.h"
#include "shim/runtime/no_cancel.h"
#include "shim/runtime/proc_maps.h"

namespace leakwatch::shim {
namespace {

constexpr int kMaxPhdr = 32;
constexpr int kMaxObjects = 2048;
constexpr std::size_t kNameCap = 512;
constexpr uint64_t kMissRebuildNs = 1000000000ull;
constexpr uint64_t kGateWaitNs = 50ull * 1000000ull;

struct Entry {
  dl_phdr_info info;
  ElfW(Phdr) phdr[kMaxPhdr];
  char name[kNameCap];
};

struct Snapshot {
  int count;
  Entry entries[kMaxObjects];
};

std::atomic<Snapshot*> g_snap{nullptr};
std::atomic<int> g_readers{0};
std::atomic<int> g_writer{0};
std::atomic<int> g_building{0};
std::atomic<uint64_t> g_changes{1};  // dlopen/dlclose calls; the snapshot is built for one value
std::atomic<uint64_t> g_built_for{0};
std::atomic<uint64_t> g_last_miss_rebuild{0};
std::atomic<uint64_t> g_stamp{1};  // lists published
constexpr int kMaxInitial = 512;
uintptr_t g_initial[kMaxInitial];  // load addresses of the objects loaded with the program
int g_initial_count = 0;

// What a rebuild has mapped and not yet published or given back, and whose
// rebuild it is: a fork child gives them back for a builder it did not
// inherit (only one thread builds at a time).
std::atomic<uintptr_t> g_builder{0};
std::atomic<void*> g_pending_snap{nullptr};
std::atomic<void*> g_pending_scratch{nullptr};
std::atomic<void*> g_pending_old{nullptr};

void add(const MappedObject& o, void* arg) {
  auto* s = static_cast<Snapshot*>(arg);
  if (s->count >= kMaxObjects) return;
  Entry& e = s->entries[s->count];
  int n = read_program_headers(o.base, e.phdr, kMaxPhdr);
  uintptr_t bias;
  if (n <= 0 || !load_bias(o, e.phdr, n, &bias)) return;
  std::size_t len = std::strlen(o.path);
  if (len >= kNameCap) len = kNameCap - 1;
  std::memcpy(e.name, o.path, len);
  e.name[len] = '\0';
  std::memset(&e.info, 0, sizeof e.info);
  e.info.dlpi_addr = bias;
  e.info.dlpi_name = e.name;
  e.info.dlpi_phdr = e.phdr;
  e.info.dlpi_phnum = static_cast<ElfW(Half)>(n);
  ++s->count;
}

Snapshot* build() {
  auto* s = static_cast<Snapshot*>(map_pages(sizeof(Snapshot), /*noreserve=*/true));
  g_pending_snap.store(s, std::memory_order_seq_cst);
  auto* scratch = static_cast<char*>(map_pages(kObjectScratch));
  g_pending_scratch.store(scratch, std::memory_order_seq_cst);
  // A live process has objects: an empty walk is a failed read, never the truth.
  bool ok = s && scratch && for_each_object(scratch, add, nullptr, s) && s->count > 0;
  g_pending_scratch.store(nullptr, std::memory_order_seq_cst);
  unmap_pages(scratch, kObjectScratch);
  if (!ok) {
    g_pending_snap.store(nullptr, std::memory_order_seq_cst);
    unmap_pages(s, sizeof(Snapshot));
    return nullptr;
  }
  return s;
}

bool wait_until(uint64_t deadline) {
  if (mono_ns() >= deadline) return false;
  sched_yield();
  return true;
}

bool read_lock() {
  uint64_t deadline = mono_ns() + kGateWaitNs;
  for (;;) {
    g_readers.fetch_add(1, std::memory_order_seq_cst);
    if (!g_writer.load(std::memory_order_seq_cst)) return true;
    g_readers.fetch_sub(1, std::memory_order_seq_cst);
    if (!wait_until(deadline)) return false;
  }
}

void read_unlock() { g_readers.fetch_sub(1, std::memory_order_release); }

// Replaces the snapshot; only one thread builds at a time, the others go on
// with the old one.
void rebuild(uint64_t for_changes) {
  int expected = 0;
  if (!g_building.compare_exchange_strong(expected, 1, std::memory_order_acquire)) return;
  NoCancel no_cancel;  // build() reads /proc: a cancel there would leave g_building set for good
  g_builder.store(static_cast<uintptr_t>(pthread_self()), std::memory_order_seq_cst);
  Snapshot* fresh = build();
  if (fresh) {
    g_writer.store(1, std::memory_order_seq_cst);
    uint64_t deadline = mono_ns() + kGateWaitNs;
    bool drained = true;
    while (g_readers.load(std::memory_order_seq_cst) != 0)
      if (!wait_until(deadline)) {
        drained = false;
        break;
      }
    Snapshot* old = nullptr;
    if (drained) {
      g_pending_old.store(g_snap.load(std::memory_order_acquire), std::memory_order_seq_cst);
      old = g_snap.exchange(fresh, std::memory_order_seq_cst);
      g_pending_snap.store(nullptr, std::memory_order_seq_cst);
      g_built_for.store(for_changes, std::memory_order_release);
      g_stamp.fetch_add(1, std::memory_order_acq_rel);
    }
    g_writer.store(0, std::memory_order_release);
    // Forgotten before they go: a child must never unmap an address the
    // host may have been given since.
    g_pending_snap.store(nullptr, std::memory_order_seq_cst);
    g_pending_old.store(nullptr, std::memory_order_seq_cst);
    unmap_pages(drained ? old : fresh, sizeof(Snapshot));
  }
  g_builder.store(0, std::memory_order_seq_cst);
  g_building.store(0, std::memory_order_release);
}

// Calls back for each object until one answers non-zero; *found says if one did.
int serve(PhdrCallback callback, void* data, bool* found, uint64_t* built_for) {
  *found = false;
  if (!read_lock()) return 0;
  int r = 0;
  if (built_for) *built_for = g_built_for.load(std::memory_order_acquire);
  if (Snapshot* s = g_snap.load(std::memory_order_acquire)) {
    for (int i = 0; i < s->count && r == 0; ++i) r = callback(&s->entries[i].info, sizeof(dl_phdr_info), data);
  }
  read_unlock();
  *found = r != 0;
  return r;
}

}  // namespace

void loaded_objects_init() {
  rebuild(g_changes.load(std::memory_order_acquire));
  // The objects loaded with the program: glibc never unloads those (only
  // objects dlopen loaded can go), so their load addresses stay theirs.
  if (read_lock()) {
    if (Snapshot* s = g_snap.load(std::memory_order_acquire))
      for (int i = 0; i < s->count && g_initial_count < kMaxInitial; ++i)
        g_initial[g_initial_count++] = s->entries[i].info.dlpi_addr;
    read_unlock();
  }
}

bool loaded_object_stays(const struct dl_phdr_info* info) {
  for (int i = 0; i < g_initial_count; ++i)
    if (g_initial[i] == info->dlpi_addr) return true;
  return false;
}

int loaded_objects_iterate(PhdrCallback callback, void* data, uint64_t* built_for) {
  uint64_t changes = g_changes.load(std::memory_order_acquire);
  if (!g_snap.load(std::memory_order_acquire) || g_built_for.load(std::memory_order_acquire) != changes) rebuild(changes);
  bool found;
  int r = serve(callback, data, &found, built_for);
  if (!found) {
    uint64_t now = mono_ns(), last = g_last_miss_rebuild.load(std::memory_order_relaxed);
    if (now >= last + kMissRebuildNs && g_last_miss_rebuild.compare_exchange_strong(last, now)) {
      rebuild(changes);
      r = serve(callback, data, &found, built_for);
    }
  }
  return r;
}

uint64_t loaded_objects_stamp() { return g_stamp.load(std::memory_order_acquire); }

bool loaded_objects_miss_due() {
  return mono_coarse_ns() >= g_last_miss_rebuild.load(std::memory_order_relaxed) + kMissRebuildNs;
}

void loaded_objects_changed() { g_changes.fetch_add(1, std::memory_order_acq_rel); }
uint64_t loaded_objects_generation() { return g_changes.load(std::memory_order_acquire); }

void loaded_objects_after_fork_child() {
  // A rebuild on a thread this child did not inherit: give back what it
  // held (never the published snapshot, which the child goes on using).
  if (g_building.load(std::memory_order_relaxed) &&
      g_builder.load(std::memory_order_relaxed) != static_cast<uintptr_t>(pthread_self())) {
    void* current = g_snap.load(std::memory_order_relaxed);
    if (void* p = g_pending_scratch.exchange(nullptr); p) unmap_pages(p, kObjectScratch);
    for (std::atomic<void*>* a : {&g_pending_snap, &g_pending_old})
      if (void* p = a->exchange(nullptr); p && p != current) unmap_pages(p, sizeof(Snapshot));
    g_builder.store(0, std::memory_order_relaxed);
  }
  g_readers.store(0, std::memory_order_relaxed);
  g_writer.store(0, std::memory_order_relaxed);
  g_building.store(0, std::memory_order_relaxed);
}

}  // namespace leakwatch::shim
