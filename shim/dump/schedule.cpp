#include "shim/dump/schedule.h"

#include <sys/stat.h>

#include "shim/dump/writer.h"
#include "shim/runtime/checkpoint.h"
#include "shim/runtime/clock.h"
#include "shim/runtime/identity.h"
#include "shim/runtime/lifecycle.h"
#include "shim/runtime/log.h"
#include "shim/runtime/proc_memory.h"

namespace leakwatch::shim {
namespace {

constexpr uint64_t kSecond = 1000000000ull;
constexpr uint64_t kTriggerEvery = kSecond;
constexpr uint64_t kHighWaterEvery = kSecond / 10;
constexpr uint64_t kHighWaterMinGap = kSecond;
constexpr uint64_t kHighWaterMinStep = 1ull << 20;

uint64_t g_interval_ns = 60 * kSecond;
uint64_t g_next_dump = 0, g_next_trigger = 0, g_next_high_water = 0;
uint64_t g_last_high_water_dump = 0;
int64_t g_trigger_seen_ns = -1;  // mtime of the trigger file last answered (-1: none)
char g_trigger_path[kMaxPath + sizeof kTriggerFile + 1];

int64_t trigger_mtime() {
  struct stat st;
  if (::stat(g_trigger_path, &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000ll + st.st_mtim.tv_nsec;
}

bool high_water_enabled() { return g_config.high_water > 0; }

// A new high by the margin above the highest resident size any dump saw.
bool new_high(uint64_t now) {
  if (now < g_last_high_water_dump + kHighWaterMinGap) return false;
  uint64_t rss = read_rss_bytes();
  uint64_t base = writer_max_rss();
  if (rss == 0 || base == 0) return false;
  uint64_t margin = base / 100 * static_cast<uint64_t>(g_config.high_water);
  if (margin < kHighWaterMinStep) margin = kHighWaterMinStep;
  return rss > base + margin;
}

uint64_t min3(uint64_t a, uint64_t b, uint64_t c) { return a < b ? (a < c ? a : c) : (b < c ? b : c); }

}  // namespace

void schedule_checkpoint(uint64_t now) {
  bool dumped = false;
  if (now >= g_next_trigger) {
    g_next_trigger = now + kTriggerEvery;
    int64_t m = trigger_mtime();
    if (m > g_trigger_seen_ns) {
      g_trigger_seen_ns = m;
      dumped = dump_now(DumpReason::kTrigger);
    }
  }
  if (!dumped && high_water_enabled() && now >= g_next_high_water) {
    g_next_high_water = now + kHighWaterEvery;
    if (new_high(now)) {
      g_last_high_water_dump = now;
      dumped = dump_now(DumpReason::kHighWater);
    }
  }
  if (now >= g_next_dump) {
    // The next grid point after now: an idle stretch does not cause a burst.
    uint64_t late = now - g_next_dump;
    g_next_dump += (late / g_interval_ns + 1) * g_interval_ns;
    if (!dumped) dump_now(DumpReason::kPeriodic);
  }
  uint64_t hw = high_water_enabled() ? g_next_high_water : UINT64_MAX;
  checkpoint_set_due(min3(g_next_dump, g_next_trigger, hw));
}

namespace {
void install(uint64_t now) {
  // The grid starts at the process's start, as retention's buckets do: one
  // periodic dump per bucket, so none displaces another.
  uint64_t start = g_identity.start_mono_ns <= now ? g_identity.start_mono_ns : now;
  g_next_dump = start + ((now - start) / g_interval_ns + 1) * g_interval_ns;
  g_next_trigger = now + kTriggerEvery;
  g_next_high_water = now + kHighWaterEvery;
  checkpoint_install(schedule_checkpoint, min3(g_next_dump, g_next_trigger, high_water_enabled() ? g_next_high_water : UINT64_MAX));
}
}  // namespace

void schedule_start() {
  g_interval_ns = static_cast<uint64_t>(g_config.interval_s * 1e9);
  if (g_interval_ns == 0) g_interval_ns = 1;
  format(g_trigger_path, sizeof g_trigger_path, "%s/%s", g_config.dir, kTriggerFile);
  g_trigger_seen_ns = trigger_mtime();  // a trigger older than this process is not for it
  install(mono_ns());
}

void schedule_after_fork_child() {
  // A process of its own: its first dump one interval from now. (The
  // trigger last answered is the parent's: no file is looked at here.)
  g_last_high_water_dump = 0;
  install(mono_ns());
}

}  // namespace leakwatch::shim
