// Writes a synthetic dump directory for the reporter's scale benchmark:
// P processes x D dumps, each dump holding K distinct stacks (depth 20,
// frames from a shared pool), with a few leaking sites among stable ones.
// Uses the shim's own encoder, so the files are real dumps.
// Usage: gen_dumps DIR [processes=10] [dumps=100] [stacks=10000]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "shim/dump/encoder.h"
#include "shim/dump/format.h"

using namespace leakwatch;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: gen_dumps DIR [processes] [dumps] [stacks]\n");
    return 2;
  }
  std::string dir = argv[1];
  int procs = argc > 2 ? std::atoi(argv[2]) : 10;
  int dumps = argc > 3 ? std::atoi(argv[3]) : 100;
  int stacks = argc > 4 ? std::atoi(argv[4]) : 10000;
  const int depth = 20, pool = 4000;
  std::mt19937_64 rng(7);
  std::vector<std::vector<uint32_t>> stk(stacks, std::vector<uint32_t>(depth));
  for (auto& s : stk)
    for (auto& f : s) f = static_cast<uint32_t>(rng() % pool);
  std::vector<std::string> names(pool);
  for (int i = 0; i < pool; ++i) names[i] = "_ZN7service6module8functionILi" + std::to_string(i) + "EEEvv";
  size_t total = 0;
  for (int p = 0; p < procs; ++p) {
    uint64_t bias = 0x555500000000ull + (uint64_t(p) << 24);  // ASLR differs per process
    for (int d = 0; d < dumps; ++d) {
      shim::Arena arena;
      {
        shim::PayloadBuilder b(&arena);
        double t = d * 60.0;
        b.begin_section(format::kIdentity);
        b.put(uint32_t{13});
        b.field_u64("pid", 1000 + p);
        b.field_u64("ppid", 1);
        b.field_u64("instance", 0xabc000 + p);
        b.field_str("exe", "/srv/bin/service");
        b.field_str("hostname", ("pod-" + std::to_string(p)).c_str());
        b.field_u64("start_wall_ns", 1700000000000000000ull);
        b.field_u64("start_mono_ns", 1000000000ull);
        b.field_u64("wall_ns", 1700000000000000000ull + uint64_t(t * 1e9));
        b.field_u64("mono_ns", 1000000000ull + uint64_t(t * 1e9));
        b.field_u64("seq", d);
        b.field_u64("final", 0);
        b.field_u64("sample_bytes", 524288);
        b.field_f64("interval_s", 60);
        b.end_section();
        b.begin_section(format::kModules);
        b.put(uint32_t{1});
        b.put(uint32_t{sizeof(format::Module)});
        format::Module m{bias, bias + 0x1000000, bias, b.str("/srv/bin/service"), b.str("0123456789abcdef0123456789abcdef01234567"), format::kElf, 0};
        b.put(m);
        b.end_section();
        b.begin_section(format::kFrames);
        b.put(uint32_t(pool));
        b.put(uint32_t{sizeof(format::Frame)});
        for (int i = 0; i < pool; ++i) {
          format::Frame f{bias + 0x1000 + uint64_t(i) * 64 + 5, 0, b.str(names[i].c_str()), 5};
          b.put(f);
        }
        b.end_section();
        b.begin_section(format::kStacksV);
        b.varint(uint32_t(stacks));
        for (auto& s : stk) {
          b.varint(uint32_t{depth});
          for (uint32_t f : s) b.varint(f);
        }
        b.end_section();
        b.begin_section(format::kRecords);
        b.put(uint32_t(stacks));
        b.put(uint32_t{sizeof(format::Record)});
        for (int i = 0; i < stacks; ++i) {
          // Sites 0..4 leak (i+1) KB/s; the rest hover around a level.
          double live = i < 5 ? (i + 1) * 1024.0 * t : 1e6 * (1 + 0.05 * std::sin(i + d));
          double samples = std::max(1.0, live / 524288);
          format::Record r{uint32_t(i), 0, live / 100, live, live / 50, live * 2, uint64_t(samples), uint64_t(samples * 2)};
          b.put(r);
        }
        b.end_section();
        b.finish();
        shim::ByteBuffer file;
        if (!shim::seal_dump(b.bytes(), &arena, &file)) return 1;
        char name[256];
        std::snprintf(name, sizeof name, "%s/service.%d.%016x.%06d.lwdump", dir.c_str(), 1000 + p, 0xabc000 + p, d);
        FILE* f = std::fopen(name, "wb");
        if (!f) {
          std::perror(name);
          return 1;
        }
        std::fwrite(file.data(), 1, file.size(), f);
        std::fclose(f);
        total += file.size();
      }
      arena.reset();
    }
  }
  std::printf("wrote %d dumps, %zu bytes\n", procs * dumps, total);
  return 0;
}
