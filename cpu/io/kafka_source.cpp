#include "cpu/io/kafka_source.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <tuple>
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

// Bounded replay: the payload bytes fetched but not handed out yet that the lanes may hold
// together, unless kafka.properties sets queued.max.messages.kbytes (librdkafka's bound on
// its own prefetch queue, whose default this is). Each lane gets an equal share (at least
// kMinLaneBytes); a lane at its share is paused (librdkafka stops fetching the partition)
// until it drains to a quarter of it. Bounds the memory while the merge order waits on a
// partition that comes in slower than the others.
constexpr std::size_t kDefaultQueuedKbytes = 65536;
constexpr std::size_t kMinLaneBytes = 64 * 1024;

class KafkaSource final : public EventSource, private RdKafka::RebalanceCb {
 public:
  KafkaSource(const KafkaSettings& s, std::size_t max_line_bytes, std::FILE* warn, KafkaSourceStats* stats,
              bool until_end)
      : settings_(s), max_line_bytes_(max_line_bytes), warn_(warn), stats_(stats ? stats : &own_stats_),
        until_end_(until_end) {
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
    // A bounded replay needs to know where each partition ends.
    set("enable.partition.eof", until_end ? "true" : "false", "kafka");
    for (const auto& [key, value] : s.properties) set(key, value, "kafka.properties." + key);
    if (const auto kb = s.properties.find("queued.max.messages.kbytes"); kb != s.properties.end())
      queued_bytes_ = static_cast<std::size_t>(std::max(1L, std::atol(kb->second.c_str()))) * 1024;
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
    if (until_end_) return next_in_order(out);
    std::unique_ptr<RdKafka::Message> msg = pending_ ? std::move(pending_) : poll(0);
    if (!msg) return SourceStatus::kIdle;
    return hand_out(*msg, out);
  }

  bool wait(int timeout_ms) override {
    if (until_end_) return wait_in_order(timeout_ms);
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

  // ---- bounded replay (until_end_): lanes and the merge order

  // One owned partition: what was fetched from it and not handed out yet, in offset order.
  struct Lane {
    std::string topic;
    int partition = 0;
    std::int64_t next = -1;  // = positions_[key]: the next offset to hand out (-1: none yet, from the beginning)
    std::deque<std::unique_ptr<RdKafka::Message>> queued;
    std::size_t bytes = 0;  // payload bytes in `queued`
    bool at_end = false;    // librdkafka reported the partition's end right after the last queued message
    bool paused = false;    // fetching paused by us: `bytes` reached the lane's share
  };

  // The lane the merge order reads from next: the lowest next offset (no position yet =
  // from the beginning = first), then topic, then partition; lanes read to their end are
  // done. Depends on the positions only (never on what happens to be fetched), so the same
  // positions — a fresh start or a checkpoint — always continue in the same order.
  // nullptr when every lane is done.
  Lane* pick() {
    Lane* best = nullptr;
    for (auto& [key, lane] : lanes_) {
      if (lane.at_end && lane.queued.empty()) continue;
      if (!best || std::tie(lane.next, lane.topic, lane.partition) < std::tie(best->next, best->topic, best->partition))
        best = &lane;
    }
    return best;
  }

  // next() would hand out a line or report the end right now.
  bool ready() {
    const Lane* lane = pick();
    return lane ? !lane->queued.empty() : assigned_;
  }

  // Up to timeout_ms for the line whose turn it is (or the end); lines of other partitions
  // that come meanwhile only join their lanes.
  bool wait_in_order(int timeout_ms) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!ready()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
      if (left <= 0) return false;
      fill(static_cast<int>(left));
    }
    return true;
  }

  SourceStatus next_in_order(SourceLine& out) {
    for (;;) {
      Lane* lane = pick();  // again after every fill(): a rebalance may have replaced the lanes
      if (!lane) return assigned_ ? SourceStatus::kEnd : SourceStatus::kIdle;
      if (!lane->queued.empty()) {
        const std::unique_ptr<RdKafka::Message> msg = std::move(lane->queued.front());
        lane->queued.pop_front();
        lane->bytes -= msg->len();
        lane->next = msg->offset() + 1;
        if (lane->paused && lane->bytes <= lane_bytes_ / 4) pause_lane(*lane, false);
        return hand_out(*msg, out);
      }
      // The partition whose turn it is has nothing fetched yet: take what the consumer has.
      if (!fill(0)) return SourceStatus::kIdle;
    }
  }

  // One event from the consumer (waiting up to timeout_ms): a message joins its lane, a
  // partition end marks its lane; a rebalance (run by librdkafka inside consume()) replaces
  // the lanes. True when any of that happened.
  bool fill(int timeout_ms) {
    const std::uint64_t rebalances = stats_->rebalances.load();
    std::unique_ptr<RdKafka::Message> msg(consumer_->consume(timeout_ms));
    const bool rebalanced = stats_->rebalances.load() != rebalances;
    if (!msg) return rebalanced;
    const RdKafka::ErrorCode err = msg->err();
    if (err != RdKafka::ERR_NO_ERROR && err != RdKafka::ERR__PARTITION_EOF) {
      // Broker and transport errors are retried by librdkafka; say so and go on.
      if (err != RdKafka::ERR__TIMED_OUT) warn("consumer: " + msg->errstr());
      return rebalanced;
    }
    const std::string key = kafka_partition_key(msg->topic_name(), msg->partition());
    const auto it = lanes_.find(key);
    if (it == lanes_.end()) return rebalanced;  // not (or no longer) ours
    Lane& lane = it->second;
    // Where this lane continues: after its last queued message, else at its position
    // (-1: none yet, reading from the beginning).
    const std::int64_t expected = lane.queued.empty() ? lane.next : lane.queued.back()->offset() + 1;
    if (err == RdKafka::ERR__PARTITION_EOF) {
      if (msg->offset() >= expected) lane.at_end = true;
      return true;
    }
    // Fetched again after a pause (librdkafka resumes at the last message it handed us,
    // which is already queued): keep the first copy.
    if (expected >= 0 && msg->offset() < expected) return rebalanced;
    lane.at_end = false;
    lane.bytes += msg->len();
    lane.queued.push_back(std::move(msg));
    if (!lane.paused && lane.bytes >= lane_bytes_) pause_lane(lane, true);
    return true;
  }

  void pause_lane(Lane& lane, bool pause) {
    PartitionList one;
    one.list.push_back(RdKafka::TopicPartition::create(lane.topic, lane.partition));
    const RdKafka::ErrorCode rc = pause ? consumer_->pause(one.list) : consumer_->resume(one.list);
    if (rc == RdKafka::ERR_NO_ERROR) {
      lane.paused = pause;
      if (pause) stats_->replay_pauses.fetch_add(1);
    } else {
      warn(std::string(pause ? "pause" : "resume") + " of " + kafka_partition_key(lane.topic, lane.partition) +
           " failed: " + RdKafka::err2str(rc));
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
    // Bounded replay: what was fetched and not handed out is dropped (the next owner, or
    // this process on the next assignment, fetches it again from the positions).
    for (RdKafka::TopicPartition* tp : partitions) {
      const auto lane = lanes_.find(kafka_partition_key(tp->topic(), tp->partition()));
      if (lane == lanes_.end()) continue;
      if (lane->second.paused) pause_lane(lane->second, false);  // a paused partition would stay paused when it comes back
      lanes_.erase(lane);
    }
    assigned_ = false;
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
    if (until_end_) {
      lanes_.clear();
      for (RdKafka::TopicPartition* tp : partitions) {
        const std::string key = kafka_partition_key(tp->topic(), tp->partition());
        Lane& lane = lanes_[key];
        lane.topic = tp->topic();
        lane.partition = tp->partition();
        const auto pos = positions_.find(key);
        lane.next = pos == positions_.end() ? -1 : pos->second;
      }
      lane_bytes_ = std::max(kMinLaneBytes, queued_bytes_ / std::max<std::size_t>(1, lanes_.size()));
      assigned_ = true;
    }
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
  const bool until_end_;                // bounded replay in the merge order (see the header)
  std::map<std::string, Lane> lanes_;   // bounded replay: the owned partitions
  bool assigned_ = false;               // bounded replay: an assignment is in force (lanes_ = it)
  std::size_t queued_bytes_ = kDefaultQueuedKbytes * 1024;  // bounded replay: what all lanes may hold
  std::size_t lane_bytes_ = queued_bytes_;                   // bounded replay: a lane is paused at this many
};

}  // namespace

std::unique_ptr<EventSource> open_kafka_source(const KafkaSettings& settings, std::size_t max_line_bytes,
                                               std::FILE* warn, KafkaSourceStats* stats_out, bool until_end) {
  return std::make_unique<KafkaSource>(settings, max_line_bytes, warn, stats_out, until_end);
}

}  // namespace freshrec
