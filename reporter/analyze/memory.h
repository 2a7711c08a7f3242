// reporter/analyze/memory.h — all of a process's memory, reconciled.
//
// A pod is killed for its resident memory, not for its malloc heap. Each
// dump records the kernel's view (resident: anonymous, file-backed,
// shared) next to what the shim tracked (live malloc bytes; the resident
// part of anonymous mappings the program made itself). Over the dumps,
// each part gets a trend, with the same method as a site
// (growth.h): so "resident memory grows 48 MiB/s, of which 47 in mappings
// (V8's heap) and 1 in malloc" -- and when resident memory grows where the
// shim cannot see, the report says so instead of "no growing sites".
//
//   rss         VmRSS
//   malloc      live bytes of the malloc family (estimated from samples)
//   mmap        resident bytes of sampled anonymous mappings (estimated)
//   other_anon  anonymous resident memory none of these explains:
//               allocator retention and fragmentation, thread stacks,
//               libc's own mappings (RssAnon - malloc - mmap - leakwatch)
//   file        file-backed resident memory (code, mapped files)
//   shared      shared memory (tmpfs, memfd, System V / POSIX shm)
//   leakwatch   the shim's own tables, resident (its cost, kept apart)
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "reporter/analyze/growth.h"

namespace leakwatch::analyze {

struct MemoryPoint {
  double t_s;
  double rss, rss_anon, rss_file, rss_shmem;
  double malloc_live, malloc_samples;
  double mmap_live, mmap_samples;
  double shim = 0;          // the shim's own resident bytes
  double malloc_alloc = 0;  // bytes ever allocated through malloc: gives the
                            // turnover of the total (a total that churns is
                            // not judged with the worst-case lifetime)
};

enum class MemoryPart { kRss, kMalloc, kMmap, kOtherAnon, kFile, kShared, kShim, kCount };
const char* memory_part_name(MemoryPart p);  // "rss", "malloc", "mmap", "other_anon", "file", "shared", "leakwatch"

struct MemoryTrend {
  GrowthResult result;  // verdict, rate, confidence, interval
  double last = 0;      // bytes at the last point
};

struct MemoryTrends {
  bool measured = false;  // the dumps recorded the kernel's view (format 1.1)
  MemoryTrend part[static_cast<int>(MemoryPart::kCount)];
  const MemoryTrend& operator[](MemoryPart p) const { return part[static_cast<int>(p)]; }
};

// sample_bytes: the process's S (the estimates' sampling noise);
// mapping_sample_bytes: its mappings' (finer).
MemoryTrends analyze_memory(const std::vector<MemoryPoint>& points, double sample_bytes, double mapping_sample_bytes);

// Where resident memory grows and what to do next, in plain words: one
// line per finding ("" when nothing grows). `growing_sites`: whether some
// allocation site of the process is growing.
std::vector<std::string> explain_memory(const MemoryTrends& t, const std::string& runtime, bool growing_sites);

}  // namespace leakwatch::analyze
