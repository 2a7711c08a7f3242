// The dump file format, shared by the writer (shim/dump/) and the reader
// (reporter/load/). docs/dump-format.md is the specification; this header
// is its C++ spelling. Writer and reader mirror each other around it.
//
// Layout: a 48-byte header, then the payload (zlib-compressed when flag
// bit 0 is set). The payload is a sequence of sections, each
// {u32 tag, u32 reserved, u64 size, size bytes}. All integers little-endian.
// Readers skip sections whose tag they do not know, and ignore bytes past
// the fields they know inside a record (records carry their own size), so
// minor versions can add fields. A different major version is refused.
//
// Thread-safety: constants and plain structs only. Never allocates.
#pragma once

#include <cstdint>

namespace leakwatch::format {

constexpr char kMagic[8] = {'L', 'K', 'W', 'T', 'D', 'U', 'M', 'P'};
// 1.1: reason, retention and memory facts in IDNT; record kinds.
// 2.0: the stacks as varints (STKV instead of STKS), a quarter of the bytes
// that a dump compresses and writes. Readers read 1.x too.
constexpr uint16_t kMajor = 2;
constexpr uint16_t kMinor = 0;
constexpr uint16_t kOldestMajor = 1;
constexpr uint32_t kFlagZlib = 1;
constexpr const char* kFileSuffix = ".lwdump";

// File names: "EXE.PID.INSTANCE.SEQ.lwdump" -- EXE the executable's base
// name with every character outside [A-Za-z0-9_-] made '_' (at most
// kNameExeMax), INSTANCE kNameInstanceDigits lowercase hex digits, SEQ
// kNameSeqDigits decimal digits; a temp file is "." + that + ".tmp".
constexpr int kNameExeMax = 64;
constexpr int kNameInstanceDigits = 16;
constexpr int kNameSeqDigits = 6;
inline bool name_exe_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

struct Header {             // 48 bytes
  char magic[8];            // "LKWTDUMP"
  uint16_t major;           // kMajor
  uint16_t minor;           // kMinor
  uint32_t header_size;     // 48
  uint32_t flags;           // kFlagZlib
  uint32_t payload_crc32;   // CRC-32 (zlib's crc32) of the stored payload bytes
  uint64_t stored_size;     // payload bytes in the file after the header
  uint64_t raw_size;        // payload bytes after decompression
  uint32_t header_crc32;    // CRC-32 of bytes 0..39 of this header
  uint32_t reserved;        // 0
};
static_assert(sizeof(Header) == 48);

constexpr uint32_t tag(char a, char b, char c, char d) {
  return uint32_t(uint8_t(a)) | uint32_t(uint8_t(b)) << 8 | uint32_t(uint8_t(c)) << 16 | uint32_t(uint8_t(d)) << 24;
}

// Section tags.
constexpr uint32_t kStrings = tag('S', 'T', 'R', 'S');   // u32 count; count x {u32 len; bytes}; index 0 is ""
constexpr uint32_t kIdentity = tag('I', 'D', 'N', 'T');  // u32 count; count x Field
constexpr uint32_t kModules = tag('M', 'O', 'D', 'S');   // u32 count; u32 record size; count x Module
constexpr uint32_t kFrames = tag('F', 'R', 'M', 'S');    // u32 count; u32 record size; count x Frame
constexpr uint32_t kStacks = tag('S', 'T', 'K', 'S');    // 1.x: u32 count; count x {u32 depth; depth x u32 frame index}
constexpr uint32_t kStacksV = tag('S', 'T', 'K', 'V');   // 2.0: the same fields as LEB128 varints (at most 5 bytes each)
constexpr uint32_t kRecords = tag('R', 'E', 'C', 'S');   // u32 count; u32 record size; count x Record

struct SectionHeader {
  uint32_t tag;
  uint32_t reserved;
  uint64_t size;
};
static_assert(sizeof(SectionHeader) == 16);

// Identity and run facts as typed key/value pairs, so fields can be added.
enum FieldType : uint32_t { kU64 = 0, kI64 = 1, kF64 = 2, kString = 3 };
struct Field {              // 16 bytes
  uint32_t key;             // string index: field name
  uint32_t type;            // FieldType
  uint64_t value;           // u64/i64 bits, f64 bits, or string index
};
static_assert(sizeof(Field) == 16);

enum ModuleKind : uint32_t { kElf = 0, kJit = 1 };
struct Module {             // 40 bytes
  uint64_t start;           // lowest runtime address of its executable segments
  uint64_t end;             // one past the highest
  uint64_t bias;            // load bias: ELF vaddr = runtime address - bias
  uint32_t path;            // string index: path as seen by the process
  uint32_t build_id;        // string index: GNU build-id, lowercase hex ("" if none)
  uint32_t kind;            // ModuleKind
  uint32_t reserved;
};
static_assert(sizeof(Module) == 40);

constexpr uint32_t kNoModule = 0xffffffff;
struct Frame {              // 24 bytes
  uint64_t address;         // runtime return address
  uint32_t module;          // index into the module table, or kNoModule
  uint32_t symbol;          // string index: symbol name (mangled), "" if unknown
  uint64_t symbol_offset;   // address - symbol start (valid when symbol != 0)
};
static_assert(sizeof(Frame) == 24);

constexpr uint32_t kOtherStack = 0xffffffff;  // records folded past the size cap
enum RecordKind : uint32_t { kMallocRecord = 0, kMmapRecord = 1 };
struct Record {             // 64 bytes (56 in format 1.0, without mapped_bytes)
  uint32_t stack;           // index into the stack table, or kOtherStack
  uint32_t kind;            // RecordKind (0 in format 1.0)
  double live_count;        // estimated live allocations
  double live_bytes;        // estimated live bytes
  double alloc_count;       // estimated allocations since start (cumulative)
  double alloc_bytes;       // estimated bytes allocated since start (cumulative)
  uint64_t live_samples;    // raw samples behind live_*
  uint64_t total_samples;   // raw samples behind alloc_*
  // 1.1: kMmapRecord only: estimated bytes mapped (live_bytes is the part
  // resident in memory, which is what the process's RSS counts).
  double mapped_bytes = 0;
};
static_assert(sizeof(Record) == 64);

// Limits a reader may rely on and a writer keeps.
constexpr uint64_t kMaxRawSize = 256ull << 20;
constexpr uint32_t kMaxDepth = 256;
constexpr uint32_t kMaxRecords = 20000;  // per dump, "[other]" included; so at most as many stacks
// What a reader accepts: room for a newer writer to raise its caps, while a
// hostile file cannot make a reader build millions of entries.
constexpr uint32_t kReaderMaxRecords = 1u << 16;  // records, stacks, modules
constexpr uint32_t kReaderMaxFrames = 1u << 20;
constexpr uint32_t kReaderMaxStrings = 1u << 21;

}  // namespace leakwatch::format
