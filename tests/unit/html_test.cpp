// Unit tests for the HTML renderer (reporter/render/html.cpp): escaping,
// self-containment, chart and flame graph present or explained when empty.
// Headless Chromium loads real output in tests/e2e/cases/test_formats.py.
#include <catch2/catch.hpp>

#include <sstream>
#include <string>

#include "reporter/render/render.h"

using namespace leakwatch;

namespace {

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

Report report() {
  Report r;
  Site s;
  s.verdict = "growing";
  s.growth_bytes_per_s = 1000;
  s.live_bytes = 5000;
  s.frames = {{"std::vector<int, std::allocator<int> >::push_back<script>", "/bin/a", "/src/a.cpp", 3, false},
              {"main", "/bin/a", "/src/a.cpp", 9, false}};
  s.series = {{0, {{0, 0}, {1, 1000}, {2, 2000}}}, {1, {{0, 10}, {1, 20}}}};
  r.sites.push_back(s);
  Site t = s;
  t.verdict = "stable";
  t.growth_bytes_per_s = 0;
  t.frames = {{"other_fn", "/bin/a", "", 0, false}};
  t.series = {{0, {{0, 5}, {1, 5}, {2, 5}}}};
  r.sites.push_back(t);
  ProcessInfo p;
  p.id.exe = "/bin/a&b";
  r.processes.push_back(p);
  return r;
}

}  // namespace

TEST_CASE("html escapes names and fetches nothing") {
  std::ostringstream out;
  render::html(report(), {}, out);
  std::string h = out.str();
  CHECK(h.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(h.find("push_back<script>") == std::string::npos);
  CHECK(h.find("push_back&lt;script&gt;") != std::string::npos);
  CHECK(h.find("a&amp;b") != std::string::npos);
  for (const char* net : {"http://", "https://", "src=", "<link", "url("}) CHECK(h.find(net) == std::string::npos);
}

TEST_CASE("html has table rows, one chart line per site and process, and a flame graph") {
  std::ostringstream out;
  render::html(report(), {}, out);
  std::string h = out.str();
  CHECK(count(h, "<tr class=\"site\"") == 2);
  CHECK(count(h, "<path class=\"series\" data-rank=\"1\"") == 2);
  CHECK(count(h, "<path class=\"series\" data-rank=\"2\"") == 1);
  CHECK(h.find("<svg class=\"flame\"") != std::string::npos);
  CHECK(count(h, "<g class=\"node\"") == 3);  // all growth, main, push_back
}

TEST_CASE("html without series or growth says so") {
  Report r = report();
  for (auto& s : r.sites) s.series.clear(), s.growth_bytes_per_s = 0;
  std::ostringstream out;
  render::html(r, {}, out);
  std::string h = out.str();
  CHECK(h.find("<svg class=\"chart\"") == std::string::npos);
  CHECK(h.find("No series to draw") != std::string::npos);
  CHECK(h.find("No site grew.") != std::string::npos);
}
