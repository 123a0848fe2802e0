// cli_checks.h — CLI11 validators the daemons share for the files they read
// at start (config, credentials, TLS). CLI::ExistingFile accepts a FIFO or a
// device, whose read would block start-up forever; a configuration mistake
// must be a clear usage error instead (exit 2, like any other).
#pragma once
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <string>

namespace tickfan {

inline const CLI::Validator RegularFile(
    [](std::string& path) -> std::string {
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0) return "File does not exist: " + path;
      if (!S_ISREG(st.st_mode)) return "Not a regular file (a FIFO or device would block the read): " + path;
      return "";
    },
    "FILE");

}  // namespace tickfan
