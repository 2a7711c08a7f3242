#include "shim/dump/encoder.h"

#include <algorithm>
#include <cstring>
#include <zlib.h>

#include "shim/runtime/fnv.h"

namespace leakwatch::shim {

uint32_t PayloadBuilder::str(const char* s) {
  if (!s || !*s || failed_) return 0;
  std::size_t n = std::strlen(s);
  if (n > 65535) n = 65535;  // names longer than this are cut, not refused
  uint64_t h = fnv1a(s, n);
  if (count_ + 1 >= cap_ / 2) {  // grow (also the first time)
    uint64_t ncap = cap_ ? cap_ * 2 : 1024;
    Str* nt = static_cast<Str*>(arena_->alloc(sizeof(Str) * ncap));
    Str* no = static_cast<Str*>(arena_->alloc(sizeof(Str) * ncap));
    if (!nt || !no) return failed_ = true, 0;
    std::memset(nt, 0, sizeof(Str) * ncap);
    for (uint64_t i = 0; i < cap_; ++i)
      if (table_[i].s)
        for (uint64_t j = table_[i].hash & (ncap - 1);; j = (j + 1) & (ncap - 1))
          if (!nt[j].s) {
            nt[j] = table_[i];
            break;
          }
    if (order_) std::memcpy(no, order_, sizeof(Str) * count_);
    table_ = nt, order_ = no, cap_ = ncap, order_cap_ = ncap;
  }
  for (uint64_t j = h & (cap_ - 1);; j = (j + 1) & (cap_ - 1)) {
    Str& e = table_[j];
    if (!e.s) {
      char* copy = static_cast<char*>(arena_->alloc(n + 1, 1));
      if (!copy) return failed_ = true, 0;
      std::memcpy(copy, s, n);
      copy[n] = '\0';
      e = Str{copy, static_cast<uint32_t>(n), count_ + 1, h};
      order_[count_++] = e;
      return e.index;
    }
    if (e.hash == h && e.len == n && std::memcmp(e.s, s, n) == 0) return e.index;
  }
}

void PayloadBuilder::begin_section(uint32_t tag) {
  section_start_ = out_.size();
  format::SectionHeader sh{tag, 0, 0};
  out_.put(sh);
}

void PayloadBuilder::end_section() {
  uint64_t size = out_.size() - section_start_ - sizeof(format::SectionHeader);
  out_.patch(section_start_ + offsetof(format::SectionHeader, size), &size, sizeof size);
}

void PayloadBuilder::field(const char* key, uint32_t type, uint64_t v) {
  format::Field f{str(key), type, v};
  out_.put(f);
  ++fields_;
}

void PayloadBuilder::begin_fields() {
  fields_at_ = out_.size();
  fields_ = 0;
  out_.put(uint32_t{0});
}

void PayloadBuilder::end_fields() {
  if (fields_at_ + sizeof fields_ <= out_.size()) out_.patch(fields_at_, &fields_, sizeof fields_);
}

void PayloadBuilder::field_f64(const char* key, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  field(key, format::kF64, bits);
}

bool PayloadBuilder::finish() {
  begin_section(format::kStrings);
  uint32_t n = count_ + 1;
  out_.put(n);
  uint32_t zero = 0;
  out_.put(zero);  // index 0: ""
  for (uint32_t i = 0; i < count_; ++i) {
    out_.put(order_[i].len);
    out_.append(order_[i].s, order_[i].len);
  }
  end_section();
  return !failed_ && !out_.failed();
}

namespace {
voidpf z_alloc(voidpf opaque, uInt items, uInt size) {
  return static_cast<Arena*>(opaque)->alloc(static_cast<std::size_t>(items) * size);
}
void z_free(voidpf, voidpf) {}  // the arena is reset after each dump
}  // namespace

bool seal_dump(const ByteBuffer& payload, Arena* scratch, ByteBuffer* file) {
  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  zs.zalloc = z_alloc;
  zs.zfree = z_free;
  zs.opaque = scratch;
  // Level 3, not zlib's default 6: a dump is compressed on the host thread
  // that reached the checkpoint, which waits for it. On a deep-stacks dump
  // (860 KB of payload) 3 takes ~0.4x the time of 6 for 12% more bytes;
  // 1 and 2 are faster still but 60-95% larger (2026-12-07).
  //
  // The window and hash table fit the payload: zlib's full-size state is
  // 256 KiB, which a small process's dump (a few KiB) zeroed and faulted in
  // at exit for nothing; a window as large as the input finds the same
  // matches. Any inflate reads a smaller window (the zlib header says it).
  int window_bits = 9;  // deflate's smallest
  while (window_bits < 15 && (std::size_t{1} << window_bits) < payload.size()) ++window_bits;
  const int mem_level = std::max(1, std::min(8, window_bits - 7));
  if (deflateInit2(&zs, 3, Z_DEFLATED, window_bits, mem_level, Z_DEFAULT_STRATEGY) != Z_OK) return false;
  uLong bound = deflateBound(&zs, payload.size());
  file->clear();
  if (!file->reserve(sizeof(format::Header) + bound)) {
    deflateEnd(&zs);
    return false;
  }
  zs.next_in = const_cast<Bytef*>(payload.data());
  zs.avail_in = static_cast<uInt>(payload.size());
  zs.next_out = file->data() + sizeof(format::Header);
  zs.avail_out = static_cast<uInt>(bound);
  int rc = deflate(&zs, Z_FINISH);
  uint64_t stored = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return false;

  format::Header h{};
  std::memcpy(h.magic, format::kMagic, sizeof h.magic);
  h.major = format::kMajor;
  h.minor = format::kMinor;
  h.header_size = sizeof h;
  h.flags = format::kFlagZlib;
  h.payload_crc32 = static_cast<uint32_t>(crc32(0, file->data() + sizeof h, static_cast<uInt>(stored)));
  h.stored_size = stored;
  h.raw_size = payload.size();
  h.header_crc32 = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(&h), 40));
  // The compressed bytes are already in place after the header's room.
  file->clear();
  file->append(&h, sizeof h);  // size becomes 48; payload bytes follow in the buffer
  file->reserve(sizeof h + stored);
  return file->set_size(sizeof h + stored);
}

}  // namespace leakwatch::shim
