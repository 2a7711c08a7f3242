// Unit tests for the shim's environment parsing (shim/runtime/config.h).
//
// parse_config takes a plain function pointer for getenv, so the fake
// environment is a static map read by a captureless lambda.
#include <catch2/catch.hpp>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "shim/runtime/config.h"

using namespace leakwatch::shim;

namespace {

std::map<std::string, std::string> g_env;
std::vector<std::string> g_queried;

const GetEnv kFakeGetenv = [](const char* name) -> const char* {
  g_queried.emplace_back(name);
  auto it = g_env.find(name);
  return it == g_env.end() ? nullptr : it->second.c_str();
};

struct Parsed {
  Config c;
  ConfigWarnings w;
  std::vector<std::string> warnings() const {
    std::vector<std::string> out;
    for (int i = 0; i < w.count; ++i) out.emplace_back(w.text[i]);
    return out;
  }
};

Parsed parse(std::map<std::string, std::string> env) {
  g_env = std::move(env);
  g_queried.clear();
  Parsed p;
  // Garbage first, to catch fields that parse_config forgets to set.
  std::memset(&p.c, 0xa5, sizeof p.c);
  parse_config(kFakeGetenv, &p.c, &p.w);
  return p;
}

// Defaults as config_table.def states them.
constexpr uint64_t kDefaultSampleBytes = 524288;
constexpr double kDefaultInterval = 60;
constexpr int kDefaultMaxFrames = 64;
constexpr int kDefaultMaxDumps = 256;

void check_defaults_except(const Parsed& p, const std::string& var) {
  if (var != "LEAKWATCH_DIR") CHECK(std::string(p.c.dir) == "/tmp/leakwatch");
  if (var != "LEAKWATCH_SAMPLE_BYTES") CHECK(p.c.sample_bytes == kDefaultSampleBytes);
  if (var != "LEAKWATCH_INTERVAL") CHECK(p.c.interval_s == kDefaultInterval);
  if (var != "LEAKWATCH_MATCH") CHECK(std::string(p.c.match).empty());
  if (var != "LEAKWATCH_MAX_FRAMES") CHECK(p.c.max_frames == kDefaultMaxFrames);
  if (var != "LEAKWATCH_DISABLE") CHECK_FALSE(p.c.disable);
  if (var != "LEAKWATCH_MAX_DUMPS") CHECK(p.c.max_dumps == kDefaultMaxDumps);
}

// One invalid value: exactly one warning, which names the variable and the
// fallback, and every field keeps its default.
void check_rejected(const std::string& var, const std::string& value, const std::string& fallback) {
  Parsed p = parse({{var, value}});
  auto w = p.warnings();
  INFO(var << "=\"" << value << "\" -> " << w.size() << " warning(s)" << (w.empty() ? "" : ": " + w[0]));
  REQUIRE(w.size() == 1);
  CHECK(w[0].find(var) != std::string::npos);
  CHECK(w[0].find("using " + fallback) != std::string::npos);
  CHECK(w[0].size() < 256);
  check_defaults_except(p, "");
}

}  // namespace

TEST_CASE("config: defaults with an empty environment", "[config]") {
  Parsed p = parse({});
  CHECK(p.w.count == 0);
  check_defaults_except(p, "");
}

TEST_CASE("config: reads exactly the variables of config_table.def (and TMPDIR)", "[config]") {
  std::set<std::string> table;
#define LW_VAR(field, name, kind, def, lo, hi, default_text, help) table.insert(name);
#include "shim/dump/config_table.def"
#undef LW_VAR
  REQUIRE(table.size() == 10);
  Parsed p = parse({});
  std::set<std::string> queried(g_queried.begin(), g_queried.end());
  std::set<std::string> expected = table;
  expected.insert("TMPDIR");
  CHECK(queried == expected);
  (void)p;
}

TEST_CASE("config: default directory follows TMPDIR", "[config]") {
  CHECK(std::string(parse({{"TMPDIR", "/scratch"}}).c.dir) == "/scratch/leakwatch");
  CHECK(std::string(parse({{"TMPDIR", "/var/tmp/user 1"}}).c.dir) == "/var/tmp/user 1/leakwatch");
  // Empty TMPDIR: as if unset.
  CHECK(std::string(parse({{"TMPDIR", ""}}).c.dir) == "/tmp/leakwatch");
  // A TMPDIR too long to append to: the fixed default, not a truncated path.
  Parsed longtmp = parse({{"TMPDIR", "/" + std::string(kMaxPath, 'x')}});
  CHECK(std::string(longtmp.c.dir) == "/tmp/leakwatch");
  CHECK(longtmp.w.count == 0);
  // LEAKWATCH_DIR wins over TMPDIR.
  CHECK(std::string(parse({{"TMPDIR", "/scratch"}, {"LEAKWATCH_DIR", "/data/lw"}}).c.dir) == "/data/lw");
  // TMPDIR with a trailing slash still gives a directory named leakwatch inside it.
  std::string d = parse({{"TMPDIR", "/scratch/"}}).c.dir;
  CHECK(d.rfind("/scratch/", 0) == 0);
  CHECK(d.size() >= 10);
  CHECK(d.substr(d.size() - 10) == "/leakwatch");
  // The fallback named in a warning about LEAKWATCH_DIR is the TMPDIR-based default.
  Parsed bad = parse({{"TMPDIR", "/scratch"}, {"LEAKWATCH_DIR", ""}});
  REQUIRE(bad.w.count == 1);
  CHECK(std::string(bad.w.text[0]).find("using /scratch/leakwatch") != std::string::npos);
  CHECK(std::string(bad.c.dir) == "/scratch/leakwatch");
}

TEST_CASE("config: every variable with a valid value", "[config]") {
  Parsed p = parse({{"LEAKWATCH_DIR", "/var/log/leakwatch dumps"},
                    {"LEAKWATCH_SAMPLE_BYTES", "65536"},
                    {"LEAKWATCH_INTERVAL", "2.5"},
                    {"LEAKWATCH_MATCH", "python*, node"},
                    {"LEAKWATCH_MAX_FRAMES", "32"},
                    {"LEAKWATCH_DISABLE", "1"},
                    {"LEAKWATCH_MAX_DUMPS", "1000"}});
  CHECK(p.w.count == 0);
  CHECK(std::string(p.c.dir) == "/var/log/leakwatch dumps");
  CHECK(p.c.sample_bytes == 65536);
  CHECK(p.c.interval_s == 2.5);
  CHECK(std::string(p.c.match) == "python*, node");
  CHECK(p.c.max_frames == 32);
  CHECK(p.c.disable);
  CHECK(p.c.max_dumps == 1000);
}

TEST_CASE("config: LEAKWATCH_SAMPLE_BYTES values and suffixes", "[config]") {
  const std::pair<const char*, uint64_t> ok[] = {
      {"1", 1},
      {"4096", 4096},
      {"64k", 64 << 10},
      {"64K", 64 << 10},
      {"64kb", 64 << 10},
      {"64KiB", 64 << 10},
      {"64kib", 64 << 10},
      {"1m", 1 << 20},
      {"1M", 1 << 20},
      {"2MiB", 2 << 20},
      {"2MB", 2 << 20},
      {"1g", uint64_t{1} << 30},
      {"3GiB", uint64_t{3} << 30},
      {"1024g", uint64_t{1} << 40},  // the upper limit, 1T
      {"1099511627776", uint64_t{1} << 40},
      {"00012", 12},
  };
  for (auto [text, value] : ok) {
    Parsed p = parse({{"LEAKWATCH_SAMPLE_BYTES", text}});
    INFO("LEAKWATCH_SAMPLE_BYTES=" << text);
    CHECK(p.w.count == 0);
    CHECK(p.c.sample_bytes == value);
  }
  for (const char* bad : {"", "abc", "-1", "+5", "1.5", "64x", "k", "64 k", " 64", "64 ", "0x10", "64kk", "64kbb",
                          "1t", "1e6", "99999999999999999999999", "17179869184g", "0", "0k",
                          "1099511627777", "1025g", "2048GiB"}) {
    check_rejected("LEAKWATCH_SAMPLE_BYTES", bad, "524288");
  }
}

TEST_CASE("config: LEAKWATCH_INTERVAL values", "[config]") {
  const std::pair<const char*, double> ok[] = {
      {"60", 60}, {"1", 1}, {"0.05", 0.05}, {"0.5", 0.5}, {".5", 0.5}, {"5.", 5}, {"86400", 86400}, {"86400.0", 86400},
      {"0.1", 0.1}, {"120.25", 120.25},
  };
  for (auto [text, value] : ok) {
    Parsed p = parse({{"LEAKWATCH_INTERVAL", text}});
    INFO("LEAKWATCH_INTERVAL=" << text);
    CHECK(p.w.count == 0);
    CHECK(p.c.interval_s == Approx(value).epsilon(1e-12));
  }
  for (const char* bad :
       {"", ".", "abc", "-1", "1e3", "1,5", "1.2.3", " 5", "5 ", "5s", "0", "0.0", "0.04", "0.049", "86400.5", "86401",
        "1000000", "nan", "inf"}) {
    check_rejected("LEAKWATCH_INTERVAL", bad, "60");
  }
}

TEST_CASE("config: LEAKWATCH_MAX_FRAMES values", "[config]") {
  for (auto [text, value] : {std::pair<const char*, int>{"1", 1}, {"64", 64}, {"256", 256}, {"0128", 128}}) {
    Parsed p = parse({{"LEAKWATCH_MAX_FRAMES", text}});
    INFO("LEAKWATCH_MAX_FRAMES=" << text);
    CHECK(p.w.count == 0);
    CHECK(p.c.max_frames == value);
  }
  for (const char* bad : {"", "0", "257", "1000", "-1", "abc", "64k", "1.5", " 8", "99999999999999999999999"}) {
    check_rejected("LEAKWATCH_MAX_FRAMES", bad, "64");
  }
}

TEST_CASE("config: LEAKWATCH_MAX_DUMPS values", "[config]") {
  for (auto [text, value] : {std::pair<const char*, int>{"4", 4}, {"256", 256}, {"100000", 100000}}) {
    Parsed p = parse({{"LEAKWATCH_MAX_DUMPS", text}});
    INFO("LEAKWATCH_MAX_DUMPS=" << text);
    CHECK(p.w.count == 0);
    CHECK(p.c.max_dumps == value);
  }
  for (const char* bad : {"", "0", "3", "100001", "-4", "x", "10k", "4.0"}) {
    check_rejected("LEAKWATCH_MAX_DUMPS", bad, "256");
  }
}

TEST_CASE("config: LEAKWATCH_DISABLE values", "[config]") {
  for (const char* on : {"1", "true", "yes"}) {
    Parsed p = parse({{"LEAKWATCH_DISABLE", on}});
    INFO("LEAKWATCH_DISABLE=" << on);
    CHECK(p.w.count == 0);
    CHECK(p.c.disable);
  }
  for (const char* off : {"0", "false", "no", ""}) {
    Parsed p = parse({{"LEAKWATCH_DISABLE", off}});
    INFO("LEAKWATCH_DISABLE=" << off);
    CHECK(p.w.count == 0);
    CHECK_FALSE(p.c.disable);
  }
  for (const char* bad : {"2", "maybe", "on", " 1", "1 "}) {
    check_rejected("LEAKWATCH_DISABLE", bad, "enabled");
  }
}

TEST_CASE("config: LEAKWATCH_DIR and LEAKWATCH_MATCH", "[config]") {
  check_rejected("LEAKWATCH_DIR", "", "/tmp/leakwatch");
  // Too long for the file names that go under it.
  check_rejected("LEAKWATCH_DIR", "/" + std::string(kMaxPath - 129, 'd'), "/tmp/leakwatch");
  check_rejected("LEAKWATCH_DIR", "/" + std::string(100000, 'd'), "/tmp/leakwatch");
  // The longest accepted path is kept whole.
  std::string longest = "/" + std::string(kMaxPath - 130, 'd');
  Parsed p = parse({{"LEAKWATCH_DIR", longest}});
  CHECK(p.w.count == 0);
  CHECK(std::string(p.c.dir) == longest);
  // Relative paths are accepted here (the lifecycle makes them absolute).
  CHECK(std::string(parse({{"LEAKWATCH_DIR", "dumps"}}).c.dir) == "dumps");

  // MATCH: empty means all, no warning; too long is refused.
  Parsed empty = parse({{"LEAKWATCH_MATCH", ""}});
  CHECK(empty.w.count == 0);
  CHECK(std::string(empty.c.match).empty());
  check_rejected("LEAKWATCH_MATCH", std::string(kMaxMatch, 'a'), "all");
  std::string longest_match(kMaxMatch - 1, 'm');
  Parsed lm = parse({{"LEAKWATCH_MATCH", longest_match}});
  CHECK(lm.w.count == 0);
  CHECK(std::string(lm.c.match) == longest_match);
}

TEST_CASE("config: many bad values at once give one warning each", "[config]") {
  std::map<std::string, std::string> env = {
      {"LEAKWATCH_DIR", ""},         {"LEAKWATCH_SAMPLE_BYTES", "lots"}, {"LEAKWATCH_INTERVAL", "soon"},
      {"LEAKWATCH_MATCH", std::string(5000, '*')}, {"LEAKWATCH_MAX_FRAMES", "deep"},
      {"LEAKWATCH_DISABLE", "perhaps"}, {"LEAKWATCH_MAX_DUMPS", "many"}};
  Parsed p = parse(env);
  auto w = p.warnings();
  REQUIRE(w.size() == env.size());
  for (const auto& [name, value] : env) {
    int mentions = 0;
    for (const auto& line : w) mentions += line.find(name + "=") != std::string::npos;
    INFO(name);
    CHECK(mentions == 1);
  }
  check_defaults_except(p, "");
}

TEST_CASE("config: huge invalid values produce one bounded warning", "[config]") {
  std::string junk(20000, 'z');
  for (const char* var : {"LEAKWATCH_SAMPLE_BYTES", "LEAKWATCH_INTERVAL", "LEAKWATCH_MAX_FRAMES", "LEAKWATCH_DISABLE",
                          "LEAKWATCH_MAX_DUMPS"}) {
    Parsed p = parse({{var, junk}});
    INFO(var);
    REQUIRE(p.w.count == 1);
    CHECK(std::strlen(p.w.text[0]) < 256);
    CHECK(std::string(p.w.text[0]).find(var) != std::string::npos);
  }
}

TEST_CASE("config: warnings may be discarded", "[config]") {
  g_env = {{"LEAKWATCH_SAMPLE_BYTES", "bad"}, {"LEAKWATCH_INTERVAL", "bad"}};
  Config c;
  parse_config(kFakeGetenv, &c, nullptr);
  CHECK(c.sample_bytes == kDefaultSampleBytes);
  CHECK(c.interval_s == kDefaultInterval);
}

TEST_CASE("match_globs", "[config]") {
  SECTION("empty list matches everything") {
    CHECK(match_globs("", "anything"));
    CHECK(match_globs(nullptr, "anything"));
    CHECK(match_globs("", ""));
  }
  SECTION("single globs") {
    CHECK(match_globs("server", "server"));
    CHECK_FALSE(match_globs("server", "server2"));
    CHECK_FALSE(match_globs("server", "myserver"));
    CHECK(match_globs("*", "whatever"));
    CHECK(match_globs("python*", "python3.11"));
    CHECK_FALSE(match_globs("python*", "ipython"));
    CHECK(match_globs("*sql*", "postgresql"));
    CHECK(match_globs("worker-?", "worker-7"));
    CHECK_FALSE(match_globs("worker-?", "worker-17"));
    CHECK(match_globs("[jn]ava", "java"));
    CHECK_FALSE(match_globs("[jn]ava", "lava"));
    CHECK_FALSE(match_globs("Server", "server"));  // case matters
  }
  SECTION("comma lists, with and without spaces") {
    CHECK(match_globs("node,java,python*", "java"));
    CHECK(match_globs("node,java,python*", "python3"));
    CHECK_FALSE(match_globs("node,java,python*", "ruby"));
    CHECK(match_globs("node, java", "java"));
    CHECK(match_globs(" node ,  java  ", "node"));
    CHECK(match_globs(" node ,  java  ", "java"));
    CHECK_FALSE(match_globs("node, java", " java"));
    CHECK(match_globs("a,,b", "b"));
    CHECK(match_globs("a,", "a"));
    CHECK(match_globs(",b", "b"));
    CHECK_FALSE(match_globs("nodejs", "node"));
    CHECK(match_globs("x,*", "anything"));
  }
  SECTION("a glob longer than the buffer does not overflow") {
    std::string big(5000, 'a');
    CHECK_FALSE(match_globs(big.c_str(), "b"));
    std::string list = std::string(3000, 'x') + ",target";
    (void)match_globs(list.c_str(), "target");  // only must not crash
  }
}
