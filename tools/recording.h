// recording.h — the recording file tickfan-record writes and tickfan-replay
// reads: every NATS message received, as it arrived, with its receive time
// and subject. docs/recording.md is the format's reference; this header is
// its implementation.
//
// File = header, then records back to back, all integers little-endian:
//
//   header (28 + meta_len bytes)
//   0        8        12            16              24         28
//   +--------+--------+-------------+---------------+----------+------------------+
//   |TFRECORD|version |header_len   |created_ns     |meta_len  | meta (UTF-8,     |
//   | magic  |u32 = 1 |u32 (offset  |i64, wall clock|u32       | key=value lines) |
//   |        |        | of record 1)|               |          |                  |
//   +--------+--------+-------------+---------------+----------+------------------+
//
//   record (16 + subject_len + payload_len bytes)
//   0             4            6          8                16          16+subject_len
//   +-------------+------------+----------+----------------+-----------+-------------+
//   |payload_len  |subject_len |flags u16 |receive_ns i64  | subject   | payload     |
//   |u32          |u16         |(0)       |wall clock      | (ASCII)   | (bytes)     |
//   +-------------+------------+----------+----------------+-----------+-------------+
//
// Why length-prefixed raw payloads and not decoded quotes: a recording is
// evidence. It keeps exactly the bytes NATS delivered (a corrupt or foreign
// message included), so a replay or a post-mortem sees what the front boxes
// saw; decoding happens on read. Readers use header_len to find the first
// record, so fields appended to the header later do not break version-1
// readers; a change to the record layout bumps `version`, and readers refuse
// versions newer than theirs, naming both.
//
// A recorder killed mid-write leaves a truncated last record; the reader
// reports it (Next::truncated) after every complete record before it.
#pragma once
#include <bit>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tickfan::tools {

static_assert(std::endian::native == std::endian::little, "the recording format is little-endian; add byte swaps");

inline constexpr char kRecordingMagic[8] = {'T', 'F', 'R', 'E', 'C', 'O', 'R', 'D'};
inline constexpr uint32_t kRecordingVersion = 1;
inline constexpr size_t kRecordingHeaderFixed = 28;       // bytes before meta
inline constexpr size_t kRecordPrefix = 16;               // bytes before a record's subject
inline constexpr uint32_t kMaxRecordPayload = 64u << 20;  // anything larger is corruption

// True when the file at `path` starts with the recording magic.
bool is_recording(const std::string& path);

class RecordingWriter {
 public:
  RecordingWriter() = default;
  ~RecordingWriter();
  RecordingWriter(const RecordingWriter&) = delete;
  RecordingWriter& operator=(const RecordingWriter&) = delete;

  // Creates (truncates) `path` and writes the header. `meta` is free text for
  // people (subjects, server, host); readers only display it.
  bool open(const std::string& path, std::string_view meta, std::string* error);
  // Appends one record (buffered). False on a write error or an oversized
  // message (subject > 65535 bytes, payload > kMaxRecordPayload).
  bool append(int64_t receive_ns, std::string_view subject, const void* payload, size_t size);
  bool flush();
  // Flushes, fsyncs and closes; false (with *error) if anything failed.
  bool close(std::string* error);

  uint64_t records() const { return records_; }
  uint64_t bytes() const { return bytes_; }

 private:
  FILE* f_ = nullptr;
  std::string path_;
  uint64_t records_ = 0;
  uint64_t bytes_ = 0;
  bool failed_ = false;
};

struct RecordView {
  int64_t receive_ns = 0;
  std::string_view subject;
  const void* payload = nullptr;  // 8-byte aligned (FlatBuffers reads in place)
  size_t size = 0;
};

class RecordingReader {
 public:
  enum class Next { record, end, truncated, corrupt };

  RecordingReader() = default;
  ~RecordingReader();
  RecordingReader(const RecordingReader&) = delete;
  RecordingReader& operator=(const RecordingReader&) = delete;

  // Opens and checks the header: not a recording, a newer version, or a
  // truncated header fail with a message naming the path.
  bool open(const std::string& path, std::string* error);
  // Reads the next record into *out (valid until the next call).
  Next next(RecordView* out);
  // Back to the first record (for looped replays).
  bool rewind();

  uint32_t version() const { return version_; }
  int64_t created_ns() const { return created_ns_; }
  const std::string& meta() const { return meta_; }
  uint64_t offset() const { return offset_; }  // bytes consumed so far
  uint64_t file_size() const { return file_size_; }

 private:
  FILE* f_ = nullptr;
  uint32_t version_ = 0;
  uint32_t header_len_ = 0;
  int64_t created_ns_ = 0;
  std::string meta_;
  std::string subject_;
  std::vector<uint64_t> payload_;  // uint64_t storage keeps the payload aligned
  uint64_t offset_ = 0;
  uint64_t file_size_ = 0;
};

}  // namespace tickfan::tools
