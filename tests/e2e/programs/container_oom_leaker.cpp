// Leaks until the kernel's OOM killer ends it (tests/e2e/cases/test_container_oom.py).
// Usage: container_oom_leaker [BYTES_PER_S] [MAX_SECONDS]
// grow_until_oom() keeps BYTES_PER_S (default 8 MB/s) in 256 KiB blocks and
// touches every page, so the memory is really charged to the cgroup. If it
// is still alive after MAX_SECONDS (default 60) the memory limit did not
// work: it says so and exits 3.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace {

constexpr std::size_t kBlock = 256 * 1024;
constexpr std::size_t kMaxBlocks = 64 * 1024;  // 16 GiB: far past any test limit
void* g_blocks[kMaxBlocks];
std::size_t g_count = 0;

__attribute__((noinline)) void grow_until_oom(std::size_t n) {
  for (std::size_t i = 0; i < n && g_count < kMaxBlocks; ++i) {
    void* p = std::malloc(kBlock);
    if (!p) return;  // address space exhausted: let the limit catch up
    std::memset(p, static_cast<int>(g_count), kBlock);
    g_blocks[g_count++] = p;
  }
}

}  // namespace

int main(int argc, char** argv) {
  double rate = argc > 1 ? std::atof(argv[1]) : 8e6;
  double max_seconds = argc > 2 ? std::atof(argv[2]) : 60;
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto step = std::chrono::milliseconds(10);
  for (unsigned i = 0;; ++i) {
    double elapsed = std::chrono::duration<double>(clock::now() - start).count();
    if (elapsed >= max_seconds) break;
    double owed = rate * elapsed - static_cast<double>(g_count * kBlock);
    if (owed >= kBlock) grow_until_oom(static_cast<std::size_t>(owed / kBlock));
    std::this_thread::sleep_until(start + step * (i + 1));
  }
  std::printf("container_oom_leaker: still alive after %.0f s with %zu bytes kept\n", max_seconds, g_count * kBlock);
  return 3;
}
