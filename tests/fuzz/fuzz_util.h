// Shared helpers for the fuzz targets (tests/fuzz/): wrapping fuzzer bytes
// into a well-formed dump file, so mutations reach the section parser
// instead of dying at the header checksums.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <zlib.h>

#include "shim/dump/format.h"

namespace lwfuzz {

// A dump file whose header is valid for `payload`: stored as is (flags 0)
// or zlib-compressed (flags kFlagZlib) when `compress` is true.
inline std::string wrap_payload(std::string_view payload, bool compress) {
  namespace f = leakwatch::format;
  std::string stored;
  if (compress) {
    uLongf cap = compressBound(static_cast<uLong>(payload.size()));
    stored.resize(cap);
    if (compress2(reinterpret_cast<Bytef*>(stored.data()), &cap, reinterpret_cast<const Bytef*>(payload.data()),
                  static_cast<uLong>(payload.size()), 1) != Z_OK)
      return {};
    stored.resize(cap);
  } else {
    stored.assign(payload);
  }
  f::Header h{};
  std::memcpy(h.magic, f::kMagic, 8);
  h.major = f::kMajor;
  h.minor = f::kMinor;
  h.header_size = sizeof h;
  h.flags = compress ? f::kFlagZlib : 0;
  h.payload_crc32 = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(stored.data()), static_cast<uInt>(stored.size())));
  h.stored_size = stored.size();
  h.raw_size = payload.size();
  h.header_crc32 = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(&h), 40));
  std::string out(reinterpret_cast<const char*>(&h), sizeof h);
  out += stored;
  return out;
}

// Splits `data` at each occurrence of `sep` (at most max_parts parts).
template <typename Fn>
inline void split(std::string_view data, std::string_view sep, size_t max_parts, Fn fn) {
  size_t parts = 0;
  while (parts + 1 < max_parts) {
    size_t at = data.find(sep);
    if (at == std::string_view::npos) break;
    fn(data.substr(0, at));
    ++parts;
    data.remove_prefix(at + sep.size());
  }
  fn(data);
}

}  // namespace lwfuzz
