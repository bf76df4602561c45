#pragma once
/// Kafka as an event source (librdkafka, consumer group). Message key = user_id, value =
/// one NDJSON event of the shared schema.
///
/// Offsets: OUR checkpoint is the source of truth. SourceOffset::partitions holds, per
/// owned "topic/partition", the next offset to read; it is written in the same atomic
/// file as the engine state. Offsets are committed to Kafka only from on_checkpoint(),
/// i.e. after that file is durable, never automatically. On (re)assignment a partition
/// starts at max(checkpointed offset, committed offset): the checkpoint wins after our own
/// crash (a commit may lag its checkpoint), the commit wins when another process of the
/// group owned the partition meanwhile. On revocation the source asks the updater for a
/// checkpoint (which commits) before the partitions are given up, so the next owner starts
/// exactly after the last event applied here. The source also keeps the revoked
/// partitions' positions (and reports them in offset(), like restored but not yet assigned
/// ones): a partition that comes back — a forced rejoin, a session timeout while the
/// broker was down — resumes at max(kept position, commit) even when the revoke-time
/// commit failed, instead of re-reading from the older commit.
///
/// Bounded replay (`until_end`, the updater's --until-eof): the source hands out the lines
/// of its partitions in a fixed merge order — always from the owned partition whose next
/// offset is the lowest (ties: topic, then partition number; a partition with no position
/// yet, i.e. read from its beginning, comes first) — and reports the end (kEnd) once every
/// partition of its assignment was read to its end (librdkafka's partition EOF). The order
/// is a function of the topic's contents and the positions alone, never of fetch timing,
/// so a replay of the same topic yields the same state bit for bit, and so does a replay
/// stopped anywhere and resumed from a checkpoint (the positions are in the checkpoint).
/// Lines fetched ahead of their turn wait in the source, at most
/// queued.max.messages.kbytes (a kafka.properties key, default 64 MB) over all partitions:
/// a partition beyond its share is paused until the merge order catches up. Without
/// `until_end` lines come in arrival order (lowest latency) and the run never ends by
/// itself.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "cpu/stream/source.hpp"
#include "cpu/stream/updater_config.hpp"

namespace freshrec {

/// Live facts about the consumer for /metrics (thread-safe reads).
struct KafkaSourceStats {
  std::atomic<int> assigned_partitions{0};
  std::atomic<std::uint64_t> rebalances{0};
  std::atomic<std::uint64_t> commits{0};
  std::atomic<std::uint64_t> commit_failures{0};
  /// Bounded replay: partitions paused because too much of them was fetched ahead of the
  /// merge order (the memory bound above; not exported, the tests read it).
  std::atomic<std::uint64_t> replay_pauses{0};
};

/// Opens a consumer subscribed to settings.topic in settings.group_id. Throws InputError
/// naming the kafka.* key when librdkafka refuses a property. `warn` gets one line per
/// commit failure or consumer error (nullptr = none). `stats_out`, when given, is kept
/// up to date by the source (owned by the caller, must outlive the source). `until_end`:
/// the bounded, deterministic replay described above.
std::unique_ptr<EventSource> open_kafka_source(const KafkaSettings& settings, std::size_t max_line_bytes,
                                               std::FILE* warn, KafkaSourceStats* stats_out = nullptr,
                                               bool until_end = false);

/// "topic/partition", the key of SourceOffset::partitions.
std::string kafka_partition_key(const std::string& topic, int partition);

}  // namespace freshrec
