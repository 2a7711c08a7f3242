// The bundled demo: a small "service" that leaks the way real ones do.
// Handles fake requests for N seconds (default 12) on two threads:
//  - every request allocates and frees scratch buffers (churn, not a leak)
//  - a response cache fills up to 2 MiB, then stops growing (plateau)
//  - sessions are remembered and never expired: the leak (~200 KB/s)
// Prints a one-line checksum at the end so output can be compared.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Session {
  long id;
  std::string user;
  std::vector<char> history;
};

std::mutex g_mu;
std::map<long, std::unique_ptr<Session>> g_sessions;  // never pruned: the leak
std::map<int, std::string> g_cache;                    // bounded: a plateau

__attribute__((noinline)) void remember_session(long id) {
  auto s = std::make_unique<Session>();
  s->id = id;
  s->user = "user-" + std::to_string(id % 1000) + "-with-a-long-enough-name-to-not-be-sso";
  s->history.resize(1800);
  std::lock_guard<std::mutex> l(g_mu);
  g_sessions[id] = std::move(s);
}

__attribute__((noinline)) void cache_response(int key) {
  std::lock_guard<std::mutex> l(g_mu);
  if (g_cache.size() >= 512) return;  // full: the cache stops growing
  g_cache[key] = std::string(4096, 'r');
}

__attribute__((noinline)) unsigned handle_request(long id) {
  std::vector<char> scratch(16384);  // freed at return: churn
  std::memset(scratch.data(), static_cast<int>(id), scratch.size());
  cache_response(static_cast<int>(id % 4096));
  remember_session(id);
  return static_cast<unsigned char>(scratch[id % scratch.size()]);
}

void worker(int index, double seconds, unsigned* sum) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  long id = index;
  while (std::chrono::steady_clock::now() < end) {
    *sum += handle_request(id);
    id += 2;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 12;
  unsigned sums[2] = {0, 0};
  std::thread a(worker, 0, seconds, &sums[0]), b(worker, 1, seconds, &sums[1]);
  a.join();
  b.join();
  std::printf("demo-service: handled %zu sessions, checksum %u\n", g_sessions.size(), sums[0] + sums[1]);
  return 0;
}
