// The directory-wide bound (shim/dump/dir_budget.h): which files go when
// the directory is over budget, and the scan of a real directory.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <set>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "shim/dump/dir_budget.h"

using namespace leakwatch::shim;

namespace {
DirFile file(uint64_t owner, uint64_t bytes, int64_t mtime_s, const char* name, bool own = false, bool tmp = false,
             bool stale = false) {
  DirFile f{};
  f.owner = owner, f.bytes = bytes, f.mtime_ns = mtime_s * 1000000000ll, f.name = name;
  f.own = own, f.tmp = tmp, f.stale_tmp = stale;
  return f;
}

std::set<std::string> evicted(const DirFile* f, std::size_t n) {
  std::set<std::string> out;
  for (std::size_t i = 0; i < n; ++i)
    if (f[i].evict) out.insert(f[i].name);
  return out;
}
}  // namespace

TEST_CASE("the processes that wrote least recently go first, whole; own and in-progress files stay") {
  Arena scratch;
  std::vector<DirFile> f = {
      file(1, 100, 10, "a0"), file(1, 100, 50, "a1"),           // process 1: newest write at 50
      file(2, 100, 20, "b0"), file(2, 100, 30, "b1"),           // process 2: newest at 30 -> first out
      file(3, 100, 5, "own0", true), file(3, 100, 6, "own1", true),  // this process: oldest, never out
      file(4, 100, 60, "c0"),                                   // process 4: the newest
      file(5, 100, 1, ".d.tmp", false, true, true),             // left by a killed writer
      file(6, 100, 2, ".e.tmp", false, true, false),            // being written
  };
  SECTION("just over: one process goes") {
    // 800 bytes that are not stale (the temp file being written counts);
    // keep 600 -> process 2 (200 bytes) goes.
    uint64_t left = choose_evictions(f.data(), f.size(), 600, &scratch);
    CHECK(evicted(f.data(), f.size()) == std::set<std::string>{".d.tmp", "b0", "b1"});
    CHECK(left == 600);
  }
  SECTION("far over: every other process goes, least recent first, never this one's or a write in progress") {
    uint64_t left = choose_evictions(f.data(), f.size(), 150, &scratch);
    CHECK(evicted(f.data(), f.size()) == std::set<std::string>{".d.tmp", "a0", "a1", "b0", "b1", "c0"});
    CHECK(left == 300);  // own0, own1 and the temp file being written
  }
  SECTION("under budget: only the stale temp file") {
    uint64_t left = choose_evictions(f.data(), f.size(), 10000, &scratch);
    CHECK(evicted(f.data(), f.size()) == std::set<std::string>{".d.tmp"});
    CHECK(left == 800);
  }
  scratch.reset();
}

TEST_CASE("ended processes go before live ones") {
  Arena scratch;
  std::vector<DirFile> f = {file(1, 100, 10, "live0"), file(2, 100, 50, "ended0"), file(3, 100, 60, "ended1")};
  f[1].ended = f[2].ended = true;
  // The live process wrote least recently, but the ended ones go first.
  uint64_t left = choose_evictions(f.data(), f.size(), 150, &scratch);
  CHECK(evicted(f.data(), f.size()) == std::set<std::string>{"ended0", "ended1"});
  CHECK(left == 100);
  scratch.reset();
}

TEST_CASE("a real directory is trimmed to 7/8 of the budget; other files are not touched") {
  char tmpl[] = "/tmp/lw_dir_budget_XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  const std::string dir = tmpl;
  auto make = [&](const std::string& name, std::size_t bytes, int64_t age_s) {
    std::string path = dir + "/" + name;
    FILE* fp = fopen(path.c_str(), "w");
    REQUIRE(fp);
    std::string data(bytes, 'x');
    fwrite(data.data(), 1, data.size(), fp);
    fclose(fp);
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= age_s;
    ts[1] = ts[0];
    REQUIRE(utimensat(AT_FDCWD, path.c_str(), ts, 0) == 0);
  };
  auto exists = [&](const std::string& name) { return access((dir + "/" + name).c_str(), F_OK) == 0; };
  // Pids above the kernel's limit are never in use: those processes have ended.
  auto old_name = [](int p, int s) {
    return "svc.9999990" + std::to_string(p) + ".00000000000000a" + std::to_string(p) + ".00000" +
           std::to_string(s) + ".lwdump";
  };
  // Eight ended processes of 64 KiB each (process p's newest file is
  // 997 - 100 p s old), a newer ended one, a live one (this test's own pid)
  // that wrote least recently of all, this process, and others' files.
  for (int p = 0; p < 8; ++p)
    for (int s = 0; s < 4; ++s) make(old_name(p, s), 16384, 1000 - p * 100 - s);
  const std::string live = "svc." + std::to_string(getpid()) + ".00000000000000f0.000000.lwdump";
  make("svc.99999980.00000000000000b0.000000.lwdump", 65536, 1);
  make(live, 65536, 9000);
  make("svc.99999999.00000000000000c0.000000.lwdump", 65536, 5000);     // this process's
  make(".svc.99999970.00000000000000d0.000003.lwdump.tmp", 4096, 3600);  // a killed writer's
  make(".svc.99999950.00000000000000e0.000001.lwdump.tmp", 4096, 0);     // being written
  // Not dump names: never touched.
  for (const char* other : {"notes.txt", "svc.lwdump.bak", "odd.name.lwdump", "baseline.1.lwdump",
                            "svc.1.00000000000000a0.000000.lwdump.orig", "svc.1.00000000000000AA.000000.lwdump",
                            "sv c.1.00000000000000a0.000000.lwdump", "svc..00000000000000a0.000000.lwdump",
                            ".lwdump.tmp", "..lwdump.tmp"})
    make(other, 100000, 9000);

  Arena scratch;
  // Budget 384 KiB; 7/8 of it is 336 KiB. Dumps: 8 x 64 + 64 + 64 + 64 KiB,
  // plus 4 KiB being written: 708 KiB. The ended processes go, least
  // recently written first (process 0, 1, ...), until 708 - 64 k <= 336:
  // six of them.
  int removed = dir_budget_trim(dir.c_str(), "svc.99999999.00000000000000c0.", 384 * 1024, &scratch);
  scratch.reset();
  CHECK(exists("svc.99999999.00000000000000c0.000000.lwdump"));      // own: never
  CHECK(exists("svc.99999980.00000000000000b0.000000.lwdump"));      // the newest ended one: kept
  CHECK(exists(live));                                                // live: after every ended one
  CHECK(exists(".svc.99999950.00000000000000e0.000001.lwdump.tmp"));  // being written: kept
  CHECK_FALSE(exists(".svc.99999970.00000000000000d0.000003.lwdump.tmp"));
  for (const char* other : {"notes.txt", "svc.lwdump.bak", "odd.name.lwdump", "baseline.1.lwdump",
                            "svc.1.00000000000000a0.000000.lwdump.orig", "svc.1.00000000000000AA.000000.lwdump",
                            "sv c.1.00000000000000a0.000000.lwdump", "svc..00000000000000a0.000000.lwdump",
                            ".lwdump.tmp", "..lwdump.tmp"})
    CHECK(exists(other));
  for (int p = 0; p < 8; ++p) {
    int files = 0;
    for (int s = 0; s < 4; ++s) files += exists(old_name(p, s));
    CHECK(files == (p < 6 ? 0 : 4));  // a process's files go together, the least recent first
  }
  CHECK(removed == 6 * 4 + 1);
  std::string cmd = "rm -rf " + dir;
  CHECK(system(cmd.c_str()) == 0);
}
