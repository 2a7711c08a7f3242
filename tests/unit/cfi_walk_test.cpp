// The shim's own stack walker (shim/stack/cfi_walk.h) against libunwind:
// on every stack shape it takes, it must return exactly libunwind's frames;
// on the shapes it leaves to libunwind (signal frames) it must say so.
// Built as the shim is (-O2, no frame pointers), so frames are described
// by CFI only: RSP-based, RBP-based (alloca), frame-pointer functions,
// huge frames, callbacks from libc, threads.
#include <catch2/catch.hpp>

#include <alloca.h>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "shim/stack/cfi_walk.h"
#include "shim/stack/loaded_objects.h"

using namespace leakwatch::shim;

namespace {

constexpr int kMax = 256;

struct Walks {
  int fast = -2, unw = -2, step = -2;
  void* a[kMax];
  void* b[kMax];
  void* c[kMax];
};

int step_walk(void** out, int max) {
  unw_context_t context;
  unw_cursor_t cursor;
  if (unw_getcontext(&context) != 0 || unw_init_local(&cursor, &context) != 0) return 0;
  int n = 0;
  while (n < max && unw_step(&cursor) > 0) {  // from the caller, as the others
    unw_word_t ip = 0;
    if (unw_get_reg(&cursor, UNW_REG_IP, &ip) != 0 || ip == 0) break;
    out[n++] = reinterpret_cast<void*>(ip);
  }
  return n;
}

// Walks three ways from one frame. Entry 0 is each call's own return
// address here (three call sites): compared from entry 1 on.
__attribute__((noinline)) void walk_here(Walks* w, int max = kMax) {
  w->fast = cfi_backtrace(w->a, max);
  w->unw = unw_backtrace(w->b, max);
  w->step = step_walk(w->c, max);
  asm volatile("" ::: "memory");
}

void require_same(const Walks& w) {
  REQUIRE(w.fast >= 0);
  REQUIRE(w.fast == w.unw);
  REQUIRE(w.step == w.unw);
  for (int i = 1; i < w.fast; ++i) {
    INFO("frame " << i);
    REQUIRE(w.a[i] == w.b[i]);
    REQUIRE(w.c[i] == w.b[i]);
  }
}

// ---- Frame shapes. Each calls the next by the pattern, then walks at the
// bottom; the asm after each call keeps the frame (no tail call).
void chain(const char* pattern, Walks* w);

__attribute__((noinline)) void plain(const char* pattern, Walks* w) {
  volatile int keep = 1;
  chain(pattern, w);
  asm volatile("" ::: "memory");
  (void)keep;
}

__attribute__((noinline)) void with_alloca(const char* pattern, Walks* w) {
  // A variable-size frame: GCC addresses it through RBP, the CFA rule too.
  std::size_t n = 16 + (std::strlen(pattern) * 24) % 200;
  auto* buf = static_cast<volatile char*>(alloca(n));
  buf[0] = 1;
  buf[n - 1] = 2;
  chain(pattern, w);
  asm volatile("" ::: "memory");
}

__attribute__((noinline, optimize("no-omit-frame-pointer"))) void with_frame_pointer(const char* pattern, Walks* w) {
  volatile int keep = 2;
  chain(pattern, w);
  asm volatile("" ::: "memory");
  (void)keep;
}

__attribute__((noinline)) void huge_frame(const char* pattern, Walks* w) {
  volatile char big[70000];
  big[0] = 1;
  big[sizeof big - 1] = 2;
  chain(pattern, w);
  asm volatile("" ::: "memory");
}

__attribute__((noinline)) int early_return(const char* pattern, Walks* w, int k) {
  // Several epilogues (remember/restore_state in the CFI).
  if (k < 0) return 1;  // never: the pattern's length
  volatile int keep = k;
  chain(pattern, w);
  asm volatile("" ::: "memory");
  if (keep == 3) return 2;
  return keep + 1;
}

struct QsortCtx {
  const char* pattern;
  Walks* w;
  bool done;
};
thread_local QsortCtx* t_qsort = nullptr;

int compare_ints(const void* x, const void* y) {
  if (t_qsort && !t_qsort->done) {
    t_qsort->done = true;
    chain(t_qsort->pattern, t_qsort->w);
  }
  return *static_cast<const int*>(x) - *static_cast<const int*>(y);
}

__attribute__((noinline)) void through_qsort(const char* pattern, Walks* w) {
  // libc's own frames (msort/qsort_r) between here and the callback.
  int v[8] = {5, 3, 7, 1, 8, 2, 6, 4};
  QsortCtx ctx{pattern, w, false};
  QsortCtx* prev = t_qsort;
  t_qsort = &ctx;
  std::qsort(v, 8, sizeof v[0], compare_ints);
  t_qsort = prev;
  asm volatile("" ::: "memory");
}

void chain(const char* pattern, Walks* w) {
  switch (*pattern) {
    case 'p': plain(pattern + 1, w); break;
    case 'a': with_alloca(pattern + 1, w); break;
    case 'f': with_frame_pointer(pattern + 1, w); break;
    case 'h': huge_frame(pattern + 1, w); break;
    case 'e': (void)early_return(pattern + 1, w, static_cast<int>(std::strlen(pattern))); break;
    case 'q': through_qsort(pattern + 1, w); break;
    default: walk_here(w); break;
  }
}

void setup() {
  static bool done = false;
  if (done) return;
  done = true;
  loaded_objects_init();
  REQUIRE(cfi_walk_init());
}

}  // namespace

TEST_CASE("cfi_walk: the same frames as libunwind on every frame shape", "[cfi]") {
  setup();
  for (const char* pattern : {"", "p", "a", "f", "h", "e", "q", "pafheq", "aaaa", "ffff", "apfapf", "qaq", "hah",
                              "eeeeeeee", "paqfhe"}) {
    INFO("pattern '" << pattern << "'");
    Walks w;
    chain(pattern, &w);
    require_same(w);
    // Twice: the second walk is served from the rule cache.
    Walks again;
    chain(pattern, &again);
    require_same(again);
    REQUIRE(again.fast == w.fast);
  }
}

TEST_CASE("cfi_walk: random deep shapes, and a depth limit", "[cfi]") {
  setup();
  std::mt19937 rng(12345);
  const char shapes[] = "ppppaafhe";
  for (int round = 0; round < 300; ++round) {
    std::string pattern;
    int depth = static_cast<int>(rng() % 60);
    for (int i = 0; i < depth; ++i) pattern += (round % 10 == 0 && i == depth / 2) ? 'q' : shapes[rng() % (sizeof shapes - 1)];
    INFO("pattern '" << pattern << "'");
    Walks w;
    chain(pattern.c_str(), &w);
    require_same(w);
  }
  // Truncated walks agree too.
  for (int max : {1, 2, 5, 40}) {
    INFO("max " << max);
    Walks t;
    chain(std::string(50, 'a').c_str(), &t);  // deeper than any limit
    require_same(t);
    Walks cut;
    struct Bottom {
      static void run(const char* p, Walks* w, int max) {
        if (*p) {
          auto* buf = static_cast<volatile char*>(alloca(32 + std::strlen(p)));
          buf[0] = 0;
          run(p + 1, w, max);
          asm volatile("" ::: "memory");
          return;
        }
        walk_here(w, max);
      }
    };
    Bottom::run(std::string(50, 'x').c_str(), &cut, max);
    REQUIRE(cut.fast == max);
    REQUIRE(cut.unw == max);
    for (int i = 1; i < max; ++i) REQUIRE(cut.a[i] == cut.b[i]);
  }
}

TEST_CASE("cfi_walk: threads end where libunwind ends them", "[cfi]") {
  setup();
  std::vector<Walks> results(4);
  std::vector<std::thread> threads;
  const char* patterns[] = {"", "pa", "fhq", "eapf"};
  for (int i = 0; i < 4; ++i) threads.emplace_back([&, i] { chain(patterns[i], &results[i]); });
  for (auto& t : threads) t.join();
  for (const Walks& w : results) require_same(w);
}

namespace {
Walks g_in_handler;
std::atomic<bool> g_handled{false};
void on_signal(int) {
  walk_here(&g_in_handler);
  g_handled.store(true);
}
}  // namespace

TEST_CASE("cfi_walk: a signal frame is left to libunwind", "[cfi]") {
  setup();
  struct sigaction sa {}, old{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  REQUIRE(sigaction(SIGUSR2, &sa, &old) == 0);
  raise(SIGUSR2);
  sigaction(SIGUSR2, &old, nullptr);
  REQUIRE(g_handled.load());
  CHECK(g_in_handler.fast == -1);  // the caller then asks libunwind
  CHECK(g_in_handler.unw > 3);     // which walks through the signal frame
}
