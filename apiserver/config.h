// config.h — the command line (CLI11), which can also be read from a config
// file (--config FILE, TOML; see apiserver.example.toml). Kept apart from
// main.cpp so tests can check that the example file parses.
#pragma once
#include <string>

#include "server.h"

namespace tickfan::apiserver {

struct Options {
  ServerConfig server;
  std::string metrics_addr = "127.0.0.1";
  int metrics_port = 9321;
  std::string log_level = "info";
};

// Parses argv into *out. Returns -1 to continue, or an exit code (0 after
// --help, 2 on a usage error, with the message already printed).
int parse_options(int argc, char** argv, Options* out);

}  // namespace tickfan::apiserver
