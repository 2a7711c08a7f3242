/* Allocations reached through JIT-like code: stubs copied into anonymous
 * executable memory (no object, no unwind table), which keep a frame
 * pointer as V8's code does. Each round leaks one block through two such
 * frames (main -> through_jit -> [stub] -> inner_through_jit -> [stub] ->
 * leak_block). Then a thread on a stack of the program's own, with an
 * inaccessible page right above it, calls through a stub whose RBP points
 * at the last word below that page: a walker that believed it would read
 * the inaccessible page. Prints a checksum.
 * Usage: jit_frames [ROUNDS=2000] */
#include <pthread.h>
#include <sys/mman.h>

#include "lw_check.h"

typedef void (*callback)(void*);
typedef void (*stub_fn)(callback, void* arg, uintptr_t rbp);

/* push %rbp; mov %rsp,%rbp; sub $32,%rsp; mov %rdi,%rax; mov %rsi,%rdi;
 * call *%rax; leave; ret */
static const unsigned char kFrameStub[] = {0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x20, 0x48,
                                           0x89, 0xf8, 0x48, 0x89, 0xf7, 0xff, 0xd0, 0xc9, 0xc3};
/* push %rbp; mov %rdx,%rbp; mov %rdi,%rax; mov %rsi,%rdi; call *%rax;
 * pop %rbp; ret: RBP is the third argument, not a frame pointer */
static const unsigned char kFakeRbpStub[] = {0x55, 0x48, 0x89, 0xd5, 0x48, 0x89, 0xf8,
                                             0x48, 0x89, 0xf7, 0xff, 0xd0, 0x5d, 0xc3};

static stub_fn g_frame_stub, g_fake_rbp_stub;
static uint64_t g_sum;

__attribute__((noipa)) static void leak_block(void* arg) {
  size_t n = 1000 + (size_t)(uintptr_t)arg % 100;
  char* p = malloc(n);
  LW_CHECK(p != NULL);
  lw_fill(p, n, (uint64_t)(uintptr_t)arg);
  g_sum = lw_hash(g_sum, p, n);
  LW_ESCAPE(p); /* kept: a leak */
}

__attribute__((noipa)) static void inner_through_jit(void* arg) {
  g_frame_stub(leak_block, arg, 0);
  LW_ESCAPE(arg);
}

__attribute__((noipa)) static void through_jit(long i) {
  g_frame_stub(inner_through_jit, (void*)(uintptr_t)i, 0);
  LW_ESCAPE(g_sum);
}

__attribute__((noipa)) static void leak_past_fake_frame_pointer(void* arg) {
  char* p = malloc(3000);
  LW_CHECK(p != NULL);
  lw_fill(p, 3000, (uint64_t)(uintptr_t)arg);
  g_sum = lw_hash(g_sum, p, 3000);
  LW_ESCAPE(p);
}

struct edge {
  uintptr_t rbp;
  long rounds;
};

static void* on_edge_of_stack(void* arg) {
  struct edge* e = arg;
  for (long i = 0; i < e->rounds; ++i) g_fake_rbp_stub(leak_past_fake_frame_pointer, (void*)(uintptr_t)i, e->rbp);
  return NULL;
}

int main(int argc, char** argv) {
  long rounds = argc > 1 ? atol(argv[1]) : 2000;
  unsigned char* page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  LW_CHECK(page != MAP_FAILED);
  memcpy(page, kFrameStub, sizeof kFrameStub);
  memcpy(page + 64, kFakeRbpStub, sizeof kFakeRbpStub);
  LW_CHECK(mprotect(page, 4096, PROT_READ | PROT_EXEC) == 0);
  g_frame_stub = (stub_fn)(void*)page;
  g_fake_rbp_stub = (stub_fn)(void*)(page + 64);

  for (long i = 0; i < rounds; ++i) through_jit(i);

  const size_t stack = 256 * 1024;
  char* mem = mmap(NULL, stack + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  LW_CHECK(mem != MAP_FAILED);
  LW_CHECK(mprotect(mem + stack, 4096, PROT_NONE) == 0);
  pthread_attr_t attr;
  LW_CHECK(pthread_attr_init(&attr) == 0);
  LW_CHECK(pthread_attr_setstack(&attr, mem, stack) == 0);
  struct edge e = {(uintptr_t)(mem + stack - 8), rounds / 10 + 1};
  pthread_t t;
  LW_CHECK(pthread_create(&t, &attr, on_edge_of_stack, &e) == 0);
  LW_CHECK(pthread_join(t, NULL) == 0);
  printf("jit frames checksum=%016llx\n", (unsigned long long)g_sum);
  return 0;
}
