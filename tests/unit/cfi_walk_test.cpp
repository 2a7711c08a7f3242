// The shim's own stack walker (shim/stack/cfi_walk.h) against libunwind:
// on every stack shape it takes, it must return exactly libunwind's frames;
// on the shapes it leaves to libunwind (signal frames) it must say so.
// Built as the shim is (-O2, no frame pointers), so frames are described
// by CFI only: RSP-based, RBP-based (alloca), frame-pointer functions,
// huge frames, callbacks from libc, threads.
#include <catch2/catch.hpp>

#include <alloca.h>
#include <pthread.h>
#include <dlfcn.h>
#include <sys/mman.h>
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

// unw_step is compared only on stacks without JIT frames: after a guessed
// frame it goes on from the guessed frame's stack pointer plus 16 rather
// than from RBP + 16 (x86_64 Gstep.c), where unw_backtrace -- what the shim
// calls -- and this walker take RBP + 16, the caller's true stack pointer.
void require_same(const Walks& w, bool step_too = true) {
  REQUIRE(w.fast >= 0);
  REQUIRE(w.fast == w.unw);
  if (step_too) REQUIRE(w.step == w.unw);
  for (int i = 1; i < w.fast; ++i) {
    INFO("frame " << i);
    REQUIRE(w.a[i] == w.b[i]);
    if (step_too) REQUIRE(w.c[i] == w.b[i]);
  }
}
bool has_jit(const std::string& pattern) { return pattern.find('j') != std::string::npos; }

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

// JIT-like code: copied into an anonymous executable page, so it is in no
// loaded object and has no unwind table; libunwind guesses that RBP is its
// frame pointer. Each stub calls rdx(rdi, rsi).
using Stub = void (*)(const char*, Walks*, void (*)(const char*, Walks*), uintptr_t);
const unsigned char kFrameStub[] = {0x55,                    // push %rbp
                                    0x48, 0x89, 0xe5,        // mov %rsp,%rbp
                                    0x48, 0x83, 0xec, 0x20,  // sub $32,%rsp (locals)
                                    0xff, 0xd2,              // call *%rdx
                                    0xc9,                    // leave
                                    0xc3};                   // ret
// The same call with RBP set to the fourth argument: a frame pointer that
// is not one.
const unsigned char kFakeRbpStub[] = {0x55,              // push %rbp
                                      0x48, 0x89, 0xcd,  // mov %rcx,%rbp
                                      0xff, 0xd2,        // call *%rdx
                                      0x5d,              // pop %rbp
                                      0xc3};             // ret
constexpr int kStubs = 8;  // copies at 64-byte steps: libunwind caches its guess per address
unsigned char* g_jit = nullptr;

Stub stub_at(int i) { return reinterpret_cast<Stub>(g_jit + 64 * i); }
Stub frame_stub() { return stub_at(0); }
Stub fake_rbp_stub(int i) { return stub_at(1 + i); }  // i < kStubs - 1

void make_jit_page() {
  void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(page != MAP_FAILED);
  g_jit = static_cast<unsigned char*>(page);
  std::memcpy(g_jit, kFrameStub, sizeof kFrameStub);
  for (int i = 1; i < kStubs; ++i) std::memcpy(g_jit + 64 * i, kFakeRbpStub, sizeof kFakeRbpStub);
  REQUIRE(mprotect(page, 4096, PROT_READ | PROT_EXEC) == 0);
}

void walk_at_bottom(const char*, Walks* w) {
  walk_here(w);
  asm volatile("" ::: "memory");
}

__attribute__((noinline)) void through_jit(const char* pattern, Walks* w) {
  frame_stub()(pattern, w, chain, 0);
  asm volatile("" ::: "memory");
}

void chain(const char* pattern, Walks* w) {
  switch (*pattern) {
    case 'j': through_jit(pattern + 1, w); break;
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
  make_jit_page();
  // Eight slots: the walks here cross many more addresses, so slots are
  // overwritten all the time (and, in the threaded cases, concurrently).
  REQUIRE(cfi_walk_init(3));
}

}  // namespace

TEST_CASE("cfi_walk: the same frames as libunwind on every frame shape", "[cfi]") {
  setup();
  for (const char* pattern : {"", "p", "a", "f", "h", "e", "q", "pafheq", "aaaa", "ffff", "apfapf", "qaq", "hah",
                              "eeeeeeee", "paqfhe", "j", "jj", "pjp", "ajhj", "fjqj", "jjjjjjjj", "hjejaj"}) {
    INFO("pattern '" << pattern << "'");
    Walks w;
    chain(pattern, &w);
    require_same(w, !has_jit(pattern));
    // Twice: some rules now come from the cache.
    Walks again;
    chain(pattern, &again);
    require_same(again, !has_jit(pattern));
    REQUIRE(again.fast == w.fast);
  }
}

TEST_CASE("cfi_walk: random deep shapes, and a depth limit", "[cfi]") {
  setup();
  std::mt19937 rng(12345);
  const char shapes[] = "ppppaafhej";
  for (int round = 0; round < 300; ++round) {
    std::string pattern;
    int depth = static_cast<int>(rng() % 60);
    for (int i = 0; i < depth; ++i) pattern += (round % 10 == 0 && i == depth / 2) ? 'q' : shapes[rng() % (sizeof shapes - 1)];
    INFO("pattern '" << pattern << "'");
    Walks w;
    chain(pattern.c_str(), &w);
    require_same(w, !has_jit(pattern));
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

TEST_CASE("cfi_walk: threads sharing the cache's slots agree with libunwind on every walk", "[cfi]") {
  setup();
  Walks warm;  // a current list of loaded objects (see the thread-end case)
  chain("", &warm);
  require_same(warm);
  // Four threads walk random shapes at once over eight cache slots: every
  // slot is written by several threads while others read it.
  std::atomic<int> walks{0}, wrong{0}, fell_back{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      std::mt19937 rng(777 + t);
      const char shapes[] = "ppaafhej";
      for (int round = 0; round < 400; ++round) {
        std::string pattern;
        int depth = static_cast<int>(rng() % 30);
        for (int i = 0; i < depth; ++i) pattern += shapes[rng() % (sizeof shapes - 1)];
        Walks w;
        chain(pattern.c_str(), &w);
        walks.fetch_add(1);
        if (w.fast < 0) {
          fell_back.fetch_add(1);
          continue;
        }
        bool same = w.fast == w.unw;
        for (int i = 1; same && i < w.fast; ++i) same = w.a[i] == w.b[i];
        if (!same) wrong.fetch_add(1);
      }
    });
  for (auto& t : threads) t.join();
  CHECK(walks.load() == 1600);
  CHECK(wrong.load() == 0);
  CHECK(fell_back.load() == 0);
}

namespace {
Walks g_plugin_walk;
void walk_from_plugin(void*) { walk_here(&g_plugin_walk); }
}  // namespace

TEST_CASE("cfi_walk: code loaded and unloaded again is walked by its own tables", "[cfi]") {
  setup();
  // What the dlopen/dlclose hooks do around the real calls.
  for (int round = 0; round < 20; ++round) {
    INFO("round " << round);
    loaded_objects_changed();
    void* h = dlopen(CFI_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
    REQUIRE(h != nullptr);
    auto call = reinterpret_cast<int (*)(void (*)(void*), void*, int)>(dlsym(h, "cfi_plugin_call"));
    REQUIRE(call != nullptr);
    g_plugin_walk = Walks{};
    REQUIRE(call(walk_from_plugin, nullptr, 3 + round % 5) > 0);
    require_same(g_plugin_walk);
    // The plugin's frames are there: between walk_from_plugin's caller and this test.
    Dl_info info{};
    int in_plugin = 0;
    for (int i = 1; i < g_plugin_walk.fast; ++i)
      if (dladdr(g_plugin_walk.a[i], &info) && info.dli_fname && std::strstr(info.dli_fname, "cfi_plugin")) ++in_plugin;
    CHECK(in_plugin >= 4);
    loaded_objects_changed();
    REQUIRE(dlclose(h) == 0);
    loaded_objects_changed();
  }
}

namespace {
void through_stub_to_walk(void* w) {
  frame_stub()("", static_cast<Walks*>(w), walk_at_bottom, 0);
  asm volatile("" ::: "memory");
}
}  // namespace

TEST_CASE("cfi_walk: past a guessed frame, a dlopened object's tables are left to libunwind", "[cfi]") {
  setup();
  // A guessed frame's return address may be any value; an object dlopen
  // loaded may be unmapped by a dlclose before the list knows: its tables
  // are not read for such an address (libunwind checks its reads).
  void* h = dlopen(CFI_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
  REQUIRE(h != nullptr);
  auto call = reinterpret_cast<int (*)(void (*)(void*), void*, int)>(dlsym(h, "cfi_plugin_call"));
  REQUIRE(call != nullptr);
  for (int round = 0; round < 5; ++round) {
    INFO("round " << round);
    loaded_objects_changed();  // nothing cached for the plugin's addresses
    Walks w;
    REQUIRE(call(through_stub_to_walk, &w, 3) > 0);
    CHECK(w.fast == -1);
    CHECK(w.unw >= 10);  // libunwind: through the stub and the plugin to main
    // Reached without a guess, the plugin's frames are walked as ever.
    g_plugin_walk = Walks{};
    REQUIRE(call(walk_from_plugin, nullptr, 3) > 0);
    require_same(g_plugin_walk);
  }
  loaded_objects_changed();
  REQUIRE(dlclose(h) == 0);
  loaded_objects_changed();
}

TEST_CASE("cfi_walk: threads end where libunwind ends them", "[cfi]") {
  setup();
  // The list of loaded objects is rebuilt after the dlopen/dlclose above
  // by the first walk; walks racing that rebuild go to libunwind (a rule
  // from a list older than the walk is not used). Rebuilt here first.
  Walks warm;
  chain("", &warm);
  require_same(warm);
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

TEST_CASE("cfi_walk: code in no loaded object (JIT) is walked by its frame pointer, round after round", "[cfi]") {
  setup();
  for (int round = 0; round < 3; ++round) {  // by now the stubs' addresses come from the cache
    INFO("round " << round);
    Walks w;
    chain("pjp", &w);
    require_same(w, false);
    // libunwind follows the stub's frame pointer on to through_jit and
    // beyond: the same frames, none left to it.
    CHECK(w.fast >= 8);
  }
}

namespace {
// Runs a fake-RBP stub on a thread of its own (libunwind decides a guess
// once per thread and address, and keeps the answer).
template <typename Fn>
void on_thread(Fn fn) {
  std::thread t(fn);
  t.join();
}
}  // namespace

TEST_CASE("cfi_walk: a frame pointer that is not one ends the stack where libunwind ends it", "[cfi]") {
  setup();
  // RBP 0 (the outermost frame's mark), below the stack pointer, and more
  // than 16 KiB above it: libunwind does not believe any of them.
  int i = 0;
  for (const char* what : {"zero", "below", "far"}) {
    INFO(what);
    Walks w;
    const int stub = i++;
    on_thread([&] {
      volatile char here = 0;
      const auto sp = reinterpret_cast<uintptr_t>(&here);
      const uintptr_t rbp = what[0] == 'z' ? 0 : what[0] == 'b' ? sp - 4096 : sp + 0x8000;
      fake_rbp_stub(stub)("", &w, walk_at_bottom, rbp);
      asm volatile("" ::: "memory");
    });
    require_same(w);
    // walk_here's caller, the stub's caller (walk_at_bottom), the stub: then the end.
    CHECK(w.fast == 3);
  }
}

TEST_CASE("cfi_walk: a guessed frame never reads past the thread's own stack", "[cfi]") {
  setup();
  // A thread on a stack of the test's, with an inaccessible page right
  // above it; the stub's RBP points at the last word below that page. A
  // read of the guessed return address (RBP + 8) would fault there: the
  // walker must leave that frame to libunwind (which checks its reads).
  constexpr std::size_t kStack = 256 * 1024;
  auto* mem = static_cast<char*>(mmap(nullptr, kStack + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(mem != MAP_FAILED);
  REQUIRE(mprotect(mem + kStack, 4096, PROT_NONE) == 0);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  REQUIRE(pthread_attr_setstack(&attr, mem, kStack) == 0);
  struct Arg {
    uintptr_t rbp;
    Walks w;
  } arg{reinterpret_cast<uintptr_t>(mem + kStack - 8), {}};
  pthread_t t;
  REQUIRE(pthread_create(
              &t, &attr,
              [](void* p) -> void* {
                auto* a = static_cast<Arg*>(p);
                fake_rbp_stub(kStubs - 2)("", &a->w, walk_at_bottom, a->rbp);
                return nullptr;
              },
              &arg) == 0);
  REQUIRE(pthread_join(t, nullptr) == 0);
  pthread_attr_destroy(&attr);
  munmap(mem, kStack + 4096);
  CHECK(arg.w.fast == -1);  // the caller then asks libunwind
  CHECK(arg.w.unw == 3);    // which cannot read it either: the stack ends at the stub
}
