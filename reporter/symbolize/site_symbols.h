// Turns position-independent frames into what a person reads: function,
// module, file:line, with inlined frames expanded. DWARF when the binary or
// its debug file is found (recorded path, --root, build-id in --debug-dir
// or /usr/lib/debug); else the name the shim embedded in the dump;
// else module+offset. Leading allocator and shim frames are removed, so a
// site starts at the code that asked for memory.
//
// Thread-safety: not thread-safe (caches).
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "reporter/merge/timeline.h"
#include "reporter/model.h"
#include "reporter/symbolize/dwarf_symbolizer.h"

namespace leakwatch::symbolize {

class SiteSymbolizer {
 public:
  explicit SiteSymbolizer(SymbolizerOptions options);
  const std::vector<SiteFrame>& frame(const merge::FrameKey& key);
  std::vector<SiteFrame> site(const merge::Timeline& timeline, uint32_t site_id);
  // Modules seen whose binary could not be found (named once in warnings).
  const std::vector<std::string>& missing_modules() const { return missing_; }

 private:
  DwarfSymbolizer dwarf_;
  std::unordered_map<std::string, std::vector<SiteFrame>> cache_;
  std::unordered_map<std::string, bool> module_found_;
  std::vector<std::string> missing_;
};

// True for frames that belong to the allocator or the shim, not to the program.
bool is_allocator_frame(const SiteFrame& f);

}  // namespace leakwatch::symbolize
