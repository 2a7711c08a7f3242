#include "shim/stack/cfi_walk.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <elf.h>
#include <link.h>

#include "shim/runtime/internal_alloc.h"
#include "shim/stack/loaded_objects.h"
#include "shim/stack/stack_bounds.h"

namespace leakwatch::shim {
namespace {

// ---- Rules, packed in one word so a cache slot is two words.
//
// bits 0-31  CFA offset (signed)
// bit  32    CFA is RBP + offset (else RSP + offset)
// bit  33    the caller's RBP is saved at CFA + 8 * (bits 40-47, signed)
// bit  34    the return address is undefined: the outermost frame
// bit  35    needs libunwind (cached too: an address that needed it once always will)
// bit  36    no unwind table: follow the frame pointer, as libunwind guesses
// bits 48-55 the return address is at CFA + 8 * (this, signed)
constexpr uint64_t kCfaIsBp = 1ull << 32;
constexpr uint64_t kBpSaved = 1ull << 33;
constexpr uint64_t kOutermost = 1ull << 34;
constexpr uint64_t kNeedsLibunwind = 1ull << 35;
constexpr uint64_t kFramePointer = 1ull << 36;

uint64_t make_rule(int32_t cfa_off, bool cfa_bp, bool bp_saved, int bp_slot, int ra_slot) {
  uint64_t r = static_cast<uint32_t>(cfa_off);
  if (cfa_bp) r |= kCfaIsBp;
  if (bp_saved) r |= kBpSaved | (static_cast<uint64_t>(static_cast<uint8_t>(bp_slot)) << 40);
  return r | (static_cast<uint64_t>(static_cast<uint8_t>(ra_slot)) << 48);
}
int32_t rule_cfa_off(uint64_t r) { return static_cast<int32_t>(static_cast<uint32_t>(r)); }
int rule_bp_slot(uint64_t r) { return static_cast<int8_t>(static_cast<uint8_t>(r >> 40)); }
int rule_ra_slot(uint64_t r) { return static_cast<int8_t>(static_cast<uint8_t>(r >> 48)); }

// ---- Reading the tables (DWARF 4 section 6.4, LSB's .eh_frame_hdr).

struct Reader {
  const uint8_t* p;
  const uint8_t* end;
  bool ok = true;

  uint8_t u8() {
    if (p >= end) return ok = false, 0;
    return *p++;
  }
  template <typename T>
  T fixed() {
    if (end - p < static_cast<std::ptrdiff_t>(sizeof(T))) return ok = false, T{};
    T v;
    std::memcpy(&v, p, sizeof v);
    p += sizeof v;
    return v;
  }
  uint64_t uleb() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = u8();
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    ok = false;
    return 0;
  }
  int64_t sleb() {
    int64_t v = 0;
    int shift = 0;
    uint8_t b;
    do {
      b = u8();
      if (shift < 64) v |= static_cast<int64_t>(b & 0x7f) << shift;
      shift += 7;
    } while ((b & 0x80) && ok);
    if (shift < 64 && (b & 0x40)) v |= -(int64_t{1} << shift);
    return v;
  }
  void skip(uint64_t n) {
    if (static_cast<uint64_t>(end - p) < n) ok = false, p = end;
    else p += n;
  }

  // A pointer in DW_EH_PE encoding `enc`; `data_base` for datarel.
  uintptr_t encoded(uint8_t enc, uintptr_t data_base = 0) {
    if (enc == 0xff) return ok = false, 0;  // DW_EH_PE_omit
    const auto here = reinterpret_cast<uintptr_t>(p);
    uintptr_t v;
    switch (enc & 0x0f) {
      case 0x00: v = fixed<uint64_t>(); break;                            // absptr
      case 0x01: v = uleb(); break;                                       // uleb128
      case 0x02: v = fixed<uint16_t>(); break;                            // udata2
      case 0x03: v = fixed<uint32_t>(); break;                            // udata4
      case 0x04: v = fixed<uint64_t>(); break;                            // udata8
      case 0x09: v = static_cast<uintptr_t>(sleb()); break;               // sleb128
      case 0x0a: v = static_cast<uintptr_t>(fixed<int16_t>()); break;     // sdata2
      case 0x0b: v = static_cast<uintptr_t>(fixed<int32_t>()); break;     // sdata4
      case 0x0c: v = static_cast<uintptr_t>(fixed<int64_t>()); break;     // sdata8
      default: return ok = false, 0;
    }
    switch (enc & 0x70) {
      case 0x00: break;
      case 0x10: v += here; break;       // pcrel
      case 0x30: v += data_base; break;  // datarel
      default: return ok = false, 0;
    }
    if (enc & 0x80) return ok = false, 0;  // indirect: never for code addresses
    return v;
  }
};

// The rule state the CFA program builds; RBP is DWARF register 6, RSP 7,
// the return address column is 16 on x86-64.
// Nothing is assumed: a CFA or return-address rule the tables never state
// sends the frame to libunwind.
struct Row {
  int cfa_reg = -1;
  int64_t cfa_off = 0;
  enum : uint8_t { kUnset, kSame, kAt, kUndefined } bp = kSame, ra = kUnset;
  int64_t bp_off = 0, ra_off = 0;
};
// DWARF registers 0-16 (the integer registers and the return address);
// libunwind stops at a rule for any other (xmm saves of ms_abi code), and
// so does this walker, by handing such a frame to it.
constexpr uint64_t kRegs = 17;
constexpr uint64_t kRaColumn = 16;

struct Cie {
  uint64_t code_align = 1;
  int64_t data_align = -8;
  uint64_t ra_column = 16;
  uint8_t fde_enc = 0;
  bool has_z = false;
  bool signal = false;
  const uint8_t* insns = nullptr;
  const uint8_t* insns_end = nullptr;
};

bool parse_cie(const uint8_t* cie, const uint8_t* limit, Cie* out) {
  Reader r{cie, limit};
  uint64_t len = r.fixed<uint32_t>();
  if (!r.ok || len == 0xffffffffu || len == 0) return false;  // 64-bit DWARF: not in .eh_frame
  const uint8_t* end = r.p + len;
  if (end > limit) return false;
  r.end = end;
  if (r.fixed<uint32_t>() != 0) return false;  // a CIE's id is 0
  uint8_t version = r.u8();
  if (version != 1 && version != 3) return false;
  const char* aug = reinterpret_cast<const char*>(r.p);
  while (r.ok && r.u8() != 0) {
  }
  out->code_align = r.uleb();
  out->data_align = r.sleb();
  out->ra_column = version == 1 ? r.u8() : r.uleb();
  if (aug[0] == 'z') {
    out->has_z = true;
    uint64_t aug_len = r.uleb();
    const uint8_t* aug_end = r.p + aug_len;
    for (const char* a = aug + 1; *a && r.ok; ++a) {
      switch (*a) {
        case 'R': out->fde_enc = r.u8(); break;
        case 'L': r.u8(); break;
        case 'P': {
          uint8_t enc = r.u8();
          if ((enc & 0x70) == 0x30 || enc == 0xff) return false;
          (void)r.encoded(enc & 0x7f);  // the personality routine, unused
          break;
        }
        case 'S': out->signal = true; break;
        case 'B': break;
        default: return false;  // an augmentation we do not know: its data may matter
      }
    }
    if (r.p > aug_end) return false;
    r.p = aug_end;
  } else if (aug[0] != '\0') {
    return false;
  }
  out->insns = r.p;
  out->insns_end = end;
  // x86-64 code: instructions are bytes, the return address is column 16.
  return r.ok && r.p <= end && out->code_align == 1 && out->ra_column == kRaColumn;
}

enum class Run { kReached, kUnsupported };

// The CFA's register as the row keeps it: -1 for one outside 0-16 (never
// followed; rule_from_row sends it to libunwind).
int cfa_register(uint64_t reg) { return reg < kRegs ? static_cast<int>(reg) : -1; }

// Runs CFA instructions from `insns` while the location stays <= target.
Run run_cfa(const Cie& cie, const uint8_t* insns, const uint8_t* end, uintptr_t loc, uintptr_t target,
            Row* row, const Row& initial) {
  constexpr int kStates = 8;
  Row saved[kStates];
  int depth = 0;
  Reader r{insns, end};
  auto set_reg = [&](uint64_t reg, uint8_t kind, int64_t off) -> bool {
    if (reg >= kRegs || reg == 7) return false;  // 7: a rule for RSP itself, not the CFA convention
    if (reg == 6) row->bp = static_cast<decltype(row->bp)>(kind), row->bp_off = off;
    else if (reg == kRaColumn) row->ra = static_cast<decltype(row->ra)>(kind), row->ra_off = off;
    return true;
  };
  auto restore_reg = [&](uint64_t reg) -> bool {
    if (reg >= kRegs || reg == 7) return false;
    if (reg == 6) row->bp = initial.bp, row->bp_off = initial.bp_off;
    else if (reg == kRaColumn) row->ra = initial.ra, row->ra_off = initial.ra_off;
    return true;
  };
  // Any rule naming a register: outside 0-16, or one of the three this
  // walker follows, it needs libunwind.
  auto other_reg = [&](uint64_t reg) { return reg < kRegs && reg != 6 && reg != 7 && reg != kRaColumn; };
  while (r.p < r.end) {
    uint8_t op = r.u8();
    uint8_t low = op & 0x3f;
    switch (op & 0xc0) {
      case 0x40:  // advance_loc
        loc += low * cie.code_align;
        if (loc > target) return Run::kReached;
        continue;
      case 0x80:  // offset
        if (!set_reg(low, Row::kAt, static_cast<int64_t>(r.uleb()) * cie.data_align)) return Run::kUnsupported;
        continue;
      case 0xc0:  // restore
        if (!restore_reg(low)) return Run::kUnsupported;
        continue;
      default:
        break;
    }
    switch (op) {
      case 0x00: break;  // nop
      case 0x02: loc += r.u8() * cie.code_align; if (loc > target) return Run::kReached; break;
      case 0x03: loc += r.fixed<uint16_t>() * cie.code_align; if (loc > target) return Run::kReached; break;
      case 0x04: loc += r.fixed<uint32_t>() * cie.code_align; if (loc > target) return Run::kReached; break;
      case 0x01: {  // set_loc
        uintptr_t to = r.encoded(cie.fde_enc);
        if (!r.ok) return Run::kUnsupported;
        if (to > target) return Run::kReached;
        loc = to;
        break;
      }
      case 0x05: {  // offset_extended
        uint64_t reg = r.uleb();
        if (!set_reg(reg, Row::kAt, static_cast<int64_t>(r.uleb()) * cie.data_align)) return Run::kUnsupported;
        break;
      }
      case 0x11: {  // offset_extended_sf
        uint64_t reg = r.uleb();
        if (!set_reg(reg, Row::kAt, r.sleb() * cie.data_align)) return Run::kUnsupported;
        break;
      }
      case 0x2f: {  // GNU_negative_offset_extended
        uint64_t reg = r.uleb();
        if (!set_reg(reg, Row::kAt, -static_cast<int64_t>(r.uleb()) * cie.data_align)) return Run::kUnsupported;
        break;
      }
      case 0x06:  // restore_extended
        if (!restore_reg(r.uleb())) return Run::kUnsupported;
        break;
      case 0x07: {  // undefined
        uint64_t reg = r.uleb();
        if (reg == kRaColumn) row->ra = Row::kUndefined;
        else if (!other_reg(reg)) return Run::kUnsupported;
        break;
      }
      case 0x08: {  // same_value
        uint64_t reg = r.uleb();
        if (reg == 6) row->bp = Row::kSame;
        else if (!other_reg(reg)) return Run::kUnsupported;
        break;
      }
      case 0x09: {  // register: reg1 is saved in reg2
        uint64_t reg = r.uleb();
        uint64_t in = r.uleb();
        if (!other_reg(reg) || in >= kRegs) return Run::kUnsupported;
        break;
      }
      case 0x0a:  // remember_state
        if (depth == kStates) return Run::kUnsupported;
        saved[depth++] = *row;
        break;
      case 0x0b:  // restore_state, the CFA rule included (GCC's epilogues rely on it)
        if (depth == 0) return Run::kUnsupported;
        *row = saved[--depth];
        break;
      case 0x0c:  // def_cfa
        row->cfa_reg = cfa_register(r.uleb());
        row->cfa_off = static_cast<int64_t>(r.uleb());
        break;
      case 0x12:  // def_cfa_sf
        row->cfa_reg = cfa_register(r.uleb());
        row->cfa_off = r.sleb() * cie.data_align;
        break;
      case 0x0d: row->cfa_reg = cfa_register(r.uleb()); break;  // def_cfa_register
      case 0x0e: row->cfa_off = static_cast<int64_t>(r.uleb()); break;  // def_cfa_offset
      case 0x13: row->cfa_off = r.sleb() * cie.data_align; break;        // def_cfa_offset_sf
      case 0x0f: return Run::kUnsupported;                               // def_cfa_expression
      case 0x10:                                                          // expression
      case 0x16: {                                                        // val_expression
        uint64_t reg = r.uleb();
        if (!other_reg(reg)) return Run::kUnsupported;
        r.skip(r.uleb());
        break;
      }
      case 0x14:    // val_offset
      case 0x15: {  // val_offset_sf
        uint64_t reg = r.uleb();
        if (!other_reg(reg)) return Run::kUnsupported;
        if (op == 0x14) (void)r.uleb();
        else (void)r.sleb();
        break;
      }
      case 0x2e: (void)r.uleb(); break;  // GNU_args_size: the caller's RSP is still the CFA
      default: return Run::kUnsupported;
    }
    if (!r.ok) return Run::kUnsupported;
  }
  return r.ok ? Run::kReached : Run::kUnsupported;
}

uint64_t rule_from_row(const Row& row) {
  if (row.cfa_reg != 6 && row.cfa_reg != 7) return kNeedsLibunwind;  // also: never defined
  if (row.ra == Row::kUnset) return kNeedsLibunwind;
  if (row.cfa_off < INT32_MIN || row.cfa_off > INT32_MAX) return kNeedsLibunwind;
  if (row.ra == Row::kUndefined) return kOutermost;
  if (row.bp == Row::kUndefined) return kNeedsLibunwind;
  auto slot = [](int64_t off, int* out) {
    if (off % 8 != 0 || off / 8 < -128 || off / 8 > 127) return false;
    *out = static_cast<int>(off / 8);
    return true;
  };
  int ra_slot, bp_slot = 0;
  if (!slot(row.ra_off, &ra_slot)) return kNeedsLibunwind;
  if (row.bp == Row::kAt && !slot(row.bp_off, &bp_slot)) return kNeedsLibunwind;
  return make_rule(static_cast<int32_t>(row.cfa_off), row.cfa_reg == 6, row.bp == Row::kAt, bp_slot, ra_slot);
}

// The FDE covering `pc` through the object's sorted search table (the one
// to check: its range may still end before pc). *searched: the table was
// read, so a miss means no FDE starts at or below pc.
const uint8_t* find_fde(const uint8_t* hdr, const uint8_t* hdr_end, uintptr_t pc, bool* searched) {
  *searched = false;
  Reader r{hdr, hdr_end};
  if (r.u8() != 1) return nullptr;  // version
  uint8_t frame_enc = r.u8(), count_enc = r.u8(), table_enc = r.u8();
  const auto base = reinterpret_cast<uintptr_t>(hdr);  // datarel values here are relative to the header
  (void)r.encoded(frame_enc, base);
  uint64_t count = r.encoded(count_enc, base);
  if (!r.ok || table_enc != 0x3b || count == 0) return nullptr;  // datarel sdata4: what every linker writes
  const auto* table = reinterpret_cast<const int32_t*>(r.p);
  if (static_cast<uint64_t>(hdr_end - r.p) / 8 < count) return nullptr;
  *searched = true;
  uint64_t lo = 0, hi = count;  // last entry with start <= pc
  while (hi - lo > 1) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (base + static_cast<intptr_t>(table[2 * mid]) <= pc) lo = mid;
    else hi = mid;
  }
  if (base + static_cast<intptr_t>(table[2 * lo]) > pc) return nullptr;
  return reinterpret_cast<const uint8_t*>(base + static_cast<intptr_t>(table[2 * lo + 1]));
}

// The rule at `pc` from the FDE, kFramePointer when the FDE ends before pc,
// or kNeedsLibunwind.
uint64_t rule_from_fde(const uint8_t* fde, uintptr_t pc) {
  // FDEs and CIEs lie within .eh_frame; lengths bound every read.
  constexpr std::size_t kMaxEntry = 1u << 20;
  Reader r{fde, fde + 8};
  uint32_t len = r.fixed<uint32_t>();
  if (!r.ok || len == 0 || len == 0xffffffffu || len > kMaxEntry) return kNeedsLibunwind;
  const uint8_t* end = fde + 4 + len;
  r.end = end;
  const uint8_t* id_at = r.p;
  uint32_t cie_off = r.fixed<uint32_t>();
  if (cie_off == 0) return kNeedsLibunwind;  // a CIE, not an FDE
  const uint8_t* cie_at = id_at - cie_off;
  Cie cie;
  if (!parse_cie(cie_at, cie_at + 4 + kMaxEntry, &cie) || cie.signal) return kNeedsLibunwind;
  uintptr_t start = r.encoded(cie.fde_enc);
  uintptr_t range = r.encoded(cie.fde_enc & 0x0f);
  if (!r.ok || pc < start) return kNeedsLibunwind;
  if (pc - start >= range) return kFramePointer;  // between functions: no FDE covers pc
  if (cie.has_z) r.skip(r.uleb());
  if (!r.ok) return kNeedsLibunwind;
  Row initial;
  if (run_cfa(cie, cie.insns, cie.insns_end, start, UINTPTR_MAX - 1, &initial, Row{}) != Run::kReached)
    return kNeedsLibunwind;
  Row row = initial;
  if (run_cfa(cie, r.p, end, start, pc, &row, initial) != Run::kReached) return kNeedsLibunwind;
  return rule_from_row(row);
}

struct Lookup {
  uintptr_t pc;
  uint64_t rule;
  // The address came after a guessed frame, so it may be any value: the
  // tables of an object that a dlclose may be unmapping (the list learns of
  // it only afterwards) are not read for it.
  bool after_guess;
  bool skipped;
};

// Code libunwind recognises before it guesses (x86_64 Gstep.c): a signal
// return ("mov $15, %rax; syscall") or a PLT entry ("jmp *x(%rip); push;
// jmp"). Either, at the address or one past it (pc is a return address
// less one): libunwind's, not a guess.
bool special_code(const uint8_t* at) {
  for (int k = 0; k < 2; ++k, ++at) {
    static const uint8_t kSigreturn[] = {0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};
    if (std::memcmp(at, kSigreturn, sizeof kSigreturn) == 0) return true;
    if (at[0] == 0xff && at[1] == 0x25 && at[6] == 0x68 && at[11] == 0xe9) return true;
  }
  return false;
}

int rule_in_object(struct dl_phdr_info* info, size_t, void* data) {
  auto* q = static_cast<Lookup*>(data);
  const ElfW(Phdr)* segment = nullptr;
  const uint8_t* hdr = nullptr;
  std::size_t hdr_len = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    if (ph.p_type == PT_LOAD && q->pc >= lo && q->pc - lo < ph.p_memsz) segment = &ph;
    if (ph.p_type == PT_GNU_EH_FRAME) hdr = reinterpret_cast<const uint8_t*>(lo), hdr_len = ph.p_memsz;
  }
  if (!segment) return 0;
  if (q->after_guess && !loaded_object_stays(info)) {
    q->rule = kNeedsLibunwind;  // libunwind checks its reads
    q->skipped = true;
    return 1;
  }
  bool searched = false;
  const uint8_t* fde = hdr ? find_fde(hdr, hdr + hdr_len, q->pc, &searched) : nullptr;
  q->rule = fde ? rule_from_fde(fde, q->pc) : searched ? kFramePointer : kNeedsLibunwind;
  if (q->rule == kFramePointer) {
    // Code without an FDE in an object that has a table (hand-written
    // assembly, V8's embedded builtins): libunwind guesses, after reading
    // the code itself -- mapped and readable here, or libunwind decides.
    const uintptr_t seg_lo = info->dlpi_addr + segment->p_vaddr;
    const bool readable = (segment->p_flags & PF_R) && q->pc - seg_lo + 13 <= segment->p_filesz;
    if (!readable || special_code(reinterpret_cast<const uint8_t*>(q->pc))) q->rule = kNeedsLibunwind;
  }
  return 1;
}

// ---- The cache: direct-mapped slots, each under its own sequence number
// (odd while a writer fills it; a reader keeps what it read only if the
// number was even and unchanged around its reads, so an address is never
// paired with another's rule, however the slot is reused meanwhile). The
// full loaded-objects generation is kept, so a rule cached for code since
// unloaded never matches again.
struct alignas(32) Slot {
  std::atomic<uint64_t> seq;
  std::atomic<uint64_t> pc;
  std::atomic<uint64_t> generation;
  std::atomic<uint64_t> rule;
};
int g_slot_bits = kCfiSlotBits;
Slot* g_slots = nullptr;

inline Slot& slot_for(uintptr_t pc) { return g_slots[(pc * 0x9E3779B97F4A7C15ull) >> (64 - g_slot_bits)]; }

// The slot's key: a loaded-objects generation, or for an address in no
// object, kNoObjectKey with the stamp of the list that missed it.
inline bool cached(uintptr_t pc, uint64_t* key, uint64_t* rule) {
  Slot& s = slot_for(pc);
  const uint64_t seq = s.seq.load(std::memory_order_acquire);
  const uint64_t p = s.pc.load(std::memory_order_relaxed);
  *key = s.generation.load(std::memory_order_relaxed);
  *rule = s.rule.load(std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_acquire);
  return (seq & 1) == 0 && p == pc && s.seq.load(std::memory_order_relaxed) == seq;
}

void remember(uintptr_t pc, uint64_t key, uint64_t rule) {
  Slot& s = slot_for(pc);
  uint64_t seq = s.seq.load(std::memory_order_relaxed);
  // Another writer has it: skip (the rule is still used for this walk).
  if ((seq & 1) || !s.seq.compare_exchange_strong(seq, seq + 1, std::memory_order_acquire)) return;
  std::atomic_thread_fence(std::memory_order_release);  // the odd number before the new contents
  s.pc.store(pc, std::memory_order_relaxed);
  s.generation.store(key, std::memory_order_relaxed);
  s.rule.store(rule, std::memory_order_relaxed);
  s.seq.store(seq + 2, std::memory_order_release);
}

constexpr uint64_t kNoObjectKey = 1ull << 63;

uint64_t rule_for(uintptr_t pc, uint64_t generation, bool after_guess) {
  uint64_t key, rule;
  if (__builtin_expect(cached(pc, &key, &rule), 1)) {
    if (__builtin_expect(key == generation, 1)) return rule;
    // In no object as of the current list: JIT code, as long as the list
    // would not be rebuilt for a miss now (a library loaded past dlopen's
    // hook, or one whose dlopen bumped the generation before mapping it).
    if (key == (loaded_objects_stamp() | kNoObjectKey) && !loaded_objects_miss_due()) return rule;
  }
  const uint64_t stamp = loaded_objects_stamp();  // before the lookup: a list rebuilt meanwhile ends the entry
  Lookup q{pc, kNeedsLibunwind, after_guess, false};
  uint64_t built_for = 0;  // stays 0 when no list could be read
  const bool found = loaded_objects_iterate(rule_in_object, &q, &built_for) != 0;
  // Tables read from a list of objects older than the walk may belong to
  // code unloaded since: neither used nor kept. The same for a miss.
  if (built_for != generation) return kNeedsLibunwind;
  if (!found) {
    remember(pc, stamp | kNoObjectKey, kFramePointer);
    return kFramePointer;
  }
  if (q.skipped) return q.rule;  // not the address's rule: not kept
  remember(pc, generation, q.rule);
  return q.rule;
}

// libunwind believes a frame-pointer guess only for an RBP at most this far
// above the frame's stack pointer (x86_64 Gstep.c).
constexpr uintptr_t kGuessReach = 0x4000;
// A return address below this ends libunwind's walk (x86_64 Gtrace.c).
constexpr uintptr_t kLowestCode = 0x4000;

inline uintptr_t load(uintptr_t at) { return *reinterpret_cast<const uintptr_t*>(at); }

}  // namespace

bool cfi_walk_init(int slot_bits) {
  if (g_slots) return true;
  g_slot_bits = slot_bits >= 1 && slot_bits <= 20 ? slot_bits : kCfiSlotBits;
  g_slots = static_cast<Slot*>(map_pages(sizeof(Slot) << g_slot_bits, /*noreserve=*/true));
  return g_slots != nullptr;
}

__attribute__((noinline)) int cfi_backtrace(void** out, int max) {
  if (!g_slots) return -1;
  uintptr_t pc, sp, bp;
  // This function's own state at one point: the walk starts by unwinding it.
  asm volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2" : "=r"(pc), "=r"(sp), "=r"(bp));
  const uint64_t generation = loaded_objects_generation();
  bool exact = true;  // pc is where execution is, not a return address
  // After a frame-pointer guess, the registers may hold anything: every
  // later read must fall in this thread's own stack (stack_bounds.h).
  bool guessed = false;
  int n = 0;
  while (n < max) {
    if (pc >> 47) return -1;  // not a user-space address of 4-level paging: libunwind decides
    const uint64_t rule = rule_for(exact ? pc : pc - 1, generation, guessed);
    if (rule & kNeedsLibunwind) return -1;
    if (rule & kOutermost) break;
    if (rule & kFramePointer) {
      // No unwind table (JIT code): libunwind's guess. The caller's frame
      // starts at RBP + 16, its return address at RBP + 8, its RBP at RBP;
      // an RBP of 0, below this frame or too far above it ends the stack.
      if (bp == 0 || bp < sp || bp - sp > kGuessReach) break;
      if (!own_stack_holds(bp, bp + 16, sp)) return -1;  // libunwind checks each read with a system call
      guessed = true;
      pc = load(bp + 8);
      sp = bp + 16;
      bp = load(bp);
      exact = false;
      if (pc < kLowestCode) break;
      out[n++] = reinterpret_cast<void*>(pc);
      continue;
    }
    const uintptr_t cfa = ((rule & kCfaIsBp) ? bp : sp) + static_cast<intptr_t>(rule_cfa_off(rule));
    // The stack grows down: a caller's frame is above its callee's.
    if (cfa <= sp || (cfa & 7) != 0) return -1;
    const uintptr_t ra_at = cfa + 8 * static_cast<intptr_t>(rule_ra_slot(rule));
    const uintptr_t bp_at = cfa + 8 * static_cast<intptr_t>(rule_bp_slot(rule));
    if (guessed && (!own_stack_holds(ra_at, ra_at + 8, sp) ||
                    ((rule & kBpSaved) && !own_stack_holds(bp_at, bp_at + 8, sp))))
      return -1;
    const uintptr_t ra = load(ra_at);
    if (rule & kBpSaved) bp = load(bp_at);
    sp = cfa;
    pc = ra;
    exact = false;
    if (pc == 0) break;
    out[n++] = reinterpret_cast<void*>(pc);
  }
  return n;
}

}  // namespace leakwatch::shim
