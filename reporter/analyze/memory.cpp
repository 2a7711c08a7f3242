#include "reporter/analyze/memory.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace leakwatch::analyze {

const char* memory_part_name(MemoryPart p) {
  switch (p) {
    case MemoryPart::kRss: return "rss";
    case MemoryPart::kMalloc: return "malloc";
    case MemoryPart::kMmap: return "mmap";
    case MemoryPart::kOtherAnon: return "other_anon";
    case MemoryPart::kFile: return "file";
    case MemoryPart::kShared: return "shared";
    case MemoryPart::kShim: return "leakwatch";
    case MemoryPart::kCount: break;
  }
  return "?";
}

namespace {
// Measured by the kernel, not sampled: its noise is load, not sampling. A
// page as the unit keeps the model's floor small; the overdispersion
// factor widens the error by what the data actually does.
constexpr double kPage = 4096;
}  // namespace

MemoryTrends analyze_memory(const std::vector<MemoryPoint>& pts, double S, double S_map) {
  MemoryTrends out;
  for (const auto& p : pts) out.measured |= p.rss > 0;
  if (!out.measured) return out;
  auto series = [&](MemoryPart part) {
    std::vector<Point> s;
    s.reserve(pts.size());
    for (const auto& p : pts) {
      if (p.rss <= 0) continue;  // a dump without the kernel's view
      double v = 0, k = 0, a = 0;
      switch (part) {
        case MemoryPart::kRss: v = p.rss; break;
        case MemoryPart::kMalloc: v = p.malloc_live, k = p.malloc_samples, a = p.malloc_alloc; break;
        case MemoryPart::kMmap: v = p.mmap_live, k = p.mmap_samples; break;
        case MemoryPart::kOtherAnon:
          v = std::max(0.0, p.rss_anon - p.malloc_live - p.mmap_live - p.shim), k = p.malloc_samples + p.mmap_samples;
          break;
        case MemoryPart::kFile: v = p.rss_file; break;
        case MemoryPart::kShared: v = p.rss_shmem; break;
        case MemoryPart::kShim: v = p.shim; break;
        case MemoryPart::kCount: break;
      }
      s.push_back(Point{p.t_s, v, k, a});
    }
    return s;
  };
  for (int i = 0; i < static_cast<int>(MemoryPart::kCount); ++i) {
    auto part = static_cast<MemoryPart>(i);
    double noise = part == MemoryPart::kMmap ? S_map
                   : part == MemoryPart::kMalloc || part == MemoryPart::kOtherAnon ? S
                                                                                    : kPage;
    std::vector<Point> s = series(part);
    if (s.empty()) continue;
    out.part[i].last = s.back().live_bytes;
    out.part[i].result = analyze_series(s, SeriesOptions{noise});
  }
  return out;
}

namespace {

std::string rate_text(double bytes_per_s) {
  char buf[64];
  double v = std::fabs(bytes_per_s);
  const char* unit = "B/s";
  if (v >= 1 << 30) v /= 1 << 30, unit = "GiB/s";
  else if (v >= 1 << 20) v /= 1 << 20, unit = "MiB/s";
  else if (v >= 1 << 10) v /= 1 << 10, unit = "KiB/s";
  std::snprintf(buf, sizeof buf, "%.3g %s", v, unit);
  return buf;
}

bool grows(const MemoryTrend& t) { return t.result.verdict == Verdict::growing; }

// What a managed runtime keeps in its own mapped heap, and how to see inside it.
std::string managed_heap_advice(const std::string& runtime) {
  if (runtime == "node")
    return "this is V8's JavaScript heap (its pages are mapped directly): the objects that pile up are JavaScript "
           "objects; take two heap snapshots a while apart and compare them (node --heapsnapshot-signal=SIGUSR2, or "
           "Chrome DevTools via --inspect); leakwatch names native (C/C++) allocations only";
  if (runtime == "python")
    return "this is CPython's object allocator (pymalloc arenas, mapped directly): run with PYTHONMALLOC=malloc so "
           "every Python object goes through malloc and leakwatch names the allocating sites (or use tracemalloc)";
  if (runtime == "java")
    return "this is the JVM's heap (mapped directly): take heap dumps a while apart (jcmd PID GC.heap_dump FILE) "
           "and compare them; leakwatch names native (JNI, JVM) allocations";
  if (runtime == "beam")
    return "these are ERTS allocator carriers (mapped directly): start the VM with +Mea min so its allocations go "
           "through malloc and leakwatch names each site; erlang:memory() says which kind of data grows";
  return "";
}

}  // namespace

std::vector<std::string> explain_memory(const MemoryTrends& t, const std::string& runtime, bool growing_sites) {
  std::vector<std::string> out;
  if (!t.measured) return out;
  const MemoryTrend& rss = t[MemoryPart::kRss];
  const MemoryTrend& mal = t[MemoryPart::kMalloc];
  const MemoryTrend& map = t[MemoryPart::kMmap];
  const MemoryTrend& other = t[MemoryPart::kOtherAnon];
  const MemoryTrend& file = t[MemoryPart::kFile];
  const MemoryTrend& shared = t[MemoryPart::kShared];
  if (!grows(rss) && !grows(mal) && !grows(map)) return out;
  if (grows(map)) {
    std::string line = "anonymous memory the program maps itself grows " + rate_text(map.result.growth_bytes_per_s);
    std::string advice = managed_heap_advice(runtime);
    out.push_back(advice.empty() ? line + ": see the [mmap] sites" : line + ": " + advice);
  }
  if (grows(other) && !grows(mal))
    out.push_back("anonymous memory that no allocation explains grows " + rate_text(other.result.growth_bytes_per_s) +
                  " while live malloc bytes do not: the allocator keeps freed memory (retention or fragmentation; "
                  "with glibc try MALLOC_ARENA_MAX=2 or malloc_trim, or jemalloc), or thread stacks and memory the "
                  "shim cannot see grow");
  else if (grows(other))
    out.push_back("anonymous memory beyond live allocations also grows " + rate_text(other.result.growth_bytes_per_s) +
                  " (allocator overhead that follows the leak, or memory the shim cannot see)");
  if (grows(file))
    out.push_back("file-backed memory grows " + rate_text(file.result.growth_bytes_per_s) +
                  ": mapped files (a memory-mapped database, more code loaded), not a heap");
  if (grows(shared))
    out.push_back("shared memory grows " + rate_text(shared.result.growth_bytes_per_s) + ": tmpfs, memfd or shm segments");
  if (grows(rss) && !grows(mal) && !grows(map) && !grows(other) && !grows(file) && !grows(shared))
    out.push_back("resident memory grows " + rate_text(rss.result.growth_bytes_per_s) +
                  " but no part of it clearly does: look at the parts' rates below");
  if (grows(rss) && !growing_sites && out.empty())
    out.push_back("resident memory grows " + rate_text(rss.result.growth_bytes_per_s) + " outside any allocation site");
  return out;
}

}  // namespace leakwatch::analyze
