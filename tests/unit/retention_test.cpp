// Unit tests for the dump retention rule (shim/dump/retention.h), over
// simulated runs of minutes to weeks: at most max_dumps (and max_bytes)
// kept at every moment, the first dump and the newest always kept, and the
// kept dumps spread evenly over the whole run -- no gap between kept dumps
// wider than about 4 x run length / max_dumps.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "shim/dump/retention.h"

using namespace leakwatch::shim;

namespace {

constexpr uint64_t kSec = 1000000000ull;

struct Sim {
  Retention r;
  std::set<uint64_t> on_disk;  // what a directory would hold
  uint64_t removed = 0;

  static void remove(uint64_t seq, void* ctx) {
    auto* s = static_cast<Sim*>(ctx);
    REQUIRE(s->on_disk.erase(seq) == 1);  // only files that exist are removed, once
    ++s->removed;
  }
  void add(uint64_t seq, uint64_t t_ns, uint64_t bytes = 10000, uint8_t pin = kPinNone) {
    on_disk.insert(seq);
    r.add(KeptDump{seq, t_ns, bytes, pin}, remove, this);
    REQUIRE(static_cast<size_t>(r.count()) == on_disk.size());
  }
  std::vector<uint64_t> kept_times() const {
    std::vector<uint64_t> t;
    for (int i = 0; i < r.count(); ++i) t.push_back(r.at(i).t_ns);
    return t;
  }
};

uint64_t max_gap(const std::vector<uint64_t>& t) {
  uint64_t g = 0;
  for (size_t i = 1; i < t.size(); ++i) g = std::max(g, t[i] - t[i - 1]);
  return g;
}

}  // namespace

TEST_CASE("retention: a week of dumps a minute stays within 256, evenly spread", "[retention]") {
  const int max_dumps = 256;
  const uint64_t interval = 60 * kSec;
  Sim s;
  REQUIRE(s.r.init(max_dumps, 0, interval));
  const int dumps = 7 * 24 * 60;
  for (int i = 0; i < dumps; ++i) {
    uint64_t t = (i + 1) * interval;
    s.add(i, t);
    REQUIRE(s.r.count() <= max_dumps);
    REQUIRE(s.on_disk.count(0) == 1);                 // the start of the run
    REQUIRE(s.on_disk.count(static_cast<uint64_t>(i)) == 1);  // the newest
    if (i % 97 == 0 || i == dumps - 1) {
      // No gap wider than about 4 x run length / max_dumps (plus one interval).
      uint64_t run = t;
      INFO("dump " << i << ": " << s.r.count() << " kept, widest gap " << max_gap(s.kept_times()) / kSec << " s");
      REQUIRE(max_gap(s.kept_times()) <= 4 * run / max_dumps + interval);
    }
  }
  // After a week the kept dumps still cover the whole week: more than a
  // quarter of the allowed count, each early day has some.
  CHECK(s.r.count() >= max_dumps / 4);
  std::vector<int> per_day(7, 0);
  for (uint64_t t : s.kept_times()) ++per_day[std::min<uint64_t>(6, t / (86400 * kSec))];
  for (int d = 0; d < 7; ++d) CHECK(per_day[d] > 0);
}

TEST_CASE("retention: compressed days (interval 0.05 s, 16 kept) cover the whole run", "[retention]") {
  Sim s;
  REQUIRE(s.r.init(16, 0, kSec / 20));
  for (int i = 0; i < 160; ++i) s.add(i, (i + 1) * kSec / 20);  // 8 s
  auto t = s.kept_times();
  CHECK(s.r.count() <= 16);
  CHECK(t.front() == kSec / 20);
  CHECK(t.back() == 160 * kSec / 20);
  CHECK(max_gap(t) <= 4 * 8 * kSec / 16 + kSec / 20);
  // The middle of the run is there (the old rule kept #0 and the last stretch only).
  CHECK(std::count_if(t.begin(), t.end(), [](uint64_t x) { return x > 2 * kSec && x < 6 * kSec; }) >= 4);
}

TEST_CASE("retention: irregular dumps (idle stretches, bursts) stay bounded and cover the run", "[retention]") {
  std::mt19937_64 rng(42);
  Sim s;
  const uint64_t interval = 10 * kSec;
  REQUIRE(s.r.init(64, 0, interval));
  uint64_t t = 0;
  for (int i = 0; i < 20000; ++i) {
    // Mostly on time; sometimes an idle stretch of up to an hour; sometimes
    // a burst of extra dumps (trigger, high water) a few ms apart.
    uint64_t r = rng() % 100;
    t += r < 5 ? (rng() % 360) * interval : r < 10 ? kSec / 100 : interval;
    s.add(i, t);
    REQUIRE(s.r.count() <= 64);
  }
  auto kept = s.kept_times();
  CHECK(kept.back() == t);
  CHECK(s.on_disk.count(0) == 1);
  // Idle stretches leave gaps no retention can fill; apart from them, even.
  CHECK(max_gap(kept) <= 4 * t / 64 + 360 * interval);
}

TEST_CASE("retention: the byte cap holds as well as the count", "[retention]") {
  Sim s;
  REQUIRE(s.r.init(1000, 1 << 20, kSec));  // 1 MiB of dumps
  std::mt19937_64 rng(7);
  for (int i = 0; i < 5000; ++i) {
    s.add(i, (i + 1) * kSec, 20000 + rng() % 60000);
    REQUIRE((s.r.bytes() <= (1u << 20) || s.r.count() <= 2));
    uint64_t sum = 0;
    for (int k = 0; k < s.r.count(); ++k) sum += s.r.at(k).bytes;
    REQUIRE(sum == s.r.bytes());
  }
  CHECK(s.on_disk.count(0) == 1);
  CHECK(s.r.count() >= 8);  // not thinned to nothing
}

TEST_CASE("retention: the highest-memory dump and recent triggered ones are kept through thinning", "[retention]") {
  Sim s;
  REQUIRE(s.r.init(8, 0, kSec));
  s.add(0, kSec);
  s.add(1, 2 * kSec);
  s.add(2, 2 * kSec + kSec / 2, 10000, kPinHighWater);  // the worst moment, between two periodic dumps
  for (int i = 3; i < 400; ++i) {
    uint8_t pin = (i % 50 == 0) ? kPinTrigger : kPinNone;
    s.add(i, (i + 1) * kSec, 10000, pin);
    REQUIRE(s.r.count() <= 8);
    REQUIRE(s.on_disk.count(2) == 1);  // never thinned away while it is the highest
  }
  // The last kTriggerPins triggered dumps are kept (350 and 300, 250, 200 here... at most 4).
  int triggers = 0;
  for (int k = 0; k < s.r.count(); ++k) triggers += (s.r.at(k).pin & kPinTrigger) ? 1 : 0;
  CHECK(triggers <= Retention::kTriggerPins);
  CHECK(s.on_disk.count(350) == 1);
  // A new high moves the pin; the old worst moment is then thinned like any dump.
  s.add(400, 401 * kSec + kSec / 2, 10000, kPinHighWater);
  s.add(401, 402 * kSec);
  s.add(402, 403 * kSec);
  CHECK(s.on_disk.count(400) == 1);
  CHECK(s.on_disk.count(2) == 0);
}

TEST_CASE("retention: a fork child starts over", "[retention]") {
  Sim s;
  REQUIRE(s.r.init(4, 0, kSec));
  for (int i = 0; i < 10; ++i) s.add(i, (i + 1) * kSec);
  s.r.clear();
  s.on_disk.clear();
  CHECK(s.r.count() == 0);
  CHECK(s.r.level() == 0);
  s.add(0, kSec);
  CHECK(s.r.count() == 1);
}
