#include "reporter/load/dump_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <zlib.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "shim/dump/format.h"

namespace leakwatch::load {
namespace fmtx = leakwatch::format;
namespace {

// A bounds-checked little-endian cursor over a byte range.
class Cursor {
 public:
  Cursor(const uint8_t* p, uint64_t n) : p_(p), n_(n) {}
  bool has(uint64_t k) const { return k <= n_ - off_; }
  template <typename T>
  bool get(T* out) {
    if (!has(sizeof(T))) return false;
    std::memcpy(out, p_ + off_, sizeof(T));
    off_ += sizeof(T);
    return true;
  }
  bool bytes(uint64_t k, const uint8_t** out) {
    if (!has(k)) return false;
    *out = p_ + off_;
    off_ += k;
    return true;
  }
  bool skip(uint64_t k) {
    if (!has(k)) return false;
    off_ += k;
    return true;
  }
  uint64_t left() const { return n_ - off_; }
  // An LEB128 varint of at most 5 bytes that fits in 32 bits.
  bool varint(uint32_t* out) {
    uint64_t v = 0;
    for (int i = 0; i < 5; ++i) {
      if (!has(1)) return false;
      const uint8_t b = p_[off_++];
      v |= uint64_t{b & 0x7fu} << (7 * i);
      if (!(b & 0x80)) {
        if (v > UINT32_MAX) return false;
        *out = static_cast<uint32_t>(v);
        return true;
      }
    }
    return false;
  }

 private:
  const uint8_t* p_;
  uint64_t n_;
  uint64_t off_ = 0;
};

absl::Status bad(const std::string& name, const std::string& why) {
  return absl::DataLossError(absl::StrCat(name, ": ", why));
}

struct Sections {
  std::vector<std::pair<uint32_t, std::pair<const uint8_t*, uint64_t>>> list;
  const std::pair<const uint8_t*, uint64_t>* find(uint32_t tag) const {
    for (auto& s : list)
      if (s.first == tag) return &s.second;
    return nullptr;
  }
};

constexpr uint32_t kRecordSize10 = 56;  // a record of format 1.0, before mapped_bytes

// A table section starts with {u32 count, u32 record_size}; records may be
// larger than we know (newer minor version) but never smaller.
absl::Status table(const std::string& name, const char* what, Cursor& c, uint32_t known, uint32_t max_count,
                   uint32_t* count, uint32_t* rsize) {
  if (!c.get(count) || !c.get(rsize)) return bad(name, absl::StrCat("truncated ", what, " table"));
  if (*rsize < known) return bad(name, absl::StrCat(what, " records too small"));
  // No writer produces more (the shim caps a dump at 20,000 records); a
  // compressed file claiming millions is hostile and would cost the reader
  // far more memory than its size.
  if (*count > max_count) return bad(name, absl::StrCat(what, " table larger than any writer produces"));
  if (uint64_t{*count} * *rsize > c.left()) return bad(name, absl::StrCat(what, " table larger than its section"));
  return absl::OkStatus();
}

// Reads a {count, record_size, records...} table, handing each record (the
// fields this reader knows; extra bytes of newer minors are skipped) to each().
// Records of an older minor may be shorter, down to `oldest` bytes: the
// fields they lack read as zero.
template <typename T, typename Fn>
absl::Status read_table(const std::string& name, const char* what, const std::pair<const uint8_t*, uint64_t>& sec,
                        uint32_t max_count, Fn&& each, uint32_t oldest = sizeof(T)) {
  Cursor c(sec.first, sec.second);
  uint32_t n, rs;
  if (auto st = table(name, what, c, oldest, max_count, &n, &rs); !st.ok()) return st;
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t* p = nullptr;
    c.bytes(rs, &p);  // cannot fail: table() checked n * rs against the section
    T rec{};
    std::memcpy(&rec, p, std::min<size_t>(rs, sizeof rec));
    if (auto st = each(rec); !st.ok()) return st;
  }
  return absl::OkStatus();
}

// Checks the fixed header against the file's bytes; on success *out is the
// header and the payload is exactly the bytes after it.
absl::Status read_header(std::string_view bytes, const std::string& name, fmtx::Header* out) {
  if (bytes.size() < sizeof(fmtx::Header)) {
    if (bytes.size() >= 8 && std::memcmp(bytes.data(), fmtx::kMagic, 8) == 0)
      return bad(name, "truncated (shorter than the header)");
    return bad(name, "not a leakwatch dump (too short)");
  }
  fmtx::Header& h = *out;
  std::memcpy(&h, bytes.data(), sizeof h);
  if (std::memcmp(h.magic, fmtx::kMagic, 8) != 0) return bad(name, "not a leakwatch dump (bad magic)");
  if (h.major < fmtx::kOldestMajor || h.major > fmtx::kMajor)
    return bad(name, absl::StrCat("dump format version ", h.major, ".", h.minor, h.major > fmtx::kMajor ? " is newer than" : " is not supported by",
                                  " this reader (supports ", fmtx::kOldestMajor, ".x to ", fmtx::kMajor, ".x); upgrade leakwatch"));
  if (crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), 40) != h.header_crc32)
    return bad(name, "corrupted header (checksum mismatch)");
  if (h.header_size < sizeof h || h.header_size > bytes.size()) return bad(name, "bad header size");
  uint64_t avail = bytes.size() - h.header_size;
  if (h.stored_size > avail) return bad(name, absl::StrCat("truncated: ", avail, " of ", h.stored_size, " payload bytes"));
  if (h.stored_size < avail) return bad(name, "trailing bytes after the payload");
  if (h.raw_size > fmtx::kMaxRawSize) return bad(name, "payload larger than the format allows");
  // deflate cannot expand more than ~1032:1; refuse a claimed size that
  // the stored bytes could not produce before allocating room for it.
  if ((h.flags & fmtx::kFlagZlib) && h.raw_size > h.stored_size * 1032 + 1024)
    return bad(name, "corrupted header (payload size impossible for its compressed size)");
  return absl::OkStatus();
}

// The payload after a checked header, checksummed and decompressed.
absl::StatusOr<std::vector<uint8_t>> read_payload(std::string_view bytes, const std::string& name, const fmtx::Header& h) {
  const auto* stored = reinterpret_cast<const uint8_t*>(bytes.data()) + h.header_size;
  if (crc32(0, stored, static_cast<uInt>(h.stored_size)) != h.payload_crc32)
    return bad(name, "corrupted payload (checksum mismatch)");
  std::vector<uint8_t> raw;
  if (h.flags & fmtx::kFlagZlib) {
    raw.resize(h.raw_size);
    uLongf out_len = static_cast<uLongf>(h.raw_size);
    int rc = uncompress(raw.data(), &out_len, stored, static_cast<uLong>(h.stored_size));
    if (rc != Z_OK || out_len != h.raw_size) return bad(name, "corrupted payload (does not decompress to its size)");
  } else {
    if (h.stored_size != h.raw_size) return bad(name, "payload size mismatch");
    raw.assign(stored, stored + h.stored_size);
  }
  return raw;
}

absl::StatusOr<Sections> split_sections(const std::vector<uint8_t>& raw, const std::string& name) {
  Sections secs;
  Cursor c(raw.data(), raw.size());
  while (c.left() > 0) {
    fmtx::SectionHeader sh;
    const uint8_t* body;
    if (!c.get(&sh) || !c.bytes(sh.size, &body)) return bad(name, "truncated section");
    secs.list.push_back({sh.tag, {body, sh.size}});
  }
  return secs;
}

absl::Status read_strings(const Sections& secs, const std::string& name, std::vector<std::string>* out) {
  std::vector<std::string>& strings = *out;
  strings.clear();
  if (auto* s = secs.find(fmtx::kStrings)) {
    Cursor sc(s->first, s->second);
    uint32_t n;
    if (!sc.get(&n)) return bad(name, "truncated string table");
    if (uint64_t{n} * 4 > sc.left()) return bad(name, "string table count larger than its section");
    if (n > fmtx::kReaderMaxStrings) return bad(name, "string table larger than any writer produces");
    strings.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
      uint32_t len;
      const uint8_t* p;
      if (!sc.get(&len) || !sc.bytes(len, &p)) return bad(name, "truncated string");
      strings.emplace_back(reinterpret_cast<const char*>(p), len);
    }
  } else {
    return bad(name, "no string table");
  }
  if (strings.empty()) strings.emplace_back();
  return absl::OkStatus();
}

// Copies strings out of the table by index. Identity and module strings are
// copied; a writer names each once, so copies beyond the payload's own size
// mean one string is named over and over to blow up the reader.
class StringCopier {
 public:
  StringCopier(const std::vector<std::string>& strings, uint64_t payload_size, const std::string& name)
      : strings_(strings), budget_(2 * payload_size + (1u << 20)), name_(name) {}
  bool copy(uint32_t i, std::string* out) {
    if (i >= strings_.size()) return false;
    if (strings_[i].size() > budget_) {
      over_budget_ = true;
      return false;
    }
    budget_ -= strings_[i].size();
    *out = strings_[i];
    return true;
  }
  // The error for a failed copy(): an exhausted budget says so rather than `what`.
  absl::Status error(const char* what) const {
    return bad(name_, over_budget_ ? "strings named more often than any writer does" : what);
  }

 private:
  const std::vector<std::string>& strings_;
  uint64_t budget_;
  const std::string& name_;
  bool over_budget_ = false;
};

// Stores one identity field in its member of d; unknown keys go to d.extra.
void store_identity_field(Dump& d, const std::string& key, const fmtx::Field& f, const std::string& sval) {
  double fval = 0;
  if (f.type == fmtx::kF64) std::memcpy(&fval, &f.value, sizeof fval);
  uint64_t u = f.value;
  if (key == "pid") d.id.pid = u;
  else if (key == "ppid") d.id.ppid = u;
  else if (key == "instance") d.id.instance = u;
  else if (key == "seq") d.seq = u;
  else if (key == "wall_ns") d.wall_ns = u;
  else if (key == "mono_ns") d.mono_ns = u;
  else if (key == "start_wall_ns") d.id.start_wall_ns = u;
  else if (key == "start_mono_ns") d.id.start_mono_ns = u;
  else if (key == "sample_bytes") d.sample_bytes = u;
  else if (key == "mapping_sample_bytes") d.mapping_sample_bytes = u;
  else if (key == "max_frames") d.max_frames = u;
  else if (key == "dropped_samples") d.dropped_samples = u;
  else if (key == "records_folded") d.records_folded = u;
  else if (key == "pid_ns") d.id.pid_ns = u;
  else if (key == "mnt_ns") d.id.mnt_ns = u;
  else if (key == "shim_mapped_bytes") d.shim_mapped_bytes = u;
  else if (key == "shim_resident_bytes") d.memory.shim_resident = u;
  else if (key == "final") d.final_dump = u != 0;
  else if (key == "interval_s") d.interval_s = fval;
  else if (key == "exe") d.id.exe = sval;
  else if (key == "argv0") d.id.argv0 = sval;
  else if (key == "cmdline") d.id.cmdline = sval;
  else if (key == "hostname") d.id.hostname = sval;
  else if (key == "container_id") d.id.container_id = sval;
  else if (key == "shim_version") d.shim_version = sval;
  else if (key == "boot_id") d.id.boot_id = sval;
  else if (key == "reason") d.reason = sval;
  else if (key == "retention_level") d.retention_level = u;
  else if (key == "rss_bytes") d.memory.rss = u;
  else if (key == "rss_anon_bytes") d.memory.rss_anon = u;
  else if (key == "rss_file_bytes") d.memory.rss_file = u;
  else if (key == "rss_shmem_bytes") d.memory.rss_shmem = u;
  else if (key == "rss_peak_bytes") d.memory.rss_peak = u;
  else if (key == "swap_bytes") d.memory.swap = u;
  else if (key == "vm_size_bytes") d.memory.vm_size = u;
  else if (key == "threads") d.memory.threads = u;
  else
    d.extra.emplace_back(key, f.type == fmtx::kString ? sval
                              : f.type == fmtx::kF64  ? absl::StrCat(fval)
                              : f.type == fmtx::kI64  ? absl::StrCat(static_cast<int64_t>(u))
                                                      : absl::StrCat(u));
}

absl::Status read_identity(const Sections& secs, const std::string& name, StringCopier& str, Dump& d) {
  auto* idnt = secs.find(fmtx::kIdentity);
  if (!idnt) return bad(name, "no identity section");
  Cursor ic(idnt->first, idnt->second);
  uint32_t n;
  if (!ic.get(&n) || uint64_t{n} * sizeof(fmtx::Field) > ic.left()) return bad(name, "bad identity section");
  for (uint32_t i = 0; i < n; ++i) {
    fmtx::Field f;
    ic.get(&f);
    std::string key;
    if (!str.copy(f.key, &key)) return str.error("identity field name out of range");
    std::string sval;
    if (f.type == fmtx::kString && (f.value > UINT32_MAX || !str.copy(static_cast<uint32_t>(f.value), &sval)))
      return str.error("identity string out of range");
    store_identity_field(d, key, f, sval);
  }
  if (d.sample_bytes == 0) return bad(name, "sample_bytes missing or zero");
  if (d.mapping_sample_bytes == 0) d.mapping_sample_bytes = d.sample_bytes;
  return absl::OkStatus();
}

absl::Status read_modules(const Sections& secs, const std::string& name, StringCopier& str, Dump& d) {
  auto* m = secs.find(fmtx::kModules);
  if (!m) return absl::OkStatus();
  return read_table<fmtx::Module>(name, "module", *m, fmtx::kReaderMaxRecords, [&](const fmtx::Module& fm) {
    Module mod{fm.start, fm.end, fm.bias, "", "", fm.kind};
    if (!str.copy(fm.path, &mod.path) || !str.copy(fm.build_id, &mod.build_id))
      return str.error("module string out of range");
    d.modules.push_back(std::move(mod));
    return absl::OkStatus();
  });
}

absl::Status read_frames(const Sections& secs, const std::string& name, Dump& d) {
  auto* f = secs.find(fmtx::kFrames);
  if (!f) return absl::OkStatus();
  return read_table<fmtx::Frame>(name, "frame", *f, fmtx::kReaderMaxFrames, [&](const fmtx::Frame& ff) {
    Frame fr;
    fr.address = ff.address;
    if (ff.module != fmtx::kNoModule) {
      if (ff.module >= d.modules.size()) return bad(name, "frame module out of range");
      fr.module = static_cast<int32_t>(ff.module);
    }
    if (ff.symbol >= d.strings.size()) return bad(name, "frame symbol out of range");
    fr.symbol = ff.symbol;
    fr.symbol_offset = ff.symbol_offset;
    d.frames.push_back(std::move(fr));
    return absl::OkStatus();
  });
}

// The stack table: format 2.0 writes it as varints (STKV), 1.x wrote the
// same fields as u32s (STKS). One loop reads either.
absl::Status read_stacks(const Sections& secs, const std::string& name, Dump& d) {
  const auto* varints = secs.find(fmtx::kStacksV);
  const auto* s = varints ? varints : secs.find(fmtx::kStacks);
  if (!s) return absl::OkStatus();
  Cursor sc(s->first, s->second);
  // The fewest bytes a field takes: counts are checked against the bytes
  // left before anything is allocated for them.
  const uint64_t least = varints ? 1 : 4;
  auto next = [&](uint32_t* out) { return varints ? sc.varint(out) : sc.get(out); };
  uint32_t n;
  if (!next(&n) || uint64_t{n} * least > sc.left()) return bad(name, "bad stack table");
  if (n > fmtx::kReaderMaxRecords) return bad(name, "stack table larger than any writer produces");
  d.stacks.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t depth;
    if (!next(&depth) || depth > fmtx::kMaxDepth || uint64_t{depth} * least > sc.left())
      return bad(name, "bad stack depth");
    std::vector<uint32_t> st(depth);
    for (auto& fi : st) {
      if (!next(&fi)) return bad(name, "bad stack frame");
      if (fi >= d.frames.size()) return bad(name, "stack frame out of range");
    }
    d.stacks.push_back(std::move(st));
  }
  return absl::OkStatus();
}

absl::Status read_records(const Sections& secs, const std::string& name, Dump& d) {
  auto* r = secs.find(fmtx::kRecords);
  if (!r) return absl::OkStatus();
  auto finite = [](double v) { return v == v && v >= 0 && v < 1e300; };
  return read_table<fmtx::Record>(name, "record", *r, fmtx::kReaderMaxRecords, [&](const fmtx::Record& fr) {
    Record rec;
    if (fr.stack != fmtx::kOtherStack) {
      if (fr.stack >= d.stacks.size()) return bad(name, "record stack out of range");
      rec.stack = fr.stack;
    }
    if (!finite(fr.live_count) || !finite(fr.live_bytes) || !finite(fr.alloc_count) || !finite(fr.alloc_bytes))
      return bad(name, "record holds a negative or non-finite estimate");
    rec.live_count = fr.live_count;
    rec.live_bytes = fr.live_bytes;
    rec.alloc_count = fr.alloc_count;
    rec.alloc_bytes = fr.alloc_bytes;
    rec.live_samples = fr.live_samples;
    rec.total_samples = fr.total_samples;
    if (fr.kind > fmtx::kMmapRecord) return bad(name, "record of an unknown kind");
    rec.kind = fr.kind;
    if (!finite(fr.mapped_bytes)) return bad(name, "record holds a negative or non-finite estimate");
    rec.mapped_bytes = fr.mapped_bytes;
    d.records.push_back(rec);
    return absl::OkStatus();
  }, kRecordSize10);
}

}  // namespace

absl::StatusOr<Dump> parse_dump(std::string_view bytes, const std::string& name) {
  Dump d;
  d.file = name;
  d.file_size = bytes.size();
  fmtx::Header h;
  if (auto st = read_header(bytes, name, &h); !st.ok()) return st;
  d.major = h.major;
  d.minor = h.minor;
  auto raw = read_payload(bytes, name, h);
  if (!raw.ok()) return raw.status();
  auto secs = split_sections(*raw, name);
  if (!secs.ok()) return secs.status();
  // Strings first: everything else refers to them.
  if (auto st = read_strings(*secs, name, &d.strings); !st.ok()) return st;
  StringCopier str(d.strings, raw->size(), name);
  if (auto st = read_identity(*secs, name, str, d); !st.ok()) return st;
  if (auto st = read_modules(*secs, name, str, d); !st.ok()) return st;
  if (auto st = read_frames(*secs, name, d); !st.ok()) return st;
  if (auto st = read_stacks(*secs, name, d); !st.ok()) return st;
  if (auto st = read_records(*secs, name, d); !st.ok()) return st;
  return d;
}

const char kPermissionHint[] = " (dumps are created with mode 0600 in a 0700 directory: read them as the "
                               "application's user, or as root)";

absl::StatusOr<Dump> read_dump(const std::string& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec == std::errc::permission_denied)
    return absl::PermissionDeniedError(absl::StrCat(path, ": ", ec.message(), kPermissionHint));
  if (ec) return absl::NotFoundError(absl::StrCat(path, ": ", ec.message()));
  // The header allows at most kMaxRawSize of payload; compressed is smaller.
  if (size > fmtx::kMaxRawSize + 4096) return bad(path, "file too large to be a dump");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int e = errno;
    return e == EACCES ? absl::PermissionDeniedError(absl::StrCat(path, ": ", std::strerror(e), kPermissionHint))
                       : absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(e)));
  }
  std::string bytes(size, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(in.gcount()) != size) return bad(path, "short read");
  return parse_dump(bytes, path);
}

absl::StatusOr<std::vector<std::string>> list_dump_files(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const auto& in : inputs) {
    std::error_code ec;
    auto st = std::filesystem::status(in, ec);
    if (ec && ec != std::errc::no_such_file_or_directory)
      return absl::PermissionDeniedError(absl::StrCat(in, ": ", ec.message(), kPermissionHint));
    if (ec || !std::filesystem::exists(st))
      return absl::NotFoundError(absl::StrCat(in, ": no such file or directory"));
    if (std::filesystem::is_directory(st)) {
      std::vector<std::string> here;
      auto it = std::filesystem::recursive_directory_iterator(in, ec);
      if (ec) {
        if (ec == std::errc::permission_denied)
          return absl::PermissionDeniedError(absl::StrCat("cannot read directory ", in, ": ", ec.message(), kPermissionHint));
        return absl::UnavailableError(absl::StrCat("cannot read directory ", in, ": ", ec.message()));
      }
      for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        const auto& p = it->path();
        std::string fname = p.filename().string();
        if (fname.empty() || fname[0] == '.') continue;  // temp files of a writer in progress
        if (p.extension() == fmtx::kFileSuffix && it->is_regular_file()) here.push_back(p.string());
      }
      std::sort(here.begin(), here.end());
      files.insert(files.end(), here.begin(), here.end());
    } else {
      files.push_back(in);
    }
  }
  return files;
}

absl::StatusOr<LoadResult> load_inputs(const std::vector<std::string>& inputs) {
  LoadResult out;
  auto listed = list_dump_files(inputs);
  if (!listed.ok()) return listed.status();
  const std::vector<std::string>& files = *listed;
  out.files_seen = files.size();
  for (const auto& f : files) {
    auto d = read_dump(f);
    if (!d.ok()) {
      out.warnings.push_back(absl::StrCat("skipping ", d.status().message()));
      continue;
    }
    out.dumps.push_back(std::move(*d));
  }
  return out;
}

}  // namespace leakwatch::load
