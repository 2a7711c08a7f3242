#include "reporter/cli/target.h"

#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace leakwatch::cli {

namespace {

std::string resolve(const std::string& program) {
  if (program.find('/') != std::string::npos) return program;
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/local/bin:/usr/bin:/bin", ':')) {
    std::string p = absl::StrCat(dir.empty() ? "." : dir, "/", program);
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// Does the dynamic symbol table define malloc (an allocator linked in statically)?
bool defines_malloc(Elf* elf) {
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || sh.sh_entsize == 0) continue;
    size_t n = sh.sh_size / sh.sh_entsize;
    for (size_t i = 0; i < n; ++i) {
      GElf_Sym sym;
      if (!gelf_getsym(data, static_cast<int>(i), &sym) || sym.st_shndx == SHN_UNDEF) continue;
      const char* name = elf_strptr(elf, sh.sh_link, sym.st_name);
      if (name && std::strcmp(name, "malloc") == 0 && GELF_ST_TYPE(sym.st_info) == STT_FUNC) return true;
    }
  }
  return false;
}

}  // namespace

TargetInfo inspect_target(const std::string& program) {
  TargetInfo t;
  t.path = resolve(program);
  if (t.path.empty()) return t;
  {
    std::ifstream f(t.path, std::ios::binary);
    char head[2] = {};
    if (f.read(head, 2) && head[0] == '#' && head[1] == '!') {
      std::string line;
      std::getline(f, line);
      t.kind = TargetKind::kScript;
      t.interpreter = line;
      return t;
    }
  }
  elf_version(EV_CURRENT);
  int fd = open(t.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return t;
  t.kind = TargetKind::kNotElf;
  if (Elf* elf = elf_begin(fd, ELF_C_READ, nullptr)) {
    size_t nph = 0;
    if (elf_kind(elf) == ELF_K_ELF && elf_getphdrnum(elf, &nph) == 0) {
      bool dynamic = false;
      for (size_t i = 0; i < nph; ++i) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, static_cast<int>(i), &ph)) continue;
        if (ph.p_type == PT_DYNAMIC) dynamic = true;
        if (ph.p_type == PT_INTERP) {
          size_t size = 0;
          const char* image = elf_rawfile(elf, &size);
          if (image && ph.p_offset < size && ph.p_filesz <= size - ph.p_offset)
            t.interpreter.assign(image + ph.p_offset, strnlen(image + ph.p_offset, ph.p_filesz));
        }
      }
      if (t.interpreter.empty() && !dynamic) t.kind = TargetKind::kStatic;
      else if (t.interpreter.find("musl") != std::string::npos) t.kind = TargetKind::kMusl;
      else if (t.interpreter.empty()) t.kind = TargetKind::kStatic;  // static-pie
      else if (defines_malloc(elf)) t.kind = TargetKind::kOwnMalloc;
      else t.kind = TargetKind::kPreloadable;
    }
    elf_end(elf);
  }
  close(fd);
  return t;
}

std::string target_problem(const TargetInfo& t) {
  switch (t.kind) {
    case TargetKind::kStatic:
      return absl::StrCat(t.path, " is a static binary: the shim cannot be preloaded into it (LD_PRELOAD needs the dynamic loader)");
    case TargetKind::kMusl:
      return absl::StrCat(t.path, " is linked with musl (", t.interpreter,
                          "): the shim is built for glibc and cannot be loaded into it (use a glibc-based image, e.g. debian:12-slim)");
    case TargetKind::kOwnMalloc:
      return absl::StrCat(t.path, " defines malloc itself (an allocator linked in statically): its allocations do not "
                          "reach the shim, so they cannot be seen");
    default:
      return "";
  }
}

}  // namespace leakwatch::cli
