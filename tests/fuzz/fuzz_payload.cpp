// Fuzz target: the dump reader past its checksums.
// The input is a dump *payload* (the decompressed section stream). The
// target wraps it in a valid header -- stored, or zlib-compressed when the
// payload's length is odd -- so every mutation reaches the section, string,
// identity, module, frame, stack and record parsers. Accepted dumps are
// also printed with render::inspect.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string_view>

#include "reporter/load/dump_reader.h"
#include "reporter/render/render.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view payload(reinterpret_cast<const char*>(data), size);
  std::string file = lwfuzz::wrap_payload(payload, (size & 1) != 0);
  if (file.empty()) return 0;
  auto d = leakwatch::load::parse_dump(file, "fuzz.lwdump");
  if (d.ok()) {
    std::ostringstream out;
    leakwatch::render::inspect(*d, out);
  }
  return 0;
}
