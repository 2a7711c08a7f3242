// Unit tests for reporter/import: parsing jemalloc and gperftools heap
// profiles (unsampling, module map and load bias, file-name facts) and
// refusing hostile input without crashing or allocating without bound.
// Real profiles from the real allocators are read in
// tests/e2e/cases/test_import.py.
#include <catch2/catch.hpp>

#include <link.h>

#include <cmath>
#include <fstream>
#include <random>
#include <string>

#include "reporter/import/elf_layout.h"
#include "reporter/import/heap_profile.h"
#include "shim/dump/format.h"

using namespace leakwatch;
using import::Format;

namespace {

const char* kMaps =
    "MAPPED_LIBRARIES:\n"
    "55d000000000-55d000001000 r--p 00000000 fe:00 11 /nonexistent/app\n"
    "55d000001000-55d000002000 r-xp 00001000 fe:00 11 /nonexistent/app\n"
    "7f0000000000-7f0000100000 rwxp 00000000 00:00 0 \n"
    "7f1000000000-7f1000026000 r--p 00000000 fe:00 12 /nonexistent/libc.so.6\n"
    "7f1000026000-7f100017c000 r-xp 00026000 fe:00 12 /nonexistent/libc.so.6 (deleted)\n";

std::string jemalloc_text() {
  return std::string(
             "heap_v2/4096\n"
             "  t*: 20: 30720 [0: 0]\n"
             "  t0: 20: 30720 [0: 0]\n"
             "@ 0x55d000001234 0x7f1000027000 0x7f0000000010\n"
             "  t*: 10: 10240 [40: 40960]\n"
             "  t0: 10: 10240 [40: 40960]\n"
             "@ 0x55d000001300 0x55d000001234\n"
             "  t*: 10: 20480 [0: 0]\n"
             "\n") +
         kMaps;
}

std::string gperftools_text(const std::string& type = "heapprofile") {
  return "heap profile:   7:  7000 [  9:  9000] @ " + type +
         "\n"
         "     4:     4000 [     5:     5000] @ 0x55d000001234 0x7f1000027000\n"
         "     3:     3000 [     4:     4000] @ 0x55d000001300\n"
         "\n" +
         kMaps;
}

double scale(double mean, double period) { return 1 / (1 - std::exp(-mean / period)); }

}  // namespace

TEST_CASE("sniff tells the formats apart") {
  CHECK(import::sniff("heap_v2/524288\n") == Format::kJemalloc);
  CHECK(import::sniff("heap profile: 1: 2 [3: 4] @ heapprofile\n") == Format::kGperftools);
  CHECK(import::sniff("LKWTDUMP") == Format::kNone);
  CHECK(import::sniff("") == Format::kNone);
}

TEST_CASE("jemalloc: stacks, unsampled counts, module map") {
  auto d = import::parse_heap_profile(jemalloc_text(), "je.heap");
  REQUIRE(d.ok());
  CHECK(d->sample_bytes == 4096);
  REQUIRE(d->records.size() == 2);
  REQUIRE(d->stacks.size() == 2);
  const auto& r = d->records[0];
  double s = scale(1024, 4096);
  CHECK(r.live_bytes == Approx(10240 * s));
  CHECK(r.live_count == Approx(10 * s));
  CHECK(r.live_samples == 10);
  CHECK(r.alloc_bytes == Approx(40960 * s));
  CHECK(d->records[1].live_bytes == Approx(20480 * scale(2048, 4096)));
  // Frames: leaf first, shared addresses shared.
  CHECK(d->stacks[0].size() == 3);
  CHECK(d->stacks[1][1] == d->stacks[0][0]);
  CHECK(d->frames[d->stacks[0][0]].address == 0x55d000001234);
  // Executable mappings only: app text, the anonymous rwx (JIT), libc text.
  REQUIRE(d->modules.size() == 3);
  CHECK(d->id.exe == "/nonexistent/app");
  const auto& app = d->modules[d->frames[d->stacks[0][0]].module];
  CHECK(app.path == "/nonexistent/app");
  CHECK(app.bias == 0x55d000000000);  // no file: vaddr taken as the file offset
  const auto& libc = d->modules[d->frames[d->stacks[0][1]].module];
  CHECK(libc.path == "/nonexistent/libc.so.6");  // " (deleted)" dropped
  CHECK(libc.bias == 0x7f1000000000);
  CHECK(d->modules[d->frames[d->stacks[0][2]].module].kind == format::kJit);
}

TEST_CASE("gperftools: exact heapprofile and sampled heap_v2") {
  auto d = import::parse_heap_profile(gperftools_text(), "prof.0001.heap");
  REQUIRE(d.ok());
  CHECK(d->sample_bytes == 1);
  REQUIRE(d->records.size() == 2);
  CHECK(d->records[0].live_bytes == 4000);
  CHECK(d->records[0].live_count == 4);
  CHECK(d->records[0].alloc_bytes == 5000);
  CHECK(d->records[1].live_bytes == 3000);
  auto v2 = import::parse_heap_profile(gperftools_text("heap_v2/524288"), "x.heap");
  REQUIRE(v2.ok());
  CHECK(v2->sample_bytes == 524288);
  CHECK(v2->records[0].live_bytes == Approx(4000 * scale(1000, 524288)));
  CHECK_FALSE(import::parse_heap_profile(gperftools_text("growth"), "x.heap").ok());
}

TEST_CASE("load bias from the real ELF file matches the loader's") {
  // This test binary itself: its text mapping from /proc/self/maps.
  std::ifstream maps("/proc/self/maps");
  std::string line, exe_path;
  {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    REQUIRE(n > 0);
    exe_path.assign(buf, static_cast<size_t>(n));
  }
  uint64_t start = 0, offset = 0;
  while (std::getline(maps, line)) {
    if (line.find(" r-xp ") == std::string::npos || line.size() < exe_path.size() ||
        line.compare(line.size() - exe_path.size(), exe_path.size(), exe_path) != 0)
      continue;
    start = std::stoull(line.substr(0, line.find('-')), nullptr, 16);
    offset = std::stoull(line.substr(line.find(" r-xp ") + 6, 8), nullptr, 16);
    break;
  }
  REQUIRE(start != 0);
  import::ElfLayout e = import::read_elf_layout(exe_path);
  REQUIRE(e.read);
  CHECK_FALSE(e.build_id.empty());
  uint64_t loader_bias = 0;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* out) {
        *static_cast<uint64_t*>(out) = info->dlpi_addr;
        return 1;  // the first object is the main program
      },
      &loader_bias);
  CHECK(e.bias_for(start, offset) == loader_bias);
}

TEST_CASE("file names give process, sequence and the final dump") {
  auto je = import::facts_from_name("/d/jeprof.4211.17.i3.heap", Format::kJemalloc);
  CHECK(je.pid == 4211);
  CHECK(je.seq == 17);
  CHECK_FALSE(je.final_dump);
  CHECK(je.group == "/d/jeprof.4211");
  auto fin = import::facts_from_name("/d/my.app.4211.18.f.heap", Format::kJemalloc);
  CHECK(fin.final_dump);
  CHECK(fin.group == "/d/my.app.4211");
  CHECK(import::facts_from_name("/d/jeprof.4211.2.m0.heap", Format::kJemalloc).seq == 2);
  auto gp = import::facts_from_name("/d/prof.0007.heap", Format::kGperftools);
  CHECK(gp.seq == 7);
  CHECK(gp.group == "/d/prof");
  auto odd = import::facts_from_name("/d/whatever.heap", Format::kGperftools);
  CHECK(odd.seq == -1);
  CHECK(odd.group == "/d/?gperftools");
}

TEST_CASE("hostile or broken profiles are refused, not trusted") {
  std::string good = jemalloc_text();
  auto refuse = [](const std::string& text) {
    auto d = import::parse_heap_profile(text, "bad.heap");
    CHECK_FALSE(d.ok());
    if (!d.ok()) CHECK(std::string(d.status().message()).rfind("bad.heap: ", 0) == 0);
  };
  refuse("heap_v2/0\n\nMAPPED_LIBRARIES:\n");                        // no period
  refuse("heap_v2/99999999999999999999\n\nMAPPED_LIBRARIES:\n");     // overflow
  refuse("heap_v2/4096\n@ 0x1\n\nMAPPED_LIBRARIES:\n");              // stack without counts
  refuse("heap_v2/4096\n@ 0x1\n  t*: 1: 2 [3: 4\n\nMAPPED_LIBRARIES:\n");
  refuse("heap_v2/4096\n@ 0x1\n  t*: 1: 99999999999999999999 [0: 0]\n\nMAPPED_LIBRARIES:\n");
  refuse("heap_v2/4096\n@ 0x10000000000000000\n  t*: 1: 2 [0: 0]\n\nMAPPED_LIBRARIES:\n");
  refuse("heap_v2/4096\n@ 0x1\n  t*: 1: 2 [0: 0]\n");                // no MAPPED_LIBRARIES
  refuse("heap_v2/4096\nsomething else\n\nMAPPED_LIBRARIES:\n");
  refuse(good.substr(0, good.size() - 10));                          // cut mid-line
  refuse("heap_v2/4096\n\nMAPPED_LIBRARIES:\nnot a mapping\n");
  refuse("heap_v2/4096\n\nMAPPED_LIBRARIES:\n2000-1000 r-xp 0 0:0 0 /x\n");  // end before start
  refuse("heap_v2/4096\n@ " + std::string(2 << 20, '1') + "\n");     // a 2 MiB line
  refuse("heap profile: 1: 2 [3: 4] @\n\nMAPPED_LIBRARIES:\n");
  refuse("heap profile: x\n");
  // 2^64-1 objects of 1 byte in total, sampled: scaled past any address space.
  refuse("heap_v2/4096\n@ 0x1\n  t*: 18446744073709551615: 1 [0: 0]\n\nMAPPED_LIBRARIES:\n");
  refuse("not a profile\n");
}

TEST_CASE("stacks deeper than the format's cap are cut, not refused") {
  std::string addrs;
  for (int i = 0; i < 1000; ++i) addrs += " 0x" + std::to_string(1000 + i);
  auto d = import::parse_heap_profile("heap_v2/1\n@" + addrs + "\n  t*: 1: 8 [0: 0]\n\nMAPPED_LIBRARIES:\n", "deep.heap");
  REQUIRE(d.ok());
  REQUIRE(d->stacks.size() == 1);
  CHECK(d->stacks[0].size() == format::kMaxDepth);
  CHECK(d->frames[d->stacks[0][0]].module == -1);
}

TEST_CASE("a profile with more stacks than the cap keeps the first ones and counts the rest as [other]") {
  // 2^18 stacks are kept (the cap); the 7 past it are summed into one record
  // with no stack, so totals stay right and memory stays bounded.
  const int kept = 1 << 18, extra = 7;
  std::string t = "heap_v2/1\n";
  for (int i = 0; i < kept + extra; ++i) t += "@ 0x" + std::to_string(100000 + i) + "\n  t*: 1: 8 [1: 8]\n";
  t += "\nMAPPED_LIBRARIES:\n";
  auto d = import::parse_heap_profile(t, "many.heap");
  REQUIRE(d.ok());
  CHECK(d->stacks.size() == static_cast<size_t>(kept));
  REQUIRE(d->records.size() == static_cast<size_t>(kept) + 1);
  const auto& other = d->records.back();
  CHECK(other.stack == -1);
  CHECK(other.live_bytes == 8.0 * extra);
  CHECK(other.live_count == 1.0 * extra);
  CHECK(d->records_folded == static_cast<uint64_t>(extra));
  double total = 0;
  for (const auto& r : d->records) total += r.live_bytes;
  CHECK(total == 8.0 * (kept + extra));
}

TEST_CASE("random corruption never crashes the parser") {
  std::mt19937 rng(42);
  for (const std::string& base : {jemalloc_text(), gperftools_text()}) {
    for (int round = 0; round < 3000; ++round) {
      std::string t = base;
      int edits = 1 + static_cast<int>(rng() % 8);
      for (int e = 0; e < edits; ++e) {
        size_t at = rng() % t.size();
        switch (rng() % 4) {
          case 0: t[at] = static_cast<char>(rng() % 256); break;
          case 1: t.erase(at, 1 + rng() % 16); break;
          case 2: t.insert(at, std::string(1 + rng() % 4, "0123456789:[]@ x\n"[rng() % 17])); break;
          case 3: t.resize(at); break;
        }
        if (t.empty()) t = "h";
      }
      auto d = import::parse_heap_profile(t, "fuzz.heap");
      if (d.ok()) {
        for (const auto& st : d->stacks)
          for (uint32_t f : st) REQUIRE(f < d->frames.size());
        for (const auto& f : d->frames) REQUIRE(f.module < static_cast<int32_t>(d->modules.size()));
        for (const auto& r : d->records) REQUIRE((r.live_bytes >= 0 && std::isfinite(r.live_bytes)));
      }
    }
  }
}
