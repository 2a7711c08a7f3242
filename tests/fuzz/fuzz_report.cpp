// Fuzz target: the whole reporter pipeline (read -> merge -> symbolize ->
// analyze -> render) on a set of hostile but well-formed dumps.
// The input holds up to 6 dump payloads separated by "LWFZNEXT"; each is
// wrapped in a valid header and written to a private temp directory, then
// build_report() reads the directory and every renderer prints the report.
// Anything the reader accepts must be reported without a crash, a hang or
// an unbounded allocation (timelines of many dumps, odd sequence numbers,
// duplicate processes, impossible clocks, zero-size modules...).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <sstream>
#include <string>
#include <string_view>
#include <unistd.h>

#include "reporter/render/render.h"
#include "reporter/report.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

constexpr int kMaxDumps = 6;
std::string g_dir;

void cleanup() {
  if (g_dir.empty()) return;
  for (int i = 0; i < kMaxDumps; ++i) unlink((g_dir + "/fz." + std::to_string(i) + ".lwdump").c_str());
  rmdir(g_dir.c_str());
}

bool write_all(const std::string& path, const std::string& bytes) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + off, bytes.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  close(fd);
  return off == bytes.size();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* tmp = getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/lwfuzz-report.XXXXXX";
  if (!mkdtemp(tmpl.data())) abort();
  g_dir = tmpl;
  atexit(cleanup);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (int i = 0; i < kMaxDumps; ++i) unlink((g_dir + "/fz." + std::to_string(i) + ".lwdump").c_str());
  int n = 0;
  lwfuzz::split(in, "LWFZNEXT", kMaxDumps, [&](std::string_view payload) {
    std::string file = lwfuzz::wrap_payload(payload, false);
    if (!file.empty()) write_all(g_dir + "/fz." + std::to_string(n) + ".lwdump", file);
    ++n;
  });
  leakwatch::ReportOptions opt;
  opt.inputs = {g_dir};
  auto r = leakwatch::build_report(opt);
  if (!r.ok()) return 0;
  std::ostringstream out;
  leakwatch::render::text(*r, leakwatch::render::TextOptions{}, out);
  leakwatch::render::json(*r, out);
  leakwatch::render::folded(*r, out);
  leakwatch::render::prom(*r, leakwatch::render::PromOptions{}, out);
  return 0;
}
