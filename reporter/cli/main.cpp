// leakwatch: the reporter's command line. Dispatch and usage live with the
// commands (cli/commands.cpp), next to the option tables they print.
#include "reporter/cli/commands.h"

int main(int argc, char** argv) { return leakwatch::cli::main_command(argc, argv); }
