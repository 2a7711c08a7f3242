#include "reporter/symbolize/site_symbols.h"

#include <array>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace leakwatch::symbolize {

namespace {
// "ns::f(int, char) const" -> "ns::f": reports name functions, not
// overloads; the file:line beside them tells overloads apart.
std::string strip_params(const std::string& name) {
  std::string n = name;
  for (const char* q : {" const", " volatile", " &&", " &", " noexcept"})
    while (n.size() > std::strlen(q) && n.compare(n.size() - std::strlen(q), std::string::npos, q) == 0)
      n.resize(n.size() - std::strlen(q));
  if (n.empty() || n.back() != ')') return name;
  int depth = 0;
  for (size_t i = n.size(); i-- > 0;) {
    if (n[i] == ')') ++depth;
    else if (n[i] == '(' && --depth == 0) return i == 0 ? name : n.substr(0, i);
  }
  return name;
}

std::string pretty(const std::string& symbol) { return strip_params(demangle(symbol)); }

std::string base_name(const std::string& p) {
  auto s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}
}  // namespace

SiteSymbolizer::SiteSymbolizer(SymbolizerOptions options) : dwarf_(std::move(options)) {}

// Many frames share a function (and demangling is not cheap).
const std::string& SiteSymbolizer::pretty_cached(const std::string& name) {
  auto it = pretty_.find(name);
  if (it == pretty_.end()) it = pretty_.emplace(name, pretty(name)).first;
  return it->second;
}

uint32_t SiteSymbolizer::intern(SiteFrame f) {
  auto it = ids_.find(std::make_tuple(std::string_view(f.function), std::string_view(f.module),
                                      std::string_view(f.file), f.line, f.inlined));
  if (it != ids_.end()) return it->second;
  auto id = static_cast<uint32_t>(pool_.size());
  pool_.emplace_back(std::move(f));
  const SiteFrame& p = *pool_.back();
  allocator_.push_back(is_allocator_frame(p));
  ids_.emplace(std::make_tuple(std::string_view(p.function), std::string_view(p.module), std::string_view(p.file),
                               p.line, p.inlined),
               id);
  return id;
}

const std::vector<uint32_t>& SiteSymbolizer::frame(const merge::Timeline& t, uint32_t frame_id) {
  if (by_frame_.size() < t.frames.size()) by_frame_.resize(t.frames.size()), done_.resize(t.frames.size());
  if (done_[frame_id]) return by_frame_[frame_id];
  const merge::FrameKey& k = t.frames[frame_id];
  const std::string& symbol = t.symbols[k.symbol];
  std::vector<SiteFrame> out;
  if (k.mapped) {
    out.push_back({"[mmap]", "", "", 0, false});
  } else if (k.jit) {
    out.push_back({"[jit]", "", "", 0, false});
  } else if (k.unknown) {
    out.push_back({frame_id == 0 ? "[no stack]" : absl::StrCat("[unknown 0x", absl::Hex(k.vaddr), "]"), "", "", 0, false});
  } else {
    const merge::ModuleName& m = t.modules[k.module];
    // Return addresses point after the call; the call is at vaddr - 1.
    auto src = dwarf_.symbolize(m.path, m.build_id, k.vaddr - 1);
    if (module_found_.size() < t.modules.size()) module_found_.resize(t.modules.size(), kUnchecked);
    if (module_found_[k.module] == kUnchecked) {
      bool found = !dwarf_.resolved_path(m.path, m.build_id).empty() || !dwarf_.debug_path(m.path, m.build_id).empty();
      module_found_[k.module] = found ? kFound : kMissing;
      if (!found) missing_.push_back(m.path);
    }
    for (const auto& s : src) {
      SiteFrame f{s.function, m.path, s.file, s.line, s.inlined};
      // The real (not inlined) function is named from the symbol the shim
      // embedded when there is one, so a site reads the same with and
      // without the binary (DWARF may give only a short DW_AT_name).
      if (!f.inlined && !symbol.empty()) f.function = symbol;
      if ((f.function.empty() || f.function == "??") && !symbol.empty()) f.function = symbol;
      f.function = pretty_cached(f.function);
      out.push_back(std::move(f));
    }
    if (out.empty()) {
      std::string fn = symbol.empty() ? absl::StrCat(base_name(m.path), "+0x", absl::Hex(k.vaddr)) : pretty_cached(symbol);
      out.push_back({fn, m.path, "", 0, false});
    }
  }
  std::vector<uint32_t> ids;
  ids.reserve(out.size());
  for (auto& f : out) ids.push_back(intern(std::move(f)));
  done_[frame_id] = true;
  return by_frame_[frame_id] = std::move(ids);
}

bool is_allocator_frame(const SiteFrame& f) {
  static const std::array<const char*, 22> kExact = {
      "malloc", "calloc", "realloc", "free", "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
      "reallocarray", "__libc_malloc", "__libc_calloc", "__libc_realloc", "__libc_memalign", "__GI___libc_malloc",
      "__GI___libc_realloc", "__GI___libc_free", "_int_malloc", "_int_realloc", "tcache_init", "__libc_alloc_buffer_allocate",
      "__posix_memalign"};
  for (const char* e : kExact)
    if (f.function == e) return true;
  const std::string& fn = f.function;
  if (absl::StartsWith(fn, "operator new") || absl::StartsWith(fn, "operator delete")) return true;
  if ((absl::StartsWith(fn, "__gnu_cxx::new_allocator<") || absl::StartsWith(fn, "std::__new_allocator<") ||
       absl::StartsWith(fn, "std::allocator_traits<") || absl::StartsWith(fn, "std::allocator<")) &&
      (absl::EndsWith(fn, "::allocate") || absl::StrContains(fn, "::allocate(")))
    return true;
  std::string mod = base_name(f.module);
  return absl::StartsWith(mod, "libleakwatch") || absl::StartsWith(mod, "libjemalloc") ||
         absl::StartsWith(mod, "libtcmalloc");
}

std::vector<uint32_t> SiteSymbolizer::site(const merge::Timeline& t, uint32_t site_id) {
  std::vector<uint32_t> out;
  if (site_id == merge::Timeline::kOtherSite) {
    out.push_back(intern({"[other]", "", "", 0, false}));
    return out;
  }
  for (uint32_t fid : t.sites[site_id]) {
    const auto& fs = frame(t, fid);
    out.insert(out.end(), fs.begin(), fs.end());
  }
  size_t skip = 0;
  while (skip + 1 < out.size() && allocator_[out[skip]]) ++skip;
  out.erase(out.begin(), out.begin() + static_cast<long>(skip));
  return out;
}

}  // namespace leakwatch::symbolize
