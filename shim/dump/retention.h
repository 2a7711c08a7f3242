// Which of a process's dumps stay on disk: bounded in number and bytes,
// spread evenly over the whole run however long it gets.
//
// Time since the process started is cut into buckets of width W (at first
// the dump interval). A dump is kept when it is the first one in its
// bucket, or the newest, or pinned (the newest high-water dump: the
// process's worst moment so far; the last few dumps asked for by a
// trigger). When the kept dumps exceed LEAKWATCH_MAX_DUMPS or
// LEAKWATCH_MAX_BYTES, W doubles and each pair of buckets keeps its first
// dump. So a run of length T keeps at most max_dumps files, with no gap
// between kept dumps wider than 2W <= about 4 T / max_dumps, dump #0 among
// them -- over minutes or over weeks.
//
// Pure bookkeeping: the caller removes the files it is told to.
//
// Thread-safety: none; the writer serialises calls (the dump lock).
// Memory from mmap (init), never malloc.
#pragma once

#include <cstdint>

namespace leakwatch::shim {

enum RetentionPin : uint8_t { kPinNone = 0, kPinHighWater = 1, kPinTrigger = 2 };

struct KeptDump {
  uint64_t seq;
  uint64_t t_ns;   // since the process started
  uint64_t bytes;  // file size
  uint8_t pin;     // RetentionPin bits
};

class Retention {
 public:
  static constexpr int kTriggerPins = 4;  // trigger dumps kept regardless of buckets
  using RemoveFn = void (*)(uint64_t seq, void* ctx);

  // base_width_ns: the first bucket width (the dump interval).
  bool init(int max_dumps, uint64_t max_bytes, uint64_t base_width_ns);
  void release();  // gives init's reservation back
  // Records a newly written dump and calls remove() for every dump that
  // is no longer kept (possibly several, never the new one).
  void add(const KeptDump& d, RemoveFn remove, void* ctx);
  void clear() { count_ = 0, bytes_ = 0, level_ = 0; }

  int count() const { return count_; }
  uint64_t bytes() const { return bytes_; }
  int level() const { return level_; }  // W = base << level
  const KeptDump& at(int i) const { return kept_[i]; }

 private:
  uint64_t bucket(uint64_t t_ns) const;
  bool over() const;
  void thin(RemoveFn remove, void* ctx);

  KeptDump* kept_ = nullptr;  // in order of writing (= time)
  int cap_ = 0;
  int count_ = 0;
  int max_dumps_ = 0;
  uint64_t max_bytes_ = 0;
  uint64_t base_ns_ = 1;
  int level_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace leakwatch::shim
