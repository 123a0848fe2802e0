// cli_numbers.h — number checks the tools' command lines share. CLI::Range
// lets NaN through (every comparison with it is false), and a NaN or huge
// count of seconds turned into int64 nanoseconds is undefined: --progress-s
// 1e300 printed a progress line every 100 ms, --duration nan recorded for
// ever. Usage errors exit 2, as the daemons' do.
#pragma once
#include <CLI/CLI.hpp>
#include <cmath>
#include <string>

namespace tickfan::tools {

inline const CLI::Validator NotNaN(
    [](std::string& v) -> std::string {
      double d = 0;
      return CLI::detail::lexical_cast(v, d) && std::isnan(d) ? "NaN is not a number" : "";
    },
    "");

// Parses argv; returns -1 to go on, else the exit code (0 after --help, 2 for
// any usage error; CLI11_PARSE returned CLI11's own 101..109).
inline int parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return -1;
}

}  // namespace tickfan::tools
