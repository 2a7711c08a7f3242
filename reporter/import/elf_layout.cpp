#include "reporter/import/elf_layout.h"

#include <elf.h>
#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

namespace leakwatch::import {

std::string elf_build_id_hex(const std::string& path) {
  // O_NONBLOCK and regular files only: a FIFO at a recorded path must not hang us.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return {};
  std::string out;
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    elf_version(EV_CURRENT);
    if (Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr)) {
      const void* bits = nullptr;
      ssize_t len = elf_kind(elf) == ELF_K_ELF ? dwelf_elf_gnu_build_id(elf, &bits) : -1;
      static constexpr char kDigits[] = "0123456789abcdef";
      for (ssize_t i = 0; bits != nullptr && i < len; ++i) {
        unsigned char b = static_cast<const unsigned char*>(bits)[i];
        out += kDigits[b >> 4];
        out += kDigits[b & 15];
      }
      elf_end(elf);
    }
  }
  ::close(fd);
  return out;
}

ElfLayout read_elf_layout(const std::string& path) {
  ElfLayout e;
  // Only regular files: a FIFO or device named in a hostile profile would
  // block (or never end) when opened and read.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec) || ec) return e;
  std::ifstream in(path, std::ios::binary);
  if (!in) return e;
  Elf64_Ehdr h;
  if (!in.read(reinterpret_cast<char*>(&h), sizeof h)) return e;
  if (std::memcmp(h.e_ident, ELFMAG, SELFMAG) != 0 || h.e_ident[EI_CLASS] != ELFCLASS64 ||
      h.e_ident[EI_DATA] != ELFDATA2LSB || h.e_phentsize < sizeof(Elf64_Phdr) || h.e_phnum > 4096)
    return e;
  e.exec = h.e_type == ET_EXEC;
  for (unsigned i = 0; i < h.e_phnum; ++i) {
    Elf64_Phdr p;
    in.seekg(static_cast<std::streamoff>(h.e_phoff + uint64_t{i} * h.e_phentsize));
    if (!in.read(reinterpret_cast<char*>(&p), sizeof p)) return e;
    if (p.p_type == PT_LOAD) e.loads.push_back({p.p_offset, p.p_filesz, p.p_vaddr});
  }
  e.read = true;
  e.build_id = elf_build_id_hex(path);
  return e;
}

uint64_t ElfLayout::bias_for(uint64_t start, uint64_t offset) const {
  for (const auto& s : loads) {
    uint64_t page_start = s.offset & ~uint64_t{4095};
    if (offset >= page_start && offset < s.offset + s.filesz) return start - offset - (s.vaddr - s.offset);
  }
  if (read && exec) return 0;
  if (!read && start < (16u << 20)) return 0;
  return start - offset;
}

const ElfLayout& ElfLayoutCache::get(const std::string& path, const std::string& root) {
  auto it = cache_.find(path);
  if (it != cache_.end()) return it->second;
  ElfLayout e;
  if (!root.empty()) e = read_elf_layout(root + "/" + path);
  if (!e.read) e = read_elf_layout(path);
  return cache_.emplace(path, std::move(e)).first->second;
}

}  // namespace leakwatch::import
