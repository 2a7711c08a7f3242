#include "shim/dump/retention.h"

#include "shim/runtime/internal_alloc.h"

namespace leakwatch::shim {

void Retention::release() {
  if (kept_) unmap_pages(kept_, sizeof(KeptDump) * static_cast<std::size_t>(cap_));
  kept_ = nullptr;
  cap_ = 0;
  clear();
}

bool Retention::init(int max_dumps, uint64_t max_bytes, uint64_t base_width_ns) {
  max_dumps_ = max_dumps < 4 ? 4 : max_dumps;
  max_bytes_ = max_bytes;
  base_ns_ = base_width_ns ? base_width_ns : 1;
  cap_ = max_dumps_ + kTriggerPins + 4;
  kept_ = static_cast<KeptDump*>(map_pages(sizeof(KeptDump) * static_cast<std::size_t>(cap_)));
  clear();
  return kept_ != nullptr;
}

uint64_t Retention::bucket(uint64_t t_ns) const {
  uint64_t w = level_ < 63 ? base_ns_ << level_ : UINT64_MAX;
  if (level_ >= 63 || (w >> level_) != base_ns_) return 0;  // wider than any run: one bucket
  return t_ns / w;
}

bool Retention::over() const {
  return count_ > max_dumps_ || (max_bytes_ && bytes_ > max_bytes_ && count_ > 2);
}

// One pass: keep pinned dumps, the newest, and the first dump of each bucket.
void Retention::thin(RemoveFn remove, void* ctx) {
  int w = 0;
  bool have_bucket = false;
  uint64_t last_bucket = 0;
  for (int r = 0; r < count_; ++r) {
    const KeptDump& d = kept_[r];
    bool newest = r == count_ - 1;
    uint64_t b = bucket(d.t_ns);
    bool first = !have_bucket || b != last_bucket;
    if (first && !d.pin) have_bucket = true, last_bucket = b;
    if (first || newest || d.pin) {
      kept_[w++] = d;
      continue;
    }
    bytes_ -= d.bytes;
    if (remove) remove(d.seq, ctx);
  }
  count_ = w;
}

void Retention::add(const KeptDump& d, RemoveFn remove, void* ctx) {
  if (!kept_) return;
  if (d.pin & kPinHighWater)
    for (int i = 0; i < count_; ++i) kept_[i].pin &= static_cast<uint8_t>(~kPinHighWater);
  if (d.pin & kPinTrigger) {
    int pins = 0;
    for (int i = count_ - 1; i >= 0; --i)
      if ((kept_[i].pin & kPinTrigger) && ++pins >= kTriggerPins) kept_[i].pin &= static_cast<uint8_t>(~kPinTrigger);
  }
  if (count_ >= cap_) {
    // Cannot happen while over() is enforced below; never write past the end.
    bytes_ -= kept_[count_ - 1].bytes;
    if (remove) remove(kept_[count_ - 1].seq, ctx);
    --count_;
  }
  kept_[count_++] = d;
  bytes_ += d.bytes;
  thin(remove, ctx);
  while (over() && level_ < 63) {
    ++level_;
    thin(remove, ctx);
  }
}

}  // namespace leakwatch::shim
