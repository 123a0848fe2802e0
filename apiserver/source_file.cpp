// source_file.cpp — file:PATH (optionally following a growing file, like
// `tail -F`: it survives truncation and rotation) and stdin:. PATH may also be
// a FIFO or a device (a producer streaming into a named pipe); those are read
// like stdin, in short polls, so a silent writer never holds up a stop.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "source.h"

namespace tickfan::apiserver {

namespace {

class FileSource final : public Source {
 public:
  using Source::Source;
  ~FileSource() override {
    request_stop();
    join();
    if (fd_ > 0) ::close(fd_);
  }

  void prepare() override {
    if (spec_.kind == SourceKind::stdin_) {
      fd_ = 0;
      struct stat st {};
      regular_ = ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
      return;
    }
    fd_ = open_path();
    if (fd_ < 0 && !(spec_.follow && errno == ENOENT)) {
      throw std::runtime_error("source " + spec_.name + ": cannot open " + spec_.path + ": " + std::strerror(errno));
    }
    if (fd_ < 0) LOG_WARN("source", "waiting for file source=%s path=%s", spec_.name.c_str(), spec_.path.c_str());
  }

 protected:
  void run() override {
    std::vector<char> buf(1 << 20);
    for (;;) {
      if (fd_ < 0 && !reopen()) {
        if (!sleep_ms(100)) return;
        continue;
      }
      if (!regular_ && !wait_readable()) {
        if (stopping()) return;
        continue;
      }
      ssize_t n = ::read(fd_, buf.data(), buf.size());
      if (n < 0 && errno == EAGAIN) continue;  // a FIFO whose writer has nothing yet
      if (n > 0) {
        feed(buf.data(), static_cast<size_t>(n), false);
        // On stop, what was read is committed (feed) and nothing more is read.
        if (stopping()) return;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        count_error();
        LOG_ERROR("source", "read failed source=%s error=%s", spec_.name.c_str(), std::strerror(errno));
      }
      // End of input.
      if (!spec_.follow || spec_.kind == SourceKind::stdin_) {
        feed(nullptr, 0, true);
        LOG_INFO("source", "end of input source=%s ticks=%llu", spec_.name.c_str(),
                 static_cast<unsigned long long>(ticks()));
        return;
      }
      if (rotated()) {
        // Rotation/truncation: finish what the old file had, start the new one.
        feed(nullptr, 0, true);
        ::close(fd_);
        fd_ = -1;
        LOG_INFO("source", "file rotated or truncated, reopening source=%s", spec_.name.c_str());
        continue;
      }
      if (!sleep_ms(20)) return;
    }
  }

 private:
  // Opens spec_.path without blocking and notes whether it is a regular file.
  // A plain open() of a FIFO waits for a writer, and nothing interrupts it:
  // SIGTERM went unanswered for good. A directory opens but cannot be read
  // (read failed every 20 ms, logging each): refused as EISDIR.
  int open_path() {
    int fd = ::open(spec_.path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return -1;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
      int e = S_ISDIR(st.st_mode) ? EISDIR : errno;
      ::close(fd);
      errno = e;
      return -1;
    }
    regular_ = S_ISREG(st.st_mode);
    return fd;
  }
  bool reopen() {
    fd_ = open_path();
    if (fd_ >= 0) LOG_INFO("source", "opened source=%s path=%s", spec_.name.c_str(), spec_.path.c_str());
    return fd_ >= 0;
  }
  // True when the path now names another file, or ours shrank below our offset.
  bool rotated() {
    struct stat by_path {
    }, by_fd{};
    if (::stat(spec_.path.c_str(), &by_path) != 0) return false;  // moved away, new one not there yet
    if (::fstat(fd_, &by_fd) != 0) return true;
    if (by_path.st_ino != by_fd.st_ino || by_path.st_dev != by_fd.st_dev) return true;
    off_t pos = ::lseek(fd_, 0, SEEK_CUR);
    return pos >= 0 && by_fd.st_size < pos;
  }
  // stdin or a FIFO may stay open and silent: poll so stop is noticed. (A
  // FIFO opened before any writer polls as not readable, not as ended, so a
  // producer that starts after us is still read.)
  bool wait_readable() {
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, 100);
    return rc > 0;
  }

  int fd_ = -1;
  bool regular_ = true;  // false: FIFO, device, pipe or socket (read after a poll)
};

}  // namespace

std::unique_ptr<Source> make_file_source(const SourceSpec& spec, const SourceContext& ctx, int index) {
  return std::make_unique<FileSource>(spec, ctx, index);
}

}  // namespace tickfan::apiserver
