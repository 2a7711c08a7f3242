// Finding imported heap profiles among the inputs, grouping them into
// processes and giving them times (see heap_profile.h).
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "reporter/import/elf_layout.h"
#include "reporter/import/heap_profile.h"
#include "shim/dump/format.h"

namespace leakwatch::import {

namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMaxFile = format::kMaxRawSize;  // 256 MiB of text

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Format sniff_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char head[16] = {};
  in.read(head, sizeof head);
  return sniff(std::string_view(head, static_cast<size_t>(in.gcount())));
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

NameFacts facts_from_name(const std::string& path, Format f) {
  NameFacts n;
  fs::path p(path);
  std::string dir = p.parent_path().string();
  std::string base = p.filename().string();
  if (base.size() > 5 && base.compare(base.size() - 5, 5, ".heap") == 0) base.resize(base.size() - 5);
  std::vector<std::string> parts = absl::StrSplit(base, '.');
  size_t k = parts.size();
  if (f == Format::kJemalloc && k >= 4) {
    // <prefix>.<pid>.<seq>.<kind><n>: kind i (interval), m (prof.dump), u (gdump), f (final)
    const std::string& kind = parts[k - 1];
    uint64_t pid = 0, seq = 0;
    bool kind_ok = !kind.empty() && std::strchr("imuf", kind[0]) &&
                   (kind.size() == 1 || all_digits(std::string_view(kind).substr(1)));
    if (kind_ok && all_digits(parts[k - 2]) && all_digits(parts[k - 3])) {
      pid = std::stoull(parts[k - 3]);
      seq = std::stoull(parts[k - 2]);
      std::vector<std::string> prefix(parts.begin(), parts.end() - 3);
      n.group = absl::StrCat(dir, "/", absl::StrJoin(prefix, "."), ".", pid);
      n.pid = pid;
      n.seq = static_cast<int64_t>(seq);
      n.final_dump = kind == "f";
      return n;
    }
  }
  if (f == Format::kGperftools && k >= 2 && all_digits(parts[k - 1])) {
    // <prefix>.<seq> (gperftools numbers its dumps from 0001)
    std::vector<std::string> prefix(parts.begin(), parts.end() - 1);
    n.group = absl::StrCat(dir, "/", absl::StrJoin(prefix, "."));
    n.seq = static_cast<int64_t>(std::stoull(parts[k - 1]));
    return n;
  }
  // Renamed files: one process per directory and format, ordered by time.
  n.group = absl::StrCat(dir, "/?", f == Format::kJemalloc ? "jemalloc" : "gperftools");
  return n;
}

std::vector<std::string> take_heap_profiles(const std::vector<std::string>& inputs,
                                            std::vector<std::string>* dump_files) {
  std::vector<std::string> out;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (!fs::is_directory(in, ec)) continue;
    std::vector<std::string> here;
    for (auto it = fs::recursive_directory_iterator(in, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (name.empty() || name[0] == '.') continue;
      if (it->path().extension() == ".heap" && it->is_regular_file(ec)) here.push_back(it->path().string());
    }
    std::sort(here.begin(), here.end());
    out.insert(out.end(), here.begin(), here.end());
  }
  // Files named directly: the contents decide (a foreign file stays with
  // the dump reader, which warns about it).
  std::vector<std::string> keep;
  for (auto& f : *dump_files) {
    if (f.size() < 7 || f.compare(f.size() - 7, 7, ".lwdump") != 0) {
      if (sniff_file(f) != Format::kNone) {
        out.push_back(f);
        continue;
      }
    }
    keep.push_back(std::move(f));
  }
  // A directory's *.heap files that were also named directly: once.
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  *dump_files = std::move(keep);
  return out;
}

void import_heap_profiles(const std::vector<std::string>& files, const ParseOptions& options,
                          const std::function<void(const load::Dump&)>& add, std::vector<std::string>* warnings) {
  struct Entry {
    std::string path;
    Format format;
    NameFacts facts;
    uint64_t mtime_ns = 0;
  };
  std::map<std::string, std::vector<Entry>> groups;
  for (const auto& f : files) {
    struct stat st;
    if (stat(f.c_str(), &st) != 0) {
      warnings->push_back(absl::StrCat("skipping ", f, ": ", std::strerror(errno)));
      continue;
    }
    Format fmt = sniff_file(f);
    if (fmt == Format::kNone) {
      warnings->push_back(absl::StrCat("skipping ", f, ": not a jemalloc or gperftools heap profile"));
      continue;
    }
    Entry e{f, fmt, facts_from_name(f, fmt),
            static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull + static_cast<uint64_t>(st.st_mtim.tv_nsec)};
    groups[e.facts.group].push_back(std::move(e));
  }
  ElfLayoutCache elf;
  for (auto& [group, entries] : groups) {
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      if (a.facts.seq != b.facts.seq) return a.facts.seq < b.facts.seq;
      if (a.mtime_ns != b.mtime_ns) return a.mtime_ns < b.mtime_ns;
      return a.path < b.path;
    });
    // Times: the files' modification times when they follow the dumps'
    // order (and are not all equal); else one second per dump.
    bool mtimes = true;
    for (size_t i = 1; i < entries.size(); ++i) mtimes = mtimes && entries[i].mtime_ns >= entries[i - 1].mtime_ns;
    if (entries.size() > 1 && entries.back().mtime_ns == entries.front().mtime_ns) mtimes = false;
    if (!mtimes)
      warnings->push_back(absl::StrCat("heap profiles ", group, ".*: file times do not follow the dump sequence "
                                       "(copied without keeping times?); dumps taken as 1 s apart, so rates are per dump"));
    uint64_t t0 = entries.front().mtime_ns;
    for (size_t i = 0; i < entries.size(); ++i) {
      const Entry& e = entries[i];
      std::error_code ec;
      uint64_t size = fs::file_size(e.path, ec);
      if (ec || size > kMaxFile) {
        warnings->push_back(absl::StrCat("skipping ", e.path, ": ", ec ? ec.message() : "too large for a heap profile"));
        continue;
      }
      std::ifstream in(e.path, std::ios::binary);
      std::string text(size, '\0');
      in.read(text.data(), static_cast<std::streamsize>(size));
      if (!in || static_cast<uint64_t>(in.gcount()) != size) {
        warnings->push_back(absl::StrCat("skipping ", e.path, ": short read"));
        continue;
      }
      auto d = parse_heap_profile_cached(text, e.path, options, &elf);
      if (!d.ok()) {
        warnings->push_back(absl::StrCat("skipping ", d.status().message()));
        continue;
      }
      uint64_t t_ns = mtimes ? e.mtime_ns - t0 : i * 1000000000ull;
      d->id.pid = e.facts.pid;
      d->id.instance = fnv1a(group);
      d->seq = i;
      d->wall_ns = mtimes ? e.mtime_ns : t0 + t_ns;
      d->mono_ns = t_ns;
      d->id.start_mono_ns = 0;
      d->id.start_wall_ns = t0;
      d->final_dump = e.facts.final_dump;
      d->id.hostname = "unknown host";  // heap profiles do not say
      d->id.cmdline = absl::StrCat(e.format == Format::kJemalloc ? "(jemalloc profile " : "(gperftools profile ", group,
                                ")");
      add(*d);
    }
  }
}

}  // namespace leakwatch::import
