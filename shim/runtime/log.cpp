#include "shim/runtime/log.h"

#include <atomic>
#include <cstdarg>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace leakwatch::shim {
namespace {

std::atomic<bool> g_said[static_cast<int>(Once::kCount)];

int put_unsigned(char* out, int room, unsigned long long v, int base) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v && n < 24);
  int w = 0;
  while (n > 0 && w < room) out[w++] = tmp[--n];
  return w;
}

// What fd 2 was when the shim started. A daemon may close stderr and open
// a data file or accept a socket that takes descriptor 2: a line written
// there would corrupt the program's data.
std::atomic<bool> g_stderr_known{false};
dev_t g_stderr_dev;
ino_t g_stderr_ino;

// May a line go to fd 2 now? Where it started, yes; where the program has
// since put something else there, only if that is where lines belong: a
// terminal or other character device (/dev/null), a pipe, or a file opened
// for appending (a log). Not a socket, not a file opened for data.
bool stderr_writable() {
  struct stat st;
  if (::fstat(2, &st) != 0) return false;
  if (g_stderr_known.load(std::memory_order_acquire) && st.st_dev == g_stderr_dev && st.st_ino == g_stderr_ino)
    return true;
  if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) return true;
  if (!S_ISREG(st.st_mode)) return false;
  const int flags = ::fcntl(2, F_GETFL);
  return flags >= 0 && (flags & O_APPEND);
}

void write_all(const char* buf, int len) {
  if (!stderr_writable()) return;
  while (len > 0) {
    ssize_t n = ::write(2, buf, len);
    if (n <= 0) return;  // nothing sensible to do about a broken stderr
    buf += n;
    len -= static_cast<int>(n);
  }
}

void vlog(const char* fmt, va_list ap) {
  char buf[512];
  int n = format(buf, sizeof buf - 1, "leakwatch: ");
  n += format_to(buf + n, static_cast<int>(sizeof buf) - 1 - n, fmt, ap);
  buf[n++] = '\n';
  write_all(buf, n);
}

}  // namespace

void log_init() {
  struct stat st;
  if (::fstat(2, &st) != 0) return;  // closed at start: only the rules above apply
  g_stderr_dev = st.st_dev;
  g_stderr_ino = st.st_ino;
  g_stderr_known.store(true, std::memory_order_release);
}

int format_to(char* buf, int cap, const char* fmt, va_list ap) {
  int w = 0;
  if (cap <= 0) return 0;
  for (const char* f = fmt; *f && w < cap - 1; ++f) {
    if (*f != '%') {
      buf[w++] = *f;
      continue;
    }
    ++f;
    bool is_long = false, is_size = false;
    while (*f == 'l') is_long = true, ++f;
    if (*f == 'z') is_size = true, ++f;
    int room = cap - 1 - w;
    switch (*f) {
      case 's': {
        const char* s = va_arg(ap, const char*);
        if (!s) s = "(null)";
        while (*s && w < cap - 1) buf[w++] = *s++;
        break;
      }
      case 'd': {
        long long v = is_long ? va_arg(ap, long) : va_arg(ap, int);
        if (v < 0 && room > 0) buf[w++] = '-', --room, v = -v;
        w += put_unsigned(buf + w, room, static_cast<unsigned long long>(v), 10);
        break;
      }
      case 'u': {
        unsigned long long v = (is_long || is_size) ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
        w += put_unsigned(buf + w, room, v, 10);
        break;
      }
      case 'x': {
        unsigned long long v = (is_long || is_size) ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
        w += put_unsigned(buf + w, room, v, 16);
        break;
      }
      case '%':
        buf[w++] = '%';
        break;
      case '\0':
        --f;
        break;
      default:
        buf[w++] = '?';
    }
  }
  buf[w] = '\0';
  return w;
}

int format(char* buf, int cap, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = format_to(buf, cap, fmt, ap);
  va_end(ap);
  return n;
}

void log_line(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(fmt, ap);
  va_end(ap);
}

void log_once(Once kind, const char* fmt, ...) {
  if (g_said[static_cast<int>(kind)].exchange(true, std::memory_order_relaxed)) return;
  va_list ap;
  va_start(ap, fmt);
  vlog(fmt, ap);
  va_end(ap);
}

void reset_all_once() {
  for (auto& said : g_said) said.store(false, std::memory_order_relaxed);
}

void reset_once(Once kind) { g_said[static_cast<int>(kind)].store(false, std::memory_order_relaxed); }

}  // namespace leakwatch::shim
