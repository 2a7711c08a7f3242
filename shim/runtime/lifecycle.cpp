#include "shim/runtime/lifecycle.h"

#include "shim/runtime/guard.h"

namespace leakwatch::shim {

__thread ThreadState t_state __attribute__((tls_model("initial-exec")));
std::atomic<unsigned> g_next_shard{0};
std::atomic<int> g_state{kUninitialized};
Config g_config;

}  // namespace leakwatch::shim
