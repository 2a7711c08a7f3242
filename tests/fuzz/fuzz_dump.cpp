// Fuzz target: the dump reader on arbitrary file bytes.
// leakwatch::load::parse_dump must return an error or a dump for any input,
// never crash, hang, or allocate without bound; a dump it accepts must be
// printable by `leakwatch inspect` (render::inspect).
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string_view>

#include "reporter/load/dump_reader.h"
#include "reporter/render/render.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto d = leakwatch::load::parse_dump(bytes, "fuzz.lwdump");
  if (d.ok()) {
    std::ostringstream out;
    leakwatch::render::inspect(*d, out);
  }
  return 0;
}
