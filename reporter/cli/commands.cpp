#include "reporter/cli/commands.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "reporter/load/dump_reader.h"
#include "reporter/render/render.h"
#include "reporter/report.h"

namespace leakwatch::cli {

namespace {

int fail(const std::string& msg, int code = kError) {
  std::cerr << "leakwatch: " << msg << "\n";
  return code;
}

// "--name=value" or "--name value"; returns true and advances i when matched.
bool take(const std::string& name, int argc, char** argv, int* i, std::string* value) {
  std::string a = argv[*i];
  if (a == name) {
    if (*i + 1 >= argc) return false;
    *value = argv[++*i];
    return true;
  }
  if (a.rfind(name + "=", 0) == 0) {
    *value = a.substr(name.size() + 1);
    return true;
  }
  return false;
}

struct ReportArgs {
  std::vector<std::string> inputs;
  std::string format = "text";
  std::string out;
  size_t top = 20;  // sites named one by one in prom and html output
  symbolize::SymbolizerOptions symbols;
};

// Output formats of `report --format`.
bool known_format(const std::string& f) {
  for (const char* k : {"text", "json", "folded", "prom", "pprof", "html"})
    if (f == k) return true;
  return false;
}

// Returns "" on success or an error message.
std::string parse_report_args(int argc, char** argv, ReportArgs* a) {
  for (int i = 0; i < argc; ++i) {
    std::string v, arg = argv[i];
    if (take("--format", argc, argv, &i, &v)) a->format = v;
    else if (take("--out", argc, argv, &i, &v)) a->out = v;
    else if (take("--root", argc, argv, &i, &v)) a->symbols.root = v;
    else if (take("--debug-dir", argc, argv, &i, &v)) a->symbols.debug_dirs.push_back(v);
    else if (take("--top", argc, argv, &i, &v)) {
      if (!absl::SimpleAtoi(v, &a->top) || a->top < 1 || a->top > 10000)
        return absl::StrCat("report: bad --top '", v, "' (1 to 10000 sites)");
    } else if (arg.rfind("--", 0) == 0) return absl::StrCat("unknown or incomplete option '", arg, "'");
    else a->inputs.push_back(arg);
  }
  if (a->inputs.empty()) return "report: no dump directory or files given";
  if (!known_format(a->format))
    return absl::StrCat("report: unknown format '", a->format, "' (text, json, folded, html, pprof, prom)");
  return "";
}

int render_report(const Report& r, const ReportArgs& a, std::ostream& default_out, bool tty) {
  std::ofstream file;
  std::ostream* out = &default_out;
  if (!a.out.empty()) {
    file.open(a.out, std::ios::binary | std::ios::trunc);
    if (!file) return fail(absl::StrCat("cannot write ", a.out, ": ", std::strerror(errno)));
    out = &file;
    tty = false;
  }
  if (a.format == "json") render::json(r, *out);
  else if (a.format == "folded") render::folded(r, *out);
  else if (a.format == "prom") render::prom(r, render::PromOptions{a.top}, *out);
  else if (a.format == "html") {
    render::HtmlOptions ho;
    ho.chart_sites = std::min<size_t>(a.top, 8);
    render::html(r, ho, *out);
  } else if (a.format == "pprof") {
    if (tty) return fail("report: pprof output is binary; use --out FILE or redirect it", kUsage);
    if (!render::pprof(r, *out)) return fail(absl::StrCat("cannot encode the pprof profile", a.out.empty() ? "" : " for " + a.out));
  }
  else {
    render::TextOptions o;
    o.color = tty && !std::getenv("NO_COLOR");
    render::text(r, o, *out);
  }
  out->flush();
  if (!*out) return fail(absl::StrCat("write failed", a.out.empty() ? "" : " for " + a.out));
  return kOk;
}

// The shim next to this executable: <prefix>/bin/leakwatch -> <prefix>/lib/libleakwatch.so.
std::string find_shim() {
  if (const char* env = std::getenv("LEAKWATCH_SHIM")) return env;
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return "";
  exe[n] = '\0';
  std::string dir(exe);
  dir = dir.substr(0, dir.rfind('/'));
  for (const char* rel : {"/../lib/libleakwatch.so", "/libleakwatch.so", "/../shim/libleakwatch.so"}) {
    std::string p = dir + rel;
    if (access(p.c_str(), R_OK) == 0) {
      char real[PATH_MAX];
      return realpath(p.c_str(), real) ? real : p;
    }
  }
  return "";
}

pid_t g_child = 0;
void forward_signal(int sig) {
  if (g_child > 0) kill(g_child, sig);
}

}  // namespace

int cmd_report(int argc, char** argv) {
  ReportArgs a;
  if (auto err = parse_report_args(argc, argv, &a); !err.empty()) return fail(err, kUsage);
  ReportOptions o;
  o.inputs = a.inputs;
  o.symbols = a.symbols;
  auto r = build_report(o);
  if (!r.ok()) return fail(std::string(r.status().message()));
  for (const auto& w : r->warnings)
    if (a.format != "text" || !a.out.empty()) std::cerr << "leakwatch: warning: " << w << "\n";
  return render_report(*r, a, std::cout, isatty(1));
}

int cmd_run(int argc, char** argv) {
  std::string dir, sample, interval = "1", match, v;
  bool fail_on_growth = false;
  double threshold = 0;
  int i = 0;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (take("--dir", argc, argv, &i, &v)) dir = v;
    else if (take("--sample-bytes", argc, argv, &i, &v)) sample = v;
    else if (take("--interval", argc, argv, &i, &v)) interval = v;
    else if (take("--match", argc, argv, &i, &v)) match = v;
    else if (arg == "--fail-on-growth") fail_on_growth = true;
    else if (arg.rfind("--fail-on-growth=", 0) == 0) {
      fail_on_growth = true;
      if (!absl::SimpleAtod(arg.substr(17), &threshold) || threshold < 0)
        return fail(absl::StrCat("run: bad --fail-on-growth rate '", arg.substr(17), "' (bytes per second)"), kUsage);
    } else if (arg.rfind("-", 0) == 0) {
      return fail(absl::StrCat("run: unknown or incomplete option '", arg, "'"), kUsage);
    } else {
      break;  // PROG without "--"
    }
  }
  if (i >= argc) return fail("run: no program given (leakwatch run [options] -- PROG ARGS...)", kUsage);
  std::string shim = find_shim();
  if (shim.empty()) return fail("run: cannot find libleakwatch.so next to this executable (set LEAKWATCH_SHIM)");
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = absl::StrCat(tmp && *tmp ? tmp : "/tmp", "/leakwatch-run.XXXXXX");
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) return fail(absl::StrCat("run: cannot create a dump directory: ", std::strerror(errno)));
    dir = buf.data();
  }
  std::string preload = shim;
  if (const char* old = std::getenv("LD_PRELOAD"); old && *old) preload = absl::StrCat(shim, ":", old);

  pid_t child = fork();
  if (child < 0) return fail(absl::StrCat("run: fork: ", std::strerror(errno)));
  if (child == 0) {
    setenv("LD_PRELOAD", preload.c_str(), 1);
    setenv("LEAKWATCH_DIR", dir.c_str(), 1);
    setenv("LEAKWATCH_INTERVAL", interval.c_str(), 1);
    if (!sample.empty()) setenv("LEAKWATCH_SAMPLE_BYTES", sample.c_str(), 1);
    if (!match.empty()) setenv("LEAKWATCH_MATCH", match.c_str(), 1);
    execvp(argv[i], argv + i);
    std::fprintf(stderr, "leakwatch: cannot run %s: %s\n", argv[i], std::strerror(errno));
    _exit(127);
  }
  // Like system(): the terminal's ^C reaches the child directly; a TERM sent
  // to us is passed on, so the child can exit normally and write its final dump.
  g_child = child;
  struct sigaction sa {}, old_int, old_quit, old_term, old_hup;
  sa.sa_handler = SIG_IGN;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGQUIT, &sa, &old_quit);
  sa.sa_handler = forward_signal;
  sigaction(SIGTERM, &sa, &old_term);
  sigaction(SIGHUP, &sa, &old_hup);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGQUIT, &old_quit, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGHUP, &old_hup, nullptr);
  int prog_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);

  ReportOptions o;
  o.inputs = {dir};
  auto r = build_report(o);
  if (!r.ok()) {
    std::cerr << "leakwatch: " << r.status().message() << "\n";
    return prog_status;
  }
  render::TextOptions to;
  to.color = isatty(2) && !std::getenv("NO_COLOR");
  std::cerr << "\n";
  render::text(*r, to, std::cerr);
  std::cerr << "dumps: " << dir << "\n";
  if (prog_status != 0) return prog_status;
  if (fail_on_growth)
    for (const auto& s : r->sites)
      if (s.verdict == "growing" && s.growth_bytes_per_s >= threshold) {
        std::cerr << absl::StrFormat("leakwatch: failing: %s grows at %s (threshold %s)\n",
                                     s.frames.empty() ? "?" : s.frames[0]->function,
                                     render::human_rate(s.growth_bytes_per_s), render::human_rate(threshold));
        return kGrowthFound;
      }
  return kOk;
}

int cmd_diff(int argc, char** argv) {
  std::vector<std::string> ins;
  ReportArgs a;
  for (int i = 0; i < argc; ++i) {
    std::string v;
    if (take("--root", argc, argv, &i, &v)) a.symbols.root = v;
    else if (take("--debug-dir", argc, argv, &i, &v)) a.symbols.debug_dirs.push_back(v);
    else if (std::string(argv[i]).rfind("--", 0) == 0) return fail(absl::StrCat("diff: unknown option '", argv[i], "'"), kUsage);
    else ins.push_back(argv[i]);
  }
  if (ins.size() != 2) return fail("diff: need two inputs: leakwatch diff A B", kUsage);
  std::map<std::string, std::pair<double, double>> live;  // site label -> (A, B)
  std::map<std::string, std::vector<FrameRef>> frames;
  for (int side = 0; side < 2; ++side) {
    ReportOptions o;
    o.inputs = {ins[side]};
    o.symbols = a.symbols;
    o.keep_series = false;
    auto r = build_report(o);
    if (!r.ok()) return fail(std::string(r.status().message()));
    for (const auto& w : r->warnings) std::cerr << "leakwatch: warning: " << w << "\n";
    for (const auto& s : r->sites) {
      std::string key;
      for (const FrameRef& f : s.frames) absl::StrAppend(&key, render::frame_label(*f), "\n");
      (side == 0 ? live[key].first : live[key].second) += s.live_bytes;
      frames.emplace(key, s.frames);
    }
  }
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [k, v] : live) rows.push_back({v.second - v.first, k});
  std::sort(rows.begin(), rows.end(), [](auto& x, auto& y) { return x.first > y.first; });
  std::cout << absl::StrFormat("%12s %12s %12s  %s\n", "GREW", "IN A", "IN B", "SITE");
  size_t shown = 0;
  for (const auto& [delta, key] : rows) {
    if (shown++ >= 30) break;
    const auto& f = frames[key];
    std::cout << absl::StrFormat("%12s %12s %12s  %s\n", render::human_bytes(delta), render::human_bytes(live[key].first),
                                 render::human_bytes(live[key].second), f.empty() ? "?" : render::frame_label(*f[0]));
    for (size_t j = 1; j < f.size() && j < 3; ++j) std::cout << absl::StrFormat("%40s    <- %s\n", "", render::frame_label(*f[j]));
  }
  return kOk;
}

int cmd_inspect(int argc, char** argv) {
  if (argc < 1) return fail("inspect: no dump given (leakwatch inspect DUMP...)", kUsage);
  int rc = kOk;
  for (int i = 0; i < argc; ++i) {
    auto d = load::read_dump(argv[i]);
    if (!d.ok()) {
      std::cerr << "leakwatch: " << d.status().message() << "\n";
      rc = kError;
      continue;
    }
    render::inspect(*d, std::cout);
  }
  return rc;
}

int cmd_env_help(int, char**) {
  std::cout << "| variable | meaning | default |\n|---|---|---|\n";
  std::cout << "| `LD_PRELOAD` | path to `libleakwatch.so` | — |\n";
#define LW_VAR(field, name, kind, def, lo, hi, def_text, help) std::cout << "| `" << name << "` | " << help << " | " << def_text << " |\n";
#include "shim/runtime/config_table.def"
#undef LW_VAR
  return kOk;
}

}  // namespace leakwatch::cli
