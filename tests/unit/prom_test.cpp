// Unit tests for the Prometheus renderer (reporter/render/prom.cpp): label
// escaping, the bounded "other" series, stable site ids. promtool itself
// checks real output in tests/e2e/cases/test_formats.py.
#include <catch2/catch.hpp>

#include <limits>
#include <sstream>
#include <string>

#include "reporter/render/render.h"

using namespace leakwatch;

namespace {

Site site(const std::string& fn, const std::string& verdict, double live, double rate) {
  Site s;
  s.verdict = verdict;
  s.live_bytes = live;
  s.growth_bytes_per_s = rate;
  s.frames.push_back({fn, "/usr/bin/app", "/src/app.cpp", 12, false});
  return s;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("prom escapes label values") {
  Report r;
  r.sites.push_back(site("weird\"name\\with\nnewline", "growing", 100, 5));
  ProcessInfo p;
  p.id.exe = "/bin/my\"app";
  r.processes.push_back(p);
  std::ostringstream out;
  render::prom(r, {}, out);
  std::string t = out.str();
  CHECK(t.find("function=\"weird\\\"name\\\\with\\nnewline\"") != std::string::npos);
  CHECK(t.find("program=\"my\\\"app\"") != std::string::npos);
  CHECK(t.find("location=\"app.cpp:12\"") != std::string::npos);
  // Every sample line is one line: no raw newline inside a label.
  for (size_t at = 0, nl; (nl = t.find('\n', at)) != std::string::npos; at = nl + 1) {
    std::string line = t.substr(at, nl - at);
    CHECK((line.rfind("# ", 0) == 0 || line.rfind("leakwatch_", 0) == 0));
  }
}

TEST_CASE("prom names the top sites and sums the rest into one series") {
  Report r;
  for (int i = 0; i < 50; ++i) r.sites.push_back(site("f" + std::to_string(i), "stable", 10, 1));
  std::ostringstream out;
  render::prom(r, render::PromOptions{5}, out);
  std::string t = out.str();
  CHECK(count(t, "leakwatch_site_live_bytes{") == 6);
  CHECK(count(t, "leakwatch_site_growth_bytes_per_second{") == 6);
  CHECK(t.find("leakwatch_site_live_bytes{program=\"\",site=\"other\",function=\"\",location=\"\"} 450\n") != std::string::npos);
  CHECK(t.find("leakwatch_site_growth_bytes_per_second{program=\"\",site=\"other\",function=\"\",location=\"\"} 45\n") !=
        std::string::npos);
  // Verdict, confidence and rank are values of their own, never summed into "other".
  CHECK(count(t, "leakwatch_site_growing{") == 5);
  CHECK(count(t, "leakwatch_site_rank{") == 5);
  CHECK(count(t, "# TYPE leakwatch_site_live_bytes gauge") == 1);
}

TEST_CASE("prom without an other series when all sites fit") {
  Report r;
  r.sites.push_back(site("a", "growing", 1, 1));
  std::ostringstream out;
  render::prom(r, render::PromOptions{5}, out);
  CHECK(out.str().find(",site=\"other\",") == std::string::npos);
}

TEST_CASE("prom series keep their labels when a verdict flips") {
  // Two reports of the same site, before and after its leak was found: the
  // same label set, different values -- one continuing series per metric.
  auto labels_of = [](const std::string& verdict) {
    Report r;
    r.sites.push_back(site("leaky", verdict, 100, verdict == "growing" ? 50 : 0));
    std::ostringstream out;
    render::prom(r, {}, out);
    std::string t = out.str(), keys;
    for (size_t at = 0, nl; (nl = t.find('\n', at)) != std::string::npos; at = nl + 1) {
      std::string line = t.substr(at, nl - at);
      if (line.rfind("leakwatch_site_", 0) == 0) keys += line.substr(0, line.rfind(' ')) + "\n";
    }
    return std::make_pair(keys, t);
  };
  auto [before, t1] = labels_of("stable");
  auto [after, t2] = labels_of("growing");
  CHECK(before == after);
  CHECK(before.find("verdict") == std::string::npos);
  CHECK(t1.find("leakwatch_site_growing{program=\"\",site=") != std::string::npos);
  CHECK(t2.find("\"} 1\n") != std::string::npos);
}

TEST_CASE("prom carries each program's memory by part, latest incarnation per lane") {
  Report r;
  auto proc = [](uint64_t start, size_t lane, double rss, double rate) {
    ProcessInfo p;
    p.id.exe = "/srv/app";
    p.id.start_wall_ns = start;
    p.lane = lane;
    p.memory.push_back({"rss", "growing", rate, rate, rate, 0.99, rss, ""});
    p.memory.push_back({"mmap", "stable", 0, 0, 0, 0, 1000, ""});
    return p;
  };
  r.processes.push_back(proc(1, 0, 5e6, 100));    // restarted: its successor counts
  r.processes.push_back(proc(2, 0, 1e6, 200));
  r.processes.push_back(proc(1, 1, 2e6, 300));    // a replica: summed
  std::ostringstream out;
  render::prom(r, {}, out);
  std::string t = out.str();
  CHECK(t.find("leakwatch_memory_bytes{program=\"app\",exe=\"app\",part=\"rss\"} 3000000\n") != std::string::npos);
  CHECK(t.find("leakwatch_memory_growth_bytes_per_second{program=\"app\",exe=\"app\",part=\"rss\"} 500\n") != std::string::npos);
  CHECK(t.find("leakwatch_memory_growth_bytes_per_second{program=\"app\",exe=\"app\",part=\"mmap\"} 0\n") != std::string::npos);
}

TEST_CASE("site ids depend on the frames only") {
  Site a = site("f", "growing", 1, 1), b = site("f", "stable", 99, 0), c = site("g", "growing", 1, 1);
  CHECK(render::site_id(a) == render::site_id(b));
  CHECK(render::site_id(a) != render::site_id(c));
  CHECK(render::site_id(a).size() == 16);
}

TEST_CASE("prom writes no NaN or infinity") {
  Report r;
  r.sites.push_back(site("a", "insufficient", 1, std::numeric_limits<double>::quiet_NaN()));
  r.detection_floor_bytes_per_s = std::numeric_limits<double>::infinity();
  std::ostringstream out;
  render::prom(r, {}, out);
  CHECK(out.str().find("nan") == std::string::npos);
  CHECK(out.str().find("inf") == std::string::npos);
}
