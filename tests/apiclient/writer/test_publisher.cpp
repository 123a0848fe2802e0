// test_publisher.cpp — see test_publisher.h.
#include "test_publisher.h"

#include <stdexcept>

#include "clock.h"
#include "subjects.h"

namespace tickfan::testing {

namespace {
void check(natsStatus s, const char* what) {
  if (s != NATS_OK) throw std::runtime_error(std::string("test publisher: ") + what + ": " + natsStatus_GetText(s));
}
}  // namespace

TestPublisher::TestPublisher(const std::string& url, std::string prefix, uint32_t shards)
    : prefix_(std::move(prefix)), shards_(shards), epoch_(static_cast<uint64_t>(wall_ns())) {
  check(natsOptions_Create(&opts_), "options");
  check(natsOptions_SetURL(opts_, url.c_str()), "url");
  check(natsOptions_SetSendAsap(opts_, true), "send asap");
  check(natsOptions_SetMaxReconnect(opts_, -1), "max reconnect");
  check(natsOptions_SetReconnectWait(opts_, 50), "reconnect wait");
  check(natsConnection_Connect(&nc_, opts_), "connect");
  check(natsConnection_Subscribe(&sub_, nc_, snapshot_subject(prefix_).c_str(), &TestPublisher::on_request, this),
        "subscribe");
  check(natsConnection_Flush(nc_), "flush");
}

TestPublisher::~TestPublisher() {
  if (sub_) {
    natsSubscription_Unsubscribe(sub_);
    natsSubscription_Destroy(sub_);
  }
  natsConnection_Close(nc_);
  natsConnection_Destroy(nc_);
  natsOptions_Destroy(opts_);
}

std::string TestPublisher::subject_of(std::string_view symbol) const {
  return delta_subject(prefix_, market_of_symbol(symbol), shard_of(symbol, shards_));
}

void TestPublisher::publish(const std::vector<Quote>& quotes) {
  std::map<std::string, std::vector<Quote>> by_subject;
  for (const Quote& q : quotes) by_subject[subject_of(quote_symbol(q))].push_back(q);
  std::lock_guard<std::mutex> lock(mu_);
  for (const Quote& q : quotes) state_[std::string(quote_symbol(q))] = q;
  for (auto& [subject, list] : by_subject) publish_locked(subject, list);
}

void TestPublisher::set_state(const std::vector<Quote>& quotes) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Quote& q : quotes) state_[std::string(quote_symbol(q))] = q;
}

void TestPublisher::publish_locked(const std::string& subject, const std::vector<Quote>& quotes) {
  BatchHeader h;
  h.publisher_id = "test-publisher";
  h.epoch = epoch_;
  h.sequence = ++seq_[subject];
  h.kind = wire::BatchKind::Delta;
  h.created_ns = wall_ns();
  encode_batch(fbb_, h, quotes);
  natsConnection_Publish(nc_, subject.c_str(), fbb_.GetBufferPointer(), static_cast<int>(fbb_.GetSize()));
}

void TestPublisher::skip_sequence(const std::string& subject) {
  std::lock_guard<std::mutex> lock(mu_);
  ++seq_[subject];
}

void TestPublisher::publish_raw(const std::string& subject, const void* data, size_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  natsConnection_Publish(nc_, subject.c_str(), data, static_cast<int>(size));
}

void TestPublisher::restart() {
  std::lock_guard<std::mutex> lock(mu_);
  epoch_ = static_cast<uint64_t>(wall_ns());
  seq_.clear();
}

void TestPublisher::flush() { natsConnection_FlushTimeout(nc_, 5000); }

std::map<std::string, Quote> TestPublisher::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

uint64_t TestPublisher::epoch() const {
  std::lock_guard<std::mutex> lock(mu_);
  return epoch_;
}

void TestPublisher::on_request(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* self = static_cast<TestPublisher*>(closure);
  self->requests_.fetch_add(1);
  if (self->answering_.load() && natsMsg_GetReply(msg)) {
    std::string markets(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
    self->answer(natsMsg_GetReply(msg), markets);
  }
  natsMsg_Destroy(msg);
}

void TestPublisher::answer(const std::string& reply, const std::string& markets) {
  auto wanted = [&](std::string_view symbol) {
    if (markets.empty()) return true;
    return markets.find(market_code(market_of_symbol(symbol))) != std::string::npos;
  };
  // Under the publishing lock: the parts and the marks are one consistent cut.
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Quote> part;
  uint64_t parts = 0;
  flatbuffers::FlatBufferBuilder fbb;
  auto send = [&] {
    BatchHeader h;
    h.publisher_id = "test-publisher";
    h.epoch = epoch_;
    h.sequence = ++parts;
    h.kind = wire::BatchKind::SnapshotPart;
    h.created_ns = wall_ns();
    encode_batch(fbb, h, part);
    natsConnection_Publish(nc_, reply.c_str(), fbb.GetBufferPointer(), static_cast<int>(fbb.GetSize()));
    part.clear();
  };
  for (const auto& [symbol, q] : state_) {
    if (!wanted(symbol)) continue;
    part.push_back(q);
    if (part.size() == 1000) send();
  }
  if (!part.empty()) send();
  std::vector<SubjectSequence> marks;
  for (const auto& [subject, seq] : seq_) marks.push_back({subject, seq});
  BatchHeader h;
  h.publisher_id = "test-publisher";
  h.epoch = epoch_;
  h.sequence = parts;
  h.kind = wire::BatchKind::SnapshotEnd;
  h.created_ns = wall_ns();
  encode_batch(fbb, h, {}, marks);
  natsConnection_Publish(nc_, reply.c_str(), fbb.GetBufferPointer(), static_cast<int>(fbb.GetSize()));
}

}  // namespace tickfan::testing
