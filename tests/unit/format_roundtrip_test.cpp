// The dump format end to end: the shim's encoder (PayloadBuilder +
// seal_dump) against the reporter's reader (parse_dump), on valid dumps
// (every field must round-trip) and on truncated, corrupted, foreign and
// hostile ones (an error with a clear message, never a crash, a wrong
// value or a huge allocation).
//
// Payloads are laid out as shim/dump/format.h specifies and as
// shim/dump/writer.cpp build_payload writes them: IDNT, MODS, FRMS, STKS,
// RECS, then the string table that PayloadBuilder::finish appends.
#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <new>
#include <optional>
#include <algorithm>
#include <string>
#include <vector>
#include <zlib.h>

#include "reporter/load/dump_reader.h"
#include "shim/dump/encoder.h"
#include "shim/dump/format.h"

namespace fmt = leakwatch::format;
using leakwatch::load::Dump;
using leakwatch::load::parse_dump;
using leakwatch::shim::Arena;
using leakwatch::shim::ByteBuffer;
using leakwatch::shim::PayloadBuilder;
using leakwatch::shim::seal_dump;

// ---- Allocation tracking: the largest single operator new request made
// while tracking is on (the reader allocates through std containers).
namespace {
std::atomic<bool> g_track{false};
std::atomic<std::size_t> g_max_alloc{0};
std::atomic<std::size_t> g_total_alloc{0};  // bytes requested, frees not subtracted
void note_alloc(std::size_t n) {
  if (!g_track.load(std::memory_order_relaxed)) return;
  g_total_alloc.fetch_add(n, std::memory_order_relaxed);
  std::size_t cur = g_max_alloc.load(std::memory_order_relaxed);
  while (n > cur && !g_max_alloc.compare_exchange_weak(cur, n)) {
  }
}
void* checked_malloc(std::size_t n) {
  note_alloc(n);
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t n) { return checked_malloc(n); }
void* operator new[](std::size_t n) { return checked_malloc(n); }
// The nothrow forms too (Catch2 uses them): every new here must pair with
// the free() in the deletes below, or ASan reports a mismatch.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  note_alloc(n);
  return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  note_alloc(n);
  return std::malloc(n ? n : 1);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

struct Tracked {
  absl::StatusOr<Dump> result;
  std::size_t max_alloc;
  double seconds;
  std::size_t total_alloc;
};

Tracked parse_tracked(const std::string& bytes) {
  g_max_alloc = 0;
  g_total_alloc = 0;
  g_track = true;
  auto t0 = std::chrono::steady_clock::now();
  auto r = parse_dump(bytes, "hostile.lwdump");
  auto t1 = std::chrono::steady_clock::now();
  g_track = false;
  return {std::move(r), g_max_alloc.load(), std::chrono::duration<double>(t1 - t0).count(), g_total_alloc.load()};
}

std::string to_string(const ByteBuffer& b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

std::string seal(const ByteBuffer& payload) {
  Arena scratch;
  ByteBuffer file;
  bool ok = seal_dump(payload, &scratch, &file);
  std::string out = ok ? to_string(file) : std::string();
  scratch.reset();
  REQUIRE(ok);
  return out;
}

std::string seal_bytes(const std::string& raw) {
  ByteBuffer payload;
  REQUIRE(payload.append(raw.data(), raw.size()));
  return seal(payload);
}

// Builds a payload with PayloadBuilder and seals it.
std::string build(const std::function<void(PayloadBuilder&)>& body) {
  Arena arena;
  std::string out;
  {
    PayloadBuilder b(&arena);
    body(b);
    bool ok = b.finish();
    out = ok ? seal(b.bytes()) : std::string();
    REQUIRE(ok);
  }
  arena.reset();
  return out;
}

// The raw (uncompressed) payload bytes of a builder body.
std::string build_raw(const std::function<void(PayloadBuilder&)>& body) {
  Arena arena;
  std::string out;
  {
    PayloadBuilder b(&arena);
    body(b);
    REQUIRE(b.finish());
    out = to_string(b.bytes());
  }
  arena.reset();
  return out;
}

// A header written by hand, for fields seal_dump would never produce.
struct HeaderSpec {
  uint16_t major = fmt::kMajor, minor = fmt::kMinor;
  uint32_t flags = fmt::kFlagZlib;
  std::optional<uint64_t> raw_size;     // default: the real one
  std::optional<uint64_t> stored_size;  // default: the real one
  uint32_t header_size = sizeof(fmt::Header);
};

std::string hand_sealed(const std::string& raw, const HeaderSpec& spec) {
  std::string stored;
  if (spec.flags & fmt::kFlagZlib) {
    uLongf n = compressBound(raw.size());
    stored.resize(n);
    REQUIRE(compress2(reinterpret_cast<Bytef*>(stored.data()), &n, reinterpret_cast<const Bytef*>(raw.data()),
                      raw.size(), 6) == Z_OK);
    stored.resize(n);
  } else {
    stored = raw;
  }
  fmt::Header h{};
  std::memcpy(h.magic, fmt::kMagic, 8);
  h.major = spec.major;
  h.minor = spec.minor;
  h.header_size = spec.header_size;
  h.flags = spec.flags;
  h.payload_crc32 = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(stored.data()), stored.size()));
  h.stored_size = spec.stored_size.value_or(stored.size());
  h.raw_size = spec.raw_size.value_or(raw.size());
  h.header_crc32 = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(&h), 40));
  std::string out(reinterpret_cast<const char*>(&h), sizeof h);
  out.append(spec.header_size - sizeof h, '\0');
  return out + stored;
}

// Rewrites the header CRC after editing header bytes.
void fix_header_crc(std::string* file) {
  uint32_t c = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(file->data()), 40));
  std::memcpy(file->data() + offsetof(fmt::Header, header_crc32), &c, 4);
}

std::string error_of(const absl::StatusOr<Dump>& r) { return r.ok() ? "OK" : std::string(r.status().message()); }

// ------------------------------------------------------------ the valid dump

const std::string kContainer = "4f1c2b3a4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";
const std::string kExe = "/opt/sérvice/bin/sérvice";  // UTF-8 survives
constexpr uint64_t kInstance = 0xfedcba9876543210ULL;
// Timestamps are fields like any other here: fixed values that must come
// back bit for bit (the reader keeps nanoseconds, no rounding).
constexpr uint64_t kStartWallNs = 1700000000123456789ULL;
constexpr uint64_t kWallNs = 1700000060123456789ULL;
constexpr int kFrames = 600;
constexpr int kUniqueSymbols = 520;  // > 511: the string table grows once

struct ModSpec {
  uint64_t start, end, bias;
  std::string path, build_id;
  uint32_t kind;
};
const std::vector<ModSpec> kMods = {
    {0x555555554000, 0x555555600000, 0x555555554000, kExe, "0123456789abcdef0123456789abcdef01234567", fmt::kElf},
    {0x7ffff7a00000, 0x7ffff7b80000, 0x7ffff79d8000, "/lib/x86_64-linux-gnu/libc.so.6",
     "e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4", fmt::kElf},
    {0x7fffe0000000, 0x7fffe0100000, 0, "", "", fmt::kJit},
};

uint32_t frame_module(int i) { return i % 4 == 3 ? fmt::kNoModule : static_cast<uint32_t>(i % 3); }
std::string frame_symbol(int i) {
  if (i % 4 == 3) return "";
  if (i < kUniqueSymbols) return "_ZN7service7handlerILi" + std::to_string(i) + "EEEvv";
  return "malloc";  // shared by many frames: one string
}
uint64_t frame_address(int i) {
  uint32_t m = frame_module(i);
  return (m == fmt::kNoModule ? 0x10000 : kMods[m].start) + 16 * static_cast<uint64_t>(i) + 5;
}

std::vector<std::vector<uint32_t>> stacks_spec() {
  std::vector<uint32_t> deep(fmt::kMaxDepth);
  for (uint32_t i = 0; i < deep.size(); ++i) deep[i] = (i * 7) % kFrames;
  return {{}, {0, 1, 2}, deep, {kFrames - 1}, {5, 5, 5}};
}

std::vector<fmt::Record> records_spec() {
  return {
      {0, 0, 0, 0, 0, 0, 0, 0},
      {1, 0, 1.5, 786432.0, 3.25, 1.5e12, 7, 9},
      {2, 0, 1e9, 1e15, 2e9, 3e15, 123456789, 987654321},
      {3, 0, 0.0000152587890625, 1.0, 1e-300, 1e299, 1, std::numeric_limits<uint64_t>::max()},
      {4, 0, 2, 2048, 2, 2048, 2, 2},
      {fmt::kOtherStack, 0, 40.0, 4096000.0, 80.0, 8192000.0, 30, 60},
  };
}

void identity_fields(PayloadBuilder& b) {
  b.begin_section(fmt::kIdentity);
  b.put(uint32_t{34});
  b.field_str("shim_version", "leakwatch 0.1.0");
  b.field_u64("pid", 4242);
  b.field_u64("ppid", 1);
  b.field_u64("instance", kInstance);
  b.field_str("exe", kExe.c_str());
  b.field_str("argv0", "sérvice");
  b.field_str("cmdline", "sérvice --port 8080 --name \"a b\"");
  b.field_str("hostname", "web-7d9f8c-x2x");
  b.field_str("container_id", kContainer.c_str());
  b.field_u64("pid_ns", 4026531836);
  b.field_u64("mnt_ns", 4026531841);
  b.field_u64("start_wall_ns", kStartWallNs);
  b.field_u64("start_mono_ns", 12345);
  b.field_u64("wall_ns", kWallNs);
  b.field_u64("mono_ns", 60000012345ULL);
  b.field_u64("seq", 17);
  b.field_u64("final", 1);
  b.field_u64("sample_bytes", 524288);
  b.field_f64("interval_s", 2.5);
  b.field_u64("max_frames", 64);
  b.field_u64("dropped_samples", 3);
  b.field_u64("stack_table_full", 0);
  b.field_u64("stacks_total", 9);
  b.field_u64("records_selected", 7);
  b.field_u64("records_folded", 2);
  b.field_u64("live_samples", 11);
  b.field_u64("shim_mapped_bytes", 8 << 20);
  b.field_u64("dense_mode", 0);
  b.field_str("dump_dir", "/tmp/leakwatch");
  b.field_str("match", "");
  // Fields this reader does not know: kept in `extra`, typed.
  b.field_i64("custom_i64", -5);
  b.field_f64("custom_f64", 0.125);
  b.field_u64("custom_max", std::numeric_limits<uint64_t>::max());
  b.field_str("custom_str", "hello");
  b.end_section();
}

void modules_section(PayloadBuilder& b) {
  b.begin_section(fmt::kModules);
  b.put(static_cast<uint32_t>(kMods.size()));
  b.put(static_cast<uint32_t>(sizeof(fmt::Module)));
  for (const auto& m : kMods) {
    fmt::Module fm{m.start, m.end, m.bias, b.str(m.path.c_str()), b.str(m.build_id.c_str()), m.kind, 0};
    b.put(fm);
  }
  b.end_section();
}

void frames_section(PayloadBuilder& b) {
  b.begin_section(fmt::kFrames);
  b.put(static_cast<uint32_t>(kFrames));
  b.put(static_cast<uint32_t>(sizeof(fmt::Frame)));
  for (int i = 0; i < kFrames; ++i) {
    std::string sym = frame_symbol(i);
    fmt::Frame f{frame_address(i), frame_module(i), b.str(sym.c_str()), sym.empty() ? 0 : 3ull * i};
    b.put(f);
  }
  b.end_section();
}

// The stacks as this writer writes them (2.0: varints), or as 1.x did.
enum class StackCoding { kVarint, kFixed32 };
void stacks_section(PayloadBuilder& b, const std::vector<std::vector<uint32_t>>& stacks,
                    StackCoding coding = StackCoding::kVarint) {
  if (coding == StackCoding::kFixed32) {
    b.begin_section(fmt::kStacks);
    b.put(static_cast<uint32_t>(stacks.size()));
    for (const auto& s : stacks) {
      b.put(static_cast<uint32_t>(s.size()));
      if (!s.empty()) b.append(s.data(), s.size() * sizeof(uint32_t));
    }
    b.end_section();
    return;
  }
  b.begin_section(fmt::kStacksV);
  b.varint(static_cast<uint32_t>(stacks.size()));
  for (const auto& s : stacks) {
    b.varint(static_cast<uint32_t>(s.size()));
    for (uint32_t f : s) b.varint(f);
  }
  b.end_section();
}

void records_section(PayloadBuilder& b, const std::vector<fmt::Record>& recs) {
  b.begin_section(fmt::kRecords);
  b.put(static_cast<uint32_t>(recs.size()));
  b.put(static_cast<uint32_t>(sizeof(fmt::Record)));
  for (const auto& r : recs) b.put(r);
  b.end_section();
}

void valid_body(PayloadBuilder& b) {
  identity_fields(b);
  modules_section(b);
  frames_section(b);
  stacks_section(b, stacks_spec());
  records_section(b, records_spec());
}

// The same dump as format 1.1 wrote it: stacks as u32s.
void valid_body_v1(PayloadBuilder& b) {
  identity_fields(b);
  modules_section(b);
  frames_section(b);
  stacks_section(b, stacks_spec(), StackCoding::kFixed32);
  records_section(b, records_spec());
}

// A minimal valid payload (for per-byte fuzzing, where each case reseals).
void small_body(PayloadBuilder& b) {
  b.begin_section(fmt::kIdentity);
  b.put(uint32_t{3});
  b.field_u64("sample_bytes", 4096);
  b.field_str("exe", "/bin/x");
  b.field_u64("pid", 7);
  b.end_section();
  b.begin_section(fmt::kModules);
  b.put(uint32_t{1});
  b.put(static_cast<uint32_t>(sizeof(fmt::Module)));
  b.put(fmt::Module{0x1000, 0x2000, 0, b.str("/bin/x"), b.str("abcd"), fmt::kElf, 0});
  b.end_section();
  b.begin_section(fmt::kFrames);
  b.put(uint32_t{2});
  b.put(static_cast<uint32_t>(sizeof(fmt::Frame)));
  b.put(fmt::Frame{0x1010, 0, b.str("main"), 16});
  b.put(fmt::Frame{0x9999, fmt::kNoModule, 0, 0});
  b.end_section();
  stacks_section(b, {{0, 1}, {1}});
  records_section(b, {{0, 0, 1, 4096, 1, 4096, 1, 1}, {1, 0, 2, 10, 2, 10, 1, 1}, {fmt::kOtherStack, 0, 1, 1, 1, 1, 1, 1}});
}

void check_valid(const Dump& d) {
  CHECK((d.major == fmt::kMajor || d.major == 1));
  CHECK(d.shim_version == "leakwatch 0.1.0");
  CHECK(d.id.pid == 4242);
  CHECK(d.id.ppid == 1);
  CHECK(d.id.instance == kInstance);
  CHECK(d.id.exe == kExe);
  CHECK(d.id.argv0 == "sérvice");
  CHECK(d.id.cmdline == "sérvice --port 8080 --name \"a b\"");
  CHECK(d.id.hostname == "web-7d9f8c-x2x");
  CHECK(d.id.container_id == kContainer);
  CHECK(d.id.pid_ns == 4026531836);
  CHECK(d.id.mnt_ns == 4026531841);
  CHECK(d.id.start_wall_ns == kStartWallNs);
  CHECK(d.id.start_mono_ns == 12345);
  CHECK(d.wall_ns == kWallNs);
  CHECK(d.mono_ns == 60000012345ULL);
  CHECK(d.seq == 17);
  CHECK(d.final_dump);
  CHECK(d.sample_bytes == 524288);
  CHECK(d.interval_s == 2.5);
  CHECK(d.max_frames == 64);
  CHECK(d.dropped_samples == 3);
  CHECK(d.records_folded == 2);
  CHECK(d.shim_mapped_bytes == 8u << 20);
  std::vector<std::pair<std::string, std::string>> extra = {
      {"stack_table_full", "0"}, {"stacks_total", "9"},        {"records_selected", "7"},
      {"live_samples", "11"},    {"dense_mode", "0"},          {"dump_dir", "/tmp/leakwatch"},
      {"match", ""},             {"custom_i64", "-5"},         {"custom_f64", "0.125"},
      {"custom_max", "18446744073709551615"},                  {"custom_str", "hello"}};
  CHECK(d.extra == extra);

  REQUIRE(d.modules.size() == kMods.size());
  for (std::size_t i = 0; i < kMods.size(); ++i) {
    INFO("module " << i);
    CHECK(d.modules[i].start == kMods[i].start);
    CHECK(d.modules[i].end == kMods[i].end);
    CHECK(d.modules[i].bias == kMods[i].bias);
    CHECK(d.modules[i].path == kMods[i].path);
    CHECK(d.modules[i].build_id == kMods[i].build_id);
    CHECK(d.modules[i].kind == kMods[i].kind);
  }
  REQUIRE(d.frames.size() == static_cast<std::size_t>(kFrames));
  for (int i = 0; i < kFrames; ++i) {
    INFO("frame " << i);
    const auto& f = d.frames[i];
    REQUIRE(f.address == frame_address(i));
    REQUIRE(f.module == (frame_module(i) == fmt::kNoModule ? -1 : static_cast<int32_t>(frame_module(i))));
    REQUIRE(d.symbol(f) == frame_symbol(i));
    REQUIRE(f.symbol_offset == (frame_symbol(i).empty() ? 0 : 3ull * i));
  }
  CHECK(d.stacks == stacks_spec());
  auto recs = records_spec();
  REQUIRE(d.records.size() == recs.size());
  for (std::size_t i = 0; i < recs.size(); ++i) {
    INFO("record " << i);
    const auto& r = d.records[i];
    CHECK(r.stack == (recs[i].stack == fmt::kOtherStack ? -1 : static_cast<int64_t>(recs[i].stack)));
    CHECK(r.live_count == recs[i].live_count);
    CHECK(r.live_bytes == recs[i].live_bytes);
    CHECK(r.alloc_count == recs[i].alloc_count);
    CHECK(r.alloc_bytes == recs[i].alloc_bytes);
    CHECK(r.live_samples == recs[i].live_samples);
    CHECK(r.total_samples == recs[i].total_samples);
  }
}

bool same_dump(const Dump& a, const Dump& b) {
  auto mods_eq = [](const auto& x, const auto& y) {
    return x.start == y.start && x.end == y.end && x.bias == y.bias && x.path == y.path &&
           x.build_id == y.build_id && x.kind == y.kind;
  };
  auto frame_eq = [&](const auto& x, const auto& y) {
    return x.address == y.address && x.module == y.module && a.symbol(x) == b.symbol(y) &&
           x.symbol_offset == y.symbol_offset;
  };
  auto rec_eq = [](const auto& x, const auto& y) {
    return x.stack == y.stack && x.live_count == y.live_count && x.live_bytes == y.live_bytes &&
           x.alloc_count == y.alloc_count && x.alloc_bytes == y.alloc_bytes && x.live_samples == y.live_samples &&
           x.total_samples == y.total_samples;
  };
  return a.major == b.major && a.minor == b.minor && a.id == b.id && a.seq == b.seq && a.wall_ns == b.wall_ns &&
         a.mono_ns == b.mono_ns && a.sample_bytes == b.sample_bytes && a.max_frames == b.max_frames &&
         a.dropped_samples == b.dropped_samples && a.records_folded == b.records_folded &&
         a.shim_mapped_bytes == b.shim_mapped_bytes && a.final_dump == b.final_dump &&
         a.interval_s == b.interval_s && a.shim_version == b.shim_version &&
         a.extra == b.extra && a.stacks == b.stacks &&
         std::equal(a.modules.begin(), a.modules.end(), b.modules.begin(), b.modules.end(), mods_eq) &&
         std::equal(a.frames.begin(), a.frames.end(), b.frames.begin(), b.frames.end(), frame_eq) &&
         std::equal(a.records.begin(), a.records.end(), b.records.begin(), b.records.end(), rec_eq);
}

// Checks the invariants the reader promises for any dump it accepts.
void check_consistent(const Dump& d) {
  for (const auto& f : d.frames) REQUIRE((f.module == -1 || (f.module >= 0 && f.module < (int)d.modules.size())));
  for (const auto& s : d.stacks) {
    REQUIRE(s.size() <= fmt::kMaxDepth);
    for (uint32_t fi : s) REQUIRE(fi < d.frames.size());
  }
  for (const auto& r : d.records) {
    REQUIRE((r.stack == -1 || (r.stack >= 0 && r.stack < (int64_t)d.stacks.size())));
    for (double v : {r.live_count, r.live_bytes, r.alloc_count, r.alloc_bytes}) REQUIRE((std::isfinite(v) && v >= 0));
  }
  REQUIRE(d.sample_bytes > 0);
}

const std::string& valid_dump() {
  static const std::string bytes = build(valid_body);
  return bytes;
}

}  // namespace

// ====================================================================== tests

TEST_CASE("format: PayloadBuilder string table", "[format]") {
  Arena arena;
  {
    PayloadBuilder b(&arena);
    CHECK(b.str("") == 0);
    CHECK(b.str(nullptr) == 0);
    uint32_t a = b.str("alpha");
    CHECK(a == 1);
    CHECK(b.str("beta") == 2);
    std::string alpha_copy = "alpha";
    CHECK(b.str(alpha_copy.c_str()) == a);
    // Thousands of strings: indices stay dense and stable across growth.
    std::vector<uint32_t> idx;
    for (int i = 0; i < 5000; ++i) idx.push_back(b.str(("s" + std::to_string(i)).c_str()));
    for (int i = 0; i < 5000; ++i) REQUIRE(idx[i] == static_cast<uint32_t>(3 + i));
    for (int i = 0; i < 5000; i += 7) REQUIRE(b.str(("s" + std::to_string(i)).c_str()) == idx[i]);
    CHECK(b.str("alpha") == a);
    CHECK(b.finish());
  }
  arena.reset();
}

TEST_CASE("format: a full dump round-trips field by field", "[format]") {
  const std::string& bytes = valid_dump();
  REQUIRE(bytes.size() > sizeof(fmt::Header));
  // The header as the format specifies it.
  fmt::Header h;
  std::memcpy(&h, bytes.data(), sizeof h);
  CHECK(std::memcmp(h.magic, "LKWTDUMP", 8) == 0);
  CHECK(h.major == fmt::kMajor);
  CHECK(h.header_size == 48);
  CHECK(h.flags == fmt::kFlagZlib);
  CHECK(h.stored_size == bytes.size() - 48);
  CHECK(h.reserved == 0);
  CHECK(h.header_crc32 == crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), 40));
  CHECK(h.stored_size < h.raw_size);  // it is compressed

  auto r = parse_dump(bytes, "valid.lwdump");
  INFO(error_of(r));
  REQUIRE(r.ok());
  CHECK(r->minor == leakwatch::format::kMinor);
  CHECK(r->file == "valid.lwdump");
  CHECK(r->file_size == bytes.size());
  check_valid(*r);
}

TEST_CASE("format: the writer's section order is not required, unknown sections are skipped", "[format]") {
  std::string bytes = build([](PayloadBuilder& b) {
    records_section(b, records_spec());
    b.begin_section(fmt::tag('X', 'T', 'R', 'A'));  // a section from the future
    b.put(uint64_t{0xdeadbeef});
    b.append("whatever", 8);
    b.end_section();
    stacks_section(b, stacks_spec());
    frames_section(b);
    modules_section(b);
    identity_fields(b);
    b.begin_section(fmt::tag('E', 'M', 'P', 'T'));  // empty unknown section
    b.end_section();
  });
  auto r = parse_dump(bytes, "reordered");
  INFO(error_of(r));
  REQUIRE(r.ok());
  check_valid(*r);
}

TEST_CASE("format: newer minor versions (bigger records, minor bump) still read", "[format]") {
  // Records, frames and modules 8 bytes bigger than this reader knows.
  std::string raw = build_raw([](PayloadBuilder& b) {
    identity_fields(b);
    b.begin_section(fmt::kModules);
    b.put(static_cast<uint32_t>(kMods.size()));
    b.put(static_cast<uint32_t>(sizeof(fmt::Module) + 8));
    for (const auto& m : kMods) {
      b.put(fmt::Module{m.start, m.end, m.bias, b.str(m.path.c_str()), b.str(m.build_id.c_str()), m.kind, 0});
      b.put(uint64_t{0x1111111111111111});
    }
    b.end_section();
    b.begin_section(fmt::kFrames);
    b.put(static_cast<uint32_t>(kFrames));
    b.put(static_cast<uint32_t>(sizeof(fmt::Frame) + 8));
    for (int i = 0; i < kFrames; ++i) {
      std::string sym = frame_symbol(i);
      b.put(fmt::Frame{frame_address(i), frame_module(i), b.str(sym.c_str()), sym.empty() ? 0 : 3ull * i});
      b.put(uint64_t{0x2222222222222222});
    }
    b.end_section();
    stacks_section(b, stacks_spec());
    b.begin_section(fmt::kRecords);
    auto recs = records_spec();
    b.put(static_cast<uint32_t>(recs.size()));
    b.put(static_cast<uint32_t>(sizeof(fmt::Record) + 8));
    for (const auto& r : recs) {
      b.put(r);
      b.put(uint64_t{0x3333333333333333});
    }
    b.end_section();
  });
  HeaderSpec spec;
  spec.minor = 9;
  auto r = parse_dump(hand_sealed(raw, spec), "minor9");
  INFO(error_of(r));
  REQUIRE(r.ok());
  CHECK(r->minor == 9);
  check_valid(*(r));
}

TEST_CASE("format: 1.x dumps (stacks as u32s) still read, to the same dump", "[format]") {
  // Dumps a shim of format 1.1 left in a directory: the reporter reads them
  // beside 2.0 ones (an upgrade while a service keeps running).
  HeaderSpec spec;
  spec.major = 1;
  spec.minor = 1;
  auto old = parse_dump(hand_sealed(build_raw(valid_body_v1), spec), "v1.lwdump");
  INFO(error_of(old));
  REQUIRE(old.ok());
  CHECK(old->major == 1);
  check_valid(*old);
  auto now = parse_dump(valid_dump(), "v2.lwdump");
  REQUIRE(now.ok());
  CHECK(now->major == fmt::kMajor);
  CHECK(old->stacks == now->stacks);
  CHECK(old->records.size() == now->records.size());
  // The varint stacks are a fraction of the u32 ones.
  CHECK(build_raw(valid_body).size() < build_raw(valid_body_v1).size());
}

TEST_CASE("format: varint stacks at their limits", "[format][robustness]") {
  auto with_stacks = [](const std::function<void(PayloadBuilder&)>& stacks) {
    return build_raw([&](PayloadBuilder& b) {
      identity_fields(b);
      modules_section(b);
      frames_section(b);
      stacks(b);
    });
  };
  auto bytes = [](PayloadBuilder& b, std::initializer_list<uint8_t> v) {
    std::vector<uint8_t> x(v);
    b.append(x.data(), x.size());
  };
  SECTION("a two-byte frame index reads back; put_varint writes one to five bytes") {
    auto r = parse_dump(hand_sealed(with_stacks([&](PayloadBuilder& b) {
                                      b.begin_section(fmt::kStacksV);
                                      b.varint(1);
                                      b.varint(1);
                                      b.varint(kFrames - 1);
                                      b.end_section();
                                    }),
                                    {}),
                        "ok");
    INFO(error_of(r));
    REQUIRE(r.ok());
    REQUIRE(r->stacks.size() == 1);
    CHECK(r->stacks[0] == std::vector<uint32_t>{kFrames - 1});
    uint8_t v[leakwatch::shim::kVarintMax];
    CHECK(leakwatch::shim::put_varint(v, 0) == 1);
    CHECK(leakwatch::shim::put_varint(v, 127) == 1);
    CHECK(leakwatch::shim::put_varint(v, 128) == 2);
    CHECK((v[0] == 0x80 && v[1] == 0x01));
    CHECK(leakwatch::shim::put_varint(v, UINT32_MAX) == 5);
    CHECK((v[0] == 0xff && v[4] == 0x0f));
  }
  struct Bad {
    const char* what;
    std::initializer_list<uint8_t> section;
  };
  const Bad cases[] = {
      {"count cut off", {0x81}},
      {"count above what the section holds", {0x05, 0x00}},
      {"depth cut off", {0x01, 0x80}},
      {"depth above the format's limit", {0x01, 0x81, 0x02, 0x00}},  // 257
      {"frame cut off", {0x01, 0x01, 0x80}},
      {"frame out of range", {0x01, 0x01, 0xbc, 0x05}},  // 700 of 600 frames
      {"a varint of six bytes", {0x01, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}},
      {"a varint above 32 bits", {0x01, 0x01, 0xff, 0xff, 0xff, 0xff, 0x1f}},
  };
  for (const Bad& c : cases) {
    DYNAMIC_SECTION(c.what) {
      auto r = parse_dump(hand_sealed(with_stacks([&](PayloadBuilder& b) {
                                        b.begin_section(fmt::kStacksV);
                                        bytes(b, c.section);
                                        b.end_section();
                                      }),
                                      {}),
                          "bad");
      REQUIRE_FALSE(r.ok());
      CHECK(error_of(r).find("stack") != std::string::npos);
    }
  }
}

TEST_CASE("format: an uncompressed payload (flag bit 0 clear) reads too", "[format]") {
  std::string raw = build_raw(valid_body);
  HeaderSpec spec;
  spec.flags = 0;
  auto r = parse_dump(hand_sealed(raw, spec), "plain");
  INFO(error_of(r));
  REQUIRE(r.ok());
  check_valid(*r);
  // ... but then stored and raw sizes must agree.
  spec.raw_size = raw.size() + 1;
  auto bad = parse_dump(hand_sealed(raw, spec), "plain");
  CHECK_FALSE(bad.ok());
}

TEST_CASE("format: strings longer than 65535 bytes are cut, not refused", "[format]") {
  std::string long_exe = "/" + std::string(70000, 'p');
  std::string bytes = build([&](PayloadBuilder& b) {
    b.begin_section(fmt::kIdentity);
    b.put(uint32_t{2});
    b.field_u64("sample_bytes", 1);
    b.field_str("exe", long_exe.c_str());
    b.end_section();
  });
  auto r = parse_dump(bytes, "long");
  INFO(error_of(r));
  REQUIRE(r.ok());
  CHECK(r->id.exe == long_exe.substr(0, 65535));
  CHECK(r->sample_bytes == 1);
  CHECK(r->modules.empty());
  CHECK(r->records.empty());
}

TEST_CASE("format: every truncation of a valid dump is an error", "[format][robustness]") {
  const std::string& bytes = valid_dump();
  for (std::size_t len = 0; len < bytes.size(); ++len) {
    auto r = parse_dump(std::string_view(bytes).substr(0, len), "cut");
    INFO("length " << len << " of " << bytes.size() << ": " << error_of(r));
    REQUIRE_FALSE(r.ok());
    if (len >= 8) {
      // Ours, but cut short: the message says so (not "not a leakwatch dump").
      REQUIRE(error_of(r).find("truncated") != std::string::npos);
    }
  }
  // And appended bytes are refused too.
  auto r = parse_dump(bytes + std::string(1, '\0'), "long");
  CHECK_FALSE(r.ok());
  CHECK(error_of(r).find("trailing") != std::string::npos);
}

TEST_CASE("format: single-byte corruptions anywhere are caught", "[format][robustness]") {
  const std::string& bytes = valid_dump();
  auto good = parse_dump(bytes, "good");
  REQUIRE(good.ok());
  int accepted = 0;
  for (std::size_t off = 0; off < bytes.size(); ++off) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}, uint8_t{0x5a}}) {
      std::string bad = bytes;
      bad[off] = static_cast<char>(bad[off] ^ mask);
      auto r = parse_dump(bad, "flipped");
      if (!r.ok()) continue;
      // Accepted: must be the same dump (only a byte no field depends on).
      INFO("offset " << off << " mask " << int(mask) << " accepted");
      REQUIRE(same_dump(*r, *good));
      // The only such bytes are the header's reserved word (44..47).
      CHECK(off >= offsetof(fmt::Header, reserved));
      CHECK(off < sizeof(fmt::Header));
      ++accepted;
    }
  }
  CHECK(accepted <= 16);
}

TEST_CASE("format: foreign files are not leakwatch dumps", "[format][robustness]") {
  // The first bytes of an ELF file (this test program).
  std::ifstream exe("/proc/self/exe", std::ios::binary);
  std::string elf(4096, '\0');
  exe.read(elf.data(), static_cast<std::streamsize>(elf.size()));
  elf.resize(static_cast<std::size_t>(exe.gcount()));
  REQUIRE(elf.size() > 64);
  REQUIRE(elf.substr(0, 4) == "\x7f" "ELF");
  for (const std::string& foreign :
       {elf, elf.substr(0, 64), elf.substr(0, 20), std::string(), std::string("#!/bin/sh\necho hi\n"),
        std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10) + std::string(100, 'x'),
        std::string(48, '\0'), std::string("LKWTDUM")}) {
    auto r = parse_dump(foreign, "foreign");
    INFO("size " << foreign.size() << ": " << error_of(r));
    REQUIRE_FALSE(r.ok());
    CHECK(error_of(r).find("not a leakwatch dump") != std::string::npos);
    CHECK(error_of(r).rfind("foreign: ", 0) == 0);  // names the file
  }
  // Magic off by one byte.
  std::string bytes = valid_dump();
  bytes[7] = 'Q';
  CHECK(error_of(parse_dump(bytes, "x")).find("not a leakwatch dump") != std::string::npos);
}

TEST_CASE("format: other major versions are refused with a clear message", "[format][robustness]") {
  std::string newer = valid_dump();
  uint16_t two = fmt::kMajor + 1;
  std::memcpy(newer.data() + offsetof(fmt::Header, major), &two, 2);
  fix_header_crc(&newer);
  auto r = parse_dump(newer, "v3.lwdump");
  REQUIRE_FALSE(r.ok());
  INFO(error_of(r));
  CHECK(error_of(r).find("newer") != std::string::npos);
  CHECK(error_of(r).find(absl::StrCat(fmt::kMajor + 1, ".", leakwatch::format::kMinor)) != std::string::npos);
  // Even when the header checksum was not updated, the version is what is reported.
  std::string newer_badcrc = valid_dump();
  std::memcpy(newer_badcrc.data() + offsetof(fmt::Header, major), &two, 2);
  CHECK(error_of(parse_dump(newer_badcrc, "v2")).find("newer") != std::string::npos);
  // An older major is refused too, without claiming it is newer.
  std::string older = valid_dump();
  uint16_t zero = 0;
  std::memcpy(older.data() + offsetof(fmt::Header, major), &zero, 2);
  fix_header_crc(&older);
  auto o = parse_dump(older, "v0");
  REQUIRE_FALSE(o.ok());
  CHECK(error_of(o).find("newer") == std::string::npos);
  CHECK(error_of(o).find("not supported") != std::string::npos);
}

TEST_CASE("format: header fields that do not add up", "[format][robustness]") {
  std::string raw = build_raw(small_body);
  SECTION("raw size above the format's limit") {
    HeaderSpec spec;
    spec.raw_size = fmt::kMaxRawSize + 1;
    auto t = parse_tracked(hand_sealed(raw, spec));
    REQUIRE_FALSE(t.result.ok());
    CHECK(error_of(t.result).find("larger than the format allows") != std::string::npos);
    CHECK(t.max_alloc < (1u << 20));
  }
  SECTION("raw size that does not match the compressed payload") {
    for (uint64_t claimed : {uint64_t{0}, uint64_t{1}, raw.size() - 1, raw.size() + 1, raw.size() * 2}) {
      HeaderSpec spec;
      spec.raw_size = claimed;
      auto r = parse_dump(hand_sealed(raw, spec), "x");
      INFO("claimed raw size " << claimed << ": " << error_of(r));
      REQUIRE_FALSE(r.ok());
      CHECK(error_of(r).find("decompress") != std::string::npos);
    }
  }
  SECTION("stored size larger or smaller than the file") {
    std::string file = hand_sealed(raw, {});
    uint64_t stored = file.size() - 48;
    for (uint64_t claimed : {stored + 1, stored - 1, uint64_t{0}, std::numeric_limits<uint64_t>::max()}) {
      HeaderSpec spec;
      spec.stored_size = claimed;
      auto r = parse_dump(hand_sealed(raw, spec), "x");
      INFO("claimed stored size " << claimed << ": " << error_of(r));
      REQUIRE_FALSE(r.ok());
    }
  }
  SECTION("header size smaller than the header or beyond the file") {
    std::string file = hand_sealed(raw, {});
    for (uint32_t hs : {0u, 47u, static_cast<uint32_t>(file.size() + 1), 0xffffffffu}) {
      std::string bad = file;
      std::memcpy(bad.data() + offsetof(fmt::Header, header_size), &hs, 4);
      fix_header_crc(&bad);
      auto r = parse_dump(bad, "x");
      INFO("header size " << hs << ": " << error_of(r));
      REQUIRE_FALSE(r.ok());
    }
  }
  SECTION("a bigger header (a future minor) is skipped") {
    HeaderSpec spec;
    spec.header_size = 64;
    auto r = parse_dump(hand_sealed(build_raw(valid_body), spec), "x");
    INFO(error_of(r));
    REQUIRE(r.ok());
    check_valid(*r);
  }
}

TEST_CASE("format: out-of-range indices are refused with a clear message", "[format][robustness]") {
  struct Case {
    const char* what;
    std::function<void(PayloadBuilder&)> body;
    const char* message;
  };
  auto ident = [](PayloadBuilder& b) {
    b.begin_section(fmt::kIdentity);
    b.put(uint32_t{1});
    b.field_u64("sample_bytes", 4096);
    b.end_section();
  };
  auto one_module = [](PayloadBuilder& b) {
    b.begin_section(fmt::kModules);
    b.put(uint32_t{1});
    b.put(static_cast<uint32_t>(sizeof(fmt::Module)));
    b.put(fmt::Module{0x1000, 0x2000, 0, b.str("/bin/x"), 0, fmt::kElf, 0});
    b.end_section();
  };
  auto two_frames = [](PayloadBuilder& b) {
    b.begin_section(fmt::kFrames);
    b.put(uint32_t{2});
    b.put(static_cast<uint32_t>(sizeof(fmt::Frame)));
    b.put(fmt::Frame{0x1010, 0, b.str("main"), 16});
    b.put(fmt::Frame{0x1020, fmt::kNoModule, 0, 0});
    b.end_section();
  };
  std::vector<Case> cases = {
      {"record stack index = number of stacks",
       [&](PayloadBuilder& b) {
         ident(b);
         one_module(b);
         two_frames(b);
         stacks_section(b, {{0, 1}, {1}});
         records_section(b, {{2, 0, 1, 1, 1, 1, 1, 1}});
       },
       "record stack out of range"},
      {"record stack index with no stack table",
       [&](PayloadBuilder& b) {
         ident(b);
         records_section(b, {{0, 0, 1, 1, 1, 1, 1, 1}});
       },
       "record stack out of range"},
      {"record stack 0xfffffffe (one below kOtherStack)",
       [&](PayloadBuilder& b) {
         ident(b);
         one_module(b);
         two_frames(b);
         stacks_section(b, {{0}});
         records_section(b, {{0xfffffffe, 0, 1, 1, 1, 1, 1, 1}});
       },
       "record stack out of range"},
      {"stack frame index = number of frames",
       [&](PayloadBuilder& b) {
         ident(b);
         one_module(b);
         two_frames(b);
         stacks_section(b, {{0, 2}});
       },
       "stack frame out of range"},
      {"stack frame index 0xffffffff",
       [&](PayloadBuilder& b) {
         ident(b);
         one_module(b);
         two_frames(b);
         stacks_section(b, {{0xffffffff}});
       },
       "stack frame out of range"},
      {"stack deeper than kMaxDepth",
       [&](PayloadBuilder& b) {
         ident(b);
         one_module(b);
         two_frames(b);
         stacks_section(b, {std::vector<uint32_t>(fmt::kMaxDepth + 1, 0)});
       },
       "bad stack depth"},
      {"frame module index = number of modules",
       [&](PayloadBuilder& b) {
         ident(b);
         one_module(b);
         b.begin_section(fmt::kFrames);
         b.put(uint32_t{1});
         b.put(static_cast<uint32_t>(sizeof(fmt::Frame)));
         b.put(fmt::Frame{0x1010, 1, 0, 0});
         b.end_section();
       },
       "frame module out of range"},
      {"frame module index without a module table",
       [&](PayloadBuilder& b) {
         ident(b);
         b.begin_section(fmt::kFrames);
         b.put(uint32_t{1});
         b.put(static_cast<uint32_t>(sizeof(fmt::Frame)));
         b.put(fmt::Frame{0x1010, 0, 0, 0});
         b.end_section();
       },
       "frame module out of range"},
      {"frame symbol string index out of range",
       [&](PayloadBuilder& b) {
         ident(b);
         one_module(b);
         b.begin_section(fmt::kFrames);
         b.put(uint32_t{1});
         b.put(static_cast<uint32_t>(sizeof(fmt::Frame)));
         b.put(fmt::Frame{0x1010, 0, 5000, 0});
         b.end_section();
       },
       "frame symbol out of range"},
      {"module path string index out of range",
       [&](PayloadBuilder& b) {
         ident(b);
         b.begin_section(fmt::kModules);
         b.put(uint32_t{1});
         b.put(static_cast<uint32_t>(sizeof(fmt::Module)));
         b.put(fmt::Module{0x1000, 0x2000, 0, 77, 0, fmt::kElf, 0});
         b.end_section();
       },
       "module string out of range"},
      {"module build-id string index out of range",
       [&](PayloadBuilder& b) {
         ident(b);
         b.begin_section(fmt::kModules);
         b.put(uint32_t{1});
         b.put(static_cast<uint32_t>(sizeof(fmt::Module)));
         b.put(fmt::Module{0x1000, 0x2000, 0, 0, 0xffffffff, fmt::kElf, 0});
         b.end_section();
       },
       "module string out of range"},
      {"identity field name out of range",
       [&](PayloadBuilder& b) {
         b.begin_section(fmt::kIdentity);
         b.put(uint32_t{2});
         b.field_u64("sample_bytes", 4096);
         b.put(fmt::Field{999, fmt::kU64, 1});
         b.end_section();
       },
       "identity field name out of range"},
      {"identity string value out of range",
       [&](PayloadBuilder& b) {
         b.begin_section(fmt::kIdentity);
         b.put(uint32_t{2});
         b.field_u64("sample_bytes", 4096);
         b.put(fmt::Field{b.str("exe"), fmt::kString, 5000});
         b.end_section();
       },
       "identity string out of range"},
      {"negative estimate in a record",
       [&](PayloadBuilder& b) {
         ident(b);
         records_section(b, {{fmt::kOtherStack, 0, 1, -1, 1, 1, 1, 1}});
       },
       "negative or non-finite"},
      {"NaN estimate in a record",
       [&](PayloadBuilder& b) {
         ident(b);
         records_section(b, {{fmt::kOtherStack, 0, std::nan(""), 1, 1, 1, 1, 1}});
       },
       "negative or non-finite"},
      {"infinite estimate in a record",
       [&](PayloadBuilder& b) {
         ident(b);
         records_section(b, {{fmt::kOtherStack, 0, 1, 1, 1, std::numeric_limits<double>::infinity(), 1, 1}});
       },
       "negative or non-finite"},
      {"records smaller than any format's",
       [&](PayloadBuilder& b) {
         ident(b);
         b.begin_section(fmt::kRecords);
         b.put(uint32_t{1});
         // Smaller than even a format 1.0 record (56 bytes, before mapped_bytes).
         constexpr uint32_t kShort = 48;
         b.put(kShort);
         b.append(std::string(kShort, '\0').data(), kShort);
         b.end_section();
       },
       "records too small"},
      {"no identity section", [&](PayloadBuilder& b) { one_module(b); }, "no identity section"},
      {"sample_bytes missing",
       [&](PayloadBuilder& b) {
         b.begin_section(fmt::kIdentity);
         b.put(uint32_t{1});
         b.field_u64("pid", 1);
         b.end_section();
       },
       "sample_bytes"},
      {"sample_bytes zero",
       [&](PayloadBuilder& b) {
         b.begin_section(fmt::kIdentity);
         b.put(uint32_t{1});
         b.field_u64("sample_bytes", 0);
         b.end_section();
       },
       "sample_bytes"},
  };
  for (const auto& c : cases) {
    auto t = parse_tracked(build(c.body));
    INFO(c.what << " -> " << error_of(t.result));
    REQUIRE_FALSE(t.result.ok());
    CHECK(error_of(t.result).find(c.message) != std::string::npos);
    CHECK(error_of(t.result).rfind("hostile.lwdump: ", 0) == 0);
  }
  // A dump without a string table at all.
  std::string no_strings;
  {
    fmt::SectionHeader sh{fmt::kIdentity, 0, 4};
    no_strings.append(reinterpret_cast<const char*>(&sh), sizeof sh);
    no_strings.append(4, '\0');
  }
  auto ns = parse_dump(seal_bytes(no_strings), "x");
  CHECK(error_of(ns).find("no string table") != std::string::npos);
}

TEST_CASE("format: hostile counts fail fast without huge allocations", "[format][robustness]") {
  const uint32_t kHuge = 0xffffffff;
  auto ident = [](PayloadBuilder& b) {
    b.begin_section(fmt::kIdentity);
    b.put(uint32_t{1});
    b.field_u64("sample_bytes", 4096);
    b.end_section();
  };
  struct Case {
    const char* what;
    std::function<void(PayloadBuilder&)> body;
  };
  std::vector<Case> cases = {
      {"identity count",
       [&](PayloadBuilder& b) {
         b.begin_section(fmt::kIdentity);
         b.put(kHuge);
         b.field_u64("sample_bytes", 4096);
         b.end_section();
       }},
      {"module count",
       [&](PayloadBuilder& b) {
         ident(b);
         b.begin_section(fmt::kModules);
         b.put(kHuge);
         b.put(static_cast<uint32_t>(sizeof(fmt::Module)));
         b.end_section();
       }},
      {"module record size",
       [&](PayloadBuilder& b) {
         ident(b);
         b.begin_section(fmt::kModules);
         b.put(uint32_t{2});
         b.put(kHuge);
         b.end_section();
       }},
      {"frame count",
       [&](PayloadBuilder& b) {
         ident(b);
         b.begin_section(fmt::kFrames);
         b.put(kHuge);
         b.put(static_cast<uint32_t>(sizeof(fmt::Frame)));
         b.put(fmt::Frame{1, fmt::kNoModule, 0, 0});
         b.end_section();
       }},
      {"stack count",
       [&](PayloadBuilder& b) {
         ident(b);
         b.begin_section(fmt::kStacks);
         b.put(kHuge);
         b.put(uint32_t{0});
         b.end_section();
       }},
      {"stack depth",
       [&](PayloadBuilder& b) {
         ident(b);
         b.begin_section(fmt::kStacks);
         b.put(uint32_t{1});
         b.put(kHuge);
         b.end_section();
       }},
      {"stack depth within kMaxDepth but beyond the section",
       [&](PayloadBuilder& b) {
         ident(b);
         b.begin_section(fmt::kStacks);
         b.put(uint32_t{1});
         b.put(uint32_t{200});
         b.put(uint32_t{0});
         b.end_section();
       }},
      {"record count",
       [&](PayloadBuilder& b) {
         ident(b);
         b.begin_section(fmt::kRecords);
         b.put(kHuge);
         b.put(static_cast<uint32_t>(sizeof(fmt::Record)));
         b.end_section();
       }},
      {"record count x size overflows 32 bits",
       [&](PayloadBuilder& b) {
         ident(b);
         b.begin_section(fmt::kRecords);
         b.put(uint32_t{0x10000});
         b.put(uint32_t{0x10000});
         b.end_section();
       }},
  };
  for (const auto& c : cases) {
    auto t = parse_tracked(build(c.body));
    INFO(c.what << " -> " << error_of(t.result) << ", largest allocation " << t.max_alloc << " B, " << t.seconds
                << " s");
    REQUIRE_FALSE(t.result.ok());
    CHECK(t.max_alloc < (1u << 20));
    CHECK(t.seconds < 1.0);
  }

  // Hostile string table and section sizes, written by hand (finish()
  // always writes a correct string table).
  auto section = [](uint32_t tag, uint64_t size, const std::string& body) {
    fmt::SectionHeader sh{tag, 0, size};
    return std::string(reinterpret_cast<const char*>(&sh), sizeof sh) + body;
  };
  auto u32 = [](uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
  std::string ident_raw = build_raw([](PayloadBuilder& b) {
    b.begin_section(fmt::kIdentity);
    b.put(uint32_t{1});
    b.field_u64("sample_bytes", 4096);
    b.end_section();
  });
  // ident_raw ends with a valid STRS section; hostile ones are put first
  // (the reader uses the first section of each tag).
  std::vector<std::pair<const char*, std::string>> raw_cases = {
      {"string count", section(fmt::kStrings, 8, u32(kHuge) + u32(0)) + ident_raw},
      {"string length", section(fmt::kStrings, 12, u32(2) + u32(0) + u32(kHuge)) + ident_raw},
      {"section size 2^63", section(fmt::kStrings, uint64_t{1} << 63, u32(1) + u32(0)) + ident_raw},
      {"section size -1", section(fmt::kStrings, ~uint64_t{0}, u32(1) + u32(0)) + ident_raw},
      {"section header cut", ident_raw + std::string(10, '\0')},
  };
  for (const auto& [what, raw] : raw_cases) {
    auto t = parse_tracked(seal_bytes(raw));
    INFO(what << " -> " << error_of(t.result) << ", largest allocation " << t.max_alloc << " B");
    REQUIRE_FALSE(t.result.ok());
    CHECK(t.max_alloc < (1u << 20));
    CHECK(t.seconds < 1.0);
  }
}

TEST_CASE("format: a hostile raw size does not make the reader allocate it", "[format][robustness]") {
  // A 100-byte file whose (checksummed) header claims the largest payload
  // the format allows. zlib cannot expand data by more than ~1032:1, so
  // such a claim is provably false before anything is allocated; the
  // reader's contract says sizes are checked against the bytes that are
  // there before allocating. (At the time of writing the reader
  // allocates and zeroes raw_size bytes, 256 MiB here, before inflating.)
  std::string raw = build_raw([](PayloadBuilder& b) {
    b.begin_section(fmt::kIdentity);
    b.put(uint32_t{1});
    b.field_u64("sample_bytes", 4096);
    b.end_section();
  });
  HeaderSpec spec;
  spec.raw_size = fmt::kMaxRawSize;
  std::string file = hand_sealed(raw, spec);
  auto t = parse_tracked(file);
  INFO("file of " << file.size() << " bytes -> " << error_of(t.result) << ", largest allocation " << t.max_alloc
                  << " B, " << t.seconds << " s");
  REQUIRE_FALSE(t.result.ok());
  CHECK(t.max_alloc <= 1032 * (file.size() - 48) + (64u << 10));
}

TEST_CASE("format: one long string named many times does not multiply the reader's memory",
          "[format][robustness]") {
  // The string table holds each string once; frames, modules and identity
  // fields name strings by index. A reader that copies a string per
  // reference turns a 64 KiB name and 4,000 references into 256 MB.
  const std::string big(64 << 10, 'x');
  auto with_identity = [&](PayloadBuilder& b, int big_fields) {
    b.begin_section(fmt::kIdentity);
    b.put(static_cast<uint32_t>(1 + big_fields));
    b.field_u64("sample_bytes", 4096);
    for (int i = 0; i < big_fields; ++i) b.put(fmt::Field{b.str(("k" + std::to_string(i)).c_str()), fmt::kString, b.str(big.c_str())});
    b.end_section();
  };
  struct Case {
    const char* what;
    std::function<void(PayloadBuilder&)> body;
  } cases[] = {
      {"4,000 frames naming one symbol",
       [&](PayloadBuilder& b) {
         with_identity(b, 0);
         b.begin_section(fmt::kFrames);
         b.put(uint32_t{4000});
         b.put(static_cast<uint32_t>(sizeof(fmt::Frame)));
         for (uint32_t i = 0; i < 4000; ++i) b.put(fmt::Frame{0x1000 + i, fmt::kNoModule, b.str(big.c_str()), 1});
         b.end_section();
       }},
      {"4,000 modules naming one path",
       [&](PayloadBuilder& b) {
         with_identity(b, 0);
         b.begin_section(fmt::kModules);
         b.put(uint32_t{4000});
         b.put(static_cast<uint32_t>(sizeof(fmt::Module)));
         for (uint64_t i = 0; i < 4000; ++i)
           b.put(fmt::Module{i << 20, (i << 20) + 4096, 0, b.str(big.c_str()), b.str(""), fmt::kElf, 0});
         b.end_section();
       }},
      {"4,000 identity fields naming one string", [&](PayloadBuilder& b) { with_identity(b, 4000); }},
  };
  for (const auto& c : cases) {
    std::string raw = build_raw(c.body);
    auto t = parse_tracked(seal_bytes(raw));
    INFO(c.what << ": raw " << raw.size() << " B -> " << (t.result.ok() ? "accepted" : error_of(t.result))
                << ", allocated " << t.total_alloc << " B in all");
    CHECK(t.total_alloc <= 4 * raw.size() + (4u << 20));
    if (t.result.ok()) check_consistent(*t.result);
  }
}

TEST_CASE("format: a string index with high bits set is refused, not truncated", "[format][robustness]") {
  // Field.value holds a string index for kString fields; a value that does
  // not fit in 32 bits is out of range. Truncating it to its low word would
  // silently read another string (here index 1, "sample_bytes").
  std::string bytes = build([](PayloadBuilder& b) {
    b.begin_section(fmt::kIdentity);
    b.put(uint32_t{2});
    b.field_u64("sample_bytes", 4096);                                       // "sample_bytes" is string 1
    b.put(fmt::Field{b.str("hostname"), fmt::kString, (uint64_t{1} << 32) | 1});  // low word: 1
    b.end_section();
  });
  auto r = parse_dump(bytes, "x");
  INFO(error_of(r) << (r.ok() ? " with hostname \"" + r->id.hostname + "\"" : std::string()));
  CHECK_FALSE(r.ok());
  // The same field with the plain index 1 is fine (so the refusal, when it
  // comes, is about the high bits).
  std::string fine = build([](PayloadBuilder& b) {
    b.begin_section(fmt::kIdentity);
    b.put(uint32_t{2});
    b.field_u64("sample_bytes", 4096);
    b.put(fmt::Field{b.str("hostname"), fmt::kString, 1});
    b.end_section();
  });
  auto f = parse_dump(fine, "x");
  REQUIRE(f.ok());
  CHECK(f->id.hostname == "sample_bytes");
}

TEST_CASE("format: structure-aware fuzz (mutated payloads, valid checksums)", "[format][robustness]") {
  // Every byte of a small raw payload set to several values, then sealed
  // with correct checksums: the reader's structural checks alone must hold.
  const std::string raw = build_raw(small_body);
  auto base = parse_dump(seal_bytes(raw), "base");
  REQUIRE(base.ok());
  int ok = 0, refused = 0;
  for (std::size_t off = 0; off < raw.size(); ++off) {
    for (uint8_t v : {uint8_t{0x00}, uint8_t{0x01}, uint8_t{0x7f}, uint8_t{0x80}, uint8_t{0xff}}) {
      if (static_cast<uint8_t>(raw[off]) == v) continue;
      std::string m = raw;
      m[off] = static_cast<char>(v);
      auto t = parse_tracked(seal_bytes(m));
      INFO("offset " << off << " value " << int(v) << " -> " << error_of(t.result) << ", largest allocation "
                     << t.max_alloc);
      REQUIRE(t.max_alloc <= 16 * raw.size() + (1u << 20));
      if (t.result.ok()) {
        check_consistent(*t.result);
        ++ok;
      } else {
        ++refused;
      }
    }
  }
  INFO("accepted " << ok << ", refused " << refused);
  CHECK(refused > 0);
  CHECK(ok > 0);  // values (addresses, estimates) may change and still be valid
}
