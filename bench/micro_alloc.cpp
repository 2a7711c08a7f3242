// Hot-path microbenchmarks: the same binary is run plainly, under the bare
// forwarding interposer and under libleakwatch.so (bench/micro.py does
// the alternation and prints ratios).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <malloc.h>
#include <new>
#include <vector>

static void BM_malloc_free(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void* p = std::malloc(n);
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
}
BENCHMARK(BM_malloc_free)->Arg(16)->Arg(256)->Arg(4096)->Threads(1)->Threads(2);

// Many live blocks, freed in a different order: the realistic free path.
static void BM_malloc_free_batch(benchmark::State& state) {
  std::vector<void*> v(1024);
  for (auto _ : state) {
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::malloc(16 + (i * 37) % 512);
    for (size_t i = 0; i < v.size(); i += 2) std::free(v[i]);
    for (size_t i = 1; i < v.size(); i += 2) std::free(v[i]);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(v.size()));
}
BENCHMARK(BM_malloc_free_batch)->Threads(1)->Threads(2);

static void BM_new_delete(benchmark::State& state) {
  for (auto _ : state) {
    auto* p = new int[8];
    benchmark::DoNotOptimize(p);
    delete[] p;
  }
}
BENCHMARK(BM_new_delete)->Threads(1)->Threads(2);

static void BM_realloc_grow(benchmark::State& state) {
  for (auto _ : state) {
    void* p = std::malloc(16);
    for (size_t n = 32; n <= 4096; n *= 2) p = std::realloc(p, n);
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
}
BENCHMARK(BM_realloc_grow)->Threads(1);

// Growth inside the block's usable size: the common realloc, where the
// shim asks malloc_usable_size before forwarding.
static void BM_realloc_in_place(benchmark::State& state) {
  void* p = std::malloc(200);
  for (auto _ : state) {
    p = std::realloc(p, 180);
    benchmark::DoNotOptimize(p);
    p = std::realloc(p, 200);
    benchmark::DoNotOptimize(p);
  }
  std::free(p);
}
BENCHMARK(BM_realloc_in_place)->Threads(1);

static void BM_calloc_free(benchmark::State& state) {
  for (auto _ : state) {
    void* p = std::calloc(8, 32);
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
}
BENCHMARK(BM_calloc_free)->Threads(1)->Threads(2);

static void BM_aligned(benchmark::State& state) {
  for (auto _ : state) {
    void* p = nullptr;
    if (posix_memalign(&p, 64, 256) != 0) state.SkipWithError("posix_memalign");
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
}
BENCHMARK(BM_aligned)->Threads(1)->Threads(2);

static void BM_aligned_new_delete(benchmark::State& state) {
  struct alignas(64) Line { char b[64]; };
  for (auto _ : state) {
    auto* p = new Line[4];
    benchmark::DoNotOptimize(p);
    delete[] p;
  }
}
BENCHMARK(BM_aligned_new_delete)->Threads(1);

BENCHMARK_MAIN();
