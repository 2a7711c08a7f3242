#include <algorithm>
#include <ctime>

#include "absl/strings/str_format.h"
#include "reporter/render/render.h"
#include "reporter/symbolize/dwarf_symbolizer.h"

namespace leakwatch::render {

namespace {
std::string wall(uint64_t ns) {
  time_t s = static_cast<time_t>(ns / 1000000000);
  struct tm tm;
  gmtime_r(&s, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}
}  // namespace

void inspect(const load::Dump& d, std::ostream& out) {
  out << absl::StrFormat("%s: valid leakwatch dump, format %d.%d, %d bytes\n", d.file, d.major, d.minor, d.file_size);
  out << absl::StrFormat("  process     %s (pid %d, ppid %d, instance %016x)\n", d.id.exe, d.id.pid, d.id.ppid, d.id.instance);
  out << absl::StrFormat("  command     %s\n", d.id.cmdline);
  out << absl::StrFormat("  host        %s%s\n", d.id.hostname, d.id.container_id.empty() ? "" : "  container " + d.id.container_id);
  out << absl::StrFormat("  started     %s\n", wall(d.id.start_wall_ns));
  out << absl::StrFormat("  dump        #%d at %s (%.3fs after start)%s%s\n", d.seq, wall(d.wall_ns),
                         d.mono_ns >= d.id.start_mono_ns ? (d.mono_ns - d.id.start_mono_ns) / 1e9 : 0.0,
                         d.final_dump ? ", final (normal exit)" : "",
                         !d.reason.empty() && !d.final_dump && d.reason != "periodic" ? ", " + d.reason : "");
  if (d.memory.rss)
    out << absl::StrFormat("  memory      %s resident (%s anonymous, %s file, %s shared), peak %s%s\n",
                           human_bytes(static_cast<double>(d.memory.rss)), human_bytes(static_cast<double>(d.memory.rss_anon)),
                           human_bytes(static_cast<double>(d.memory.rss_file)),
                           human_bytes(static_cast<double>(d.memory.rss_shmem)),
                           human_bytes(static_cast<double>(d.memory.rss_peak)),
                           d.memory.swap ? ", " + human_bytes(static_cast<double>(d.memory.swap)) + " swapped" : "");
  out << absl::StrFormat("  sampling    every %d bytes on average, max %d frames, interval %.3gs\n", d.sample_bytes,
                         d.max_frames, d.interval_s);
  out << absl::StrFormat("  shim        %s, %s of its own memory mapped, %s resident%s\n", d.shim_version,
                         human_bytes(static_cast<double>(d.shim_mapped_bytes)),
                         human_bytes(static_cast<double>(d.memory.shim_resident)),
                         d.dropped_samples ? absl::StrFormat(", %d samples dropped", d.dropped_samples) : "");
  for (const auto& [k, v] : d.extra) out << absl::StrFormat("  %-11s %s\n", k, v);
  double live = 0, alloc = 0;
  uint64_t samples = 0;
  for (const auto& r : d.records) live += r.live_bytes, alloc += r.alloc_bytes, samples += r.live_samples;
  out << absl::StrFormat("  tables      %d modules, %d frames, %d stacks, %d records (%d folded into [other])\n",
                         d.modules.size(), d.frames.size(), d.stacks.size(), d.records.size(), d.records_folded);
  out << absl::StrFormat("  estimates   %s live (%d live samples), %s allocated since start\n", human_bytes(live),
                         samples, human_bytes(alloc));
  out << "  modules:\n";
  for (size_t i = 0; i < d.modules.size() && i < 40; ++i) {
    const auto& m = d.modules[i];
    out << absl::StrFormat("    %012x-%012x %s %s\n", m.start, m.end, m.kind == 1 ? "[jit]" : m.path,
                           m.build_id.empty() ? "" : "build-id " + m.build_id);
  }
  if (d.modules.size() > 40) out << absl::StrFormat("    ... %d more\n", d.modules.size() - 40);
  std::vector<const load::Record*> recs;
  for (const auto& r : d.records) recs.push_back(&r);
  std::sort(recs.begin(), recs.end(), [](auto* a, auto* b) { return a->live_bytes > b->live_bytes; });
  out << "  largest live records:\n";
  for (size_t i = 0; i < recs.size() && i < 10; ++i) {
    const auto* r = recs[i];
    out << absl::StrFormat("    %11s live in %.0f allocations (%d samples), %s allocated\n", human_bytes(r->live_bytes),
                           r->live_count, r->live_samples, human_bytes(r->alloc_bytes));
    if (r->stack < 0) {
      out << "        [other]\n";
      continue;
    }
    const auto& st = d.stacks[r->stack];
    for (size_t f = 0; f < st.size() && f < 6; ++f) {
      const auto& fr = d.frames[st[f]];
      std::string mod = fr.module >= 0 ? d.modules[fr.module].path : "?";
      auto slash = mod.rfind('/');
      if (slash != std::string::npos) mod = mod.substr(slash + 1);
      out << absl::StrFormat("        %s  (%s)\n",
                             d.symbol(fr).empty() ? absl::StrFormat("0x%x", fr.address)
                                                  : absl::StrFormat("%s+0x%x", symbolize::demangle(d.symbol(fr)),
                                                                    fr.symbol_offset),
                             mod);
    }
  }
}

}  // namespace leakwatch::render
