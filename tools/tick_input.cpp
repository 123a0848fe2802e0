// tick_input.cpp — see tick_input.h.
#include "tick_input.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include "batch.h"
#include "clock.h"
#include "log.h"
#include "parse.h"
#include "recording.h"
#include "validate.h"

namespace tickfan::tools {

namespace {

class RecordingInput final : public TickInput {
 public:
  bool open(const std::string& path, std::string* error) { return reader_.open(path, error); }

  bool next(TickEvent* out) override {
    while (pos_ >= quotes_.size()) {
      RecordView rec;
      switch (reader_.next(&rec)) {
        case RecordingReader::Next::end: return false;
        case RecordingReader::Next::truncated: stats_.truncated = true; return false;
        case RecordingReader::Next::corrupt: stats_.corrupt = true; return false;
        case RecordingReader::Next::record: break;
      }
      const wire::QuoteBatch* batch = nullptr;
      if (verify_batch(rec.payload, rec.size, &batch) != BatchError::ok) {
        ++stats_.bad_messages;
        continue;
      }
      if (batch->kind() != wire::BatchKind::Delta || !batch->quotes()) {
        ++stats_.other_kinds;
        continue;
      }
      // Vectors of structs iterate as pointers; copy the quotes out (the
      // reader's buffer is reused by the next record).
      quotes_.clear();
      for (const Quote* q : *batch->quotes()) quotes_.push_back(*q);
      pos_ = 0;
      event_ns_ = rec.receive_ns;
    }
    out->event_ns = event_ns_;
    out->quote = quotes_[pos_++];
    ++stats_.ticks;
    return true;
  }
  bool rewind() override {
    quotes_.clear();
    pos_ = 0;
    stats_ = {};
    return reader_.rewind();
  }
  const char* kind() const override { return "recording"; }
  uint64_t offset() const override { return reader_.offset(); }
  uint64_t size() const override { return reader_.file_size(); }

 private:
  RecordingReader reader_;
  std::vector<Quote> quotes_;
  size_t pos_ = 0;
  int64_t event_ns_ = 0;
};

class TickFileInput final : public TickInput {
 public:
  ~TickFileInput() override {
    if (f_) std::fclose(f_);
    std::free(line_);
  }
  bool open(const std::string& path, std::string* error) {
    path_ = path;
    f_ = std::fopen(path.c_str(), "rb");
    if (!f_) {
      *error = "cannot open " + path + ": " + std::strerror(errno);
      return false;
    }
    struct stat st;
    if (fstat(fileno(f_), &st) == 0) size_ = static_cast<uint64_t>(st.st_size);
    return true;
  }

  bool next(TickEvent* out) override {
    for (;;) {
      ssize_t n = getline(&line_, &cap_, f_);
      if (n < 0) return false;
      offset_ += static_cast<uint64_t>(n);
      ++line_no_;
      std::string_view line(line_, static_cast<size_t>(n));
      if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
      apiserver::FieldSet present = 0;
      apiserver::Reject reason{};
      detail_.clear();
      apiserver::LineKind k = parser_.parse(line, &out->quote, &present, &reason, &detail_);
      if (k == apiserver::LineKind::skipped) continue;
      // No "future" limit here: whether a tick is too far ahead depends on
      // when it is replayed, which is the apiserver's call.
      apiserver::ValidateLimits limits;
      limits.max_future_ns = std::numeric_limits<int64_t>::max() / 4;
      if (k == apiserver::LineKind::rejected ||
          !apiserver::validate_tick(&out->quote, present, wall_ns(), limits, &reason, &detail_)) {
        if (++stats_.rejected <= 10) {
          LOG_WARN("replay", "%s:%llu: line refused (%s %s)%s", path_.c_str(),
                   static_cast<unsigned long long>(line_no_), apiserver::reject_name(reason), detail_.c_str(),
                   stats_.rejected == 10 ? "; further refusals are only counted" : "");
        }
        continue;
      }
      out->event_ns = out->quote.exchange_ts_ns();
      ++stats_.ticks;
      return true;
    }
  }
  bool rewind() override {
    std::rewind(f_);
    parser_ = apiserver::LineParser{};
    offset_ = line_no_ = 0;
    stats_ = {};
    return true;
  }
  const char* kind() const override { return "tick file"; }
  uint64_t offset() const override { return offset_; }
  uint64_t size() const override { return size_; }

 private:
  std::string path_;
  FILE* f_ = nullptr;
  char* line_ = nullptr;
  size_t cap_ = 0;
  uint64_t offset_ = 0, size_ = 0, line_no_ = 0;
  apiserver::LineParser parser_;
  std::string detail_;
};

}  // namespace

std::unique_ptr<TickInput> TickInput::open(const std::string& path, std::string* error) {
  if (is_recording(path)) {
    auto in = std::make_unique<RecordingInput>();
    if (!in->open(path, error)) return nullptr;
    return in;
  }
  auto in = std::make_unique<TickFileInput>();
  if (!in->open(path, error)) return nullptr;
  return in;
}

}  // namespace tickfan::tools
