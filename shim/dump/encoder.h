// Builds a dump's bytes: sections into a payload, then the sealed file
// (zlib-compressed payload behind a checksummed header; see format.h).
// Pure data transformation, no I/O, so unit tests cover it fully.
//
// Thread-safety: one instance per thread. Memory from mmap (Arena,
// ByteBuffer) and zlib's allocations from the given Arena, never malloc.
#pragma once

#include <cstddef>
#include <cstdint>

#include "shim/dump/format.h"
#include "shim/runtime/internal_alloc.h"

namespace leakwatch::shim {

// A u32 as an LEB128 varint (7 bits a byte, low first, high bit: more
// follow) at out; returns its length, 1..kVarintMax.
constexpr std::size_t kVarintMax = 5;
inline std::size_t put_varint(uint8_t* out, uint32_t v) {
  std::size_t n = 0;
  while (v >= 0x80) {
    out[n++] = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  out[n++] = static_cast<uint8_t>(v);
  return n;
}

class PayloadBuilder {
 public:
  explicit PayloadBuilder(Arena* scratch) : arena_(scratch) {}
  // Index of s in the string table (deduplicated; "" is 0).
  uint32_t str(const char* s);
  void begin_section(uint32_t tag);
  void end_section();
  template <typename T>
  void put(const T& v) { out_.put(v); }
  void append(const void* p, std::size_t n) { out_.append(p, n); }
  void varint(uint32_t v) {
    uint8_t b[kVarintMax];
    out_.append(b, put_varint(b, v));
  }
  void field_u64(const char* key, uint64_t v) { field(key, format::kU64, v); }
  void field_i64(const char* key, int64_t v) { field(key, format::kI64, static_cast<uint64_t>(v)); }
  void field_f64(const char* key, double v);
  void field_str(const char* key, const char* v) { field(key, format::kString, str(v)); }
  // A list of fields preceded by its count: begin_fields() leaves room for
  // the count, end_fields() writes how many field_*() calls came between.
  void begin_fields();
  void end_fields();
  // Appends the string table section; returns false if memory ran out.
  bool finish();
  const ByteBuffer& bytes() const { return out_; }

 private:
  void field(const char* key, uint32_t type, uint64_t v);
  struct Str {
    const char* s;
    uint32_t len;
    uint32_t index;
    uint64_t hash;
  };
  Arena* arena_;
  ByteBuffer out_;
  std::size_t section_start_ = 0;
  std::size_t fields_at_ = 0;
  uint32_t fields_ = 0;
  Str* table_ = nullptr;  // open addressing
  uint64_t cap_ = 0;
  uint32_t count_ = 0;
  Str* order_ = nullptr;  // by index
  uint64_t order_cap_ = 0;
  bool failed_ = false;
};

// Compresses `payload` and writes header + compressed bytes into `file`.
bool seal_dump(const ByteBuffer& payload, Arena* scratch, ByteBuffer* file);

}  // namespace leakwatch::shim
