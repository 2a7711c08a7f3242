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
  // Eight older processes of 64 KiB each, a newer one, this one, and others' files.
  for (int p = 0; p < 8; ++p)
    for (int s = 0; s < 4; ++s)
      make("svc.10" + std::to_string(p) + ".00000000000000a" + std::to_string(p) + ".00000" + std::to_string(s) +
               ".lwdump",
           16384, 1000 - p * 100 - s);
  make("svc.200.00000000000000b0.000000.lwdump", 65536, 1);
  make("svc.300.00000000000000c0.000000.lwdump", 65536, 5000);  // this process's, the oldest file of all
  make(".svc.400.00000000000000d0.000003.lwdump.tmp", 4096, 3600);  // a killed writer's
  make(".svc.500.00000000000000e0.000001.lwdump.tmp", 4096, 0);     // being written
  make("notes.txt", 300000, 9000);
  make("svc.lwdump.bak", 300000, 9000);
  make("odd.name.lwdump", 300000, 9000);  // no sequence number: not a dump name of ours

  Arena scratch;
  // Budget 384 KiB: dumps hold 8*64 + 64 + 64 KiB (+ 8 KiB of temp files);
  // 7/8 of the budget is 336 KiB.
  int removed = dir_budget_trim(dir.c_str(), "svc.300.00000000000000c0.", 384 * 1024, &scratch);
  scratch.reset();
  // The processes that wrote least recently went first: process 100 (its
  // newest file 997 s old), then 101, ... until at most 336 KiB remain.
  CHECK(exists("svc.300.00000000000000c0.000000.lwdump"));      // own: never
  CHECK(exists("svc.200.00000000000000b0.000000.lwdump"));      // newest: kept
  CHECK(exists(".svc.500.00000000000000e0.000001.lwdump.tmp"));  // in progress: kept
  CHECK_FALSE(exists(".svc.400.00000000000000d0.000003.lwdump.tmp"));
  CHECK(exists("notes.txt"));
  CHECK(exists("svc.lwdump.bak"));
  CHECK(exists("odd.name.lwdump"));
  int kept_old = 0;
  for (int p = 0; p < 8; ++p) {
    int files = 0;
    for (int s = 0; s < 4; ++s)
      files += exists("svc.10" + std::to_string(p) + ".00000000000000a" + std::to_string(p) + ".00000" +
                      std::to_string(s) + ".lwdump");
    CHECK((files == 0 || files == 4));  // a process's files go together
    if (files) {
      ++kept_old;
      for (int q = p + 1; q < 8; ++q)  // and a newer one stays whenever an older one does
        CHECK(exists("svc.10" + std::to_string(q) + ".00000000000000a" + std::to_string(q) + ".000000.lwdump"));
    }
  }
  // 64 (own) + 64 (newest) + 4 (tmp) + 64 k <= 336 -> k = 3 of the 8 stay.
  CHECK(kept_old == 3);
  CHECK(removed == 5 * 4 + 1);
  std::string cmd = "rm -rf " + dir;
  CHECK(system(cmd.c_str()) == 0);
}
