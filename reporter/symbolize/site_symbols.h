// Turns position-independent frames into what a person reads: function,
// module, file:line, with inlined frames expanded. DWARF when the binary or
// its debug file is found (recorded path, --root, build-id in --debug-dir
// or /usr/lib/debug); else the name the shim embedded in the dump;
// else module+offset. Leading allocator and shim frames are removed, so a
// site starts at the code that asked for memory.
//
// Each distinct readable frame exists once, in a pool; a site is a list of
// pool ids (equal ids, equal frames), so millions of sites cost a few
// bytes per frame, not copies of its strings.
//
// Thread-safety: not thread-safe (caches).
#pragma once

#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"

#include "reporter/merge/timeline.h"
#include "reporter/model.h"
#include "reporter/symbolize/dwarf_symbolizer.h"

namespace leakwatch::symbolize {

class SiteSymbolizer {
 public:
  explicit SiteSymbolizer(SymbolizerOptions options);
  // The readable frames of one raw site, leaf first, as pool ids.
  std::vector<uint32_t> site(const merge::Timeline& timeline, uint32_t site_id);
  const FrameRef& pooled(uint32_t id) const { return pool_[id]; }
  // Modules seen whose binary could not be found (named once in warnings).
  const std::vector<std::string>& missing_modules() const { return missing_; }

 private:
  const std::vector<uint32_t>& frame(const merge::Timeline& timeline, uint32_t frame_id);
  uint32_t intern(SiteFrame f);
  const std::string& pretty_cached(const std::string& name);

  DwarfSymbolizer dwarf_;
  std::vector<std::vector<uint32_t>> by_frame_;  // timeline frame id -> pool ids (inlined first)
  std::vector<bool> done_;                       // by_frame_[i] is filled in
  std::vector<FrameRef> pool_;
  std::vector<bool> allocator_;  // per pool id: is_allocator_frame()
  // (function, module, file, line, inlined) -> pool id; views into pool_.
  absl::flat_hash_map<std::tuple<std::string_view, std::string_view, std::string_view, int, bool>, uint32_t> ids_;
  enum : uint8_t { kUnchecked, kFound, kMissing };
  std::vector<uint8_t> module_found_;  // per Timeline module
  std::vector<std::string> missing_;
  absl::node_hash_map<std::string, std::string> pretty_;  // name -> demangled, parameters stripped (stable refs)
};

// True for frames that belong to the allocator or the shim, not to the program.
bool is_allocator_frame(const SiteFrame& f);

}  // namespace leakwatch::symbolize
