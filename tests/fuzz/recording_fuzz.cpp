// recording_fuzz.cpp — a file handed to tickfan-replay: a recording (magic
// TFRECORD, then length-prefixed NATS messages) or a CSV/JSONL tick file,
// read to the end, rewound, and read again. Properties, for any bytes: no
// crash, hang or sanitizer report; the stream ends (events are bounded by the
// file's size); a second pass after rewind() returns exactly the same events
// (replay --loop depends on it). Every event is also written out as the tick
// lines replay sends (CSV and JSONL), whatever its fields hold: a recording
// keeps corrupt messages as evidence, and the apiserver that receives the
// lines is the one that validates them.
//
// The file is an unnamed one in /dev/shm (O_TMPFILE, fuzz_store.h), opened
// by TickInput as /proc/self/fd/N: a run that crashes, times out or is
// killed, even in the middle of an input, leaves nothing behind (the named
// case file it used to write stayed wherever an input stopped).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_store.h"
#include "log.h"
#include "tick_input.h"
#include "tick_writer.h"

using namespace tickfan;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = (log_set_level(LogLevel::error), true);
  (void)quiet;
  int fd = fuzz::unnamed_file();
  const std::string path = fuzz::fd_path(fd);
  if (size && ::write(fd, data, size) != static_cast<ssize_t>(size)) fuzz::fail("short write", std::strerror(errno));

  std::string error;
  auto input = tools::TickInput::open(path, &error);
  fuzz::kill_midway_if_asked();
  if (input) {
    std::vector<tools::TickEvent> first;
    tools::TickEvent e;
    // A tick needs at least a few bytes of input: more events than bytes
    // means the reader is not advancing.
    while (input->next(&e)) {
      if (first.size() > size) fuzz::fail("more events than input bytes", std::to_string(first.size()));
      std::string line;
      tools::append_tick_line(e.quote, tools::TickFormat::csv, &line);
      tools::append_tick_line(e.quote, tools::TickFormat::jsonl, &line);
      first.push_back(e);
    }
    if (!input->rewind()) fuzz::fail("rewind failed", input->kind());
    size_t i = 0;
    while (input->next(&e)) {
      if (i >= first.size() || e.event_ns != first[i].event_ns ||
          std::memcmp(&e.quote, &first[i].quote, sizeof e.quote) != 0)
        fuzz::fail("the second pass differs from the first", std::to_string(i));
      ++i;
    }
    if (i != first.size())
      fuzz::fail("the second pass is shorter", std::to_string(i) + " of " + std::to_string(first.size()));
  }
  input.reset();
  ::close(fd);
  return 0;
}
