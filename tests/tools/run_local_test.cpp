// run_local_test.cpp — scripts/run-local.sh, the README's first command, as a
// newcomer runs it: it starts, the curl commands it prints work exactly as
// printed, and SIGTERM leaves no process behind. Every process the script
// started (daemons and the HTTP workers they fork) is collected by walking
// /proc while it runs, then checked by PID (and start time, against PID
// reuse) after it exits.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "process.h"

using namespace tickfan::testing;

namespace {

// pid -> (ppid, start time in clock ticks) for every process on the machine.
std::map<int, std::pair<int, unsigned long long>> process_table() {
  std::map<int, std::pair<int, unsigned long long>> out;
  FILE* ls = popen("ls /proc", "r");
  char name[64];
  while (ls && std::fscanf(ls, "%63s", name) == 1) {
    int pid = std::atoi(name);
    if (pid <= 0) continue;
    std::string stat = read_file("/proc/" + std::string(name) + "/stat");
    auto close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) continue;
    std::istringstream in(stat.substr(close_paren + 2));
    std::string field;
    std::vector<std::string> f;
    while (in >> field) f.push_back(field);
    if (f.size() < 20) continue;
    // After "(comm) ": state ppid pgrp ... starttime is field 22 overall = index 19 here.
    out[pid] = {std::atoi(f[1].c_str()), std::stoull(f[19])};
  }
  if (ls) pclose(ls);
  return out;
}

std::map<int, unsigned long long> descendants(int root) {
  auto table = process_table();
  std::map<int, unsigned long long> out;
  std::set<int> frontier{root};
  while (!frontier.empty()) {
    std::set<int> next;
    for (const auto& [pid, info] : table) {
      if (frontier.count(info.first) && !out.count(pid)) {
        out[pid] = info.second;
        next.insert(pid);
      }
    }
    frontier = next;
  }
  return out;
}

bool still_there(int pid, unsigned long long start) {
  auto table = process_table();
  auto it = table.find(pid);
  return it != table.end() && it->second.second == start;
}

std::string sh(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

bool port_bindable(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

int consecutive_free_ports_below_ephemeral(int count) {
  std::mt19937 rng(static_cast<uint32_t>(::getpid()));
  for (int attempt = 0; attempt < 1000; ++attempt) {
    int base = 20000 + static_cast<int>(rng() % 12000);
    bool ok = true;
    for (int i = 0; i < count && ok; ++i) ok = port_bindable(base + i);
    if (ok) return base;
  }
  return free_port();
}

}  // namespace

TEST_CASE("run-local.sh starts the system, its printed curl commands work, SIGTERM leaves nothing behind") {
  TempDir dir;
  const std::string log = dir.file("run-local.log");
  // Two consecutive ports (box 1 and box 2) below Linux's ephemeral range
  // (32768+), where no other test's outgoing connection can land on them.
  const int port = consecutive_free_ports_below_ephemeral(2);
  ChildProcess script(
      {"/usr/bin/env", std::string("BUILD_DIR=") + TICKFAN_BUILD_DIR, "bash",
       std::string(TICKFAN_SOURCE_DIR) + "/scripts/run-local.sh", "--no-build", "--boxes", "2", "--symbols", "200",
       "--rate", "500", "--workers", "1", "--http-port", std::to_string(port), "--run-dir", dir.file("run")},
      log);
  // A failed REQUIRE must still stop the script with SIGTERM (its cleanup
  // stops the daemons); ChildProcess's own SIGKILL would orphan them.
  struct Guard {
    ChildProcess& p;
    ~Guard() {
      if (p.running()) p.stop(SIGTERM, 30000);
    }
  } guard{script};
  REQUIRE_MESSAGE(
      wait_until([&] { return read_file(log).find("Ctrl-C stops everything") != std::string::npos; }, 60000),
      read_file(log));
  const std::string out = read_file(log);
  CAPTURE(out);

  // Every process it started: nats, apiserver, 2 x (apiclient, http supervisor + 1 worker).
  auto started = descendants(script.pid());
  std::map<int, unsigned long long> daemons;
  std::string names;
  for (const auto& [pid, start] : started) {
    std::string comm = read_file("/proc/" + std::to_string(pid) + "/comm");
    // Only what it started: its own short-lived helpers (sleep) come and go.
    if (comm.rfind("tickfan-", 0) != 0 && comm.rfind("nats-server", 0) != 0) continue;
    daemons[pid] = start;
    names += std::to_string(pid) + " " + comm;
  }
  CHECK_MESSAGE(daemons.size() == 8, names);

  // The three example commands, run exactly as printed.
  std::regex curl_line("^  (curl -s '[^']+')$");
  int curls = 0;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (!std::regex_match(line, m, curl_line)) continue;
    ++curls;
    std::string body = sh(m[1].str());
    CAPTURE(line);
    CHECK(body.find("\"symbol\":\"s") != std::string::npos);
    CHECK(body.find("\"error\"") == std::string::npos);
  }
  CHECK(curls == 3);
  // Each HTTP worker's own /metrics, at the printed per-worker URL.
  std::smatch worker_url;
  REQUIRE(std::regex_search(out, worker_url, std::regex("per worker +(http://127.0.0.1:[0-9]+/metrics)")));
  std::string worker_metrics = sh("curl -s " + worker_url[1].str());
  CHECK(worker_metrics.find("tickfan_http_requests_total") != std::string::npos);
  CHECK(worker_metrics.find("worker=\"0\"") != std::string::npos);
  // The second box serves the same fan-out.
  CHECK(sh("curl -s http://127.0.0.1:" + std::to_string(port + 1) + "/v1/quotes/sz000001")
            .find("\"symbol\":\"sz000001\"") != std::string::npos);
  // The store wrapper works on the printed store path.
  std::string stat = sh("BUILD_DIR=" + std::string(TICKFAN_BUILD_DIR) + " " + TICKFAN_SOURCE_DIR +
                        "/scripts/store.sh stat " + dir.file("run") + "/box1/tickfan.store");
  CHECK(stat.find("writer_pid") != std::string::npos);
  CHECK(stat.find("(alive)") != std::string::npos);

  script.signal(SIGTERM);
  int status = script.wait(30000);
  CHECK(exited_with(status, 143));
  for (const auto& [pid, start] : daemons) {
    CAPTURE(pid);
    CHECK_FALSE(still_there(pid, start));
  }
  CHECK(read_file(log).find("stopping 6 processes") != std::string::npos);
  CHECK(read_file(log).find("ignored SIGTERM") == std::string::npos);  // all stopped cleanly, none killed
}
