// state.cpp — see state.h. The store-file backend (shm/) is compiled in when
// the build has the tickfan_shm library (TICKFAN_HAVE_SHM).
#include "state.h"

#include <unistd.h>

#include <stdexcept>

#include "log.h"

#ifdef TICKFAN_HAVE_SHM
#include "store.h"
#endif

namespace tickfan::apiserver {

#ifdef TICKFAN_HAVE_SHM
namespace {
// Keeps the last value of every symbol in a store file of the apiserver's
// own (not the apiclient's): same format, so shm's inspector can read it.
class StoreBackend final : public StateBackend {
 public:
  explicit StoreBackend(const std::string& path) : path_(path) {
    // Read first, with a reader, then take the writer lock: the writer's
    // fcntl lock would be dropped if this process closed another descriptor
    // of the file after taking it (shm/store.h caveats).
    shm::Status st;
    std::string err;
    if (::access(path.c_str(), F_OK) == 0) {  // a first start has nothing to read
      auto reader = shm::StoreReader::open(path, &st, &err);
      if (!reader && st == shm::Status::not_ready) {
        // Empty or never initialised: an apiserver killed while creating it
        // left nothing that was ever saved, and used to fail every restart
        // (exit 1, for good). The writer below starts such a file over, and
        // its lock still refuses one being created by a live apiserver.
        LOG_WARN("state", "state file %s was never initialised (%s): starting with no saved state", path.c_str(),
                 err.c_str());
      } else if (!reader) {
        throw std::runtime_error("state file " + path + ": " + err);
      } else {
        uint32_t used = reader->used();
        loaded_.reserve(used);
        for (uint32_t slot = 0; slot < used; ++slot) {
          Quote q;
          if (reader->read_quote(slot, &q) == shm::Status::ok) loaded_.push_back(q);
        }
      }
    }
    shm::WriterOptions opts;
    opts.capacity = 65536;
    writer_ = shm::StoreWriter::open(path, opts, &st, &err);
    if (!writer_) throw std::runtime_error("state file " + path + ": " + err);
  }
  std::vector<Quote> load() override { return std::move(loaded_); }
  bool save(std::span<const Quote> changed, uint64_t epoch, uint64_t sequence) override {
    size_t applied = 0;
    shm::Status st = writer_->apply_batch(changed, epoch, sequence, &applied);
    writer_->heartbeat();
    if (st != shm::Status::ok || applied != changed.size()) {
      static RateLimit limit(2, 10'000'000'000);
      uint64_t suppressed = 0;
      if (limit.allow(&suppressed)) {
        LOG_WARN("state", "save incomplete path=%s status=%s applied=%zu of=%zu", path_.c_str(), shm::status_name(st),
                 applied, changed.size());
      }
      return false;
    }
    return true;
  }

 private:
  std::string path_;
  std::vector<Quote> loaded_;
  std::unique_ptr<shm::StoreWriter> writer_;
};
}  // namespace

std::unique_ptr<StateBackend> open_state_backend(const std::string& path) {
  return std::make_unique<StoreBackend>(path);
}
#else
std::unique_ptr<StateBackend> open_state_backend(const std::string& path) {
  throw std::runtime_error("--state-file " + path + ": this build has no shm/ store support");
}
#endif

StatePersister::StatePersister(std::unique_ptr<StateBackend> backend) : backend_(std::move(backend)) {
  thread_ = std::thread([this] { run(); });
}

StatePersister::~StatePersister() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void StatePersister::submit(std::vector<Quote>* changed, uint64_t epoch, uint64_t sequence) {
  std::lock_guard<std::mutex> lock(mu_);
  // Coalesce with anything not yet saved: newer values simply follow older
  // ones in the same batch and overwrite them.
  if (pending_.empty()) {
    pending_.swap(*changed);
  } else {
    pending_.insert(pending_.end(), changed->begin(), changed->end());
  }
  changed->clear();
  epoch_ = epoch;
  sequence_ = sequence;
  cv_.notify_all();
}

void StatePersister::drain() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return pending_.empty() && !busy_; });
}

void StatePersister::run() {
  std::vector<Quote> work;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !pending_.empty(); });
    if (pending_.empty() && stop_) return;
    work.swap(pending_);
    uint64_t epoch = epoch_, sequence = sequence_;
    busy_ = true;
    lock.unlock();
    backend_->save(work, epoch, sequence);
    work.clear();
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

}  // namespace tickfan::apiserver
