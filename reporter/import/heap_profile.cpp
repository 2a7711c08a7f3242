// Parsing of jemalloc and gperftools heap profiles (text) into load::Dump.
// The format notes and the trust rules are in heap_profile.h.
#include "reporter/import/heap_profile.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "reporter/import/elf_layout.h"
#include "shim/dump/format.h"

namespace leakwatch::import {

namespace {

constexpr size_t kMaxLine = 1 << 20;        // a stack of 256 frames is ~5 KB
constexpr size_t kMaxMappings = 1 << 17;    // /proc/self/maps lines
// Stacks kept as sites; the rest of a (huge) profile counts as "[other]",
// like the records a leakwatch dump folds past its cap.
constexpr size_t kMaxStacks = 1 << 18;
constexpr uint64_t kMaxPeriod = 1ull << 40; // sampling period (bytes)

absl::Status bad(const std::string& name, const std::string& why) {
  return absl::DataLossError(absl::StrCat(name, ": ", why));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool parse_u64(std::string_view s, uint64_t* out, int base = 10) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool parse_hex_addr(std::string_view s, uint64_t* out) {
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  return s.size() <= 16 && parse_u64(s, out, 16);
}

// "A: B [C: D]" with any spacing -> four numbers.
struct Counts {
  uint64_t objs = 0, bytes = 0, cum_objs = 0, cum_bytes = 0;
};
bool parse_counts(std::string_view s, Counts* c) {
  std::string t;
  for (char ch : s)
    if (ch != ' ' && ch != '\t') t += ch;
  std::string_view v = t;
  auto colon = v.find(':'), open = v.find('['), colon2 = v.find(':', open == std::string_view::npos ? 0 : open),
       close = v.find(']');
  if (colon == std::string_view::npos || open == std::string_view::npos || colon2 == std::string_view::npos ||
      close == std::string_view::npos || !(colon < open && open < colon2 && colon2 < close) || close + 1 != v.size())
    return false;
  return parse_u64(v.substr(0, colon), &c->objs) && parse_u64(v.substr(colon + 1, open - colon - 1), &c->bytes) &&
         parse_u64(v.substr(open + 1, colon2 - open - 1), &c->cum_objs) &&
         parse_u64(v.substr(colon2 + 1, close - colon2 - 1), &c->cum_bytes);
}

// jeprof/pprof's unsampling of a Poisson-sampled (count, bytes) pair.
void unsample(uint64_t objs, uint64_t bytes, uint64_t period, double* out_objs, double* out_bytes) {
  double o = static_cast<double>(objs), b = static_cast<double>(bytes);
  if (period > 1 && objs > 0 && bytes > 0) {
    double mean = b / o;
    double scale = 1 / -std::expm1(-mean / static_cast<double>(period));  // expm1: exact for tiny means
    o *= scale;
    b *= scale;
  }
  *out_objs = o;
  *out_bytes = b;
}

struct Mapping {
  uint64_t start, end, offset;
  bool exec;
  std::string path;
};

// "start-end perms offset dev inode [path]"
bool parse_mapping(std::string_view line, Mapping* m) {
  auto next = [&](std::string_view* tok) {
    line = trim(line);
    size_t sp = line.find_first_of(" \t");
    *tok = line.substr(0, sp);
    line = sp == std::string_view::npos ? std::string_view() : line.substr(sp);
    return !tok->empty();
  };
  std::string_view range, perms, offset, dev, inode;
  if (!next(&range) || !next(&perms) || !next(&offset) || !next(&dev) || !next(&inode)) return false;
  auto dash = range.find('-');
  if (dash == std::string_view::npos || !parse_u64(range.substr(0, dash), &m->start, 16) ||
      !parse_u64(range.substr(dash + 1), &m->end, 16) || m->end < m->start || !parse_u64(offset, &m->offset, 16))
    return false;
  m->exec = perms.size() >= 3 && perms[2] == 'x';
  m->path = std::string(trim(line));
  constexpr std::string_view kDeleted = " (deleted)";
  if (m->path.size() > kDeleted.size() && m->path.compare(m->path.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0)
    m->path.resize(m->path.size() - kDeleted.size());
  return true;
}

// The non-blank lines of a text, trimmed, one at a time (a 256 MiB
// profile has millions).
class Lines {
 public:
  explicit Lines(std::string_view text) : text_(text) {}
  // False (and *line empty) at the end, or at a line longer than kMaxLine:
  // too_long() tells which.
  bool next(std::string_view* line) {
    *line = {};
    while (at_ < text_.size()) {
      size_t nl = text_.find('\n', at_);
      size_t end = nl == std::string_view::npos ? text_.size() : nl;
      ++number_;
      if (end - at_ > kMaxLine) return !(too_long_ = true);
      std::string_view l = trim(text_.substr(at_, end - at_));
      at_ = end + 1;
      if (!l.empty()) return *line = l, true;
    }
    return false;
  }
  bool too_long() const { return too_long_; }
  size_t number() const { return number_; }  // of the line last read, from 1

 private:
  std::string_view text_;
  size_t at_ = 0, number_ = 0;
  bool too_long_ = false;
};

constexpr std::string_view kMapped = "MAPPED_LIBRARIES:";

// The stacks of a profile, addresses in one flat array.
struct Stacks {
  std::vector<uint64_t> addrs;   // leaf first, stack after stack
  std::vector<size_t> end;       // end of each stack in addrs
  std::vector<Counts> counts;
  Counts other;                  // stacks past kMaxStacks, summed
  uint64_t folded = 0;
  bool pending = false;          // jemalloc: the last "@" line still waits for its counts

  size_t size() const { return end.size(); }
  std::pair<const uint64_t*, const uint64_t*> frames(size_t i) const {
    return {addrs.data() + (i ? end[i - 1] : 0), addrs.data() + end[i]};
  }
};

void add_counts(Counts* to, const Counts& c) {
  auto sat = [](uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; };
  to->objs = sat(to->objs, c.objs);
  to->bytes = sat(to->bytes, c.bytes);
  to->cum_objs = sat(to->cum_objs, c.cum_objs);
  to->cum_bytes = sat(to->cum_bytes, c.cum_bytes);
}

}  // namespace

Format sniff(std::string_view head) {
  if (head.rfind("heap_v2/", 0) == 0) return Format::kJemalloc;
  if (head.rfind("heap profile:", 0) == 0) return Format::kGperftools;
  return Format::kNone;
}

absl::StatusOr<load::Dump> parse_heap_profile_cached(std::string_view text, const std::string& name,
                                                     const ParseOptions& options, ElfLayoutCache* elf) {
  Format format = sniff(text);
  if (format == Format::kNone) return bad(name, "not a jemalloc or gperftools heap profile");
  load::Dump d;
  d.file = name;
  d.file_size = text.size();

  // Both allocators end every line, the last one too: a file that does
  // not was cut short (a copy interrupted, a disk full).
  if (text.back() != '\n') return bad(name, "truncated (the last line is incomplete)");
  Lines lines(text);
  std::string_view l;
  auto line_error = [&](const std::string& why) { return bad(name, absl::StrCat("line ", lines.number(), ": ", why)); };
  auto too_long_error = [&] { return bad(name, absl::StrCat("line ", lines.number(), " is too long")); };
  if (!lines.next(&l)) return lines.too_long() ? too_long_error() : bad(name, "empty");
  std::string_view header = l;

  uint64_t period = 1;
  Stacks stacks;
  // Appends a stack's addresses (past kMaxStacks: only its counts, later).
  auto parse_addrs = [&](std::string_view a) {
    bool keep = stacks.size() < kMaxStacks;
    size_t depth = 0;
    a = trim(a);
    while (!a.empty()) {
      size_t sp = a.find_first_of(" \t");
      std::string_view tok = a.substr(0, sp);
      uint64_t addr;
      if (!parse_hex_addr(tok, &addr)) return false;
      if (keep && depth < format::kMaxDepth) stacks.addrs.push_back(addr), ++depth;  // deeper frames are dropped (root side)
      a = sp == std::string_view::npos ? std::string_view() : trim(a.substr(sp));
    }
    return true;
  };
  auto add_stack = [&](const Counts& c) {
    if (stacks.size() < kMaxStacks) {
      stacks.end.push_back(stacks.addrs.size());
      stacks.counts.push_back(c);
    } else {
      add_counts(&stacks.other, c);
      ++stacks.folded;
    }
  };

  if (format == Format::kJemalloc) {
    std::string_view h = header;
    if (!parse_u64(h.substr(8), &period) || period == 0 || period > kMaxPeriod)
      return bad(name, absl::StrCat("bad sampling period in '", std::string(h.substr(0, 40)), "'"));
    d.shim_version = absl::StrCat("jemalloc heap_v2/", period);
    while (lines.next(&l) && l != kMapped) {
      if (l[0] == '@') {
        if (stacks.pending) return line_error("stack without counts");
        if (!parse_addrs(l.substr(1))) return line_error("bad address");
        stacks.pending = true;
      } else if (l.rfind("t*:", 0) == 0) {
        Counts c;
        if (!parse_counts(l.substr(3), &c)) return line_error("bad counts");
        if (stacks.pending) add_stack(c), stacks.pending = false;  // else: the whole profile's totals
      } else if (l[0] == 't') {
        continue;  // per-thread counts: the t* line has their sum
      } else {
        return line_error(absl::StrCat("unexpected '", std::string(l.substr(0, 40)), "'"));
      }
    }
  } else {
    std::string_view h = header;
    auto at = h.find('@');
    Counts total;
    if (at == std::string_view::npos || !parse_counts(h.substr(13, at - 13), &total))
      return bad(name, "bad 'heap profile:' header");
    std::string_view type = trim(h.substr(at + 1));
    if (type == "heapprofile" || type == "heap") {
      period = 1;  // every allocation recorded: the counts are exact
    } else if (type.rfind("heap_v2/", 0) == 0) {
      if (!parse_u64(type.substr(8), &period) || period == 0 || period > kMaxPeriod)
        return bad(name, "bad sampling period in the header");
    } else {
      return bad(name, absl::StrCat("unsupported gperftools profile type '", std::string(type.substr(0, 40)), "'"));
    }
    d.shim_version = absl::StrCat("gperftools ", std::string(type));
    while (lines.next(&l) && l != kMapped) {
      auto a = l.find('@');
      Counts c;
      if (a == std::string_view::npos || !parse_counts(l.substr(0, a), &c))
        return line_error("expected 'objs: bytes [objs: bytes] @ addresses'");
      if (!parse_addrs(l.substr(a + 1))) return line_error("bad address");
      add_stack(c);
    }
  }
  if (lines.too_long()) return too_long_error();
  if (stacks.pending) return bad(name, "truncated (last stack has no counts)");
  if (l != kMapped) return bad(name, "truncated (no MAPPED_LIBRARIES section)");

  // The module map. One load::Module per executable mapping, each with its
  // own load bias (segments of one file can have different vaddr-offset
  // deltas); anonymous executable memory is JIT code.
  std::vector<Mapping> maps;
  while (lines.next(&l)) {
    Mapping m;
    if (!parse_mapping(l, &m)) return line_error("bad MAPPED_LIBRARIES entry");
    if (maps.size() >= kMaxMappings) return bad(name, "too many MAPPED_LIBRARIES entries");
    if (d.id.exe.empty() && !m.path.empty() && m.path[0] == '/') d.id.exe = m.path;
    if (m.exec) maps.push_back(std::move(m));
  }
  if (lines.too_long()) return too_long_error();
  std::sort(maps.begin(), maps.end(), [](const Mapping& a, const Mapping& b) { return a.start < b.start; });
  for (const Mapping& m : maps) {
    load::Module mod;
    mod.start = m.start;
    mod.end = m.end;
    mod.path = m.path;
    if (m.path.empty() || (m.path[0] != '/' && m.path[0] != '[')) {
      mod.kind = format::kJit;
    } else if (m.path[0] == '/') {
      const ElfLayout& e = elf->get(m.path, options.root);
      mod.build_id = e.build_id;
      mod.bias = e.bias_for(m.start, m.offset);
    } else {
      mod.bias = m.start;  // [vdso] and the like
    }
    d.modules.push_back(std::move(mod));
  }
  auto module_of = [&](uint64_t a) -> int32_t {
    auto it = std::upper_bound(d.modules.begin(), d.modules.end(), a,
                               [](uint64_t x, const load::Module& m) { return x < m.start; });
    if (it == d.modules.begin()) return -1;
    --it;
    return a < it->end ? static_cast<int32_t>(it - d.modules.begin()) : -1;
  };

  std::unordered_map<uint64_t, uint32_t> frame_of;
  for (size_t si = 0; si <= stacks.size(); ++si) {
    bool other = si == stacks.size();  // the folded stacks, last
    if (other && stacks.folded == 0) break;
    const Counts& counts = other ? stacks.other : stacks.counts[si];
    double live_objs, live_bytes, cum_objs, cum_bytes;
    unsample(counts.objs, counts.bytes, period, &live_objs, &live_bytes);
    unsample(counts.cum_objs, counts.cum_bytes, period, &cum_objs, &cum_bytes);
    // More than an address space can hold is a corrupted (or hostile) file.
    constexpr double kImpossible = 18446744073709551616.0;
    for (double v : {live_objs, live_bytes, cum_objs, cum_bytes})
      if (!(v < kImpossible)) return bad(name, "impossible counts (more than an address space)");
    if (live_bytes == 0 && cum_bytes == 0) continue;
    load::Record r;
    r.live_count = live_objs;
    r.live_bytes = live_bytes;
    r.alloc_count = cum_objs;
    r.alloc_bytes = cum_bytes;
    r.live_samples = counts.objs;
    r.total_samples = counts.cum_objs;
    if (other) {  // r.stack stays -1: "[other]"
      d.records.push_back(r);
      d.records_folded = stacks.folded;
      break;
    }
    auto [first, last] = stacks.frames(si);
    std::vector<uint32_t> st;
    st.reserve(static_cast<size_t>(last - first));
    for (const uint64_t* ap = first; ap != last; ++ap) {
      uint64_t a = *ap;
      auto [it, fresh] = frame_of.try_emplace(a, static_cast<uint32_t>(d.frames.size()));
      if (fresh) {
        load::Frame f;
        f.address = a;
        f.module = module_of(a);
        d.frames.push_back(std::move(f));
      }
      st.push_back(it->second);
    }
    r.stack = static_cast<int64_t>(d.stacks.size());
    d.stacks.push_back(std::move(st));
    d.records.push_back(r);
  }
  d.sample_bytes = period;
  return d;
}

absl::StatusOr<load::Dump> parse_heap_profile(std::string_view text, const std::string& name,
                                              const ParseOptions& options) {
  ElfLayoutCache elf;
  return parse_heap_profile_cached(text, name, options, &elf);
}

}  // namespace leakwatch::import
