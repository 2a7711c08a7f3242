// `leakwatch serve`: a long-running reporter (a sidecar in the pod, or one
// per node) that watches dump directories and serves the current verdicts
// and memory accounting over HTTP:
//
//   /metrics      Prometheus text exposition (render/prom.cpp) plus the
//                 server's own health series (leakwatch_serve_*)
//   /             the HTML report
//   /report.json  the JSON report
//   /healthz      "ok" while the server runs
//
// The report is rebuilt when the directory changes (names, sizes, mtimes),
// at most once per refresh period, on one thread; requests are answered
// from the last rendered copy, so a slow rebuild never blocks a scrape and
// a corrupt or half-written file is one warning, never an outage.
//
// Thread-safety: run() owns its threads; call it once.
#pragma once

#include <string>

#include "reporter/report.h"

namespace leakwatch::cli {

struct ServeOptions {
  ReportOptions report;
  std::string host = "0.0.0.0";
  int port = 9464;         // 0: any free port (printed at start)
  double refresh_s = 15;   // how often the directory is looked at
  size_t top = 20;         // sites with their own series and rows
};

// Serves until SIGTERM or SIGINT; returns the exit status.
int serve(const ServeOptions& o);

}  // namespace leakwatch::cli
