#include "reporter/cli/commands.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "reporter/cli/gate.h"
#include "reporter/cli/options.h"
#include "reporter/cli/serve.h"
#include "reporter/cli/target.h"
#include "reporter/diff.h"
#include "reporter/load/dump_reader.h"
#include "reporter/render/render.h"
#include "reporter/report.h"
#include "shim/dump/format.h"

namespace leakwatch::cli {

namespace {

int fail(const std::string& msg, int code = kError) {
  std::cerr << "leakwatch: " << msg << "\n";
  return code;
}

uint64_t now_wall_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// ---- Option tables: the single source for parsing and for --help.

const std::vector<OptionSpec> kSelectionOptions = {
    {"--pid", ValueKind::kCount, "N", "only this process id (repeatable)", true},
    {"--instance", ValueKind::kHexId, "ID", "only this process instance (16 hex digits, as in file names; repeatable)", true},
    {"--host", ValueKind::kText, "NAME", "only processes on this host (a pod's name in Kubernetes; repeatable)", true},
    {"--container", ValueKind::kText, "ID", "only this container (a prefix of its id; repeatable)", true},
    {"--exe", ValueKind::kText, "GLOB", "only executables whose path or name matches (repeatable)", true},
    {"--since", ValueKind::kTime, "TIME", "only dumps written at or after TIME (2026-12-06T10:00:00Z, @UNIX, -2h)"},
    {"--until", ValueKind::kTime, "TIME", "only dumps written at or before TIME"},
};

const std::vector<OptionSpec> kSymbolOptions = {
    {"--root", ValueKind::kText, "ROOTFS", "look binaries up under ROOTFS first (a copy of the container's filesystem)"},
    {"--debug-dir", ValueKind::kText, "DIR", "also look for separate debug files here (repeatable)", true},
};

const OptionSpec kGateOption = {"--fail-on-growth", ValueKind::kOptionalRate, "RATE",
                                "CI gate: exit 86 if a site grows at RATE or faster (default 16k/s), 87 if the "
                                "run could not tell (see the README's exit statuses)"};
const OptionSpec kBaselineOption = {"--baseline", ValueKind::kText, "FILE",
                                    "site ids accepted by the gate (one per line, from the report; # comments)"};

std::vector<OptionSpec> concat(std::initializer_list<std::vector<OptionSpec>> parts) {
  std::vector<OptionSpec> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

const CommandSpec kReport{
    "report",
    "DIR|FILES... [options]",
    "Which allocation sites keep growing, how fast and how sure, from the dumps in DIR (or FILES).",
    concat({{{"--format", ValueKind::kText, "FMT", "text (default), json, folded, html, pprof, prom"},
             {"--out", ValueKind::kText, "FILE", "write there instead of stdout"},
             {"--top", ValueKind::kCount, "N", "sites shown, ranked (default: 20 in text, html and prom, all in json, folded and pprof; growing sites always)"}},
            kSymbolOptions,
            kSelectionOptions,
            {kGateOption, kBaselineOption}})};

const CommandSpec kRun{
    "run",
    "[options] [--] PROG ARGS...",
    "Runs PROG under the shim, then prints its report on stderr (PROG's stdout stays its own); exits with PROG's status.",
    {{"--dir", ValueKind::kText, "DIR", "dump directory (default: a new one under $TMPDIR, printed at the end)"},
     {"--sample-bytes", ValueKind::kBytes, "BYTES", "mean bytes between samples (default 4k: a short run needs dense sampling)"},
     {"--interval", ValueKind::kSeconds, "SECONDS", "seconds between dumps (default 0.25)"},
     {"--match", ValueKind::kText, "GLOBS", "profile only executables matching (LEAKWATCH_MATCH)"},
     kGateOption,
     kBaselineOption,
     {"--format", ValueKind::kText, "FMT", "the report's format on stderr: text (default) or json"}},
    /*program_follows=*/true};

const CommandSpec kDiff{
    "diff",
    "A B [options]",
    "What grew between two dumps, or between the last dumps of two directories.",
    concat({{{"--format", ValueKind::kText, "FMT", "text (default) or json"},
             {"--top", ValueKind::kCount, "N", "rows shown (default 30)"}},
            kSymbolOptions,
            kSelectionOptions})};

const CommandSpec kInspect{"inspect", "DUMP...", "Validates dumps and prints what each holds.", {}};

const CommandSpec kTrigger{"trigger", "DIR...",
                           "Asks every process writing dumps into DIR for a dump now: touches DIR/dump-now. A "
                           "process answers at its next allocation (within a second while it allocates).",
                           {}};

// serve: selection by process, not by time (a window fixed at start would
// freeze; the retention of the shim bounds the history anyway).
std::vector<OptionSpec> process_selection() {
  std::vector<OptionSpec> out;
  for (const auto& o : kSelectionOptions)
    if (std::strcmp(o.name, "--since") != 0 && std::strcmp(o.name, "--until") != 0) out.push_back(o);
  return out;
}

const CommandSpec kServe{
    "serve",
    "DIR... [options]",
    "Watches DIR and serves the current verdicts and memory: Prometheus metrics at /metrics, the HTML report at /, "
    "JSON at /report.json; until SIGTERM.",
    concat({{{"--listen", ValueKind::kText, "ADDR:PORT", "where to listen (default 0.0.0.0:9464; port 0: any free port)"},
             {"--refresh", ValueKind::kSeconds, "S", "how often DIR is looked at; a change rebuilds the report (default 15s)"},
             {"--top", ValueKind::kCount, "N", "sites with their own series and rows (default 20; growing sites always)"}},
            kSymbolOptions,
            process_selection()})};

const CommandSpec kEnvHelp{"env-help", "", "The shim's environment variables, as a Markdown table.", {}};

// The prologue every command shares: parses argv for cmd (an error is a
// usage error), answers --help, else hands the arguments to body.
int with_args(const CommandSpec& cmd, int argc, char** argv, int (*body)(const ParsedArgs&)) {
  auto a = parse_args(cmd, argc, argv, now_wall_ns());
  if (!a.ok()) return fail(std::string(a.status().message()), kUsage);
  if (a->help) {
    std::cout << command_help(cmd);
    return kOk;
  }
  return body(*a);
}

// The operands: positional arguments and those after "--".
std::vector<std::string> operands(const ParsedArgs& a) {
  std::vector<std::string> out = a.positional;
  out.insert(out.end(), a.after_dashes.begin(), a.after_dashes.end());
  return out;
}

// --format, "text" by default; kOk, or the usage error (naming `formats`) printed.
int format_of(const ParsedArgs& a, const char* cmd, std::initializer_list<const char*> formats, std::string* format) {
  *format = a.has("--format") ? a.last("--format")->text : "text";
  for (const char* k : formats)
    if (*format == k) return kOk;
  return fail(absl::StrCat(cmd, ": unknown format '", *format, "' (", absl::StrJoin(formats, ", "), ")"), kUsage);
}

Selection selection_of(const ParsedArgs& a) {
  Selection s;
  for (auto* o : a.all("--pid")) s.pids.push_back(static_cast<uint64_t>(o->number));
  for (auto* o : a.all("--instance")) s.instances.push_back(std::strtoull(o->text.c_str(), nullptr, 16));
  for (auto* o : a.all("--host")) s.hosts.push_back(o->text);
  for (auto* o : a.all("--container")) s.containers.push_back(absl::AsciiStrToLower(o->text));
  for (auto* o : a.all("--exe")) s.exes.push_back(o->text);
  if (auto* o = a.last("--since")) s.since_wall_ns = static_cast<uint64_t>(o->number);
  if (auto* o = a.last("--until")) s.until_wall_ns = static_cast<uint64_t>(o->number);
  return s;
}

symbolize::SymbolizerOptions symbols_of(const ParsedArgs& a, std::string* error) {
  symbolize::SymbolizerOptions o;
  if (auto* r = a.last("--root")) {
    struct stat st;
    if (stat(r->text.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      *error = absl::StrCat("--root ", r->text, ": ", stat(r->text.c_str(), &st) != 0 ? std::strerror(errno) : "not a directory");
      return o;
    }
    o.root = r->text;
  }
  for (auto* d : a.all("--debug-dir")) o.debug_dirs.push_back(d->text);
  return o;
}

// Where symbols are looked up and which dumps count, for the commands that
// read dumps (ReportOptions, DiffOptions); kOk, or the usage error printed.
template <typename Options>
int sources_of(const ParsedArgs& a, const char* cmd, Options* o) {
  std::string sym_error;
  o->symbols = symbols_of(a, &sym_error);
  if (!sym_error.empty()) return fail(absl::StrCat(cmd, ": ", sym_error), kUsage);
  o->select = selection_of(a);
  return kOk;
}

// Prints warnings, always to stderr (so `> report.txt` keeps them visible).
void print_warnings(const Report& r) {
  for (const auto& w : r.warnings) std::cerr << "leakwatch: warning: " << w << "\n";
}

// `top` 0: the format's default (a page for people, everything for tools).
int render_report(const Report& r, const std::string& format, const std::string& out_path, size_t top,
                  std::ostream& default_out, bool tty) {
  const size_t people_top = top ? top : 20, tools_top = top ? top : SIZE_MAX;
  std::ofstream file;
  std::ostream* out = &default_out;
  if (!out_path.empty()) {
    file.open(out_path, std::ios::binary | std::ios::trunc);
    if (!file) return fail(absl::StrCat("cannot write ", out_path, ": ", std::strerror(errno)));
    out = &file;
    tty = false;
  }
  // --top: the first N sites by rank and every growing one; the text
  // renderer does the same itself (its summary counts all sites).
  auto top_only = [&]() {
    Report shown = r;
    shown.sites.clear();
    for (const Site& s : r.sites)
      if (s.verdict == "growing" || shown.sites.size() < tools_top) shown.sites.push_back(s);
    shown.sites_omitted = r.sites.size() - shown.sites.size();
    return shown;
  };
  if (format == "json") render::json(top_only(), *out);
  else if (format == "folded") render::folded(top_only(), *out);
  else if (format == "prom") render::prom(r, render::PromOptions{people_top}, *out);
  else if (format == "html") {
    render::HtmlOptions ho;
    ho.chart_sites = std::min<size_t>(people_top, 8);
    ho.max_rows = people_top;
    render::html(r, ho, *out);
  } else if (format == "pprof") {
    if (tty) return fail("report: pprof output is binary; use --out FILE or redirect it", kUsage);
    if (!render::pprof(top_only(), *out)) return fail(absl::StrCat("cannot encode the pprof profile", out_path.empty() ? "" : " for " + out_path));
  } else {
    render::TextOptions o;
    o.color = tty && !std::getenv("NO_COLOR");
    o.max_sites = people_top;
    render::text(r, o, *out);
  }
  out->flush();
  if (!*out) return fail(absl::StrCat("write failed", out_path.empty() ? "" : " for " + out_path));
  return kOk;
}

// The gate's options, read once for run and report.
absl::StatusOr<GateOptions> gate_of(const ParsedArgs& a) {
  GateOptions g;
  const OptionValue* o = a.last("--fail-on-growth");
  if (!o) {
    if (a.has("--baseline")) return absl::InvalidArgumentError("--baseline is for the gate: add --fail-on-growth");
    return g;
  }
  g.enabled = true;
  if (o->has_value) g.threshold_bytes_per_s = o->number;
  if (auto* b = a.last("--baseline")) {
    auto ids = read_baseline(b->text);
    if (!ids.ok()) return ids.status();
    g.accepted = std::move(*ids);
  }
  return g;
}

// The gate's verdict on r, printed; its status is the command's.
int gate_verdict(const Report& r, const GateOptions& gate) {
  GateOutcome g = apply_gate(r, gate);
  std::cerr << "leakwatch: " << g.line << "\n";
  return g.status;
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

// Runs argv under the shim; returns its wait status, or -1 (error printed).
int run_child(const std::vector<std::string>& prog, const std::map<std::string, std::string>& env) {
  std::vector<char*> args;
  for (const auto& s : prog) args.push_back(const_cast<char*>(s.c_str()));
  args.push_back(nullptr);
  int report_pipe[2];
  if (pipe2(report_pipe, O_CLOEXEC) != 0) return fail(absl::StrCat("run: pipe: ", std::strerror(errno))), -1;
  pid_t child = fork();
  if (child < 0) return fail(absl::StrCat("run: fork: ", std::strerror(errno))), -1;
  if (child == 0) {
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    execvp(args[0], args.data());
    int e = errno;
    (void)!write(report_pipe[1], &e, sizeof e);  // the parent says why, once
    _exit(127);
  }
  close(report_pipe[1]);
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
  int exec_errno = 0;
  bool exec_failed = read(report_pipe[0], &exec_errno, sizeof exec_errno) == sizeof exec_errno;
  close(report_pipe[0]);
  if (exec_failed) {
    fail(absl::StrCat("run: cannot run ", prog[0], ": ", std::strerror(exec_errno)));
    return -2;
  }
  return status;
}

int report_command(const ParsedArgs& a) {
  std::vector<std::string> inputs = operands(a);
  if (inputs.empty()) return fail("report: no dump directory or files given (see leakwatch report --help)", kUsage);
  std::string format;
  if (int rc = format_of(a, "report", {"text", "json", "folded", "html", "pprof", "prom"}, &format); rc != kOk) return rc;
  size_t top = a.has("--top") ? static_cast<size_t>(a.last("--top")->number) : 0;
  if (a.has("--top") && (top < 1 || top > 100000)) return fail("report: --top: 1 to 100000 sites", kUsage);
  ReportOptions o;
  o.inputs = inputs;
  if (int rc = sources_of(a, "report", &o); rc != kOk) return rc;
  auto gate = gate_of(a);
  if (!gate.ok()) return fail(absl::StrCat("report: ", gate.status().message()), kUsage);
  auto r = build_report(o);
  if (!r.ok()) {
    if (gate->enabled) {
      fail(std::string(r.status().message()));
      std::cerr << "leakwatch: gate: inconclusive: nothing was measured\n";
      return kInconclusive;
    }
    return fail(std::string(r.status().message()));
  }
  print_warnings(*r);
  int rc = render_report(*r, format, a.has("--out") ? a.last("--out")->text : "", top, std::cout, isatty(1));
  if (rc != kOk || !gate->enabled) return rc;
  return gate_verdict(*r, *gate);
}

int run_command(const ParsedArgs& a) {
  std::vector<std::string> prog = operands(a);
  if (prog.empty()) return fail("run: no program given (leakwatch run [options] -- PROG ARGS...)", kUsage);
  std::string format;
  if (int rc = format_of(a, "run", {"text", "json"}, &format); rc != kOk) return rc;
  auto gate = gate_of(a);
  if (!gate.ok()) return fail(absl::StrCat("run: ", gate.status().message()), kUsage);
  uint64_t sample = a.has("--sample-bytes") ? static_cast<uint64_t>(a.last("--sample-bytes")->number) : 4096;
  double interval = a.has("--interval") ? a.last("--interval")->number : 0.25;
  if (sample < 1 || sample > (uint64_t{1} << 40)) return fail("run: --sample-bytes: 1 to 1t bytes", kUsage);
  if (interval < 0.05 || interval > 86400) return fail("run: --interval: 0.05 to 86400 seconds", kUsage);

  TargetInfo target = inspect_target(prog[0]);
  if (target.kind == TargetKind::kNotFound) return fail(absl::StrCat("run: cannot run ", prog[0], ": no such program"), kNotRun);
  std::string problem = target_problem(target);
  if (!problem.empty()) {
    fail(absl::StrCat("run: ", problem));
    if (gate->enabled) {
      std::cerr << "leakwatch: gate: inconclusive: nothing can be measured in this program\n";
      return kInconclusive;
    }
  }
  std::string shim = find_shim();
  if (shim.empty()) return fail("run: cannot find libleakwatch.so next to this executable (set LEAKWATCH_SHIM)");
  bool own_dir = !a.has("--dir");
  std::string dir = own_dir ? "" : a.last("--dir")->text;
  if (own_dir) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = absl::StrCat(tmp && *tmp ? tmp : "/tmp", "/leakwatch-run.XXXXXX");
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) return fail(absl::StrCat("run: cannot create a dump directory: ", std::strerror(errno)));
    dir = buf.data();
  }
  std::map<std::string, std::string> env = {
      {"LD_PRELOAD", shim},
      {"LEAKWATCH_DIR", dir},
      {"LEAKWATCH_INTERVAL", absl::StrFormat("%g", interval)},
      {"LEAKWATCH_SAMPLE_BYTES", absl::StrCat(sample)}};
  if (const char* old = std::getenv("LD_PRELOAD"); old && *old) env["LD_PRELOAD"] = absl::StrCat(shim, ":", old);
  if (auto* m = a.last("--match")) env["LEAKWATCH_MATCH"] = m->text;
  int status = run_child(prog, env);
  if (status == -2) {
    if (own_dir) rmdir(dir.c_str());
    return kNotRun;
  }
  if (status < 0) return kError;
  int prog_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);

  ReportOptions o;
  o.inputs = {dir};
  auto r = build_report(o);
  std::cerr << "\n";
  if (!r.ok()) {
    std::cerr << "leakwatch: " << r.status().message() << "\n";
    if (r.status().code() == absl::StatusCode::kNotFound && problem.empty())
      std::cerr << "leakwatch: the program left no dump: it ended (by _exit, exec or a signal) before its first "
                   "dump, or the shim was not loaded into it (see above); try a shorter --interval\n";
    if (prog_status != 0) return prog_status;
    if (gate->enabled) {
      std::cerr << "leakwatch: gate: inconclusive: nothing was measured\n";
      return kInconclusive;
    }
    return prog_status;
  }
  r->subject = prog.front();  // the program the user named, not what a wrapper script ran
  print_warnings(*r);
  if (format == "json") render::json(*r, std::cerr);
  else {
    render::TextOptions to;
    to.color = isatty(2) && !std::getenv("NO_COLOR");
    render::text(*r, to, std::cerr);
  }
  std::cerr << "dumps: " << dir << "\n";
  if (prog_status != 0) return prog_status;
  if (!gate->enabled) return kOk;
  return gate_verdict(*r, *gate);
}

int diff_command(const ParsedArgs& a) {
  if (a.positional.size() != 2) return fail("diff: need two inputs: leakwatch diff A B", kUsage);
  std::string format;
  if (int rc = format_of(a, "diff", {"text", "json"}, &format); rc != kOk) return rc;
  DiffOptions d;
  d.a = a.positional[0];
  d.b = a.positional[1];
  if (int rc = sources_of(a, "diff", &d); rc != kOk) return rc;
  d.top = a.has("--top") ? static_cast<size_t>(a.last("--top")->number) : 30;
  auto diff = build_diff(d);
  if (!diff.ok()) return fail(std::string(diff.status().message()));
  for (const auto& w : diff->warnings) std::cerr << "leakwatch: warning: " << w << "\n";
  if (format == "json") render::diff_json(*diff, std::cout);
  else render::diff_text(*diff, d.top, std::cout);
  return kOk;
}

int inspect_command(const ParsedArgs& a) {
  std::vector<std::string> files = operands(a);
  if (files.empty()) return fail("inspect: no dump given (leakwatch inspect DUMP...)", kUsage);
  int rc = kOk;
  for (const auto& f : files) {
    auto d = load::read_dump(f);
    if (!d.ok()) {
      std::cerr << "leakwatch: " << d.status().message() << "\n";
      rc = kError;
      continue;
    }
    render::inspect(*d, std::cout);
  }
  return rc;
}

int trigger_command(const ParsedArgs& a) {
  if (a.positional.empty()) return fail("trigger: no dump directory given (leakwatch trigger DIR)", kUsage);
  int rc = kOk;
  for (const auto& dir : a.positional) {
    std::string path = absl::StrCat(dir, "/dump-now");
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 || futimens(fd, nullptr) != 0) {
      rc = fail(absl::StrCat("trigger: cannot touch ", path, ": ", std::strerror(errno),
                             errno == EACCES ? " (run as the application's user, or root)" : ""));
      if (fd >= 0) close(fd);
      continue;
    }
    close(fd);
    std::cout << "asked the processes writing into " << dir << " for a dump (" << path << ")\n";
  }
  return rc;
}

int serve_command(const ParsedArgs& a) {
  if (a.positional.empty()) return fail("serve: no dump directory given (see leakwatch serve --help)", kUsage);
  ServeOptions o;
  o.report.inputs = a.positional;
  if (int rc = sources_of(a, "serve", &o.report); rc != kOk) return rc;
  if (auto* l = a.last("--listen")) {
    size_t colon = l->text.rfind(':');
    int port = -1;
    if (colon != std::string::npos && colon + 1 < l->text.size() &&
        l->text.find_first_not_of("0123456789", colon + 1) == std::string::npos && l->text.size() - colon <= 6)
      port = std::atoi(l->text.c_str() + colon + 1);
    if (port < 0 || port > 65535)
      return fail(absl::StrCat("serve: --listen: '", l->text, "' is not ADDR:PORT (like 0.0.0.0:9464 or 127.0.0.1:0)"), kUsage);
    o.host = l->text.substr(0, colon);
    if (o.host.size() > 2 && o.host.front() == '[' && o.host.back() == ']') o.host = o.host.substr(1, o.host.size() - 2);
    if (o.host.empty()) o.host = "0.0.0.0";
    o.port = port;
  }
  if (a.has("--refresh")) o.refresh_s = a.last("--refresh")->number;
  if (o.refresh_s < 0.1 || o.refresh_s > 86400) return fail("serve: --refresh: 0.1 to 86400 seconds", kUsage);
  if (a.has("--top")) o.top = static_cast<size_t>(a.last("--top")->number);
  if (o.top < 1 || o.top > 100000) return fail("serve: --top: 1 to 100000 sites", kUsage);
  return serve(o);
}

int env_help_command(const ParsedArgs&) {
  std::cout << "| variable | meaning | default |\n|---|---|---|\n";
  std::cout << "| `LD_PRELOAD` | path to `libleakwatch.so` | — |\n";
#define LW_VAR(field, name, kind, def, lo, hi, def_text, help) std::cout << "| `" << name << "` | " << help << " | " << def_text << " |\n";
#include "shim/dump/config_table.def"
#undef LW_VAR
  return kOk;
}

}  // namespace

int cmd_report(int argc, char** argv) { return with_args(kReport, argc, argv, report_command); }
int cmd_run(int argc, char** argv) { return with_args(kRun, argc, argv, run_command); }
int cmd_diff(int argc, char** argv) { return with_args(kDiff, argc, argv, diff_command); }
int cmd_inspect(int argc, char** argv) { return with_args(kInspect, argc, argv, inspect_command); }
int cmd_trigger(int argc, char** argv) { return with_args(kTrigger, argc, argv, trigger_command); }
int cmd_serve(int argc, char** argv) { return with_args(kServe, argc, argv, serve_command); }
int cmd_env_help(int argc, char** argv) { return with_args(kEnvHelp, argc, argv, env_help_command); }

namespace {
struct Command {
  const CommandSpec* spec;
  int (*fn)(int, char**);
};
const Command kCommands[] = {{&kRun, cmd_run},         {&kReport, cmd_report},   {&kDiff, cmd_diff},
                             {&kInspect, cmd_inspect}, {&kTrigger, cmd_trigger}, {&kServe, cmd_serve},
                             {&kEnvHelp, cmd_env_help}};

std::string usage_text() {
  std::string s = "usage: leakwatch COMMAND [options] ...   (leakwatch COMMAND --help for its options)\n\n";
  for (const auto& c : kCommands)
    absl::StrAppend(&s, absl::StrFormat("  %-9s %s\n", c.spec->name, c.spec->summary));
  absl::StrAppend(&s, "\n  --version  print the version\n");
  // The README's exit-status table is this text (tests/e2e/cases/test_readme.py).
  absl::StrAppend(&s, "\nexit statuses:\n");
  const std::pair<int, const char*> statuses[] = {
      {kOk, "success (run: the program's own status; 128+N when a signal N ended it)"},
      {kError, "error: missing or unreadable input, nothing valid to report, a failed write"},
      {kUsage, "bad command line (one line on stderr says what)"},
      {kGrowthFound, "--fail-on-growth: a site grows at the threshold or faster (and is not in --baseline)"},
      {kInconclusive, "--fail-on-growth: could not tell (too few dumps, or the detection floor above the threshold)"},
      {kNotRun, "run: the program could not be started"}};
  for (const auto& [code, what] : statuses) absl::StrAppend(&s, absl::StrFormat("  %-4d %s\n", code, what));
  return s;
}
}  // namespace

int main_command(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << usage_text();
    return kUsage;
  }
  std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    if (cmd == "help" && argc > 2)
      for (const auto& c : kCommands)
        if (argv[2] == std::string(c.spec->name)) return std::cout << command_help(*c.spec), kOk;
    std::cout << usage_text();
    return kOk;
  }
  if (cmd == "--version" || cmd == "-V" || cmd == "version") {
    std::cout << render::kToolVersion << " (dump format " << format::kMajor << "." << format::kMinor << ", JSON schema "
              << render::kJsonSchemaVersion << ")\n";
    return kOk;
  }
  for (const auto& c : kCommands)
    if (cmd == c.spec->name) return c.fn(argc - 2, argv + 2);
  return fail(absl::StrCat("unknown command '", cmd, "' (run, report, diff, inspect, trigger, serve, env-help; leakwatch --help)"), kUsage);
}

}  // namespace leakwatch::cli
