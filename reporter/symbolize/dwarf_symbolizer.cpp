// DWARF symbolization with elfutils' libdwfl; see dwarf_symbolizer.h for
// the lookup order and the contract.
//
// Each module gets its own offline Dwfl session holding exactly one module,
// reported with dwfl_report_elf at base 0 relative to p_vaddr, so module
// addresses are ELF virtual addresses (plus a bias that is 0 in practice;
// we still add whatever dwfl reports, so prelinked or odd files stay
// right). Separate debug files are found by our own find_debuginfo
// callback rather than dwfl_standard_find_debuginfo, because the search
// must honour --root and --debug-dir and must never reach debuginfod.
#include "reporter/symbolize/dwarf_symbolizer.h"

#include <cxxabi.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace leakwatch::symbolize {
namespace {

std::string to_hex(const void* data, size_t len) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out;
  out.reserve(len * 2);
  for (size_t i = 0; i < len; ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 0xf]);
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

// DIR joined with PATH; PATH may be absolute ("/a" + "/b/c" -> "/a/b/c").
std::string join(const std::string& dir, const std::string& path) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  if (path.empty()) return d;
  if (path.front() == '/') return d == "/" ? path : d + path;
  return d + "/" + path;
}

std::string dirname_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// An open regular file with a libelf handle on it. Closing order matters
// (elf_end before close), hence the small RAII type.
class ElfHandle {
 public:
  ElfHandle() = default;
  ElfHandle(const ElfHandle&) = delete;
  ElfHandle& operator=(const ElfHandle&) = delete;
  ~ElfHandle() { reset(); }

  // Opens PATH; false (and nothing held) unless it is a regular ELF file.
  // O_NONBLOCK so that a FIFO at a recorded path can't hang us.
  bool open(const std::string& path) {
    reset();
    if (path.empty()) return false;
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd_ < 0) return false;
    struct stat st;
    if (fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
      reset();
      return false;
    }
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    elf_ = elf_begin(fd_, ELF_C_READ_MMAP, nullptr);
    if (elf_ == nullptr || elf_kind(elf_) != ELF_K_ELF) {
      reset();
      return false;
    }
    return true;
  }

  // Gives up the descriptor (the Elf handle is closed first).
  int release_fd() {
    if (elf_ != nullptr) elf_end(elf_);
    elf_ = nullptr;
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

  void reset() {
    if (elf_ != nullptr) elf_end(elf_);
    elf_ = nullptr;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  Elf* elf() const { return elf_; }
  int fd() const { return fd_; }
  bool same_file(dev_t dev, ino_t ino) const { return dev == dev_ && ino == ino_; }
  dev_t dev() const { return dev_; }
  ino_t ino() const { return ino_; }

  // ET_EXEC or ET_DYN: something with program headers we can place at a
  // base address. Relocatable objects and cores are refused.
  bool is_loadable() const {
    GElf_Ehdr ehdr;
    if (gelf_getehdr(elf_, &ehdr) == nullptr) return false;
    return ehdr.e_type == ET_EXEC || ehdr.e_type == ET_DYN;
  }

  std::string build_id() const {
    const void* bits = nullptr;
    ssize_t len = dwelf_elf_gnu_build_id(elf_, &bits);
    if (len <= 0 || bits == nullptr) return {};
    return to_hex(bits, static_cast<size_t>(len));
  }

  // The .gnu_debugaltlink contents (file name, build-id hex) if present.
  std::optional<std::pair<std::string, std::string>> altlink() const {
    size_t shstrndx = 0;
    if (elf_getshdrstrndx(elf_, &shstrndx) != 0) return std::nullopt;
    for (Elf_Scn* scn = elf_nextscn(elf_, nullptr); scn != nullptr;
         scn = elf_nextscn(elf_, scn)) {
      GElf_Shdr shdr;
      if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type == SHT_NOBITS) continue;
      const char* name = elf_strptr(elf_, shstrndx, shdr.sh_name);
      if (name == nullptr || std::strcmp(name, ".gnu_debugaltlink") != 0) continue;
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (data == nullptr || data->d_buf == nullptr) return std::nullopt;
      const char* begin = static_cast<const char*>(data->d_buf);
      const void* nul = std::memchr(begin, '\0', data->d_size);
      if (nul == nullptr) return std::nullopt;
      size_t name_len = static_cast<size_t>(static_cast<const char*>(nul) - begin);
      size_t id_len = data->d_size - name_len - 1;
      if (name_len == 0 || id_len == 0) return std::nullopt;
      return std::make_pair(std::string(begin, name_len),
                            to_hex(begin + name_len + 1, id_len));
    }
    return std::nullopt;
  }

  // CRC-32 of the whole file, as .gnu_debuglink records it.
  std::optional<uint32_t> crc32_of_file() const {
    uLong crc = crc32(0L, Z_NULL, 0);
    std::vector<unsigned char> buf(1 << 16);
    off_t off = 0;
    for (;;) {
      ssize_t n = pread(fd_, buf.data(), buf.size(), off);
      if (n < 0) return std::nullopt;
      if (n == 0) break;
      crc = crc32(crc, buf.data(), static_cast<uInt>(n));
      off += n;
    }
    return static_cast<uint32_t>(crc);
  }

 private:
  int fd_ = -1;
  Elf* elf_ = nullptr;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

bool is_function_scope(int tag) {
  return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine ||
         tag == DW_TAG_entry_point;
}

// Name of a subprogram or inlined instance; inlined instances and
// out-of-line definitions carry their names on the abstract origin or the
// declaration, which dwarf_attr_integrate follows.
std::string die_function_name(Dwarf_Die* die) {
  Dwarf_Attribute attr;
  const char* name = nullptr;
  if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) != nullptr) {
    name = dwarf_formstring(&attr);
  }
  if (name == nullptr && dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr) != nullptr) {
    name = dwarf_formstring(&attr);
  }
  if (name != nullptr) return demangle(name);
  if (dwarf_attr_integrate(die, DW_AT_name, &attr) != nullptr) {
    name = dwarf_formstring(&attr);
  }
  return name != nullptr ? name : "";
}

// DW_AT_call_file / DW_AT_call_line of an inlined instance: the place in
// the enclosing function where the inlined call was written.
void call_site(Dwarf_Die* inlined, std::string* file, int* line) {
  file->clear();
  *line = 0;
  Dwarf_Attribute attr;
  Dwarf_Word value = 0;
  if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_line, &attr), &value) == 0) {
    *line = static_cast<int>(value);
  }
  if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_file, &attr), &value) != 0) return;
  Dwarf_Die cu;
  if (dwarf_diecu(inlined, &cu, nullptr, nullptr) == nullptr) return;
  Dwarf_Files* files = nullptr;
  size_t nfiles = 0;
  if (dwarf_getsrcfiles(&cu, &files, &nfiles) != 0 || value >= nfiles) return;
  if (const char* name = dwarf_filesrc(files, value, nullptr, nullptr)) *file = name;
}

// The function scopes containing PC, innermost first, each with the
// source position that belongs to it: the innermost gets the line-table
// position (LEAF_FILE:LEAF_LINE), every outer one the call site of the
// inlined instance just inside it. Stops at the first real subprogram.
std::vector<SourceFrame> inline_chain(Dwarf_Die* cu, Dwarf_Addr pc,
                                      const std::string& leaf_file, int leaf_line) {
  // dwarf_getscopes may append scopes from abstract origins (which carry
  // no code); the innermost function scope that really covers PC is a
  // concrete DIE, and its physical parents are the inline chain.
  Dwarf_Die* scopes = nullptr;
  int nscopes = dwarf_getscopes(cu, pc, &scopes);
  Dwarf_Die innermost;
  bool found = false;
  for (int i = 0; i < nscopes; ++i) {
    if (is_function_scope(dwarf_tag(&scopes[i])) && dwarf_haspc(&scopes[i], pc) > 0) {
      innermost = scopes[i];
      found = true;
      break;
    }
  }
  std::free(scopes);
  if (!found) return {};

  Dwarf_Die* chain = nullptr;
  int nchain = dwarf_getscopes_die(&innermost, &chain);
  Dwarf_Die* dies = chain;
  if (nchain <= 0) {  // can't see the parents: report the function alone
    dies = &innermost;
    nchain = 1;
  }
  std::vector<SourceFrame> out;
  std::string file = leaf_file;
  int line = leaf_line;
  for (int i = 0; i < nchain; ++i) {
    int tag = dwarf_tag(&dies[i]);
    if (!is_function_scope(tag)) continue;
    bool inlined = tag == DW_TAG_inlined_subroutine;
    out.push_back(SourceFrame{die_function_name(&dies[i]), file, line, inlined});
    if (!inlined) break;
    call_site(&dies[i], &file, &line);
  }
  std::free(chain);
  return out;
}

}  // namespace

std::string demangle(const std::string& mangled) {
  if (mangled.size() < 2 || mangled.compare(0, 2, "_Z") != 0) return mangled;
  int status = 0;
  char* out = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
  std::string result = (status == 0 && out != nullptr) ? std::string(out) : mangled;
  std::free(out);
  return result;
}

namespace {

struct Module {
  const std::vector<std::string>* debug_dirs = nullptr;
  std::string root;
  std::string recorded_path;
  std::string found_path;     // the file reported to dwfl
  std::string file_build_id;  // hex, read from found_path ("" if none)
  std::string debug_file;     // separate DWARF file, once found
  dev_t found_dev = 0;
  ino_t found_ino = 0;
  Dwfl* dwfl = nullptr;
  Dwfl_Module* mod = nullptr;
  Dwarf_Addr bias = 0;   // dwfl address = ELF vaddr + bias
  Dwarf_Addr start = 0;  // module's address range in dwfl addresses
  Dwarf_Addr end = 0;
  bool dwarf_loaded = false;

  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  ~Module() {
    if (dwfl != nullptr) dwfl_end(dwfl);
  }
};

int no_find_elf(Dwfl_Module*, void**, const char*, Dwarf_Addr, char**, Elf**) {
  return -1;  // every module is reported with its file; never asked
}

// Candidate separate-debug files for MOD, in search order. ALT: looking
// for the dwz alternate file named NAME rather than the debug file.
std::vector<std::string> debug_candidates(const Module& m, const std::string& file_name,
                                          const char* link, const std::string& expected_id,
                                          bool alt) {
  std::vector<std::string> out;
  if (expected_id.size() > 2) {
    std::string rel = ".build-id/" + expected_id.substr(0, 2) + "/" + expected_id.substr(2);
    for (const auto& d : *m.debug_dirs) out.push_back(join(d, rel) + ".debug");
  }
  if (link != nullptr && *link != '\0') {
    std::string name = link;
    if (name.front() == '/') {
      if (!m.root.empty()) out.push_back(join(m.root, name));
      out.push_back(name);
      for (const auto& d : *m.debug_dirs) out.push_back(join(d, name));
    } else {
      std::string here = dirname_of(file_name);
      out.push_back(join(here, name));
      out.push_back(join(join(here, ".debug"), name));
      std::string recorded_dir = dirname_of(m.recorded_path);
      for (const auto& d : *m.debug_dirs) {
        out.push_back(join(join(d, recorded_dir), name));
        if (here != recorded_dir) out.push_back(join(join(d, here), name));
        out.push_back(join(d, name));
      }
    }
  }
  if (!alt && !m.recorded_path.empty()) {
    for (const auto& d : *m.debug_dirs) {
      out.push_back(join(d, m.recorded_path) + ".debug");
      out.push_back(join(d, m.recorded_path));
    }
  }
  return out;
}

int find_debuginfo_impl(Dwfl_Module*, void** userdata, const char* file_name,
                        const char* debuglink_file, GElf_Word debuglink_crc,
                        char** debuginfo_file_name) {
  if (userdata == nullptr || *userdata == nullptr) return -1;
  Module& m = *static_cast<Module*>(*userdata);
  std::string from = file_name != nullptr ? file_name : m.found_path;

  // dwfl asks the same callback for the dwz alternate file, passing the
  // .gnu_debugaltlink name as DEBUGLINK_FILE: tell the two requests apart
  // by reading the altlink of the file that holds the DWARF.
  bool alt = false;
  std::string expected_id = m.file_build_id;
  if (debuglink_file != nullptr) {
    ElfHandle holder;
    if (holder.open(from)) {
      if (auto link = holder.altlink(); link && link->first == debuglink_file) {
        alt = true;
        expected_id = link->second;
      }
    }
  }

  for (const std::string& path :
       debug_candidates(m, from, debuglink_file, expected_id, alt)) {
    ElfHandle cand;
    if (!cand.open(path) || cand.same_file(m.found_dev, m.found_ino)) continue;
    if (!expected_id.empty()) {
      if (cand.build_id() != expected_id) continue;
    } else if (debuglink_crc != 0) {
      if (cand.crc32_of_file() != std::optional<uint32_t>(debuglink_crc)) continue;
    }
    // No build-id and no CRC: nothing to check against; trust the name.
    char* copy = strdup(path.c_str());
    if (copy == nullptr) return -1;
    *debuginfo_file_name = copy;
    if (!alt) m.debug_file = path;
    return cand.release_fd();
  }
  return -1;
}

int find_debuginfo(Dwfl_Module* mod, void** userdata, const char*, Dwarf_Addr,
                   const char* file_name, const char* debuglink_file,
                   GElf_Word debuglink_crc, char** debuginfo_file_name) {
  try {  // called from C: nothing may propagate
    return find_debuginfo_impl(mod, userdata, file_name, debuglink_file, debuglink_crc,
                               debuginfo_file_name);
  } catch (...) {
    return -1;
  }
}

const Dwfl_Callbacks kCallbacks = {
    .find_elf = no_find_elf,
    .find_debuginfo = find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = nullptr,
};

struct ResultKey {
  const Module* module;
  uint64_t vaddr;
  bool operator==(const ResultKey&) const = default;
};

struct ResultKeyHash {
  size_t operator()(const ResultKey& k) const {
    size_t h = std::hash<const void*>()(k.module);
    return h ^ (std::hash<uint64_t>()(k.vaddr) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
  }
};

}  // namespace

struct DwarfSymbolizer::Impl {
  std::string root;
  std::vector<std::string> debug_dirs;  // --debug-dir..., ROOT/usr/lib/debug, /usr/lib/debug
  std::unordered_map<std::string, std::unique_ptr<Module>> modules;
  std::unordered_map<ResultKey, std::vector<SourceFrame>, ResultKeyHash> results;

  explicit Impl(SymbolizerOptions options) : root(std::move(options.root)) {
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    if (root == "/") root.clear();
    auto add_dir = [this](const std::string& d) {
      if (d.empty()) return;
      for (const auto& have : debug_dirs) {
        if (have == d) return;
      }
      debug_dirs.push_back(d);
    };
    for (const auto& d : options.debug_dirs) add_dir(d);
    if (!root.empty()) add_dir(join(root, "/usr/lib/debug"));
    add_dir("/usr/lib/debug");
  }

  std::vector<std::string> main_candidates(const std::string& path, const std::string& id) const {
    std::vector<std::string> paths;
    if (!path.empty()) {
      paths.push_back(path);
      // /proc/PID/maps marks a replaced binary; the build-id check keeps
      // us from trusting whatever now sits at that path.
      static constexpr std::string_view kDeleted = " (deleted)";
      if (path.size() > kDeleted.size() && path.ends_with(kDeleted)) {
        paths.push_back(path.substr(0, path.size() - kDeleted.size()));
      }
    }
    std::vector<std::string> out;
    for (const auto& p : paths) {
      if (!root.empty()) out.push_back(join(root, p));
      out.push_back(p);
    }
    for (const auto& d : debug_dirs) {
      if (id.size() > 2) {
        std::string rel = ".build-id/" + id.substr(0, 2) + "/" + id.substr(2);
        out.push_back(join(d, rel));
        out.push_back(join(d, rel) + ".debug");
      }
      for (const auto& p : paths) {
        out.push_back(join(d, p));
        out.push_back(join(d, p) + ".debug");
      }
    }
    return out;
  }

  Module* module(const std::string& path, const std::string& build_id_hex) {
    std::string id = lower(build_id_hex);
    std::string key = path;
    key.push_back('\0');
    key += id;
    auto it = modules.find(key);
    if (it != modules.end()) return it->second.get();
    auto m = std::make_unique<Module>();
    m->debug_dirs = &debug_dirs;
    m->root = root;
    m->recorded_path = path;
    open_module(*m, id);
    return modules.emplace(std::move(key), std::move(m)).first->second.get();
  }

  void open_module(Module& m, const std::string& id) {
    for (const std::string& cand : main_candidates(m.recorded_path, id)) {
      ElfHandle file;
      if (!file.open(cand) || !file.is_loadable()) continue;
      std::string file_id = file.build_id();
      if (!id.empty() && file_id != id) continue;
      if (report(m, cand)) {
        m.found_path = cand;
        m.file_build_id = file_id;
        m.found_dev = file.dev();
        m.found_ino = file.ino();
        return;
      }
    }
  }

  // One Dwfl session holding just this file, addresses = ELF vaddrs.
  bool report(Module& m, const std::string& file) {
    Dwfl* dwfl = dwfl_begin(&kCallbacks);
    if (dwfl == nullptr) return false;
    dwfl_report_begin(dwfl);
    const std::string& name = m.recorded_path.empty() ? file : m.recorded_path;
    Dwfl_Module* mod = dwfl_report_elf(dwfl, name.c_str(), file.c_str(), -1, 0, true);
    if (mod == nullptr || dwfl_report_end(dwfl, nullptr, nullptr) != 0) {
      dwfl_end(dwfl);
      return false;
    }
    void** userdata = nullptr;
    Dwarf_Addr start = 0, end = 0;
    dwfl_module_info(mod, &userdata, &start, &end, nullptr, nullptr, nullptr, nullptr);
    GElf_Addr bias = 0;
    if (userdata == nullptr || dwfl_module_getelf(mod, &bias) == nullptr || end <= start) {
      dwfl_end(dwfl);
      return false;
    }
    *userdata = &m;
    m.dwfl = dwfl;
    m.mod = mod;
    m.bias = bias;
    m.start = start;
    m.end = end;
    return true;
  }

  void load_dwarf(Module& m) {
    if (m.dwarf_loaded || m.mod == nullptr) return;
    m.dwarf_loaded = true;
    Dwarf_Addr bias = 0;
    dwfl_module_getdwarf(m.mod, &bias);  // may legitimately fail: no DWARF
  }

  std::vector<SourceFrame> frames_for(Module& m, uint64_t vaddr) {
    load_dwarf(m);
    Dwarf_Addr addr = vaddr + m.bias;  // wraps harmlessly; range-checked
    if (addr < m.start || addr >= m.end) return {};

    std::vector<SourceFrame> out;
    std::string leaf_file;
    int leaf_line = 0;
    Dwarf_Addr cu_bias = 0;
    if (Dwarf_Die* cu = dwfl_module_addrdie(m.mod, addr, &cu_bias)) {
      Dwarf_Addr pc = addr - cu_bias;
      if (Dwarf_Line* line = dwarf_getsrc_die(cu, pc)) {
        if (const char* f = dwarf_linesrc(line, nullptr, nullptr)) leaf_file = f;
        dwarf_lineno(line, &leaf_line);
      }
      out = inline_chain(cu, pc, leaf_file, leaf_line);
    }

    // No DWARF function (stripped file without debug file, or code from a
    // CU without debug info): the ELF symbol tables (.symtab, .dynsym,
    // MiniDebugInfo) still name the real function.
    bool need_symbol = out.empty() || out.back().inlined || out.back().function.empty();
    if (need_symbol) {
      GElf_Off offset = 0;
      GElf_Sym sym;
      const char* name =
          dwfl_module_addrinfo(m.mod, addr, &offset, &sym, nullptr, nullptr, nullptr);
      if (name != nullptr && *name != '\0') {
        std::string fn = demangle(name);
        if (out.empty()) {
          out.push_back(SourceFrame{std::move(fn), leaf_file, leaf_line, false});
        } else if (out.back().inlined) {
          // The chain did not reach its subprogram; the symbol is the real
          // function the inlined code sits in (call site unknown).
          out.push_back(SourceFrame{std::move(fn), "", 0, false});
        } else {
          out.back().function = std::move(fn);
        }
      }
    }
    // A frame needs a name to be of use (e.g. DWARF whose dwz alternate
    // file is missing): nameless chains are "not found", and a nameless
    // frame inside a named chain is shown as "??", as addr2line does.
    bool any_named = false;
    for (const auto& f : out) any_named = any_named || !f.function.empty();
    if (!any_named) return {};
    for (auto& f : out) {
      if (f.function.empty()) f.function = "??";
    }
    return out;
  }
};

DwarfSymbolizer::DwarfSymbolizer(SymbolizerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  elf_version(EV_CURRENT);
}

DwarfSymbolizer::~DwarfSymbolizer() = default;

std::vector<SourceFrame> DwarfSymbolizer::symbolize(const std::string& module_path,
                                                    const std::string& build_id_hex,
                                                    uint64_t vaddr) {
  Module* m = impl_->module(module_path, build_id_hex);
  if (m->mod == nullptr) return {};
  ResultKey key{m, vaddr};
  auto it = impl_->results.find(key);
  if (it != impl_->results.end()) return it->second;
  std::vector<SourceFrame> frames = impl_->frames_for(*m, vaddr);
  impl_->results.emplace(key, frames);
  return frames;
}

std::string DwarfSymbolizer::resolved_path(const std::string& module_path,
                                           const std::string& build_id_hex) {
  return impl_->module(module_path, build_id_hex)->found_path;
}

std::string DwarfSymbolizer::debug_path(const std::string& module_path,
                                        const std::string& build_id_hex) {
  Module* m = impl_->module(module_path, build_id_hex);
  impl_->load_dwarf(*m);
  return m->debug_file;
}

}  // namespace leakwatch::symbolize
