// The Kafka source's bounded replay (open_kafka_source(..., until_end = true), what
// freshrec-stream --until-eof uses): against librdkafka's mock cluster, the lines of all
// partitions come out exactly once, in the merge order (lowest next offset first, then
// partition; no position yet = first), the source reports the end once every partition was
// read to its end (an empty partition included), and a replay stopped anywhere and resumed
// from offset() in a fresh consumer continues in the same order: the same topic always
// yields the same sequence, whatever the fetch timing. tests/fault/kill_restart.sh
// --source kafka relies on this for its bit-for-bit comparison across kill -9 restarts.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "cpu/io/kafka_source.hpp"

namespace freshrec {
namespace {

using Clock = std::chrono::steady_clock;

// A mock cluster (living in this producer handle) with one topic; messages go to
// explicit partitions.
class Cluster {
 public:
  Cluster(const std::string& topic, int partitions, int brokers) : topic_(topic) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    const std::string n = std::to_string(brokers);
    rd_kafka_conf_set(conf, "test.mock.num.brokers", n.c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof err);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk_) throw std::runtime_error(err);
    bootstraps_ = rd_kafka_mock_cluster_bootstraps(cluster());
    rd_kafka_mock_topic_create(cluster(), topic.c_str(), partitions, 1);
  }
  ~Cluster() { rd_kafka_destroy(rk_); }
  rd_kafka_mock_cluster_t* cluster() const { return rd_kafka_handle_mock_cluster(rk_); }
  const std::string& bootstraps() const { return bootstraps_; }

  void produce(int partition, const std::string& value) {
    for (;;) {
      const rd_kafka_resp_err_t e = rd_kafka_producev(
          rk_, RD_KAFKA_V_TOPIC(topic_.c_str()), RD_KAFKA_V_PARTITION(partition),
          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return;
      ASSERT_EQ(e, RD_KAFKA_RESP_ERR__QUEUE_FULL) << rd_kafka_err2str(e);
      rd_kafka_poll(rk_, 10);
    }
  }
  void flush() { ASSERT_EQ(rd_kafka_flush(rk_, 30000), RD_KAFKA_RESP_ERR_NO_ERROR); }

 private:
  std::string topic_;
  rd_kafka_t* rk_ = nullptr;
  std::string bootstraps_;
};

// parts[p] = partition p's values in offset order, produced into the cluster.
void produce_all(Cluster& c, const std::vector<std::vector<std::string>>& parts) {
  for (std::size_t p = 0; p < parts.size(); ++p)
    for (const std::string& v : parts[p]) c.produce(static_cast<int>(p), v);
  c.flush();
}

// The merge order of a replay from the start: the partition with the lowest next offset
// (-1 before its first line) goes next, ties to the lower partition.
std::vector<std::string> merge_order(const std::vector<std::vector<std::string>>& parts) {
  std::vector<std::int64_t> next(parts.size(), -1);
  std::vector<std::string> out;
  for (;;) {
    int best = -1;
    for (std::size_t p = 0; p < parts.size(); ++p) {
      const std::size_t read = next[p] < 0 ? 0 : static_cast<std::size_t>(next[p]);
      if (read >= parts[p].size()) continue;
      if (best < 0 || next[p] < next[best]) best = static_cast<int>(p);
    }
    if (best < 0) return out;
    const std::size_t at = next[best] < 0 ? 0 : static_cast<std::size_t>(next[best]);
    out.push_back(parts[best][at]);
    next[best] = static_cast<std::int64_t>(at) + 1;
  }
}

KafkaSettings settings(const Cluster& c, const std::string& topic, const std::string& group,
                       const std::string& queued_kbytes = "") {
  KafkaSettings s;
  s.brokers = c.bootstraps();
  s.topic = topic;
  s.group_id = group;
  s.properties = {{"fetch.wait.max.ms", "10"}, {"fetch.error.backoff.ms", "10"}};
  if (!queued_kbytes.empty()) s.properties["queued.max.messages.kbytes"] = queued_kbytes;
  return s;
}

struct Replay {
  std::vector<std::string> lines;
  bool ended = false;
  SourceOffset offset;
};

// Reads up to `max_lines` lines (or to the end) the way the updater does: next(), and
// wait() while it is idle. Gives up after `timeout` seconds.
Replay read(EventSource& source, std::size_t max_lines, double timeout = 60) {
  Replay r;
  SourceLine line;
  const auto t0 = Clock::now();
  while (r.lines.size() < max_lines && std::chrono::duration<double>(Clock::now() - t0).count() < timeout) {
    const SourceStatus status = source.next(line);
    if (status == SourceStatus::kLine) {
      r.lines.emplace_back(line.text);
      continue;
    }
    if (status == SourceStatus::kEnd) {
      r.ended = true;
      break;
    }
    source.wait(50);
  }
  r.offset = source.offset();
  return r;
}

std::vector<std::vector<std::string>> values(const std::vector<std::size_t>& sizes) {
  std::vector<std::vector<std::string>> parts(sizes.size());
  for (std::size_t p = 0; p < sizes.size(); ++p)
    for (std::size_t i = 0; i < sizes[p]; ++i) parts[p].push_back("{\"p\":" + std::to_string(p) + ",\"i\":" + std::to_string(i) + "}");
  return parts;
}

TEST(KafkaReplay, ReadsEveryPartitionInTheMergeOrderEndsAndResumesInTheSameOrder) {
  const std::string topic = "replay-order";
  Cluster c(topic, 4, 1);
  const auto parts = values({5, 3, 0, 7});  // partition 2 stays empty
  produce_all(c, parts);
  const std::vector<std::string> want = merge_order(parts);
  ASSERT_EQ(want.size(), 15u);
  EXPECT_EQ(want[0], parts[0][0]);
  EXPECT_EQ(want[1], parts[1][0]);
  EXPECT_EQ(want[2], parts[3][0]);
  EXPECT_EQ(want[3], parts[0][1]);

  // The whole topic, then the end.
  Replay full;
  {
    auto source = open_kafka_source(settings(c, topic, "whole"), 1 << 20, stderr, nullptr, true);
    full = read(*source, 1000);
  }
  EXPECT_TRUE(full.ended) << "no end reported after " << full.lines.size() << " lines";
  EXPECT_EQ(full.lines, want);
  EXPECT_EQ(full.offset.partitions.at(topic + "/0"), 5);
  EXPECT_EQ(full.offset.partitions.at(topic + "/1"), 3);
  EXPECT_EQ(full.offset.partitions.at(topic + "/3"), 7);
  EXPECT_EQ(full.offset.partitions.count(topic + "/2"), 0u);  // nothing read from it: no position

  // Stopped after 6 lines; a fresh consumer (another group: nothing committed, the
  // checkpointed positions alone) resumes from offset() and continues the same sequence.
  Replay head, tail;
  {
    auto source = open_kafka_source(settings(c, topic, "head"), 1 << 20, stderr, nullptr, true);
    head = read(*source, 6);
  }
  ASSERT_EQ(head.lines.size(), 6u);
  EXPECT_FALSE(head.ended);
  {
    auto source = open_kafka_source(settings(c, topic, "tail"), 1 << 20, stderr, nullptr, true);
    EXPECT_EQ(source->seek(head.offset), "");
    tail = read(*source, 1000);
  }
  EXPECT_TRUE(tail.ended);
  std::vector<std::string> joined = head.lines;
  joined.insert(joined.end(), tail.lines.begin(), tail.lines.end());
  EXPECT_EQ(joined, want);

  // Resumed exactly at the end of every partition: nothing more, and the end is reported
  // (librdkafka signals a partition's end also when fetching starts there).
  {
    auto source = open_kafka_source(settings(c, topic, "at-end"), 1 << 20, stderr, nullptr, true);
    source->seek(full.offset);
    const Replay rest = read(*source, 1000);
    EXPECT_TRUE(rest.ended);
    EXPECT_TRUE(rest.lines.empty()) << rest.lines.size() << " lines after the end, first " << rest.lines.front();
  }
}

// One partition's broker answers its first Fetch only after 3 s while the other partition
// streams in: the merge order waits for the slow one, the fast one's lane fills its share of
// queued.max.messages.kbytes (256 KB here, 128 KB a lane; the partition holds ~500 KB) and
// is paused (a memory bound) and resumed later; the order still holds, every line exactly
// once.
TEST(KafkaReplay, APartitionFetchedFarAheadIsPausedAndTheOrderStillHolds) {
  const std::string topic = "replay-pause", group = "pause";
  Cluster c(topic, 2, 2);
  rd_kafka_mock_partition_set_leader(c.cluster(), topic.c_str(), 0, 1);
  rd_kafka_mock_partition_set_leader(c.cluster(), topic.c_str(), 1, 2);
  rd_kafka_mock_coordinator_set(c.cluster(), "group", group.c_str(), 2);
  const auto parts = values({30000, 30000});
  produce_all(c, parts);
  // Partition 0's leader: the first Fetch fails after 3 s (retried at once).
  constexpr std::int16_t kApiFetch = 1;
  ASSERT_EQ(rd_kafka_mock_broker_push_request_error_rtts(c.cluster(), 1, kApiFetch, 1,
                                                         RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 3000),
            RD_KAFKA_RESP_ERR_NO_ERROR);

  KafkaSourceStats stats;
  Replay r;
  {
    auto source = open_kafka_source(settings(c, topic, group, "256"), 1 << 20, stderr, &stats, true);
    r = read(*source, 100000, 120);
  }
  EXPECT_TRUE(r.ended) << r.lines.size() << " lines";
  const std::vector<std::string> want = merge_order(parts);
  EXPECT_EQ(r.lines.size(), want.size());
  for (std::size_t i = 0; i < std::min(r.lines.size(), want.size()); ++i)
    if (r.lines[i] != want[i]) {
      ADD_FAILURE() << "line " << i << ": " << r.lines[i] << ", the merge order has " << want[i];
      break;
    }
  EXPECT_GE(stats.replay_pauses.load(), 1u) << "partition 1 was never fetched far enough ahead to be paused";
}

}  // namespace
}  // namespace freshrec
