#include "cpu/io/kafka_source.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include <librdkafka/rdkafkacpp.h>

#include "cpu/util/error.hpp"

namespace freshrec {

std::string kafka_partition_key(const std::string& topic, int partition) {
  return topic + "/" + std::to_string(partition);
}

namespace {

using TopicPartitions = std::vector<RdKafka::TopicPartition*>;

// Owns the TopicPartition objects librdkafka's C++ API hands out as raw pointers.
struct PartitionList {
  TopicPartitions list;
  PartitionList() = default;
  PartitionList(const PartitionList&) = delete;
  PartitionList& operator=(const PartitionList&) = delete;
  ~PartitionList() { RdKafka::TopicPartition::destroy(list); }
};

class KafkaSource final : public EventSource, private RdKafka::RebalanceCb {
 public:
  KafkaSource(const KafkaSettings& s, std::size_t max_line_bytes, std::FILE* warn, KafkaSourceStats* stats)
      : settings_(s), max_line_bytes_(max_line_bytes), warn_(warn), stats_(stats ? stats : &own_stats_) {
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    std::string err;
    auto set = [&](const std::string& key, const std::string& value, const std::string& origin) {
      if (conf->set(key, value, err) != RdKafka::Conf::CONF_OK)
        throw InputError(origin + ": librdkafka refuses " + key + "=" + value + ": " + err);
    };
    set("bootstrap.servers", s.brokers, "kafka.brokers");
    set("group.id", s.group_id, "kafka.group_id");
    // Offsets live in our checkpoints; Kafka only hears about them after a checkpoint.
    set("enable.auto.commit", "false", "kafka");
    set("enable.auto.offset.store", "false", "kafka");
    set("auto.offset.reset", "earliest", "kafka");
    set("enable.partition.eof", "false", "kafka");
    for (const auto& [key, value] : s.properties) set(key, value, "kafka.properties." + key);
    if (conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(this), err) != RdKafka::Conf::CONF_OK)
      throw InputError("kafka: cannot install the rebalance callback: " + err);
    consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
    if (!consumer_) throw InputError("kafka: cannot create the consumer: " + err);
    const RdKafka::ErrorCode rc = consumer_->subscribe({s.topic});
    if (rc != RdKafka::ERR_NO_ERROR)
      throw InputError("kafka.topic: cannot subscribe to '" + s.topic + "': " + RdKafka::err2str(rc));
  }

  ~KafkaSource() override {
    // close() leaves the group (a last revoke runs the rebalance callback; the updater
    // has already written its final checkpoint, so that one only commits).
    checkpoint_request_ = nullptr;
    if (consumer_) consumer_->close();
  }

  SourceStatus next(SourceLine& out) override {
    std::unique_ptr<RdKafka::Message> msg = pending_ ? std::move(pending_) : poll(0);
    if (!msg) return SourceStatus::kIdle;
    return hand_out(*msg, out);
  }

  bool wait(int timeout_ms) override {
    if (pending_) return true;
    pending_ = poll(timeout_ms);
    return pending_ != nullptr;
  }

  // The owned partitions' positions, plus where the state stands in partitions not owned
  // right now (restored but not yet assigned, or revoked): a checkpoint written meanwhile
  // (the final one of a run stopped before its assignment came, an admin checkpoint between
  // a revoke and the next assignment) must not lose them, or the restart from it would
  // start at an older commit and apply those events twice.
  SourceOffset offset() const override {
    SourceOffset o;
    o.partitions = positions_;
    for (const auto& [key, next_offset] : resume_) o.partitions.emplace(key, next_offset);
    return o;
  }

  std::string seek(const SourceOffset& offset) override {
    resume_ = offset.partitions;
    return "";  // applied when the group assigns partitions
  }

  std::string describe() const override { return "kafka " + settings_.topic + " (group " + settings_.group_id + ")"; }

  void on_checkpoint(const SourceOffset& written) override {
    PartitionList offsets;
    for (const auto& [key, next_offset] : written.partitions) {
      const std::size_t slash = key.rfind('/');
      if (slash == std::string::npos) continue;
      const int partition = std::stoi(key.substr(slash + 1));
      // Only partitions still owned: the next owner's commits must not be overwritten.
      if (!positions_.count(key)) continue;
      offsets.list.push_back(RdKafka::TopicPartition::create(key.substr(0, slash), partition, next_offset));
    }
    if (offsets.list.empty()) return;
    const RdKafka::ErrorCode rc = consumer_->commitSync(offsets.list);
    if (rc == RdKafka::ERR_NO_ERROR) {
      stats_->commits.fetch_add(1);
    } else {
      // The checkpoint is durable; a failed commit only means a restart or the next owner
      // starts at max(checkpoint, older commit) — nothing lost, nothing applied twice here.
      stats_->commit_failures.fetch_add(1);
      warn("commit failed: " + RdKafka::err2str(rc));
    }
  }

  void set_checkpoint_request(std::function<void()> request) override { checkpoint_request_ = std::move(request); }

 private:
  std::unique_ptr<RdKafka::Message> poll(int timeout_ms) {
    std::unique_ptr<RdKafka::Message> msg(consumer_->consume(timeout_ms));
    if (!msg) return nullptr;
    switch (msg->err()) {
      case RdKafka::ERR_NO_ERROR: return msg;
      case RdKafka::ERR__TIMED_OUT:
      case RdKafka::ERR__PARTITION_EOF: return nullptr;
      default:
        // Broker and transport errors are retried by librdkafka; say so and go on.
        warn("consumer: " + msg->errstr());
        return nullptr;
    }
  }

  SourceStatus hand_out(RdKafka::Message& msg, SourceLine& out) {
    const std::size_t len = msg.len();
    const std::size_t keep = std::min(len, max_line_bytes_);
    buffer_.assign(static_cast<const char*>(msg.payload()), keep);
    // Strip one trailing newline (a producer may send "…}\n"), like the file source.
    while (!buffer_.empty() && (buffer_.back() == '\n' || buffer_.back() == '\r')) buffer_.pop_back();
    const std::size_t text_len = buffer_.size();
    buffer_.append(kSourcePadding, '\0');
    out.text = std::string_view(buffer_.data(), text_len);
    out.line = static_cast<std::uint64_t>(msg.offset());
    out.byte_offset = static_cast<std::uint64_t>(msg.offset());
    out.truncated = len > max_line_bytes_;
    positions_[kafka_partition_key(msg.topic_name(), msg.partition())] = msg.offset() + 1;
    return SourceStatus::kLine;
  }

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err, TopicPartitions& partitions) override {
    stats_->rebalances.fetch_add(1);
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      assign(consumer, partitions);
      return;
    }
    // Revoked (or an error): make what was applied here durable and committed first.
    if (!positions_.empty()) {
      if (checkpoint_request_)
        checkpoint_request_();
      else
        on_checkpoint(offset());
    }
    // The state keeps what was applied from these partitions: remember where it stands, so
    // that if the partition comes back (a rebalance that hands it to us again, a rejoin
    // after a session timeout) we resume there and not at the group's commit, which lags
    // when the commit above failed (commits fail during a rebalance, or with the
    // coordinator unreachable). When another process owned it meanwhile, its newer commit
    // still wins (max below).
    for (RdKafka::TopicPartition* tp : partitions) {
      const std::string key = kafka_partition_key(tp->topic(), tp->partition());
      const auto pos = positions_.find(key);
      if (pos != positions_.end()) {
        resume_[key] = pos->second;
        positions_.erase(pos);
      }
    }
    pending_.reset();
    consumer->unassign();
    stats_->assigned_partitions.store(0);
  }

  void assign(RdKafka::KafkaConsumer* consumer, TopicPartitions& partitions) {
    // Committed offsets of the group: newer than our checkpoint when another process
    // owned the partition since.
    const RdKafka::ErrorCode rc = consumer->committed(partitions, 10000);
    if (rc != RdKafka::ERR_NO_ERROR) warn("cannot read committed offsets: " + RdKafka::err2str(rc));
    for (RdKafka::TopicPartition* tp : partitions) {
      const std::string key = kafka_partition_key(tp->topic(), tp->partition());
      std::int64_t start = rc == RdKafka::ERR_NO_ERROR ? tp->offset() : RdKafka::Topic::OFFSET_INVALID;
      if (start < 0) start = RdKafka::Topic::OFFSET_INVALID;
      const auto ck = resume_.find(key);
      if (ck != resume_.end()) {
        start = std::max(start, ck->second);
        resume_.erase(ck);  // owned again: positions_ tracks it from here
      }
      if (start >= 0) {
        tp->set_offset(start);
        positions_[key] = start;
      } else {
        tp->set_offset(RdKafka::Topic::OFFSET_BEGINNING);
      }
    }
    consumer->assign(partitions);
    stats_->assigned_partitions.store(static_cast<int>(partitions.size()));
  }

  void warn(const std::string& text) const {
    if (warn_) std::fprintf(warn_, "freshrec-stream: warning: kafka: %s\n", text.c_str());
  }

  KafkaSettings settings_;
  std::size_t max_line_bytes_;
  std::FILE* warn_;
  KafkaSourceStats own_stats_;
  KafkaSourceStats* stats_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::unique_ptr<RdKafka::Message> pending_;  // taken by wait(), handed out by next()
  std::string buffer_;
  std::map<std::string, std::int64_t> positions_;     // owned partitions: next offset to read
  // Partitions not owned now: the next offset the engine state has applied up to (from
  // seek() at start, or kept at revocation); applied on (re)assignment.
  std::map<std::string, std::int64_t> resume_;
  std::function<void()> checkpoint_request_;
};

}  // namespace

std::unique_ptr<EventSource> open_kafka_source(const KafkaSettings& settings, std::size_t max_line_bytes,
                                               std::FILE* warn, KafkaSourceStats* stats_out) {
  return std::make_unique<KafkaSource>(settings, max_line_bytes, warn, stats_out);
}

}  // namespace freshrec
