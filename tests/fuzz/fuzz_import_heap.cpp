// Fuzz target: the importer of jemalloc and gperftools heap profiles
// (reporter/import/heap_profile.h) on arbitrary text. parse_heap_profile
// must return an error or a dump for any input -- never crash, hang or
// allocate without bound -- and an accepted dump must be printable by
// `leakwatch inspect`. The file-name parser (facts_from_name) gets the
// first line as a name.
//
// MAPPED_LIBRARIES paths are opened to read ELF layouts: run the target
// with stdin from /dev/null (.ci/fuzz does), so a generated "/dev/stdin"
// cannot block it.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include "reporter/import/heap_profile.h"
#include "reporter/render/render.h"

namespace imp = leakwatch::import;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string first(text.substr(0, std::min<size_t>(text.find('\n'), 256)));
  (void)imp::facts_from_name(first, imp::Format::kJemalloc);
  (void)imp::facts_from_name(first, imp::Format::kGperftools);
  auto d = imp::parse_heap_profile(text, "fuzz.heap");
  if (d.ok()) {
    std::ostringstream out;
    leakwatch::render::inspect(*d, out);
  }
  return 0;
}
