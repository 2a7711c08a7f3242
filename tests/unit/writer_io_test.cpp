// The dump writer's I/O failure handling, through the FileOps seam in
// shim/dump/writer.h: EACCES on open, ENOSPC / short writes / EINTR on
// write, failures of close and rename, a stale temp file, mkdir -p. After
// each failure no file may be left behind and dump_now must say false;
// with the real operations restored a dump is written and reads back.
//
// dump_now() works on the shim's globals, so this test sets them up the
// way the lifecycle does (config, identity, recorder and writer tables),
// without the hooks, the writer thread or the library constructor. The
// writer's state (sequence numbers, retention) lives for the whole
// process, so the test cases below run in order and build on each other.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <atomic>
#include <map>
#include <pthread.h>
#include <set>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "reporter/load/dump_reader.h"
#include "shim/dump/writer.h"
#include "shim/record/recorder.h"
#include "shim/runtime/config.h"
#include "shim/runtime/identity.h"
#include "shim/runtime/lifecycle.h"

using namespace leakwatch::shim;
namespace fs = std::filesystem;

// Functions whose addresses serve as the frames of the recorded stacks, so
// the dump's embedded symbols can be checked. Distinct bodies (no folding).
__attribute__((noinline)) int leakwatch_test_leaky_alpha(int x) { return x * 3 + 1; }
__attribute__((noinline)) int leakwatch_test_leaky_beta(int x) { return x * 5 + 2; }
__attribute__((noinline)) int leakwatch_test_caller(int x) { return leakwatch_test_leaky_alpha(x) + 7; }

namespace {

std::map<std::string, std::string> g_env;
const GetEnv kFakeGetenv = [](const char* name) -> const char* {
  auto it = g_env.find(name);
  return it == g_env.end() ? nullptr : it->second.c_str();
};

const FileOps kRealOps = g_file_ops;

struct Recorded {
  std::vector<std::string> opened, unlinked, renamed_from, mkdirs;
  int writes = 0;
  bool tmp_existed_during_write = false;
} g_rec;

std::string g_dir;
uint64_t g_ok_dumps = 0;  // successful dump_now calls so far (the next sequence number)

bool dump_ok(bool final_dump) {
  bool ok = dump_now(final_dump ? DumpReason::kFinal : DumpReason::kPeriodic);
  if (ok) ++g_ok_dumps;
  return ok;
}

std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  return out;
}

std::vector<std::string> dump_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& n : dir_entries(dir))
    if (n.size() > 7 && n.substr(n.size() - 7) == ".lwdump" && n[0] != '.') out.push_back(dir + "/" + n);
  std::sort(out.begin(), out.end());
  return out;
}

// Recording wrappers around the real calls.
int rec_open(const char* p, int f, mode_t m) {
  g_rec.opened.emplace_back(p);
  return kRealOps.open(p, f, m);
}
int rec_unlink(const char* p) {
  g_rec.unlinked.emplace_back(p);
  return kRealOps.unlink(p);
}
int rec_rename(const char* a, const char* b) {
  g_rec.renamed_from.emplace_back(a);
  return kRealOps.rename(a, b);
}
int rec_mkdir(const char* p, mode_t m) {
  g_rec.mkdirs.emplace_back(p);
  return kRealOps.mkdir(p, m);
}
ssize_t rec_write(int fd, const void* b, size_t n) {
  ++g_rec.writes;
  if (!g_rec.opened.empty() && access(g_rec.opened.back().c_str(), F_OK) == 0) g_rec.tmp_existed_during_write = true;
  return kRealOps.write(fd, b, n);
}

void use_recording_ops() {
  g_rec = Recorded{};
  g_file_ops = FileOps{rec_open, rec_write, kRealOps.close, rec_rename, rec_unlink, rec_mkdir};
}

struct OpsGuard {
  ~OpsGuard() { g_file_ops = kRealOps; }
};

uintptr_t addr_in(int (*fn)(int), int offset) { return reinterpret_cast<uintptr_t>(fn) + offset; }

struct StackSpec {
  std::vector<uintptr_t> frames;
  uint32_t id;
  uint64_t bytes;
  int samples;
};
std::vector<StackSpec> g_stack_specs;

// One-time set-up of the shim's globals, as lifecycle_start does.
void setup() {
  static bool done = false;
  if (done) return;
  done = true;
  char tmpl[] = "/tmp/leakwatch-writer-io-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  g_dir = tmpl;
  // Removed at exit whichever test cases ran.
  static struct Cleanup {
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(g_dir, ec);
    }
  } cleanup;
  g_env = {{"LEAKWATCH_DIR", g_dir}, {"LEAKWATCH_SAMPLE_BYTES", "64k"}, {"LEAKWATCH_MAX_DUMPS", "4"},
           {"LEAKWATCH_INTERVAL", "0.5"}};
  ConfigWarnings w;
  parse_config(kFakeGetenv, &g_config, &w);
  REQUIRE(w.count == 0);
  identity_collect(&g_identity);
  REQUIRE(recorder_init(recorder_sizes(g_config.sample_bytes)));
  REQUIRE(writer_init());

  // Two stacks with samples, in this program's text.
  (void)leakwatch_test_caller(1);
  (void)leakwatch_test_leaky_beta(1);
  g_stack_specs = {
      {{addr_in(leakwatch_test_leaky_alpha, 4), addr_in(leakwatch_test_caller, 4)}, 0, 3 * 65536, 3},
      {{addr_in(leakwatch_test_leaky_beta, 4)}, 0, 1 << 20, 1},
  };
  for (auto& s : g_stack_specs) {
    s.id = g_stacks.intern(s.frames.data(), static_cast<uint32_t>(s.frames.size()));
    REQUIRE(s.id != 0);
    for (int i = 0; i < s.samples; ++i) {
      g_stacks.on_alloc(s.id, s.bytes / s.samples, 65536);
      SampleInfo info{s.id, 1.0f, s.bytes / s.samples, s.bytes / s.samples};
      REQUIRE(g_samples.insert(0x7f0000000000 + (s.id * 100 + i) * 4096, info));
    }
  }
}

void check_nothing_left(const char* what) {
  auto entries = dir_entries(g_dir);
  INFO(what << ": directory holds " << entries.size() << " entries"
            << (entries.empty() ? "" : ", first: " + entries.front()));
  CHECK(entries.empty());
}

}  // namespace

TEST_CASE("writer I/O: EACCES on open", "[writer]") {
  setup();
  OpsGuard restore;
  use_recording_ops();
  g_file_ops.open = [](const char* p, int, mode_t) -> int {
    g_rec.opened.emplace_back(p);
    errno = EACCES;
    return -1;
  };
  CHECK_FALSE(dump_now(DumpReason::kPeriodic));
  check_nothing_left("EACCES");
  REQUIRE(g_rec.opened.size() == 1);
  // The temp name: a dot file in the dump directory ending in .tmp.
  const std::string& tmp = g_rec.opened[0];
  CHECK(tmp.rfind(g_dir + "/.", 0) == 0);
  CHECK(tmp.size() > 4);
  CHECK(tmp.substr(tmp.size() - 4) == ".tmp");
  CHECK(g_rec.writes == 0);
  CHECK(g_rec.renamed_from.empty());
}

TEST_CASE("writer I/O: ENOSPC on the first write", "[writer]") {
  setup();
  OpsGuard restore;
  use_recording_ops();
  g_file_ops.write = [](int, const void*, size_t) -> ssize_t {
    ++g_rec.writes;
    if (!g_rec.opened.empty() && access(g_rec.opened.back().c_str(), F_OK) == 0) g_rec.tmp_existed_during_write = true;
    errno = ENOSPC;
    return -1;
  };
  CHECK_FALSE(dump_now(DumpReason::kPeriodic));
  CHECK(g_rec.tmp_existed_during_write);  // so the cleanup below is real
  check_nothing_left("ENOSPC");
  CHECK(g_rec.renamed_from.empty());
  REQUIRE(g_rec.opened.size() == 1);
  CHECK(std::count(g_rec.unlinked.begin(), g_rec.unlinked.end(), g_rec.opened[0]) == 1);
}

TEST_CASE("writer I/O: a short write, then ENOSPC", "[writer]") {
  setup();
  OpsGuard restore;
  use_recording_ops();
  g_file_ops.write = [](int fd, const void* b, size_t n) -> ssize_t {
    if (++g_rec.writes == 1) return kRealOps.write(fd, b, n / 2);  // half goes to disk
    g_rec.tmp_existed_during_write = access(g_rec.opened.back().c_str(), F_OK) == 0;
    errno = ENOSPC;
    return -1;
  };
  CHECK_FALSE(dump_now(DumpReason::kPeriodic));
  CHECK(g_rec.writes == 2);
  CHECK(g_rec.tmp_existed_during_write);
  check_nothing_left("short write + ENOSPC");
}

TEST_CASE("writer I/O: write returning 0 (no progress) is a failure, not a loop", "[writer]") {
  setup();
  OpsGuard restore;
  use_recording_ops();
  g_file_ops.write = [](int, const void*, size_t) -> ssize_t {
    ++g_rec.writes;
    return 0;
  };
  CHECK_FALSE(dump_now(DumpReason::kPeriodic));
  CHECK(g_rec.writes == 1);
  check_nothing_left("write returns 0");
}

TEST_CASE("writer I/O: close fails (EIO)", "[writer]") {
  setup();
  OpsGuard restore;
  use_recording_ops();
  g_file_ops.close = [](int fd) -> int {
    kRealOps.close(fd);
    errno = EIO;
    return -1;
  };
  CHECK_FALSE(dump_now(DumpReason::kPeriodic));
  CHECK(g_rec.renamed_from.empty());  // a file that may be incomplete is not published
  check_nothing_left("close EIO");
}

TEST_CASE("writer I/O: rename fails", "[writer]") {
  setup();
  OpsGuard restore;
  use_recording_ops();
  g_file_ops.rename = [](const char* a, const char*) -> int {
    g_rec.renamed_from.emplace_back(a);
    errno = EXDEV;
    return -1;
  };
  CHECK_FALSE(dump_now(DumpReason::kPeriodic));
  REQUIRE(g_rec.renamed_from.size() == 1);
  CHECK(std::count(g_rec.unlinked.begin(), g_rec.unlinked.end(), g_rec.renamed_from[0]) == 1);
  check_nothing_left("rename EXDEV");
}

TEST_CASE("writer I/O: after the failures, real operations write a dump that reads back", "[writer]") {
  setup();
  OpsGuard restore;
  use_recording_ops();
  REQUIRE(dump_ok(false));
  auto files = dump_files(g_dir);
  REQUIRE(files.size() == 1);
  CHECK(dir_entries(g_dir).size() == 1);  // no temp file left
  // Written to the temp name, then renamed to the final one.
  REQUIRE(g_rec.opened.size() == 1);
  REQUIRE(g_rec.renamed_from.size() == 1);
  CHECK(g_rec.renamed_from[0] == g_rec.opened[0]);
  CHECK(g_rec.unlinked.empty());
  // Private to the owner.
  struct stat st;
  REQUIRE(stat(files[0].c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  // Name: <exe base>.<pid>.<instance>.<seq>.lwdump; the failed attempts
  // used no sequence numbers.
  REQUIRE(g_ok_dumps == 1);
  std::string name = fs::path(files[0]).filename().string();
  std::string expect_prefix = std::string(g_identity.exe_base) + "." + std::to_string(g_identity.pid) + ".";
  CHECK(name.rfind(expect_prefix, 0) == 0);
  CHECK(name.find(".000000.lwdump") != std::string::npos);

  auto d = leakwatch::load::read_dump(files[0]);
  INFO((d.ok() ? std::string() : std::string(d.status().message())));
  REQUIRE(d.ok());
  CHECK(d->id.pid == static_cast<uint64_t>(getpid()));
  CHECK(d->id.exe == g_identity.exe);
  CHECK(d->seq == g_ok_dumps - 1);  // failed attempts used no sequence number
  CHECK_FALSE(d->final_dump);
  CHECK(d->sample_bytes == 65536);
  CHECK(d->interval_s == 0.5);
  CHECK(d->id.instance == g_identity.instance);
  CHECK(d->id.container_id == g_identity.container_id);
  CHECK_FALSE(d->modules.empty());

  // Both stacks are there, with their frames, symbols and estimates.
  for (const auto& spec : g_stack_specs) {
    bool found = false;
    for (const auto& rec : d->records) {
      if (rec.stack < 0) continue;
      const auto& st_frames = d->stacks[static_cast<std::size_t>(rec.stack)];
      if (st_frames.size() != spec.frames.size()) continue;
      bool same = true;
      for (std::size_t i = 0; i < st_frames.size(); ++i)
        same = same && d->frames[st_frames[i]].address == spec.frames[i];
      if (!same) continue;
      found = true;
      CHECK(rec.live_bytes == static_cast<double>(spec.bytes));
      CHECK(rec.alloc_bytes == static_cast<double>(spec.bytes));
      CHECK(rec.live_count == spec.samples);
      CHECK(rec.live_samples == static_cast<uint64_t>(spec.samples));
      CHECK(rec.total_samples == static_cast<uint64_t>(spec.samples));
      const auto& leaf = d->frames[st_frames[0]];
      CHECK(leaf.module >= 0);
      CHECK(leaf.symbol_offset == 4);
      CHECK(d->symbol(leaf).find(spec.frames.size() == 2 ? "leakwatch_test_leaky_alpha" : "leakwatch_test_leaky_beta") !=
            std::string::npos);
    }
    CHECK(found);
  }
}

TEST_CASE("writer I/O: EINTR and partial writes are retried to completion", "[writer]") {
  setup();
  OpsGuard restore;
  use_recording_ops();
  g_file_ops.write = [](int fd, const void* b, size_t n) -> ssize_t {
    if (++g_rec.writes % 3 == 1) {
      errno = EINTR;
      return -1;
    }
    return kRealOps.write(fd, b, n < 100 ? n : 100);  // at most 100 bytes a call
  };
  auto before = dump_files(g_dir);
  REQUIRE(dump_ok(false));
  CHECK(g_rec.writes > 3);
  auto after = dump_files(g_dir);
  REQUIRE(after.size() == before.size() + 1);
  std::string newest = after.back();
  auto d = leakwatch::load::read_dump(newest);
  INFO((d.ok() ? std::string() : std::string(d.status().message())));
  REQUIRE(d.ok());
  CHECK(d->seq == g_ok_dumps - 1);
}

TEST_CASE("writer I/O: a stale temp file of ours is replaced", "[writer]") {
  setup();
  OpsGuard restore;
  use_recording_ops();
  // The first open says EEXIST (a temp file left by a killed process with
  // our pid and instance); the writer removes it and tries again.
  g_file_ops.open = [](const char* p, int f, mode_t m) -> int {
    g_rec.opened.emplace_back(p);
    if (g_rec.opened.size() == 1) {
      errno = EEXIST;
      return -1;
    }
    return kRealOps.open(p, f, m);
  };
  REQUIRE(dump_ok(false));
  REQUIRE(g_rec.opened.size() == 2);
  CHECK(g_rec.opened[0] == g_rec.opened[1]);
  CHECK(std::count(g_rec.unlinked.begin(), g_rec.unlinked.end(), g_rec.opened[0]) == 1);
  for (const auto& n : dir_entries(g_dir)) CHECK(n[0] != '.');
}

TEST_CASE("writer I/O: the dump directory is created (mkdir -p)", "[writer]") {
  setup();
  OpsGuard restore;
  use_recording_ops();
  std::string saved = g_config.dir;
  std::string nested = g_dir + "/sub/deeper";
  std::strcpy(g_config.dir, nested.c_str());
  bool ok = dump_ok(false);
  std::strcpy(g_config.dir, saved.c_str());
  CHECK(ok);
  CHECK(dump_files(nested).size() == 1);
  CHECK(std::find(g_rec.mkdirs.begin(), g_rec.mkdirs.end(), g_dir + "/sub") != g_rec.mkdirs.end());
  CHECK(std::find(g_rec.mkdirs.begin(), g_rec.mkdirs.end(), nested) != g_rec.mkdirs.end());
  std::error_code ec;
  fs::remove_all(g_dir + "/sub", ec);
}

TEST_CASE("writer I/O: retention keeps at most LEAKWATCH_MAX_DUMPS files, the first and the latest", "[writer]") {
  setup();
  OpsGuard restore;
  use_recording_ops();
  REQUIRE(g_config.max_dumps == 4);
  for (int i = 0; i < 12; ++i) REQUIRE(dump_ok(false));
  auto files = dump_files(g_dir);
  INFO(files.size() << " files");
  CHECK(files.size() <= 4);
  CHECK(files.size() >= 2);
  std::set<uint64_t> seqs;
  for (const auto& f : files) {
    auto d = leakwatch::load::read_dump(f);
    REQUIRE(d.ok());
    seqs.insert(d->seq);
  }
  CHECK(seqs.count(0) == 1);            // the start of the run stays covered
  CHECK(*seqs.rbegin() == g_ok_dumps - 1);  // the latest
  for (const auto& n : dir_entries(g_dir)) CHECK(n[0] != '.');
}

namespace {
// Bounded wait for a condition set by another thread (10 s: a hang fails).
template <typename F>
bool wait_for(F done) {
  for (int i = 0; i < 10000 && !done(); ++i) usleep(1000);
  return done();
}

std::atomic<int> g_cancel_phase{0};  // 1: the dumping thread is in write; 2: it has been cancelled
ssize_t write_then_wait_for_cancel(int fd, const void* p, size_t n) {
  if (g_cancel_phase.load() == 0) {
    g_cancel_phase.store(1);
    wait_for([] { return g_cancel_phase.load() == 2; });
  }
  return ::write(fd, p, n);  // a cancellation point, with a cancel pending
}

std::atomic<bool> g_cancelled_dump_ok{false};
void* dump_then_exit_by_cancel(void*) {
  g_cancelled_dump_ok.store(dump_now(DumpReason::kPeriodic));
  for (;;) {
    pthread_testcancel();  // the pending cancel acts here, after the dump
    usleep(1000);
  }
  return nullptr;
}

bool g_nested_final_result = true;
int g_nested_calls = 0;
ssize_t write_with_nested_final(int fd, const void* p, size_t n) {
  if (g_nested_calls++ == 0) g_nested_final_result = dump_now(DumpReason::kFinal);  // as a signal handler's exit()
  return ::write(fd, p, n);
}
}  // namespace

TEST_CASE("writer I/O: a thread cancelled in the middle of a dump finishes it first", "[writer]") {
  setup();
  OpsGuard restore;
  g_file_ops = FileOps{kRealOps.open, write_then_wait_for_cancel, kRealOps.close, kRealOps.rename, kRealOps.unlink,
                       kRealOps.mkdir};
  pthread_t t;
  REQUIRE(pthread_create(&t, nullptr, dump_then_exit_by_cancel, nullptr) == 0);
  REQUIRE(wait_for([] { return g_cancel_phase.load() == 1; }));
  REQUIRE(pthread_cancel(t) == 0);
  g_cancel_phase.store(2);
  void* ret = nullptr;
  REQUIRE(pthread_join(t, &ret) == 0);
  CHECK(ret == PTHREAD_CANCELED);
  REQUIRE(g_cancelled_dump_ok.load());  // not cut short in write
  ++g_ok_dumps;
  // The lock was released: the next dump is written.
  g_file_ops = kRealOps;
  REQUIRE(dump_ok(false));
}

TEST_CASE("writer I/O: a final dump asked for by the thread writing one does not wait for itself", "[writer]") {
  setup();
  OpsGuard restore;
  g_file_ops = FileOps{kRealOps.open, write_with_nested_final, kRealOps.close, kRealOps.rename, kRealOps.unlink,
                       kRealOps.mkdir};
  REQUIRE(dump_ok(false));
  CHECK(g_nested_calls >= 1);
  CHECK_FALSE(g_nested_final_result);  // skipped (the outer dump holds the lock), and no deadlock
  g_file_ops = kRealOps;
  REQUIRE(dump_ok(false));  // and no final dump was recorded as written
}

TEST_CASE("writer I/O: the final dump is the last one", "[writer]") {
  setup();
  OpsGuard restore;
  use_recording_ops();
  REQUIRE(dump_ok(true));
  auto files = dump_files(g_dir);
  REQUIRE(!files.empty());
  auto d = leakwatch::load::read_dump(files.back());
  REQUIRE(d.ok());
  CHECK(d->final_dump);
  CHECK_FALSE(dump_now(DumpReason::kPeriodic));
  CHECK_FALSE(dump_now(DumpReason::kFinal));
  std::error_code ec;
  fs::remove_all(g_dir, ec);
}
