// DWARF symbolization of module-relative addresses (reporter stage
// "symbolize").
//
// The shim records raw return addresses and a module map (path as seen by
// the target, GNU build-id, load bias). The reporter turns each frame into
// an ELF virtual address inside its module and asks this stage for
// function, file and line, including the chain of inlined frames. When the
// module cannot be found (the container is gone, the build-id does not
// match) the answer is empty and the caller falls back to the names the
// dump carries.
//
// Where a module is looked for, in order (first acceptable file wins):
//   1. ROOT/P, then P (P = recorded path, ROOT = SymbolizerOptions::root);
//   2. in each debug dir D (the --debug-dir list, then ROOT/usr/lib/debug
//      when a root is set, then /usr/lib/debug):
//      D/.build-id/xx/rest, D/.build-id/xx/rest.debug, D/P, D/P.debug.
//   A file is acceptable when it is an ELF file whose build-id equals the
//   recorded one; when no build-id was recorded any ELF file is accepted.
//   If the accepted file has no DWARF (stripped), a separate debug file is
//   looked for by build-id in the debug dirs and by its .gnu_debuglink name
//   (next to the file, in its .debug/ subdir, and under each debug dir),
//   and validated by build-id (or by the debuglink CRC when the module has
//   no build-id). dwz alternate files (.gnu_debugaltlink) are found the
//   same way. Nothing is ever fetched over the network (no debuginfod).
//
// Thread-safety: none. One DwarfSymbolizer must be used by one thread at a
// time (it caches open modules and results without locking). Distinct
// instances are independent.
// Allocation: yes, freely (this is the reporter, not the shim).
// Errors: never thrown for bad input. A missing, corrupt or mismatching
// file, or an address outside every function, gives an empty result.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace leakwatch::symbolize {

// One source-level frame. `line` is 0 and `file` empty when unknown.
struct SourceFrame {
  // Demangled, e.g. "ns::Cls::method(int)"; never empty ("??" for an
  // inlined frame whose name the debug info does not give).
  std::string function;
  std::string file;      // as recorded in DWARF (usually absolute)
  int line = 0;
  // True when this function was inlined into the next (outer) frame, i.e.
  // it has no machine frame of its own.
  bool inlined = false;

  bool operator==(const SourceFrame&) const = default;
};

struct SymbolizerOptions {
  // --root ROOTFS: a recorded path P is looked up as ROOT/P first, then P.
  std::string root;
  // --debug-dir D, searched in order as D/.build-id/xx/rest.debug and D/P;
  // /usr/lib/debug is always searched last.
  std::vector<std::string> debug_dirs;
};

class DwarfSymbolizer {
 public:
  explicit DwarfSymbolizer(SymbolizerOptions options);
  ~DwarfSymbolizer();
  DwarfSymbolizer(const DwarfSymbolizer&) = delete;
  DwarfSymbolizer& operator=(const DwarfSymbolizer&) = delete;

  // Frames for one address, innermost (inlined callee) first, the
  // containing real function last. `vaddr` is an ELF virtual address in
  // the module (runtime address minus load bias); for return addresses the
  // caller has already subtracted 1. `build_id_hex` may be empty (then any
  // file at the path is trusted). Empty when the module can't be found,
  // its build-id doesn't match, or no symbol covers the address.
  // Results are cached per (module, vaddr); each module is opened once.
  std::vector<SourceFrame> symbolize(const std::string& module_path,
                                     const std::string& build_id_hex,
                                     uint64_t vaddr);

  // The file that was opened for this module (for diagnostics), or "" if
  // none was acceptable.
  std::string resolved_path(const std::string& module_path,
                            const std::string& build_id_hex);

  // The separate debug file used for DWARF, or "" when the module file
  // itself carries DWARF, none was found, or the module is not found.
  // Opens the module's DWARF if not done yet.
  std::string debug_path(const std::string& module_path,
                         const std::string& build_id_hex);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Demangles a C++ (Itanium ABI) symbol name; returns the input unchanged
// when it is not a mangled name (only names starting with "_Z" are tried,
// so plain C names such as "i" or "main" are never mistaken for types).
std::string demangle(const std::string& mangled);

}  // namespace leakwatch::symbolize
