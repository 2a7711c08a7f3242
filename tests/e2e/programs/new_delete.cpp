// Every form of operator new/delete the shim hooks: scalar, array,
// nothrow, aligned (alignas types and explicit std::align_val_t), sized
// delete, failing new (bad_alloc and the new-handler loop). Each form
// leaks from its own named function (extern "C" for plain names in the
// report). Prints one checksum line per form.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "lw_check.h"

struct alignas(64) Line {
  unsigned char b[64];
};
struct alignas(4096) PageObj {
  unsigned char b[100];
};
struct Node {
  uint64_t v;
  Node* next;
};

static std::vector<void*>* g_sink;  // leaked blocks stay reachable

extern "C" {
__attribute__((noinline)) Node* leak_new_scalar(uint64_t v) {
  Node* n = new Node{v, nullptr};
  LW_ESCAPE(n);
  return n;
}
__attribute__((noinline)) char* leak_new_array(size_t n) {
  char* p = new char[n];
  std::memset(p, 3, n);
  LW_ESCAPE(p);
  return p;
}
__attribute__((noinline)) Line* leak_new_aligned(void) {
  Line* l = new Line;
  std::memset(l->b, 4, sizeof l->b);
  LW_ESCAPE(l);
  return l;
}
__attribute__((noinline)) Line* leak_new_aligned_array(size_t n) {
  Line* l = new Line[n];
  std::memset(static_cast<void*>(l), 5, n * sizeof(Line));
  LW_ESCAPE(l);
  return l;
}
__attribute__((noinline)) void* leak_new_align_val(size_t n, size_t align) {
  void* p = ::operator new(n, std::align_val_t(align));
  std::memset(p, 6, n);
  LW_ESCAPE(p);
  return p;
}
__attribute__((noinline)) char* leak_new_nothrow(size_t n) {
  char* p = new (std::nothrow) char[n];
  LW_CHECK(p);
  std::memset(p, 7, n);
  LW_ESCAPE(p);
  return p;
}
}

static uint64_t g_handler_calls;
static void new_handler() {
  ++g_handler_calls;
  std::set_new_handler(nullptr);  // next failure throws
}

int main() {
  g_sink = new std::vector<void*>;
  uint64_t h = 0;

  // Scalar new/delete, sized delete (C++14 default), and leaks.
  for (int i = 0; i < 1000; ++i) {
    Node* n = new Node{static_cast<uint64_t>(i), nullptr};
    h = lw_mix(h, n->v);
    delete n;
  }
  for (int i = 0; i < 20; ++i) g_sink->push_back(leak_new_scalar(i));
  std::printf("scalar %016llx\n", (unsigned long long)h);

  // Arrays, including ones with cookies (non-trivial destructors).
  h = 0;
  for (int i = 1; i < 300; ++i) {
    std::string* s = new std::string[i % 7 + 1];
    for (int k = 0; k < i % 7 + 1; ++k) s[k] = std::string(static_cast<size_t>(i + k * 40), 'x');
    h = lw_mix(h, s[0].size());
    delete[] s;
    char* c = new char[static_cast<size_t>(i) * 13];
    lw_fill(c, static_cast<size_t>(i) * 13, i);
    h = lw_hash(h, c, 8);
    delete[] c;
  }
  for (int i = 0; i < 10; ++i) g_sink->push_back(leak_new_array(1000 + i));
  std::printf("array %016llx\n", (unsigned long long)h);

  // Over-aligned types: operator new(size_t, align_val_t) and its deletes.
  h = 0;
  for (int i = 0; i < 500; ++i) {
    Line* l = new Line;
    LW_CHECK((reinterpret_cast<uintptr_t>(l) & 63) == 0);
    l->b[0] = static_cast<unsigned char>(i);
    h = lw_mix(h, l->b[0]);
    delete l;
    Line* a = new Line[(i % 5) + 1];
    LW_CHECK((reinterpret_cast<uintptr_t>(a) & 63) == 0);
    delete[] a;
    PageObj* p = new PageObj;
    LW_CHECK((reinterpret_cast<uintptr_t>(p) & 4095) == 0);
    delete p;
    auto u = std::make_unique<Line[]>(3);
    LW_CHECK((reinterpret_cast<uintptr_t>(u.get()) & 63) == 0);
  }
  for (size_t align : {16u, 32u, 64u, 128u, 256u, 4096u, 8192u, 65536u}) {
    void* p = ::operator new(1000, std::align_val_t(align));
    LW_CHECK((reinterpret_cast<uintptr_t>(p) & (align - 1)) == 0);
    lw_fill(p, 1000, align);
    h = lw_hash(h, p, 1000);
    ::operator delete(p, 1000, std::align_val_t(align));
    void* q = ::operator new[](3000, std::align_val_t(align), std::nothrow);
    LW_CHECK(q && (reinterpret_cast<uintptr_t>(q) & (align - 1)) == 0);
    ::operator delete[](q, std::align_val_t(align), std::nothrow);
    void* r = ::operator new[](77, std::align_val_t(align));
    LW_CHECK((reinterpret_cast<uintptr_t>(r) & (align - 1)) == 0);
    ::operator delete[](r, 77, std::align_val_t(align));
  }
  for (int i = 0; i < 10; ++i) g_sink->push_back(leak_new_aligned());
  for (int i = 0; i < 10; ++i) g_sink->push_back(leak_new_aligned_array(4));
  for (int i = 0; i < 10; ++i) g_sink->push_back(leak_new_align_val(500, 256));
  std::printf("aligned %016llx\n", (unsigned long long)h);

  // nothrow forms.
  h = 0;
  for (int i = 0; i < 500; ++i) {
    Node* n = new (std::nothrow) Node{static_cast<uint64_t>(i) * 3, nullptr};
    LW_CHECK(n);
    h = lw_mix(h, n->v);
    ::operator delete(n, std::nothrow);
    char* c = new (std::nothrow) char[100 + i];
    LW_CHECK(c);
    delete[] c;
  }
  for (int i = 0; i < 10; ++i) g_sink->push_back(leak_new_nothrow(700));
  std::printf("nothrow %016llx\n", (unsigned long long)h);

  // Failing new: nothrow returns null, throwing forms throw bad_alloc,
  // and the new-handler runs first (exactly once: it uninstalls itself).
  const size_t huge = SIZE_MAX / 4;
  LW_CHECK(::operator new(huge, std::nothrow) == nullptr);
  LW_CHECK(::operator new[](huge, std::align_val_t(64), std::nothrow) == nullptr);
  int thrown = 0;
  try {
    LW_ESCAPE(::operator new(huge));
  } catch (const std::bad_alloc&) {
    ++thrown;
  }
  try {
    LW_ESCAPE(::operator new[](huge, std::align_val_t(128)));
  } catch (const std::bad_alloc&) {
    ++thrown;
  }
  std::set_new_handler(new_handler);
  try {
    LW_ESCAPE(::operator new(huge));
  } catch (const std::bad_alloc&) {
    ++thrown;
  }
  std::printf("failures: %d thrown, new-handler called %llu times\n", thrown, (unsigned long long)g_handler_calls);
  std::printf("leaked blocks %zu\n", g_sink->size());
  return 0;
}
