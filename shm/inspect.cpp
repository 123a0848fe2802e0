// inspect.cpp — `tickfan-store`, the store inspector (in the spirit of LMDB's
// mdb_stat). Opens a store read-only, so it is safe next to a live writer.
//
//   tickfan-store stat   PATH            capacity, used, writer, last commit, probes
//   tickfan-store get    PATH SYMBOL     one record as JSON
//   tickfan-store dump   PATH            every record, one JSON line each
//   tickfan-store verify PATH            checksum + index check of every record
//   tickfan-store tail   PATH SYMBOL     print the record each time it changes
//
// Exit codes: 0 ok; 1 the symbol is not stored, or verify found bad records;
// 2 usage error, or the store cannot be opened (message on stderr).
#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>

#include "cli_checks.h"
#include "clock.h"
#include "store.h"

using namespace tickfan;
using namespace tickfan::shm;

namespace {

volatile std::sig_atomic_t g_stop = 0;

std::unique_ptr<StoreReader> open_or_die(const std::string& path) {
  Status st;
  std::string err;
  auto r = StoreReader::open(path, &st, &err);
  if (!r) {
    std::fprintf(stderr, "tickfan-store: %s\n", err.c_str());
    std::exit(2);
  }
  return r;
}

double age_s(int64_t ns) { return ns ? static_cast<double>(wall_ns() - ns) / 1e9 : -1; }

int cmd_stat(const std::string& path) {
  auto r = open_or_die(path);
  StoreState s = r->state();
  uint32_t max_probe = 0;
  double mean_probe = 0;
  r->probe_lengths(&max_probe, &mean_probe);
  std::printf("path            %s\n", path.c_str());
  std::printf("layout_version  %u\n", s.layout_version);
  std::printf("file_size       %zu bytes (%.1f bytes/symbol)\n", s.file_size,
              static_cast<double>(s.file_size) / (s.capacity ? s.capacity : 1));
  std::printf("capacity        %u symbols\n", s.capacity);
  std::printf("used            %u symbols (%.1f%%)\n", s.used, 100.0 * s.used / (s.capacity ? s.capacity : 1));
  std::printf("writer_pid      %d (%s)\n", s.writer_pid, s.writer_alive ? "alive" : "not running");
  std::printf("writer_age      %.3f s since start\n", age_s(s.writer_start_ns));
  std::printf("heartbeat_age   %.3f s\n", age_s(s.heartbeat_ns));
  std::printf("last_commit     epoch %llu sequence %llu, %.3f s ago, %llu commits\n",
              static_cast<unsigned long long>(s.epoch), static_cast<unsigned long long>(s.sequence), age_s(s.commit_ns),
              static_cast<unsigned long long>(s.commit_count));
  std::printf("sync_state      %s (gaps %llu, resyncs %llu)\n", sync_state_name(s.sync_state),
              static_cast<unsigned long long>(s.gaps), static_cast<unsigned long long>(s.resyncs));
  std::printf("repairs         %llu\n", static_cast<unsigned long long>(s.repairs));
  std::printf("rejected        %llu\n", static_cast<unsigned long long>(s.rejected));
  std::printf("probe_length    max %u, mean %.3f\n", max_probe, mean_probe);
  return 0;
}

int cmd_get(const std::string& path, const std::string& symbol) {
  auto r = open_or_die(path);
  std::string out;
  Status s = r->append_json(symbol, &out);
  if (s != Status::ok) {
    std::fprintf(stderr, "tickfan-store: %s: %s\n", symbol.c_str(), status_name(s));
    return 1;
  }
  std::printf("%s\n", out.c_str());
  return 0;
}

int cmd_dump(const std::string& path) {
  auto r = open_or_die(path);
  char buf[kQuoteJsonMax];
  uint32_t n = r->used(), failed = 0;
  for (uint32_t slot = 0; slot < n; ++slot) {
    size_t len = 0;
    if (r->read_json(slot, buf, &len) == Status::ok) {
      std::fwrite(buf, 1, len, stdout);
      std::fputc('\n', stdout);
    } else {
      ++failed;
    }
  }
  return failed ? 1 : 0;
}

int cmd_verify(const std::string& path) {
  auto r = open_or_die(path);
  std::string report;
  uint32_t bad = r->verify(&report);
  std::printf("%u records checked, %u bad\n%s", r->used(), bad, report.c_str());
  return bad ? 1 : 0;
}

int cmd_tail(const std::string& path, const std::string& symbol) {
  auto r = open_or_die(path);
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  uint64_t last_version = UINT64_MAX;
  char buf[kQuoteJsonMax];
  while (!g_stop) {
    uint32_t slot = 0;
    if (r->find(symbol, &slot) == Status::ok) {
      size_t len = 0;
      uint64_t version = 0;
      if (r->read_json(slot, buf, &len, &version) == Status::ok && version != last_version) {
        last_version = version;
        std::printf("%.*s\n", static_cast<int>(len), buf);
        std::fflush(stdout);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tickfan-store: inspect a tickfan quote store (read-only, safe next to a live writer)"};
  app.require_subcommand(1);
  std::string path, symbol;
  auto* stat = app.add_subcommand("stat", "capacity, use, writer liveness, last commit, index probe lengths");
  stat->add_option("path", path, "store file")->required();
  auto* get = app.add_subcommand("get", "print one symbol's record as JSON");
  get->add_option("path", path, "store file")->required();
  get->add_option("symbol", symbol, "symbol, e.g. sh600000")->required();
  auto* dump = app.add_subcommand("dump", "print every record as one JSON line");
  dump->add_option("path", path, "store file")->required();
  auto* verify = app.add_subcommand("verify", "check every record's checksum, key and index entry");
  verify->add_option("path", path, "store file")->required();
  auto* tail = app.add_subcommand("tail", "print a symbol's record each time it changes (Ctrl-C stops)");
  tail->add_option("path", path, "store file")->required();
  tail->add_option("symbol", symbol, "symbol, e.g. sh600000")->required();
  if (int rc = parse_command_line(app, argc, argv); rc >= 0) return rc;
  if (*stat) return cmd_stat(path);
  if (*get) return cmd_get(path, symbol);
  if (*dump) return cmd_dump(path);
  if (*verify) return cmd_verify(path);
  if (*tail) return cmd_tail(path, symbol);
  return 2;
}
