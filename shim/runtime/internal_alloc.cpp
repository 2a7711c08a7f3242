#include "shim/runtime/internal_alloc.h"

#include <atomic>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>

#include "shim/runtime/proc_memory.h"

namespace leakwatch::shim {
namespace {
std::atomic<std::size_t> g_mapped{0};
std::atomic<std::size_t> g_files_mapped{0};  // files mapped for their symbols (charge_address_space)
std::atomic<std::size_t> g_budget{SIZE_MAX};

// Takes bytes of the address-space budget into `counter`; false (nothing
// taken) when the shim would hold more than the budget.
bool charge(std::atomic<std::size_t>& counter, std::size_t bytes) {
  counter.fetch_add(bytes, std::memory_order_relaxed);
  const std::size_t held = g_mapped.load(std::memory_order_relaxed) + g_files_mapped.load(std::memory_order_relaxed);
  if (held <= g_budget.load(std::memory_order_relaxed)) return true;
  counter.fetch_sub(bytes, std::memory_order_relaxed);
  return false;
}
constexpr std::size_t kPage = 4096;
std::size_t round_pages(std::size_t n) { return (n + kPage - 1) & ~(kPage - 1); }

// Every region the shim maps, so a dump can say how much of it is
// resident (the process's RSS counts it; the report must not call it the
// program's). Lock-free slots: a region found no slot is mapped anyway and
// goes uncounted (the total above still has it).
constexpr int kRegionSlots = 1024;
struct Region {
  std::atomic<uintptr_t> start{0};
  std::atomic<std::size_t> bytes{0};
};
Region g_regions[kRegionSlots];

void remember(void* p, std::size_t bytes) {
  auto at = reinterpret_cast<uintptr_t>(p);
  for (Region& r : g_regions) {
    uintptr_t empty = 0;
    if (r.start.load(std::memory_order_relaxed) == 0 &&
        r.start.compare_exchange_strong(empty, at, std::memory_order_acq_rel)) {
      r.bytes.store(bytes, std::memory_order_release);
      return;
    }
  }
}

void forget(void* p) {
  auto at = reinterpret_cast<uintptr_t>(p);
  for (Region& r : g_regions) {
    if (r.start.load(std::memory_order_acquire) == at) {
      r.bytes.store(0, std::memory_order_release);
      r.start.store(0, std::memory_order_release);
      return;
    }
  }
}
}  // namespace

void* map_pages(std::size_t bytes, bool noreserve) {
  bytes = round_pages(bytes);
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | (noreserve ? MAP_NORESERVE : 0);
  if (!charge(g_mapped, bytes)) return nullptr;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) {
    g_mapped.fetch_sub(bytes, std::memory_order_relaxed);
    return nullptr;
  }
  remember(p, bytes);
  return p;
}

void* map_pages_wiped_on_fork(std::size_t bytes) {
  void* p = map_pages(bytes, /*noreserve=*/true);
  if (p && ::madvise(p, round_pages(bytes), MADV_WIPEONFORK) != 0) {
    // Kernels before 4.14: the child would inherit the parent's values.
    unmap_pages(p, bytes);
    return nullptr;
  }
  return p;
}

bool advise_huge_pages(void* p, std::size_t bytes) {
  return ::madvise(p, round_pages(bytes), MADV_HUGEPAGE) == 0;
}

void unmap_pages(void* p, std::size_t bytes) {
  if (!p) return;
  bytes = round_pages(bytes);
  forget(p);
  ::munmap(p, bytes);
  g_mapped.fetch_sub(bytes, std::memory_order_relaxed);
}

std::size_t mapped_bytes() { return g_mapped.load(std::memory_order_relaxed); }

void set_address_budget(std::size_t bytes) { g_budget.store(bytes, std::memory_order_relaxed); }
bool charge_address_space(std::size_t bytes) { return charge(g_files_mapped, bytes); }
void uncharge_address_space(std::size_t bytes) { g_files_mapped.fetch_sub(bytes, std::memory_order_relaxed); }

std::size_t resident_own_bytes() {
  const ResidentPages pagemap;
  uint64_t buf[512];  // dumps run on the shim's own stack
  uint64_t bytes = 0;
  for (Region& r : g_regions) {
    uintptr_t start = r.start.load(std::memory_order_acquire);
    std::size_t len = r.bytes.load(std::memory_order_acquire);
    if (start != 0 && len != 0) bytes += pagemap.bytes(start, start + len, buf, sizeof buf / sizeof buf[0]);
  }
  return static_cast<std::size_t>(bytes);
}

struct Arena::Chunk {
  Chunk* next;
  std::size_t size;
};

void* Arena::alloc(std::size_t bytes, std::size_t align) {
  auto aligned = [&](char* p) {
    return reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(p) + align - 1) & ~(uintptr_t{align} - 1));
  };
  char* p = cur_ ? aligned(cur_) : nullptr;
  if (!p || p + bytes > end_) {
    std::size_t size = round_pages(bytes + sizeof(Chunk) + align);
    if (size < 256 * 1024) size = 256 * 1024;
    auto* c = static_cast<Chunk*>(map_pages(size));
    if (!c) return nullptr;
    c->next = head_;
    c->size = size;
    head_ = c;
    cur_ = reinterpret_cast<char*>(c + 1);
    end_ = reinterpret_cast<char*>(c) + size;
    p = aligned(cur_);
  }
  cur_ = p + bytes;
  used_ += bytes;
  return p;
}

void Arena::reset() {
  while (head_) {
    Chunk* next = head_->next;
    unmap_pages(head_, head_->size);
    head_ = next;
  }
  cur_ = end_ = nullptr;
  used_ = 0;
}

ByteBuffer::~ByteBuffer() { release(); }

void ByteBuffer::release() {
  if (data_) unmap_pages(data_, cap_);
  data_ = nullptr;
  size_ = cap_ = 0;
}

bool ByteBuffer::reserve(std::size_t n) {
  if (n <= cap_) return true;
  std::size_t cap = cap_ ? cap_ : 64 * 1024;
  while (cap < n) cap *= 2;
  void* p;
  if (data_) {
    if (!charge(g_mapped, cap - cap_)) return failed_ = true, false;
    p = ::mremap(data_, cap_, cap, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) {
      g_mapped.fetch_sub(cap - cap_, std::memory_order_relaxed);
      return failed_ = true, false;
    }
    forget(data_);  // it may have moved: the region list follows it
    remember(p, cap);
  } else {
    p = map_pages(cap);
    if (!p) return failed_ = true, false;
  }
  data_ = static_cast<uint8_t*>(p);
  cap_ = cap;
  return true;
}

bool ByteBuffer::append(const void* src, std::size_t n) {
  if (failed_ || !reserve(size_ + n)) return false;
  std::memcpy(data_ + size_, src, n);
  size_ += n;
  return true;
}

void ByteBuffer::patch(std::size_t at, const void* src, std::size_t n) {
  if (at + n <= size_) std::memcpy(data_ + at, src, n);
}

}  // namespace leakwatch::shim
