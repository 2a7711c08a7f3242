// FNV-1a over bytes: the shim's hash for names (string tables, which
// process a dump file belongs to). Not for anything adversarial.
//
// Thread-safety: pure. Never allocates.
#pragma once

#include <cstddef>
#include <cstdint>

namespace leakwatch::shim {

inline uint64_t fnv1a(const char* s, std::size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(s[i])) * 1099511628211ull;
  return h;
}

}  // namespace leakwatch::shim
