#include "reporter/merge/timeline.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "shim/dump/format.h"

namespace leakwatch::merge {

namespace {
constexpr uint32_t kNoStackFrame = 0;  // frame id 0: "[no stack]"
constexpr uint32_t kJitKey = 0xfffffffe;
constexpr uint32_t kUnknownKey = 0xffffffff;
}

std::string runtime_of(const std::string& exe, const std::vector<std::string>& modules) {
  std::string base = exe.substr(exe.rfind('/') + 1);
  auto has = [&](const char* lib) {
    return std::any_of(modules.begin(), modules.end(), [&](const std::string& m) { return m.find(lib) != std::string::npos; });
  };
  if (base == "node" || base == "nodejs" || has("/libnode.so")) return "node";
  if (base.rfind("python", 0) == 0 || has("/libpython3")) return "python";
  if (has("/libjvm.so")) return "java";
  if (base == "beam.smp" || base == "beam" || base == "erlexec") return "beam";
  return "";
}

TimelineBuilder::TimelineBuilder()
    : site_ids_(0, SiteHash{&t_.sites}, SiteEq{&t_.sites}) {
  FrameKey none;
  none.unknown = true;
  t_.frames.push_back(none);
  FrameKey mmap_frame;
  mmap_frame.mapped = true;
  t_.frames.push_back(mmap_frame);  // Timeline::kMmapFrame
  symbol_ids_.emplace("", 0);
  t_.sites.push_back({});  // kOtherSite
  site_ids_.insert(Timeline::kOtherSite);
}

uint32_t TimelineBuilder::symbol_id(const std::string& s) {
  auto [it, fresh] = symbol_ids_.try_emplace(s, static_cast<uint32_t>(t_.symbols.size()));
  if (fresh) t_.symbols.push_back(s);
  return it->second;
}

uint32_t TimelineBuilder::frame_id(const load::Dump& d, const load::Frame& f, const std::vector<uint32_t>& mkeys) {
  std::pair<uint32_t, uint64_t> id_key;
  if (f.module < 0) id_key = {kUnknownKey, f.address};
  else if (d.modules[f.module].kind == format::kJit) id_key = {kJitKey, 0};
  else id_key = {mkeys[f.module], f.address - d.modules[f.module].bias};
  auto it = frame_ids_.find(id_key);
  if (it != frame_ids_.end()) {
    FrameKey& old = t_.frames[it->second];
    if (old.symbol == 0 && f.symbol != 0) old.symbol = symbol_id(d.symbol(f)), old.symbol_offset = f.symbol_offset;
    return it->second;
  }
  FrameKey k;
  if (id_key.first == kUnknownKey) {
    k.unknown = true;
    k.vaddr = f.address;
  } else if (id_key.first == kJitKey) {
    k.jit = true;
  } else {
    k.module = id_key.first;
    k.vaddr = id_key.second;
  }
  if (f.symbol != 0) k.symbol = symbol_id(d.symbol(f));
  k.symbol_offset = f.symbol_offset;
  uint32_t id = static_cast<uint32_t>(t_.frames.size());
  frame_ids_.emplace(id_key, id);
  t_.frames.push_back(std::move(k));
  return id;
}

void TimelineBuilder::add(const load::Dump& d) {
  auto [pit, inserted] = process_index_.try_emplace({d.id.instance, d.id.pid}, t_.processes.size());
  if (inserted) {
    ProcessTimeline p;
    p.id = d.id;
    std::vector<std::string> paths;
    for (const auto& m : d.modules) {
      if (m.path == d.id.exe && !m.build_id.empty()) p.exe_build_id = m.build_id;
      paths.push_back(m.path);
    }
    p.runtime = runtime_of(d.id.exe, paths);
    t_.processes.push_back(std::move(p));
  }
  ProcessTimeline& p = t_.processes[pit->second];

  // Modules are identified by build-id (ASLR and paths differ between
  // replicas of one build), or by path when there is no build-id.
  std::vector<uint32_t> mkeys(d.modules.size());
  for (size_t i = 0; i < d.modules.size(); ++i) {
    const auto& m = d.modules[i];
    const std::string& ident = m.build_id.empty() ? m.path : m.build_id;
    auto [it, fresh] = module_keys_.try_emplace(ident, static_cast<uint32_t>(t_.modules.size()));
    if (fresh) t_.modules.push_back({m.path, m.build_id});
    mkeys[i] = it->second;
  }
  // Frames and stacks are mapped when a record first names them.
  constexpr uint32_t kUnmapped = 0xffffffff;
  std::vector<uint32_t> fmap(d.frames.size(), kUnmapped);
  std::vector<uint32_t> stack_site(d.stacks.size(), kUnmapped);
  std::vector<uint32_t> ids;
  // A stack index names one kind of record (the shim interns stacks by kind).
  auto site_of = [&](size_t s, uint32_t kind) {
    if (stack_site[s] != kUnmapped) return stack_site[s];
    ids.clear();
    if (kind == format::kMmapRecord) ids.push_back(Timeline::kMmapFrame);
    for (uint32_t fi : d.stacks[s]) {
      if (fmap[fi] == kUnmapped) fmap[fi] = frame_id(d, d.frames[fi], mkeys);
      uint32_t id = fmap[fi];
      if (t_.frames[id].jit && !ids.empty() && t_.frames[ids.back()].jit) continue;
      ids.push_back(id);
    }
    if (ids.empty() || (ids.size() == 1 && ids[0] == Timeline::kMmapFrame)) ids.push_back(kNoStackFrame);
    auto it = site_ids_.find(absl::Span<const uint32_t>(ids));
    if (it != site_ids_.end()) return stack_site[s] = *it;
    if (t_.sites.size() >= Timeline::kMaxSites) {
      ++t_.sites_folded;
      return stack_site[s] = Timeline::kOtherSite;
    }
    auto id = static_cast<uint32_t>(t_.sites.size());
    t_.sites.push_back(ids);
    site_ids_.insert(id);
    return stack_site[s] = id;
  };
  absl::flat_hash_map<uint32_t, size_t> at;
  std::vector<Value> vals;
  vals.reserve(d.records.size());
  DumpMeta m;
  for (const load::Record& r : d.records) {
    if (r.kind == format::kMmapRecord) {
      m.mmap_live += r.live_bytes, m.mmap_mapped += r.mapped_bytes;
      m.mmap_samples += static_cast<double>(r.live_samples);
    } else {
      m.malloc_live += r.live_bytes;
      m.malloc_samples += static_cast<double>(r.live_samples);
      m.malloc_alloc += r.alloc_bytes;
    }
    uint32_t site = r.stack < 0 ? Timeline::kOtherSite : site_of(static_cast<size_t>(r.stack), r.kind);
    auto [it, fresh] = at.try_emplace(site, vals.size());
    if (fresh) vals.push_back(Value{site, 0, 0, 0, 0});
    Value& v = vals[it->second];
    v.live_bytes += static_cast<float>(r.live_bytes);
    v.live_count += static_cast<float>(r.live_count);
    v.alloc_bytes += static_cast<float>(r.alloc_bytes);
    v.live_samples += static_cast<uint32_t>(std::min<uint64_t>(r.live_samples, UINT32_MAX));
  }
  m.file = d.file;
  m.seq = d.seq;
  m.wall_ns = d.wall_ns;
  m.mono_ns = d.mono_ns;
  m.sample_bytes = d.sample_bytes;
  m.mapping_sample_bytes = d.mapping_sample_bytes;
  m.dropped_samples = d.dropped_samples;
  m.final_dump = d.final_dump;
  m.reason = d.reason;
  m.retention_level = d.retention_level;
  m.memory = d.memory;
  m.t_s = d.mono_ns >= d.id.start_mono_ns ? static_cast<double>(d.mono_ns - d.id.start_mono_ns) / 1e9 : 0;
  p.dumps.push_back(std::move(m));
  p.values.push_back(std::move(vals));
}

Timeline TimelineBuilder::finish() {
  for (auto& p : t_.processes) {
    std::vector<size_t> order(p.dumps.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p.dumps[a].seq < p.dumps[b].seq; });
    std::vector<DumpMeta> dumps;
    std::vector<std::vector<Value>> values;
    for (size_t i : order) {
      // The same sequence number twice is a copied file: keep one.
      if (!dumps.empty() && dumps.back().seq == p.dumps[i].seq) continue;
      dumps.push_back(std::move(p.dumps[i]));
      values.push_back(std::move(p.values[i]));
    }
    p.dumps = std::move(dumps);
    p.values = std::move(values);
  }
  return std::move(t_);
}

}  // namespace leakwatch::merge
