#include "reporter/cli/serve.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <iostream>
#include <mutex>
#include <pthread.h>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <time.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "reporter/cli/commands.h"
#include "reporter/load/dump_reader.h"
#include "reporter/render/render.h"

namespace leakwatch::cli {

namespace {

// What the server answers with: rendered once per rebuild, read by every
// request under the lock (copies of a few hundred KB at most).
struct Rendered {
  std::string prom, html, json;
  bool ok = false;
  std::string error;           // why there is no report (no dumps yet...)
  size_t files = 0, dumps = 0, warnings = 0, sites = 0, growing = 0;
  double build_s = 0;          // how long the last rebuild took
  double built_at = 0;         // wall-clock seconds of the last rebuild
  uint64_t rebuilds = 0, failures = 0;
};

double wall_s() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

double cpu_s() {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

// Names, sizes and mtimes of the dump files: a rebuild happens only when
// this changes (a dump written, thinned away, or still being renamed in).
uint64_t fingerprint(const std::vector<std::string>& inputs, size_t* files) {
  auto list = load::list_dump_files(inputs);
  *files = 0;
  if (!list.ok()) return 1;  // "no directory yet" is a state of its own
  *files = list->size();
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const void* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const unsigned char*>(p)[i]) * 1099511628211ull;
  };
  for (const auto& f : *list) {
    struct stat st;
    if (stat(f.c_str(), &st) != 0) continue;
    mix(f.data(), f.size());
    mix(&st.st_size, sizeof st.st_size);
    mix(&st.st_mtim, sizeof st.st_mtim);
  }
  return h;
}

std::string error_page(const std::string& why) {
  std::string esc;
  for (char c : why) esc += c == '<' ? "&lt;" : c == '&' ? "&amp;" : std::string(1, c);
  return absl::StrCat("<!doctype html><meta charset=utf-8><title>leakwatch</title><p>leakwatch: no report yet: ", esc,
                      "</p>\n");
}

void rebuild(const ServeOptions& o, size_t files, Rendered* r) {
  double t0 = wall_s();
  auto rep = build_report(o.report);
  r->files = files;
  r->rebuilds += 1;
  if (!rep.ok()) {
    r->ok = false;
    r->failures += 1;
    r->error = std::string(rep.status().message());
    r->prom.clear();
    r->html = error_page(r->error);
    r->json = nlohmann::json{{"error", r->error}}.dump() + "\n";
    r->dumps = r->warnings = r->sites = r->growing = 0;
  } else {
    r->ok = true;
    r->error.clear();
    std::ostringstream prom, html, json;
    render::prom(*rep, render::PromOptions{o.top}, prom);
    render::HtmlOptions ho;
    ho.chart_sites = std::min<size_t>(o.top, 8);
    ho.max_rows = o.top;
    render::html(*rep, ho, html);
    render::json(*rep, json);
    r->prom = prom.str();
    r->html = html.str();
    r->json = json.str();
    r->dumps = rep->dumps_read;
    r->warnings = rep->warnings.size();
    r->sites = rep->sites.size();
    r->growing = 0;
    for (const auto& s : rep->sites) r->growing += s.verdict == "growing";
  }
  r->built_at = wall_s();
  r->build_s = r->built_at - t0;
}

// The server's own series, after the report's.
std::string health_metrics(const Rendered& r, double started_at) {
  std::string s;
  auto gauge = [&](const char* name, const char* help, double v, const char* type = "gauge") {
    absl::StrAppend(&s, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n", name, " ",
                    absl::StrFormat("%.17g", v), "\n");
  };
  gauge("leakwatch_serve_report_ok", "1 if the last rebuild produced a report (0: no dumps yet, or none readable)", r.ok);
  gauge("leakwatch_serve_dump_files", "dump files in the watched directories at the last rebuild", r.files);
  gauge("leakwatch_serve_dumps_read", "dumps the last report read", r.dumps);
  gauge("leakwatch_serve_warnings", "warnings of the last report (files skipped as truncated, corrupt, foreign...)", r.warnings);
  gauge("leakwatch_serve_growing_sites", "sites whose verdict is growing", r.growing);
  gauge("leakwatch_serve_rebuild_seconds", "wall-clock time the last rebuild took", r.build_s);
  gauge("leakwatch_serve_last_rebuild_timestamp_seconds", "when the report was last rebuilt", r.built_at);
  gauge("leakwatch_serve_rebuilds_total", "reports built since the server started", static_cast<double>(r.rebuilds), "counter");
  gauge("leakwatch_serve_rebuild_failures_total", "rebuilds that produced no report", static_cast<double>(r.failures), "counter");
  gauge("leakwatch_serve_cpu_seconds_total", "CPU time the server has used", cpu_s(), "counter");
  gauge("leakwatch_serve_start_timestamp_seconds", "when the server started", started_at);
  return s;
}

}  // namespace

int serve(const ServeOptions& o) {
  // SIGTERM/SIGINT are taken by sigwait below, not by whichever thread the
  // kernel picks: block them before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  httplib::Server http;
  int port = o.port;
  if (port == 0) {
    port = http.bind_to_any_port(o.host);
    if (port < 0) port = -1;
  } else if (!http.bind_to_port(o.host, port)) {
    port = -1;
  }
  if (port < 0) {
    std::cerr << "leakwatch: serve: cannot listen on " << o.host << ":" << o.port << ": " << std::strerror(errno) << "\n";
    return kError;
  }

  const double started_at = wall_s();
  std::mutex mu;
  std::condition_variable wake;
  bool stopping = false;
  Rendered current;
  current.error = "not read yet";
  current.html = error_page(current.error);

  auto snapshot = [&](auto field) {
    std::lock_guard<std::mutex> l(mu);
    return field(current);
  };
  http.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
    std::string body = snapshot([&](const Rendered& r) { return r.prom + health_metrics(r, started_at); });
    res.set_content(body, "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get("/", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(snapshot([](const Rendered& r) { return r.html; }), "text/html; charset=utf-8");
  });
  http.Get("/report.json", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(snapshot([](const Rendered& r) { return r.json; }), "application/json");
  });
  http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });

  // The watcher: look at the directory every refresh period, rebuild when
  // it changed. The rebuild runs outside the lock.
  std::thread watcher([&] {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> l(mu);
    while (!stopping) {
      l.unlock();
      size_t files = 0;
      uint64_t now = fingerprint(o.report.inputs, &files);
      if (now != seen) {
        Rendered next;
        {
          std::lock_guard<std::mutex> g(mu);
          next.rebuilds = current.rebuilds;
          next.failures = current.failures;
        }
        rebuild(o, files, &next);
        seen = now;
        std::lock_guard<std::mutex> g(mu);
        current = std::move(next);
      }
      l.lock();
      wake.wait_for(l, std::chrono::duration<double>(o.refresh_s), [&] { return stopping; });
    }
  });
  std::thread server([&] { http.listen_after_bind(); });

  std::cerr << "leakwatch: serving " << o.report.inputs.front() << " on http://" << o.host << ":" << port
            << "/ (metrics at /metrics)\n";
  int sig = 0;
  sigwait(&stop_signals, &sig);
  {
    std::lock_guard<std::mutex> l(mu);
    stopping = true;
  }
  wake.notify_all();
  http.stop();
  server.join();
  watcher.join();
  return kOk;
}

}  // namespace leakwatch::cli
