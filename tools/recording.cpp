// recording.cpp — see recording.h (layout) and docs/recording.md.
#include "recording.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace tickfan::tools {

namespace {
template <typename T>
void put(char* at, T v) {
  std::memcpy(at, &v, sizeof v);
}
template <typename T>
T get(const char* at) {
  T v;
  std::memcpy(&v, at, sizeof v);
  return v;
}
}  // namespace

bool is_recording(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char magic[8];
  bool yes = std::fread(magic, 1, 8, f) == 8 && std::memcmp(magic, kRecordingMagic, 8) == 0;
  std::fclose(f);
  return yes;
}

RecordingWriter::~RecordingWriter() {
  if (f_) std::fclose(f_);
}

bool RecordingWriter::open(const std::string& path, std::string_view meta, std::string* error) {
  // Not fopen(): opening a FIFO nobody reads blocks, and tickfan-record has
  // its stop signals blocked by then, so it hung for good, deaf to SIGTERM.
  // O_NONBLOCK makes that open fail at once (ENXIO); the descriptor is made
  // blocking again for the writes.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0666);
  if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  f_ = fd >= 0 ? ::fdopen(fd, "wb") : nullptr;
  if (!f_) {
    *error = "cannot create " + path + ": " + std::strerror(errno) + (errno == ENXIO ? " (a FIFO with no reader)" : "");
    if (fd >= 0) ::close(fd);
    return false;
  }
  path_ = path;
  // A 1 MiB stdio buffer: a busy feed is thousands of messages per second,
  // and one write(2) per message would cost more than the recording itself.
  std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
  char fixed[kRecordingHeaderFixed];
  std::memcpy(fixed, kRecordingMagic, 8);
  put<uint32_t>(fixed + 8, kRecordingVersion);
  put<uint32_t>(fixed + 12, static_cast<uint32_t>(kRecordingHeaderFixed + meta.size()));
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  put<int64_t>(fixed + 16, static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec);
  put<uint32_t>(fixed + 24, static_cast<uint32_t>(meta.size()));
  if (std::fwrite(fixed, 1, sizeof fixed, f_) != sizeof fixed ||
      std::fwrite(meta.data(), 1, meta.size(), f_) != meta.size() || std::fflush(f_) != 0) {
    *error = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  bytes_ = sizeof fixed + meta.size();
  return true;
}

bool RecordingWriter::append(int64_t receive_ns, std::string_view subject, const void* payload, size_t size) {
  if (!f_ || failed_ || subject.size() > 0xFFFF || size > kMaxRecordPayload) return false;
  char prefix[kRecordPrefix];
  put<uint32_t>(prefix, static_cast<uint32_t>(size));
  put<uint16_t>(prefix + 4, static_cast<uint16_t>(subject.size()));
  put<uint16_t>(prefix + 6, 0);
  put<int64_t>(prefix + 8, receive_ns);
  if (std::fwrite(prefix, 1, sizeof prefix, f_) != sizeof prefix ||
      std::fwrite(subject.data(), 1, subject.size(), f_) != subject.size() ||
      std::fwrite(payload, 1, size, f_) != size) {
    failed_ = true;
    return false;
  }
  ++records_;
  bytes_ += sizeof prefix + subject.size() + size;
  return true;
}

bool RecordingWriter::flush() { return f_ && !failed_ && std::fflush(f_) == 0; }

bool RecordingWriter::close(std::string* error) {
  if (!f_) return true;
  bool ok = !failed_ && std::fflush(f_) == 0 && fsync(fileno(f_)) == 0;
  int err = errno;
  ok = std::fclose(f_) == 0 && ok;
  f_ = nullptr;
  if (!ok) *error = "writing " + path_ + " failed: " + std::strerror(err ? err : EIO);
  return ok;
}

RecordingReader::~RecordingReader() {
  if (f_) std::fclose(f_);
}

bool RecordingReader::open(const std::string& path, std::string* error) {
  f_ = std::fopen(path.c_str(), "rb");
  if (!f_) {
    *error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
  struct stat st;
  if (fstat(fileno(f_), &st) == 0) file_size_ = static_cast<uint64_t>(st.st_size);
  char fixed[kRecordingHeaderFixed];
  if (std::fread(fixed, 1, sizeof fixed, f_) != sizeof fixed) {
    *error = path + ": too short for a recording header (" + std::to_string(file_size_) + " bytes)";
    return false;
  }
  if (std::memcmp(fixed, kRecordingMagic, 8) != 0) {
    *error = path + ": not a tickfan recording (no TFRECORD magic)";
    return false;
  }
  version_ = get<uint32_t>(fixed + 8);
  header_len_ = get<uint32_t>(fixed + 12);
  created_ns_ = get<int64_t>(fixed + 16);
  uint32_t meta_len = get<uint32_t>(fixed + 24);
  if (version_ == 0 || version_ > kRecordingVersion) {
    *error = path + ": recording format version " + std::to_string(version_) + ", this build reads up to version " +
             std::to_string(kRecordingVersion);
    return false;
  }
  if (header_len_ < kRecordingHeaderFixed + meta_len || header_len_ > file_size_) {
    *error = path + ": corrupt header (header_len " + std::to_string(header_len_) + ", meta_len " +
             std::to_string(meta_len) + ")";
    return false;
  }
  meta_.resize(meta_len);
  if (meta_len && std::fread(meta_.data(), 1, meta_len, f_) != meta_len) {
    *error = path + ": truncated header";
    return false;
  }
  if (!rewind()) {
    *error = path + ": cannot seek to the first record";
    return false;
  }
  return true;
}

bool RecordingReader::rewind() {
  if (!f_ || std::fseek(f_, header_len_, SEEK_SET) != 0) return false;
  offset_ = header_len_;
  return true;
}

RecordingReader::Next RecordingReader::next(RecordView* out) {
  char prefix[kRecordPrefix];
  size_t got = std::fread(prefix, 1, sizeof prefix, f_);
  if (got == 0) return Next::end;
  if (got != sizeof prefix) return Next::truncated;
  uint32_t size = get<uint32_t>(prefix);
  uint16_t subject_len = get<uint16_t>(prefix + 4);
  if (size > kMaxRecordPayload || get<uint16_t>(prefix + 6) != 0) return Next::corrupt;
  if (offset_ + sizeof prefix + subject_len + size > file_size_ && file_size_ != 0) {
    // Either the recorder died mid-record or the file is still being written.
    return Next::truncated;
  }
  subject_.resize(subject_len);
  payload_.resize((size + 7) / 8);
  if (std::fread(subject_.data(), 1, subject_len, f_) != subject_len ||
      std::fread(payload_.data(), 1, size, f_) != size) {
    return Next::truncated;
  }
  offset_ += sizeof prefix + subject_len + size;
  out->receive_ns = get<int64_t>(prefix + 8);
  out->subject = subject_;
  out->payload = payload_.data();
  out->size = size;
  return Next::record;
}

}  // namespace tickfan::tools
