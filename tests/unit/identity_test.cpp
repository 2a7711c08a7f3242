// Unit tests for container detection (find_container_id in
// shim/runtime/identity.h) on sample /proc/self/cgroup and
// /proc/self/mountinfo texts, and a smoke test of identity_collect.
#include <catch2/catch.hpp>

#include <cctype>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include "shim/runtime/identity.h"

using namespace leakwatch::shim;

namespace {

const std::string kId = "3f4e2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
const std::string kId2 = "aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999";
const std::string kLayer = "0e1d2c3b4a5968778695a4b3c2d1e0f0e1d2c3b4a5968778695a4b3c2d1e0f01";

std::string find(const char* cgroup, const char* mountinfo, int cap = 128) {
  char out[256];
  std::memset(out, 'X', sizeof out);
  find_container_id(cgroup, mountinfo, out, cap);
  REQUIRE(std::memchr(out, '\0', static_cast<std::size_t>(cap)) != nullptr);  // terminated within cap
  return out;
}
std::string find(const std::string& cgroup, const std::string& mountinfo) {
  return find(cgroup.c_str(), mountinfo.c_str());
}

// A realistic mountinfo of a process in a container, minus the line that
// names the container (added by each test).
std::string docker_overlay_root() {
  return "1021 985 0:113 / / rw,relatime master:300 - overlay overlay "
         "rw,lowerdir=/var/lib/docker/overlay2/l/QW3XKJ5NVBXS7Y2GGLMRH3Q2ZC:/var/lib/docker/overlay2/l/"
         "7UYHB2OTVKJ4K6N2ZTQ3V4XHQ2,upperdir=/var/lib/docker/overlay2/" +
         kLayer + "/diff,workdir=/var/lib/docker/overlay2/" + kLayer +
         "/work\n"
         "1022 1021 0:116 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
         "1023 1021 0:117 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755\n"
         "1024 1023 0:118 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620,ptmxmode=666\n"
         "1025 1021 0:119 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro\n"
         "1026 1025 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate\n";
}

}  // namespace

TEST_CASE("container id: cgroup v1 docker", "[identity]") {
  std::string cg =
      "12:pids:/docker/" + kId + "\n11:memory:/docker/" + kId + "\n10:cpu,cpuacct:/docker/" + kId +
      "\n1:name=systemd:/docker/" + kId + "\n0::/system.slice/containerd.service\n";
  CHECK(find(cg, "") == kId);
  CHECK(find(cg.c_str(), nullptr) == kId);
}

TEST_CASE("container id: systemd cgroup driver, docker-<id>.scope", "[identity]") {
  CHECK(find("0::/system.slice/docker-" + kId + ".scope\n", "") == kId);
  // cgroup v1 with the systemd driver.
  CHECK(find("4:memory:/system.slice/docker-" + kId + ".scope\n3:cpu:/system.slice/docker-" + kId + ".scope\n", "") ==
        kId);
}

TEST_CASE("container id: kubernetes pods", "[identity]") {
  SECTION("containerd, systemd driver") {
    std::string cg = "0::/kubepods.slice/kubepods-burstable.slice/"
                     "kubepods-burstable-pod8dbc5577_d0e2_4706_8787_57d52c03ddf2.slice/cri-containerd-" +
                     kId + ".scope\n";
    CHECK(find(cg, "") == kId);
  }
  SECTION("containerd, cgroupfs driver (v1)") {
    std::string cg = "11:memory:/kubepods/besteffort/pod8dbc5577-d0e2-4706-8787-57d52c03ddf2/" + kId +
                     "\n10:cpu:/kubepods/besteffort/pod8dbc5577-d0e2-4706-8787-57d52c03ddf2/" + kId + "\n";
    CHECK(find(cg, "") == kId);
  }
  SECTION("cri-o") {
    CHECK(find("0::/kubepods.slice/kubepods-pod1234.slice/crio-" + kId + ".scope\n", "") == kId);
  }
  SECTION("podman") {
    CHECK(find("0::/machine.slice/libpod-" + kId + ".scope/container\n", "") == kId);
  }
}

TEST_CASE("container id: cgroup v2 with a cgroup namespace falls back to mountinfo", "[identity]") {
  SECTION("docker: /var/lib/docker/containers/<id>/hostname") {
    std::string mi = docker_overlay_root() +
                     "1027 1021 253:1 /var/lib/docker/containers/" + kId +
                     "/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda1 rw\n"
                     "1028 1021 253:1 /var/lib/docker/containers/" + kId +
                     "/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw\n"
                     "1029 1021 253:1 /var/lib/docker/containers/" + kId +
                     "/hosts /etc/hosts rw,relatime - ext4 /dev/vda1 rw\n";
    CHECK(find("0::/\n", mi) == kId);
    // The overlay line comes first and carries another 64-hex id (a
    // layer): it must not be taken for the container.
    CHECK(find("0::/\n", mi) != kLayer);
  }
  SECTION("containerd (kubernetes): .../sandboxes/<id>/hostname") {
    std::string mi =
        "2301 2200 0:250 / / rw,relatime - overlay overlay "
        "rw,lowerdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/812/fs:/var/lib/"
        "containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/811/fs,upperdir=/var/lib/containerd/"
        "io.containerd.snapshotter.v1.overlayfs/snapshots/915/fs,workdir=/var/lib/containerd/"
        "io.containerd.snapshotter.v1.overlayfs/snapshots/915/work\n"
        "2310 2301 259:1 /var/lib/kubelet/pods/8dbc5577-d0e2-4706-8787-57d52c03ddf2/etc-hosts /etc/hosts "
        "rw,relatime - ext4 /dev/nvme0n1p1 rw\n"
        "2311 2301 259:1 /var/lib/kubelet/pods/8dbc5577-d0e2-4706-8787-57d52c03ddf2/containers/app/0a1b2c3d "
        "/dev/termination-log rw,relatime - ext4 /dev/nvme0n1p1 rw\n"
        "2312 2301 259:1 /var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/" +
        kId + "/hostname /etc/hostname rw,relatime - ext4 /dev/nvme0n1p1 rw\n";
    CHECK(find("0::/\n", mi) == kId);
  }
  SECTION("podman: overlay-containers/<id>/userdata/hostname") {
    std::string mi =
        "700 650 0:60 / / rw - overlay overlay rw,lowerdir=/var/lib/containers/storage/overlay/l/ABCDEFGHIJ,"
        "upperdir=/var/lib/containers/storage/overlay/" +
        kLayer + "/diff,workdir=/var/lib/containers/storage/overlay/" + kLayer +
        "/work\n"
        "710 700 0:61 /containers/storage/overlay-containers/" +
        kId + "/userdata/hostname /etc/hostname rw - tmpfs tmpfs rw\n";
    CHECK(find("0::/\n", mi) == kId);
  }
  SECTION("the cgroup wins when it names a container") {
    std::string mi = "1028 1021 253:1 /var/lib/docker/containers/" + kId2 +
                     "/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw\n";
    CHECK(find("0::/system.slice/docker-" + kId + ".scope\n", mi) == kId);
    CHECK(find(nullptr, mi.c_str()) == kId2);
  }
}

TEST_CASE("container id: texts without a container id", "[identity]") {
  SECTION("a host process") {
    CHECK(find("0::/user.slice/user-1000.slice/session-3.scope\n", "") == "");
    CHECK(find("12:pids:/user.slice/user-1000.slice/session-3.scope\n1:name=systemd:/init.scope\n", "") == "");
    CHECK(find("0::/\n", "") == "");
    CHECK(find(nullptr, nullptr) == "");
    CHECK(find("", "") == "");
    std::string host_mi =
        "22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/mapper/root rw,errors=remount-ro\n"
        "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
        "60 22 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=8000000k\n";
    CHECK(find("0::/user.slice/user-1000.slice/session-3.scope\n", host_mi) == "");
  }
  SECTION("overlay layer ids in mountinfo are not container ids") {
    // Only the overlay root (with 64-hex layer directories in upperdir and
    // workdir) and no bind mount from a runtime's container directory.
    CHECK(find("0::/\n", docker_overlay_root()) == "");
    // Layers written out in full in lowerdir (no short links).
    std::string mi = "1021 985 0:113 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/" +
                     kLayer + "/diff:/var/lib/docker/overlay2/" + kId2 + "/diff,upperdir=/var/lib/docker/overlay2/" +
                     kId + "-init/diff,workdir=/var/lib/docker/overlay2/" + kId + "/work\n";
    CHECK(find("0::/\n", mi) == "");
    // Podman/CRI-O storage: ".../containers/storage/overlay/<layer>".
    std::string podman = "700 650 0:60 / / rw - overlay overlay rw,lowerdir=/var/lib/containers/storage/overlay/" +
                         kLayer + "/diff,upperdir=/var/lib/containers/storage/overlay/" + kId2 + "/diff\n";
    CHECK(find("0::/\n", podman) == "");
    std::string rootless = "700 650 0:60 / / rw - overlay overlay rw,lowerdir=/home/u/.local/share/containers/"
                           "storage/overlay/" +
                           kLayer + "/diff\n";
    CHECK(find("0::/\n", rootless) == "");
  }
  SECTION("a host process on a machine that runs containers") {
    // Not in a container: the cgroup names a login session. But the host's
    // mount table holds the runtimes' per-container mounts (Docker's
    // /dev/shm of every container, containerd's sandbox shm on Kubernetes
    // nodes) as mount points; they belong to other processes, not to us.
    std::string host = "0::/user.slice/user-1000.slice/session-3.scope\n";
    std::string docker_host =
        "22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/mapper/root rw\n"
        "1150 22 0:55 / /var/lib/docker/containers/" +
        kId +
        "/mounts/shm rw,nosuid,nodev,noexec,relatime shared:300 - tmpfs shm rw,size=65536k\n"
        "1160 22 0:56 / /var/lib/docker/overlay2/" +
        kLayer + "/merged rw,relatime shared:310 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/AB\n";
    CHECK(find(host, docker_host) == "");
    std::string k8s_node =
        "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw\n"
        "4200 30 0:300 / /run/containerd/io.containerd.grpc.v1.cri/sandboxes/" +
        kId2 + "/shm rw,nosuid,nodev,noexec,relatime shared:500 - tmpfs shm rw,size=65536k\n";
    CHECK(find(host, k8s_node) == "");
    // A system service (cgroup v1 hierarchy), same host.
    CHECK(find("12:pids:/system.slice/cron.service\n0::/system.slice/cron.service\n", docker_host) == "");
  }
  SECTION("hex runs of other lengths") {
    std::string id63 = kId.substr(0, 63), id65 = kId + "a", id128 = kId + kId2;
    CHECK(find("0::/docker/" + id63 + "\n", "") == "");
    CHECK(find("0::/docker/" + id65 + "\n", "") == "");
    CHECK(find("0::/docker/" + id128 + "\n", "") == "");
    CHECK(find("0::/\n", "1 2 3:4 /var/lib/docker/containers/" + id63 + "/hostname /etc/hostname rw - ext4 x rw\n")
               == "");
    CHECK(find("0::/\n", "1 2 3:4 /var/lib/docker/containers/" + id65 + "/hostname /etc/hostname rw - ext4 x rw\n")
               == "");
    // Upper-case hex is not what runtimes write.
    std::string upper = kId;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    CHECK(find("0::/docker/" + upper + "\n", "") == "");
  }
}

TEST_CASE("container id: id at the very end of the text, and small output buffers", "[identity]") {
  CHECK(find("0::/docker/" + kId, "") == kId);  // no trailing newline
  CHECK(find(kId, "") == kId);                  // nothing but the id
  // An output buffer that cannot hold 64 hex digits + NUL: no id, still terminated.
  CHECK(find(("0::/docker/" + kId).c_str(), nullptr, 64) == "");
  CHECK(find(("0::/docker/" + kId).c_str(), nullptr, 65) == kId);
}

namespace {
// btime (/proc/stat) + starttime (field 22 of /proc/self/stat) in ns, as
// proc(5) defines them; 0 if either cannot be read.
uint64_t proc_start_wall_ns() {
  std::ifstream stat("/proc/stat");
  std::string key;
  uint64_t btime = 0;
  while (stat >> key)
    if (key == "btime" && (stat >> btime)) break;
  std::ifstream self("/proc/self/stat");
  std::string line;
  std::getline(self, line);
  auto close = line.rfind(')');  // the command name may hold spaces
  if (!btime || close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
  }
  long hz = sysconf(_SC_CLK_TCK);
  if (hz <= 0) return 0;
  return btime * 1000000000ull + std::stoull(field) * (1000000000ull / static_cast<uint64_t>(hz));
}
}  // namespace

TEST_CASE("identity_collect describes this process", "[identity]") {
  static Identity id;  // large: keep it off the stack
  identity_collect(&id);
  CHECK(id.pid == getpid());
  CHECK(id.ppid == getppid());
  CHECK(std::string(id.exe).find("identity_test") != std::string::npos);
  CHECK(std::string(id.exe_base) == "identity_test");
  CHECK(std::string(id.argv0).find("identity_test") != std::string::npos);
  CHECK(id.start_mono_ns > 0);
  // The start time is a property of the process, derived from /proc (boot
  // time + the process's start in clock ticks), not from the moment it is
  // read: the test derives it the same way and expects the same number.
  CHECK(id.start_wall_ns == proc_start_wall_ns());
  static Identity again;
  identity_collect(&again);
  CHECK(again.start_wall_ns == id.start_wall_ns);
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  CHECK(std::string(id.hostname) == host);
  std::size_t cid = std::strlen(id.container_id);
  CHECK((cid == 0 || cid == 64));
  // Two collections differ in their random instance id.
  static Identity id2;
  identity_collect(&id2);
  CHECK(id2.instance != id.instance);
}
