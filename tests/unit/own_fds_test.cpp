// The shim's descriptor registry (shim/runtime/own_fds.h): a fork child
// closes the descriptors other threads held at the fork, keeps the forking
// thread's own, and never touches one the shim has given back.
#include <catch2/catch.hpp>

#include <atomic>
#include <fcntl.h>
#include <pthread.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "shim/runtime/own_fds.h"

using namespace leakwatch::shim;

namespace {
bool is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

// Forks; the child runs the registry's fork handler, then reports
// (through its exit status) bit 0: `mine` still open, bit 1: `theirs`
// still open, bit 2: `host` still open; bits 3+: how many it closed.
int fork_and_look(int mine, int theirs, int host) {
  pid_t pid = fork();
  if (pid == 0) {
    int closed = own_fds_after_fork_child();
    _exit((is_open(mine) ? 1 : 0) | (theirs >= 0 && is_open(theirs) ? 2 : 0) | (is_open(host) ? 4 : 0) |
          (closed << 3));
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}
}  // namespace

TEST_CASE("a fork child closes other threads' descriptors and keeps its own") {
  const int mine = own_open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  const int host = open("/proc/self/status", O_RDONLY | O_CLOEXEC);  // not the shim's
  REQUIRE(mine >= 0);
  REQUIRE(host >= 0);
  std::atomic<int> theirs{-1};
  std::atomic<bool> release{false};
  int pipe_fds[2] = {-1, -1};
  std::thread t([&] {
    int p[2];
    if (own_pipe(p, O_CLOEXEC) == 0) pipe_fds[0] = p[0], pipe_fds[1] = p[1];
    theirs.store(own_open("/proc/self/maps", O_RDONLY | O_CLOEXEC));
    while (!release.load()) std::this_thread::yield();
    own_close(theirs.load());
    own_close(pipe_fds[0]);
    own_close(pipe_fds[1]);
  });
  while (theirs.load() == -1) std::this_thread::yield();
  REQUIRE(theirs.load() >= 0);
  REQUIRE(pipe_fds[1] >= 0);

  const int seen = fork_and_look(mine, theirs.load(), host);
  CHECK((seen & 1) == 1);  // this thread's own: kept
  CHECK((seen & 2) == 0);  // the other thread's: closed
  CHECK((seen & 4) == 4);  // the host's: untouched
  CHECK((seen >> 3) == 3);  // the file and both ends of the pipe

  release.store(true);
  t.join();
  // Given back by their thread: a child now finds nothing to close, even
  // where the host has since reused the numbers.
  const int reused = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  REQUIRE(reused >= 0);
  const int after = fork_and_look(mine, reused, host);
  CHECK((after & 2) == 2);
  CHECK((after >> 3) == 0);
  close(reused);
  close(host);
  own_close(mine);
}

TEST_CASE("a child never closes a number that is no longer the shim's file") {
  // Another thread's registered descriptor, closed behind the registry's
  // back and its number reused by the host for another file: the child
  // must keep the host's.
  std::atomic<int> fd{-1};
  std::thread t([&] { fd.store(own_open("/proc/self/stat", O_RDONLY | O_CLOEXEC)); });
  t.join();
  REQUIRE(fd.load() >= 0);
  REQUIRE(close(fd.load()) == 0);
  const int host = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  REQUIRE(host == fd.load());  // the lowest free number
  const int mine = own_open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  const int seen = fork_and_look(mine, host, host);
  CHECK((seen & 2) == 2);  // the host's file at that number: kept
  CHECK((seen >> 3) == 0);
  own_close(mine);
  close(host);
}

TEST_CASE("a close during a fork is deferred to its end") {
  std::atomic<int> fd{-1};
  std::atomic<int> stage{0};
  std::thread t([&] {
    fd.store(own_open("/proc/self/maps", O_RDONLY | O_CLOEXEC));
    stage.store(1);
    while (stage.load() != 2) std::this_thread::yield();
    own_close(fd.load());  // a fork is under way
    stage.store(3);
  });
  while (stage.load() != 1) std::this_thread::yield();
  REQUIRE(fd.load() >= 0);
  own_fds_before_fork();  // as the shim's prepare handler does
  stage.store(2);
  while (stage.load() != 3) std::this_thread::yield();
  t.join();
  CHECK(is_open(fd.load()));  // still the shim's: the host cannot be given the number meanwhile
  const int mine = own_open("/proc/self/stat", O_RDONLY | O_CLOEXEC);  // this thread may still open
  REQUIRE(mine >= 0);
  const int host = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  const int seen = fork_and_look(mine, fd.load(), host);
  CHECK((seen & 1) == 1);
  CHECK((seen & 2) == 0);   // the deferred one: closed in the child
  CHECK((seen >> 3) == 1);
  own_fds_after_fork_parent();  // and in the parent at the fork's end
  CHECK_FALSE(is_open(fd.load()));
  own_close(mine);
  close(host);
}

TEST_CASE("a child made without the fork handlers starts its counts afresh") {
  // As after _Fork(), or a fork while another thread's fork was under
  // way: the child inherits a count of forks in progress that no handler
  // will ever end. Its closes must not be deferred for good.
  const int fd = own_open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  std::atomic<int> stage{0};
  std::thread forker([&] {  // another thread's fork, under way
    own_fds_before_fork();
    stage.store(1);
    while (stage.load() != 2) std::this_thread::yield();
    own_fds_after_fork_parent();
  });
  while (stage.load() != 1) std::this_thread::yield();
  pid_t pid = fork();  // this thread's, not through the registry's handlers
  if (pid == 0) {
    own_close(fd);
    _exit(is_open(fd) ? 1 : 0);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  stage.store(2);
  forker.join();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);  // closed at once, not deferred
  CHECK(is_open(fd));
  own_close(fd);
  CHECK_FALSE(is_open(fd));
}
