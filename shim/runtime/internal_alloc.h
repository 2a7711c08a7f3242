// The shim's own memory. Never taken from the hooked malloc: everything
// comes from mmap, so bookkeeping cannot re-enter the hooks, cannot be
// confused with the host's heap, and shows up as the shim's own.
//
// Thread-safety: map/unmap are thread-safe. An Arena or ByteBuffer is not:
// its owner serialises access. None of this calls malloc.
#pragma once

#include <cstddef>
#include <cstdint>

namespace leakwatch::shim {

// Anonymous private mapping, rounded up to pages; nullptr on failure.
void* map_pages(std::size_t bytes, bool noreserve = false);
void unmap_pages(void* p, std::size_t bytes);
// As map_pages (noreserve), marked MADV_WIPEONFORK: a fork child sees zeros
// there, and the parent's writes after a fork copy no page. Tables whose
// contents belong to this process only (counters, the sampled set).
void* map_pages_wiped_on_fork(std::size_t bytes);
// Asks for transparent huge pages on [p, p + bytes) (a range that will be
// touched all over): a hint, false where the kernel does not allow them.
bool advise_huge_pages(void* p, std::size_t bytes);

// Total bytes currently mapped by map_pages (for the shim's self-report).
std::size_t mapped_bytes();
// The address space the shim may hold, map_pages and the files mapped for
// their symbols together (a share of the host's RLIMIT_AS; unlimited
// unless set). map_pages returns null past it; files are charged with
// charge_address_space (false: past it, nothing charged).
void set_address_budget(std::size_t bytes);
bool charge_address_space(std::size_t bytes);
void uncharge_address_space(std::size_t bytes);
// How much of that is resident now (the pagemap of each region; a dump's
// "shim_resident_bytes", which the report keeps apart from the program's).
std::size_t resident_own_bytes();

// Bump allocator over mmap'd chunks; memory is returned all at once by reset().
class Arena {
 public:
  void* alloc(std::size_t bytes, std::size_t align = 16);
  void reset();  // unmaps every chunk
  // Forgets the current chunk without touching it (the next alloc maps a
  // new one): for a fork child whose arena may have been mid-update.
  void abandon() { cur_ = end_ = nullptr; }
  std::size_t used() const { return used_; }

 private:
  struct Chunk;
  Chunk* head_ = nullptr;
  char* cur_ = nullptr;
  char* end_ = nullptr;
  std::size_t used_ = 0;
};

// Growable byte buffer over mremap.
class ByteBuffer {
 public:
  ~ByteBuffer();
  bool append(const void* data, std::size_t n);
  bool reserve(std::size_t n);
  template <typename T>
  bool put(const T& v) { return append(&v, sizeof v); }
  // Overwrite already-written bytes (for back-patching sizes).
  void patch(std::size_t at, const void* data, std::size_t n);
  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  void clear() { size_ = 0; }
  // Declares bytes already written into reserved room as part of the buffer.
  bool set_size(std::size_t n) {
    if (n > cap_) return false;
    size_ = n;
    return true;
  }
  void release();
  bool failed() const { return failed_; }

 private:
  uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t cap_ = 0;
  bool failed_ = false;
};

}  // namespace leakwatch::shim
