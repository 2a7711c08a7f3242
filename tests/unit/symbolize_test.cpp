// Unit tests for reporter/symbolize (DwarfSymbolizer, demangle).
//
// Needs the fixtures from tests/unit/fixtures/CMakeLists.txt: link this
// test to the INTERFACE target `symbolize_fixture`, which provides
//   SYMBOLIZE_TARGET_PATH        the -g -O2 PIE fixture (symbolize_target),
//                                with SYMBOLIZE_TARGET_PATH ".debug" and
//                                ".stripped" made next to it by objcopy
//   SYMBOLIZE_TARGET_NOPIE_PATH  the same program as a non-PIE ET_EXEC
//   SYMBOLIZE_TARGET_SOURCE      the fixture's source, whose "@marker"
//                                comments give the expected line numbers
// Addresses come from the fixture's own .symtab (read with libelf), so the
// test holds whatever the compiler lays out. Temporary trees (roots, debug
// dirs) go under $TMPDIR and are removed at the end of each test.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "reporter/import/elf_layout.h"
#include "reporter/symbolize/dwarf_symbolizer.h"

#ifndef SYMBOLIZE_TARGET_PATH
#error "link symbolize_test to the symbolize_fixture target (tests/unit/fixtures)"
#endif

namespace fs = std::filesystem;
using leakwatch::symbolize::demangle;
using leakwatch::symbolize::DwarfSymbolizer;
using leakwatch::import::elf_build_id_hex;
using leakwatch::symbolize::SourceFrame;
using leakwatch::symbolize::SymbolizerOptions;

namespace {

const std::string kTarget = SYMBOLIZE_TARGET_PATH;
const std::string kTargetNoPie = SYMBOLIZE_TARGET_NOPIE_PATH;
const std::string kSource = SYMBOLIZE_TARGET_SOURCE;
const std::string kSourceName = "symbolize_target.cpp";

constexpr const char* kLeaf = "fixture::leaf_function(int)";
constexpr const char* kOuter = "fixture::outer_function(int)";
constexpr const char* kDeep = "fixture::deep_inline(int)";
constexpr const char* kMiddle = "fixture::middle_inline(int)";

// Line of the "// @NAME" marker in the fixture source.
int marker_line(const std::string& name) {
  static const std::map<std::string, int> lines = [] {
    std::map<std::string, int> out;
    std::ifstream in(kSource);
    std::string text;
    for (int n = 1; std::getline(in, text); ++n) {
      size_t at = text.find("// @");
      if (at == std::string::npos) continue;
      size_t begin = at + 4, end = begin;
      while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_')) ++end;
      out[text.substr(begin, end - begin)] = n;
    }
    return out;
  }();
  auto it = lines.find(name);
  REQUIRE(it != lines.end());
  return it->second;
}

struct Symbol {
  uint64_t value = 0;
  uint64_t size = 0;
};

// A function's address range from PATH's .symtab, matched by demangled name.
std::optional<Symbol> find_function(const std::string& path, const std::string& demangled) {
  elf_version(EV_CURRENT);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<Symbol> found;
  if (Elf* elf = elf_begin(fd, ELF_C_READ, nullptr)) {
    for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn && !found; scn = elf_nextscn(elf, scn)) {
      GElf_Shdr shdr;
      if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type != SHT_SYMTAB) continue;
      Elf_Data* data = elf_getdata(scn, nullptr);
      size_t count = shdr.sh_entsize ? shdr.sh_size / shdr.sh_entsize : 0;
      for (size_t i = 0; data && i < count; ++i) {
        GElf_Sym sym;
        if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) continue;
        if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_size == 0) continue;
        const char* name = elf_strptr(elf, shdr.sh_link, sym.st_name);
        if (name && demangle(name) == demangled) {
          found = Symbol{sym.st_value, sym.st_size};
          break;
        }
      }
    }
    elf_end(elf);
  }
  ::close(fd);
  return found;
}

Symbol require_function(const std::string& path, const std::string& demangled) {
  auto sym = find_function(path, demangled);
  INFO(path << ": " << demangled);
  REQUIRE(sym.has_value());
  return *sym;
}

std::string basename_of(const std::string& path) { return fs::path(path).filename().string(); }

// A fresh directory under $TMPDIR, removed with its contents at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "lw_symbolize_XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return (path_ / rel).string(); }

 private:
  fs::path path_;
};

void copy_to(const std::string& from, const std::string& to) {
  fs::create_directories(fs::path(to).parent_path());
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

void write_file(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string build_id_path(const std::string& dir, const std::string& id) {
  return dir + "/.build-id/" + id.substr(0, 2) + "/" + id.substr(2) + ".debug";
}

// The first address in SYM whose innermost frame is at LINE.
std::optional<uint64_t> address_at_line(DwarfSymbolizer& s, const std::string& module,
                                        const std::string& id, const Symbol& sym, int line) {
  for (uint64_t a = sym.value; a < sym.value + sym.size; ++a) {
    auto frames = s.symbolize(module, id, a);
    if (!frames.empty() && frames.front().line == line) return a;
  }
  return std::nullopt;
}

// leaf_function's first instruction. GCC may give the entry address
// several line rows (the opening line, then the first statement, as
// zero-length "views"); the instruction belongs to the last of them, which
// is what libdw returns, so either line is right depending on the compiler.
void check_leaf_entry(const std::vector<SourceFrame>& frames) {
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].function == kLeaf);
  CHECK(basename_of(frames[0].file) == kSourceName);
  CHECK((frames[0].line == marker_line("leaf_decl") || frames[0].line == marker_line("leaf_body")));
  CHECK_FALSE(frames[0].inlined);
}

// deep_inline <- middle_inline <- outer_function, each at its call line.
void check_inline_chain(const std::vector<SourceFrame>& frames) {
  REQUIRE(frames.size() == 3);
  CHECK(frames[0].function == kDeep);
  CHECK(frames[0].line == marker_line("deep_calls_leaf"));
  CHECK(frames[0].inlined);
  CHECK(frames[1].function == kMiddle);
  CHECK(frames[1].line == marker_line("middle_calls_deep"));
  CHECK(frames[1].inlined);
  CHECK(frames[2].function == kOuter);
  CHECK(frames[2].line == marker_line("outer_calls_middle"));
  CHECK_FALSE(frames[2].inlined);
  for (const auto& f : frames) CHECK(basename_of(f.file) == kSourceName);
}

}  // namespace

TEST_CASE("symbolize: fixture has a build-id", "[symbolize]") {
  std::string id = elf_build_id_hex(kTarget);
  CHECK(id.size() == 40);  // --build-id=sha1
  CHECK(elf_build_id_hex(kTargetNoPie).size() == 40);
  CHECK(elf_build_id_hex(kTarget + ".stripped") == id);
  CHECK(elf_build_id_hex(kTarget + ".debug") == id);
  CHECK(elf_build_id_hex("/nonexistent/leakwatch/file").empty());
  CHECK(elf_build_id_hex(kSource).empty());  // not ELF
}

TEST_CASE("symbolize: non-inlined function, PIE and non-PIE", "[symbolize]") {
  for (const std::string& path : {kTarget, kTargetNoPie}) {
    INFO(path);
    std::string id = elf_build_id_hex(path);
    DwarfSymbolizer s(SymbolizerOptions{});
    Symbol leaf = require_function(path, kLeaf);
    check_leaf_entry(s.symbolize(path, id, leaf.value));
    CHECK(s.resolved_path(path, id) == path);
    CHECK(s.debug_path(path, id).empty());  // DWARF is in the file itself

    auto body = address_at_line(s, path, id, leaf, marker_line("leaf_body"));
    REQUIRE(body.has_value());
    auto frames = s.symbolize(path, id, *body);
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].function == kLeaf);

    // Cached and uncached answers agree; build-id case doesn't matter.
    CHECK(s.symbolize(path, id, *body) == frames);
    std::string upper = id;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    CHECK(s.symbolize(path, upper, *body) == frames);
  }
}

TEST_CASE("symbolize: two-level inline chain with call-site lines", "[symbolize]") {
  for (const std::string& path : {kTarget, kTargetNoPie}) {
    INFO(path);
    std::string id = elf_build_id_hex(path);
    DwarfSymbolizer s(SymbolizerOptions{});
    Symbol outer = require_function(path, kOuter);
    auto call = address_at_line(s, path, id, outer, marker_line("deep_calls_leaf"));
    REQUIRE(call.has_value());
    check_inline_chain(s.symbolize(path, id, *call));

    // Whatever is inlined at its entry, the real function comes last.
    auto entry = s.symbolize(path, id, outer.value);
    REQUIRE_FALSE(entry.empty());
    CHECK(entry.back().function == kOuter);
    CHECK_FALSE(entry.back().inlined);
    for (size_t i = 0; i + 1 < entry.size(); ++i) CHECK(entry[i].inlined);
  }
}

TEST_CASE("symbolize: stripped binary with debug file by build-id", "[symbolize]") {
  TempDir tmp;
  std::string id = elf_build_id_hex(kTarget);
  std::string app = tmp / "bin/app";  // no debuglink partner next to it
  copy_to(kTarget + ".stripped", app);
  std::string dbg = tmp / "dbg";
  copy_to(kTarget + ".debug", build_id_path(dbg, id));
  Symbol leaf = require_function(kTarget, kLeaf);
  Symbol outer = require_function(kTarget, kOuter);

  SECTION("without the debug dir there is nothing to name leaf_function") {
    DwarfSymbolizer s(SymbolizerOptions{});
    CHECK(s.resolved_path(app, id) == app);
    CHECK(s.symbolize(app, id, leaf.value).empty());
  }
  SECTION("with --debug-dir, DWARF comes from the build-id tree") {
    DwarfSymbolizer s(SymbolizerOptions{.root = "", .debug_dirs = {dbg}});
    check_leaf_entry(s.symbolize(app, id, leaf.value));
    CHECK(s.resolved_path(app, id) == app);
    CHECK(s.debug_path(app, id) == build_id_path(dbg, id));
    // Inline chains need the debug file's DWARF too.
    DwarfSymbolizer ref(SymbolizerOptions{});
    auto call = address_at_line(ref, kTarget, id, outer, marker_line("deep_calls_leaf"));
    REQUIRE(call.has_value());
    check_inline_chain(s.symbolize(app, id, *call));
  }
  SECTION("binary gone (post-mortem): the debug file alone is enough") {
    DwarfSymbolizer s(SymbolizerOptions{.root = "", .debug_dirs = {dbg}});
    std::string gone = tmp / "gone/app";
    check_leaf_entry(s.symbolize(gone, id, leaf.value));
    CHECK(s.resolved_path(gone, id) == build_id_path(dbg, id));
  }
  SECTION("binary gone and no build-id recorded: not found") {
    DwarfSymbolizer s(SymbolizerOptions{.root = "", .debug_dirs = {dbg}});
    CHECK(s.symbolize(tmp / "gone/app", "", leaf.value).empty());
  }
}

TEST_CASE("symbolize: stripped binary with .gnu_debuglink", "[symbolize]") {
  TempDir tmp;
  std::string id = elf_build_id_hex(kTarget);
  std::string app = tmp / "bin/app";
  copy_to(kTarget + ".stripped", app);
  Symbol leaf = require_function(kTarget, kLeaf);

  SECTION("in the binary's .debug/ subdirectory") {
    copy_to(kTarget + ".debug", tmp / "bin/.debug/symbolize_target.debug");
    DwarfSymbolizer s(SymbolizerOptions{});
    check_leaf_entry(s.symbolize(app, id, leaf.value));
    CHECK(s.debug_path(app, id) == tmp / "bin/.debug/symbolize_target.debug");
  }
  SECTION("under a debug dir, mirroring the recorded directory") {
    std::string dbg = tmp / "dbg";
    copy_to(kTarget + ".debug", dbg + (tmp / "bin/symbolize_target.debug"));
    DwarfSymbolizer s(SymbolizerOptions{.root = "", .debug_dirs = {dbg}});
    check_leaf_entry(s.symbolize(app, id, leaf.value));
  }
  SECTION("a debuglink file from another build is refused") {
    // Right name, wrong contents: the non-PIE build's debug info.
    copy_to(kTargetNoPie, tmp / "bin/.debug/symbolize_target.debug");
    DwarfSymbolizer s(SymbolizerOptions{});
    CHECK(s.symbolize(app, id, leaf.value).empty());
    CHECK(s.debug_path(app, id).empty());
  }
}

TEST_CASE("symbolize: dwz alternate file found by build-id", "[symbolize]") {
  // Debian's -dbgsym packages are dwz-compressed: part of the DWARF (here
  // the inlined functions' names) lives in a shared file named by
  // .gnu_debugaltlink. Needs the dwz tool; without it there is nothing to
  // check (the rest of the lookup is covered above).
  if (std::system("command -v dwz >/dev/null 2>&1") != 0) {
    WARN("dwz not installed: skipping the .gnu_debugaltlink check");
    return;
  }
  TempDir tmp;
  std::string a = tmp / "a", b = tmp / "b", common = tmp / "common.debug";
  copy_to(kTarget, a);
  copy_to(kTargetNoPie, b);
  std::string cmd = "dwz -m '" + common + "' -M /nonexistent/.dwz/common.debug '" + a + "' '" +
                    b + "' >/dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::string alt_id = elf_build_id_hex(common);
  REQUIRE(alt_id.size() > 2);
  std::string dbg = tmp / "dbg";
  copy_to(common, build_id_path(dbg, alt_id));

  std::string id = elf_build_id_hex(kTarget);
  Symbol outer = require_function(kTarget, kOuter);
  DwarfSymbolizer ref(SymbolizerOptions{});
  auto call = address_at_line(ref, kTarget, id, outer, marker_line("deep_calls_leaf"));
  REQUIRE(call.has_value());

  DwarfSymbolizer s(SymbolizerOptions{.root = "", .debug_dirs = {dbg}});
  check_inline_chain(s.symbolize(a, id, *call));
  check_leaf_entry(s.symbolize(a, id, require_function(kTarget, kLeaf).value));
}

TEST_CASE("symbolize: --root lookup", "[symbolize]") {
  TempDir tmp;
  std::string id = elf_build_id_hex(kTarget);
  Symbol leaf = require_function(kTarget, kLeaf);
  std::string root = tmp / "rootfs";

  SECTION("ROOT/P is preferred") {
    copy_to(kTarget, root + kTarget);
    DwarfSymbolizer s(SymbolizerOptions{.root = root + "/", .debug_dirs = {}});
    check_leaf_entry(s.symbolize(kTarget, id, leaf.value));
    CHECK(s.resolved_path(kTarget, id) == root + kTarget);
  }
  SECTION("the recorded path inside the root need not exist outside it") {
    std::string recorded = "/opt/app/bin/server";
    copy_to(kTarget, root + recorded);
    DwarfSymbolizer s(SymbolizerOptions{.root = root, .debug_dirs = {}});
    check_leaf_entry(s.symbolize(recorded, id, leaf.value));
    CHECK(s.resolved_path(recorded, id) == root + recorded);
    DwarfSymbolizer no_root(SymbolizerOptions{});
    CHECK(no_root.symbolize(recorded, id, leaf.value).empty());
  }
  SECTION("nothing under ROOT: P itself") {
    fs::create_directories(root);
    DwarfSymbolizer s(SymbolizerOptions{.root = root, .debug_dirs = {}});
    check_leaf_entry(s.symbolize(kTarget, id, leaf.value));
    CHECK(s.resolved_path(kTarget, id) == kTarget);
  }
  SECTION("ROOT/P with another build-id is skipped for P") {
    copy_to(kTargetNoPie, root + kTarget);
    DwarfSymbolizer s(SymbolizerOptions{.root = root, .debug_dirs = {}});
    check_leaf_entry(s.symbolize(kTarget, id, leaf.value));
    CHECK(s.resolved_path(kTarget, id) == kTarget);
  }
}

TEST_CASE("symbolize: build-id mismatch and empty build-id", "[symbolize]") {
  Symbol leaf = require_function(kTarget, kLeaf);
  DwarfSymbolizer s(SymbolizerOptions{});
  std::string wrong(40, 'a');
  CHECK(s.symbolize(kTarget, wrong, leaf.value).empty());
  CHECK(s.resolved_path(kTarget, wrong).empty());
  CHECK(s.symbolize(kTarget, "00", leaf.value).empty());
  // No recorded build-id: whatever is at the path is trusted.
  check_leaf_entry(s.symbolize(kTarget, "", leaf.value));
  CHECK(s.resolved_path(kTarget, "") == kTarget);
}

TEST_CASE("symbolize: missing and unusable files give empty results", "[symbolize]") {
  TempDir tmp;
  DwarfSymbolizer s(SymbolizerOptions{.root = tmp / "noroot", .debug_dirs = {tmp / "nodbg"}});
  Symbol leaf = require_function(kTarget, kLeaf);
  std::string id = elf_build_id_hex(kTarget);

  CHECK(s.symbolize("/nonexistent/leakwatch/app", "", 0x1000).empty());
  CHECK(s.symbolize("/nonexistent/leakwatch/app", id, leaf.value).empty());
  CHECK(s.resolved_path("/nonexistent/leakwatch/app", id).empty());
  CHECK(s.symbolize("", "", 0x1000).empty());
  CHECK(s.symbolize("[vdso]", "", 0x1000).empty());
  CHECK(s.symbolize(tmp.path().string(), "", 0x1000).empty());  // a directory
  CHECK(s.symbolize(kSource, "", 1).empty());                    // not ELF

  std::string empty = tmp / "empty";
  write_file(empty, "");
  CHECK(s.symbolize(empty, "", 0).empty());

  std::string fifo = tmp / "fifo";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(s.symbolize(fifo, "", 0).empty());  // must not block

  // Addresses outside the module.
  CHECK(s.symbolize(kTarget, id, 0).empty());
  CHECK(s.symbolize(kTarget, id, UINT64_MAX).empty());
  CHECK(s.symbolize(kTarget, id, UINT64_MAX - 16).empty());
  CHECK(s.symbolize(kTarget, id, 0x7fffffffffffULL).empty());
}

TEST_CASE("symbolize: corrupt ELF files never crash", "[symbolize]") {
  TempDir tmp;
  std::string bytes = read_bytes(kTarget);
  REQUIRE(bytes.size() > 4096);
  Symbol leaf = require_function(kTarget, kLeaf);
  Symbol outer = require_function(kTarget, kOuter);

  std::vector<std::pair<std::string, std::string>> variants;
  variants.emplace_back("truncated_header", bytes.substr(0, 40));
  variants.emplace_back("truncated_half", bytes.substr(0, bytes.size() / 2));
  {
    std::string b = bytes;  // section header table pointing past the end
    for (int i = 0; i < 8; ++i) b[0x28 + i] = '\x7f';
    variants.emplace_back("bad_shoff", b);
  }
  {
    std::string b = bytes;  // program header table pointing past the end
    for (int i = 0; i < 8; ++i) b[0x20 + i] = '\x7f';
    variants.emplace_back("bad_phoff", b);
  }
  {
    std::string b = bytes;  // garbage over the back half (DWARF, tables)
    uint32_t x = 12345;
    for (size_t i = b.size() / 2; i < b.size(); ++i) {
      x = x * 1103515245u + 12345u;
      b[i] = static_cast<char>(x >> 16);
    }
    variants.emplace_back("garbage_tail", b);
  }
  {
    std::string b = bytes;  // every 97th byte flipped
    for (size_t i = 64; i < b.size(); i += 97) b[i] = static_cast<char>(~b[i]);
    variants.emplace_back("sprinkled", b);
  }
  for (const auto& [name, content] : variants) {
    INFO(name);
    std::string path = tmp / name;
    write_file(path, content);
    DwarfSymbolizer s(SymbolizerOptions{});
    for (uint64_t a : {leaf.value, outer.value, outer.value + outer.size / 2, uint64_t{0}}) {
      (void)s.symbolize(path, "", a);  // any answer is fine; no crash
    }
    (void)s.debug_path(path, "");
  }
  SUCCEED("no crash");
}

TEST_CASE("demangle", "[symbolize]") {
  CHECK(demangle("_ZN7fixture13leaf_functionEi") == "fixture::leaf_function(int)");
  CHECK(demangle("_ZNSt6vectorIiSaIiEE9push_backERKi") ==
        "std::vector<int, std::allocator<int> >::push_back(int const&)");
  CHECK(demangle("_Z3fooi.cold") == "foo(int) [clone .cold]");
  CHECK(demangle("main") == "main");
  CHECK(demangle("malloc") == "malloc");
  CHECK(demangle("i") == "i");  // a mangled *type*, but not a symbol
  CHECK(demangle("") == "");
  CHECK(demangle("_Z") == "_Z");
  CHECK(demangle("_Z!!not-a-name") == "_Z!!not-a-name");
}
