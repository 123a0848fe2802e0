// config.h — the apiclient writer's settings and their command line (CLI11),
// which also reads a TOML config file (--config; example in
// apiclient/writer/tickfan-apiclient.example.toml). Command-line flags win over
// the file. Parsing happens once at start-up, so errors are exceptions/exit codes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nats_conn.h"
#include "sync.h"

namespace tickfan::apiclient {

struct Config {
  std::string store_path;     // the store file (e.g. /dev/shm/tickfan.store)
  uint32_t capacity = 16384;  // symbols, used only when creating the store
  std::string subject_prefix = "tickfan.q";
  std::vector<std::string> markets;  // empty = all markets
  NatsConfig nats;
  SyncOptions sync;
  int64_t heartbeat_ms = 200;              // store heartbeat period (readers: dead after a few misses)
  std::string metrics_host = "127.0.0.1";  // --metrics-addr
  int metrics_port = 0;                    // 0 = off, -1 = any free port
  std::string log_level = "info";
  std::string latency_samples_file;  // benchmarks: raw per-quote latencies written at exit
  size_t latency_samples = 0;        // how many to keep (0 = off)

  // The subscriptions that follow from prefix and markets.
  std::vector<std::string> delta_subjects() const;
  // The snapshot request payload: "" (all) or "sh,sz".
  std::string snapshot_request_payload() const;
};

// Parses argv. Returns -1 to go on, or an exit code (0 after --help, 2 on a
// usage error, with the message already printed).
int parse_config(int argc, char** argv, Config* out);

}  // namespace tickfan::apiclient
