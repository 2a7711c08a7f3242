// The CLI's subcommands. main.cpp only dispatches; each command parses its
// own arguments, runs the pipeline and returns the process exit status.
// Errors are printed as one line "leakwatch: ..." on stderr.
#pragma once

namespace leakwatch::cli {

// Exit statuses (documented in README "Exit codes").
constexpr int kOk = 0;
constexpr int kError = 1;         // bad input, nothing readable, I/O failure
constexpr int kUsage = 2;         // bad command line
constexpr int kGrowthFound = 86;  // --fail-on-growth: a site grows at the threshold or faster
constexpr int kInconclusive = 87; // --fail-on-growth: the run could not tell (too few dumps, floor above the threshold)
constexpr int kNotRun = 127;      // run: the program could not be started

int cmd_report(int argc, char** argv);
int cmd_run(int argc, char** argv);
int cmd_diff(int argc, char** argv);
int cmd_inspect(int argc, char** argv);
int cmd_env_help(int argc, char** argv);
int cmd_trigger(int argc, char** argv);
int cmd_serve(int argc, char** argv);

// The whole command line: dispatch, usage, --version.
int main_command(int argc, char** argv);

}  // namespace leakwatch::cli
