// A steady leak for the container tests (tests/e2e/cases/test_container*.py).
// Usage: container_leaker SECONDS BYTES_PER_S [STACKS]
// Keeps BYTES_PER_S bytes per second in 16 KiB blocks, allocated in
// leak_in_container() from STACKS distinct call stacks (default 1; more
// stacks make bigger dumps), touching every block. Also churns one block
// per step (allocated and freed). Runs for SECONDS (0: until killed), then
// prints how much it kept and its pid (as it sees it) and frees nothing.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <unistd.h>

namespace {

constexpr std::size_t kBlock = 16 * 1024;

struct Node {
  Node* next;
};
Node* g_kept = nullptr;  // every leaked block, linked through its first word
std::size_t g_kept_bytes = 0;

__attribute__((noinline)) void leak_in_container(std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    auto* b = static_cast<Node*>(std::malloc(kBlock));
    if (!b) std::abort();
    std::memset(b, 0x5a, kBlock);
    b->next = g_kept;
    g_kept = b;
    g_kept_bytes += kBlock;
  }
}

// Gives each of `depth` levels its own return address: a distinct stack per depth.
__attribute__((noinline)) void via(int depth, std::size_t n) {
  if (depth <= 0) {
    leak_in_container(n);
    return;
  }
  via(depth - 1, n);
  asm volatile("" ::: "memory");  // keeps the call from becoming a tail call
}

__attribute__((noinline)) unsigned churn_scratch(unsigned step) {
  auto* p = static_cast<unsigned char*>(std::malloc(kBlock));
  if (!p) std::abort();
  std::memset(p, static_cast<int>(step), kBlock);
  unsigned v = p[step % kBlock];
  std::free(p);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s SECONDS BYTES_PER_S [STACKS]\n", argv[0]);
    return 2;
  }
  double seconds = std::atof(argv[1]);
  double rate = std::atof(argv[2]);
  int stacks = argc > 3 ? std::atoi(argv[3]) : 1;
  if (stacks < 1) stacks = 1;
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto step = std::chrono::milliseconds(10);
  double owed = 0;
  unsigned sum = 0, i = 0;
  for (;; ++i) {
    double elapsed = std::chrono::duration<double>(clock::now() - start).count();
    if (seconds > 0 && elapsed >= seconds) break;
    owed = rate * elapsed - static_cast<double>(g_kept_bytes);
    if (owed >= kBlock) via(static_cast<int>(i % stacks), static_cast<std::size_t>(owed / kBlock));
    sum += churn_scratch(i);
    std::this_thread::sleep_until(start + step * (i + 1));
  }
  std::printf("container_leaker: pid %d kept %zu bytes, checksum %u\n", static_cast<int>(getpid()), g_kept_bytes,
              sum);
  return 0;
}
