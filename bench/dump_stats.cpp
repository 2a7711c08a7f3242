// Prints one JSON line per dump file with what the benchmark suite needs:
// size, stack and record counts, and the sums of the sample counts and
// estimates. Usage: lw_dump_stats DIR|FILES...
#include <cstdio>
#include <string>
#include <vector>

#include "reporter/load/dump_reader.h"

int main(int argc, char** argv) {
  std::vector<std::string> inputs(argv + 1, argv + argc);
  auto loaded = leakwatch::load::load_inputs(inputs);
  if (!loaded.ok()) {
    std::fprintf(stderr, "lw_dump_stats: %s\n", std::string(loaded.status().message()).c_str());
    return 1;
  }
  for (const auto& w : loaded->warnings) std::fprintf(stderr, "lw_dump_stats: %s\n", w.c_str());
  for (const auto& d : loaded->dumps) {
    unsigned long long total = 0, live = 0, live_stacks = 0;
    double alloc_bytes = 0, live_bytes = 0, alloc_count = 0;
    for (const auto& r : d.records) {
      total += r.total_samples;
      live += r.live_samples;
      live_stacks += r.live_samples > 0;
      alloc_bytes += r.alloc_bytes;
      live_bytes += r.live_bytes;
      alloc_count += r.alloc_count;
    }
    std::printf(
        "{\"file\": \"%s\", \"bytes\": %llu, \"seq\": %llu, \"final\": %s, \"sample_bytes\": %llu, "
        "\"stacks\": %zu, \"records\": %zu, \"live_stacks\": %llu, \"total_samples\": %llu, \"live_samples\": %llu, "
        "\"dropped_samples\": %llu, \"alloc_bytes\": %.0f, \"alloc_count\": %.0f, \"live_bytes\": %.0f, "
        "\"shim_mapped_bytes\": %llu}\n",
        d.file.c_str(), static_cast<unsigned long long>(d.file_size), static_cast<unsigned long long>(d.seq),
        d.final_dump ? "true" : "false", static_cast<unsigned long long>(d.sample_bytes), d.stacks.size(),
        d.records.size(), live_stacks, total, live, static_cast<unsigned long long>(d.dropped_samples), alloc_bytes,
        alloc_count, live_bytes, static_cast<unsigned long long>(d.shim_mapped_bytes));
  }
  return 0;
}
