// nats_creds.h — checks a NATS .creds file before either daemon connects with
// it. libnats reads the file only inside each connect attempt, and a bad one
// then looks like any other failed attempt: a missing block ends in "No
// server available for connection", a seed that does not decode is retried
// forever. A file no retry can fix is refused at start instead, by name.
#pragma once
#include <nats/nats.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nats_text.h"

namespace tickfan {

// The value lines of a .creds file, read as libnats reads them: a line
// between two marker lines ("-----BEGIN NATS USER JWT-----", "------END ...")
// is a value; block 0 is the user JWT, block 1 the nkey seed.
inline std::vector<std::string> nats_creds_blocks(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  auto marker = [](const std::string& l) { return l.find("---") != std::string::npos; };
  std::vector<std::string> values;
  for (size_t i = 0; i + 2 < lines.size(); ++i) {
    if (marker(lines[i]) && !marker(lines[i + 1]) && marker(lines[i + 2])) {
      values.push_back(lines[i + 1]);
      i += 2;
    }
  }
  return values;
}

// A .creds file is a JWT (a few KiB at most) and a seed.
inline constexpr off_t kMaxCredsBytes = 1 << 20;

// Empty if `path` holds a user JWT and an nkey seed that signs; else the
// one-line reason, naming the file (never the seed). The library must be
// initialised (any natsOptions_Create has done it): signing needs it.
inline std::string check_nats_creds_file(const std::string& path) {
  const std::string what = "NATS credentials file " + path + ": ";
  // A FIFO or device would block the read (and libnats' own) forever.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return what + "cannot be read (" + std::strerror(errno) + ")";
  if (!S_ISREG(st.st_mode)) return what + "not a regular file";
  if (st.st_size > kMaxCredsBytes) return what + "not a .creds file (" + std::to_string(st.st_size) + " bytes)";
  std::ifstream in(path);
  if (!in) return what + "cannot be read";
  std::stringstream text;
  text << in.rdbuf();
  std::vector<std::string> blocks = nats_creds_blocks(text.str());
  if (blocks.size() < 2) return what + "not a .creds file (expected a user JWT block and an nkey seed block)";
  unsigned char* signature = nullptr;
  int length = 0;
  natsStatus s = nats_Sign(blocks[1].c_str(), "tickfan", &signature, &length);
  std::free(signature);
  if (s == NATS_OK) return "";
  return what + "its nkey seed is not usable (" + nats_last_error(s) + ")";
}

}  // namespace tickfan
