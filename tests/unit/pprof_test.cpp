// Unit tests for the pprof renderer (reporter/render/pprof.cpp): the
// gzip wrapper, string_table[0], inlined frames as Lines of one Location,
// mappings with build-ids, growth from the series. Independent decoders
// (protoc --decode, npm pprof-format) check real output in
// tests/e2e/cases/test_formats.py.
#include <catch2/catch.hpp>

#include <zlib.h>

#include <sstream>
#include <string>

#include "render/profile.pb.h"
#include "reporter/render/render.h"

using namespace leakwatch;
namespace pb = perftools::profiles;

namespace {

std::string gunzip(const std::string& in) {
  z_stream z{};
  REQUIRE(inflateInit2(&z, 15 + 16) == Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  std::string out;
  char buf[4096];
  int rc;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    REQUIRE((rc == Z_OK || rc == Z_STREAM_END));
    out.append(buf, sizeof buf - z.avail_out);
  } while (rc != Z_STREAM_END);
  inflateEnd(&z);
  return out;
}

pb::Profile encode(const Report& r) {
  std::ostringstream out;
  REQUIRE(render::pprof(r, out));
  pb::Profile p;
  REQUIRE(p.ParseFromString(gunzip(out.str())));
  return p;
}

Report sample_report() {
  Report r;
  Site s;
  s.verdict = "growing";
  s.live_bytes = 1000.4;
  s.live_count = 10;
  s.alloc_bytes = 5000;
  s.growth_bytes_per_s = 42;
  // leaf (inlined into mid, inlined into outer), then main.
  s.frames = {{"leaf", "/bin/app", "/src/a.h", 3, true},
              {"mid", "/bin/app", "/src/a.h", 7, true},
              {"outer", "/bin/app", "/src/a.cpp", 20, false},
              {"main", "/bin/app", "/src/main.cpp", 5, false},
              {"__libc_start_main", "/lib/libc.so.6", "", 0, false}};
  s.series = {{0, {{0, 100}, {1, 600}, {2, 900}}}, {1, {{0, 50}, {1, 10}}}};
  r.sites.push_back(s);
  Site t = s;
  t.verdict = "transient";
  t.live_bytes = 0;
  t.frames.erase(t.frames.begin(), t.frames.begin() + 2);  // outer, main, libc: shares locations
  t.series = {{0, {{0, 500}, {1, 0}}}};
  r.sites.push_back(t);
  r.modules = {{"/bin/app", "abcdef0123"}, {"/lib/libc.so.6", ""}};
  return r;
}

std::string str(const pb::Profile& p, int64_t i) { return p.string_table(static_cast<int>(i)); }

}  // namespace

TEST_CASE("pprof: header and sample types") {
  pb::Profile p = encode(sample_report());
  REQUIRE(p.string_table_size() > 0);
  CHECK(p.string_table(0).empty());
  REQUIRE(p.sample_type_size() == 4);
  CHECK(str(p, p.sample_type(0).type()) == "inuse_space");
  CHECK(str(p, p.sample_type(1).type()) == "inuse_objects");
  CHECK(str(p, p.sample_type(2).type()) == "growth_space");
  CHECK(str(p, p.sample_type(3).type()) == "alloc_space");
  CHECK(str(p, p.default_sample_type()) == "growth_space");
}

TEST_CASE("pprof: inlined frames are lines of the next real frame's location") {
  pb::Profile p = encode(sample_report());
  REQUIRE(p.sample_size() == 2);
  const pb::Sample& s = p.sample(0);
  REQUIRE(s.location_id_size() == 3);  // {leaf, mid, outer}, main, libc
  const pb::Location* first = nullptr;
  for (const auto& l : p.location())
    if (l.id() == s.location_id(0)) first = &l;
  REQUIRE(first);
  REQUIRE(first->line_size() == 3);
  auto fname = [&](uint64_t id) {
    for (const auto& f : p.function())
      if (f.id() == id) return str(p, f.name());
    return std::string("?");
  };
  CHECK(fname(first->line(0).function_id()) == "leaf");
  CHECK(first->line(0).line() == 3);
  CHECK(fname(first->line(2).function_id()) == "outer");
  // Second site: outer alone is a different location, main and libc shared.
  const pb::Sample& t = p.sample(1);
  REQUIRE(t.location_id_size() == 3);
  CHECK(t.location_id(0) != s.location_id(0));
  CHECK(t.location_id(1) == s.location_id(1));
  CHECK(t.location_id(2) == s.location_id(2));
  CHECK(p.location_size() == 4);
}

TEST_CASE("pprof: values and growth are unsampled estimates") {
  pb::Profile p = encode(sample_report());
  const pb::Sample& s = p.sample(0);
  CHECK(s.value(0) == 1000);
  CHECK(s.value(1) == 10);
  CHECK(s.value(2) == 800 - 40);  // (900-100) + (10-50)
  CHECK(s.value(3) == 5000);
  CHECK(p.sample(1).value(2) == 0);  // shrank: no growth
}

TEST_CASE("pprof: mappings carry paths and build-ids") {
  pb::Profile p = encode(sample_report());
  REQUIRE(p.mapping_size() == 2);
  CHECK(str(p, p.mapping(0).filename()) == "/bin/app");
  CHECK(str(p, p.mapping(0).build_id()) == "abcdef0123");
  CHECK(p.mapping(0).has_inline_frames());
  CHECK(p.mapping(0).has_line_numbers());
  CHECK(str(p, p.mapping(1).filename()) == "/lib/libc.so.6");
  CHECK(p.mapping(1).build_id() == 0);
  CHECK_FALSE(p.mapping(1).has_line_numbers());
}

TEST_CASE("pprof: an empty report is still a valid profile") {
  Report r;
  pb::Profile p = encode(r);
  CHECK(p.sample_size() == 0);
  CHECK(p.string_table(0).empty());
}
