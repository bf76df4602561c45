#pragma once
/// Settings of the streaming updater process (configs/stream.yaml): where the model,
/// the events, the checkpoints and the dead letters live, and the engine's StreamConfig.
/// Plain structs with defaults; cpu/config/stream_config_yaml.cpp maps YAML onto them.
#include <cstdint>
#include <string>

#include "cpu/stream/stream_config.hpp"

namespace freshrec {

/// Where events come from.
enum class SourceType : std::uint8_t {
  kFile = 0,    ///< an NDJSON file read once to its end
  kFollow = 1,  ///< an NDJSON file followed as it grows, surviving rotation (tail -F)
  kStdin = 2,   ///< NDJSON on standard input
};

/// "model:" — the nightly snapshots the engine runs on.
struct ModelSettings {
  std::string dir = "models";  ///< the directory holding LATEST and <version>/
  int poll_ms = 1000;          ///< how often the watcher re-reads LATEST for a hot swap (0 = never)
};

/// "source:" — the event stream.
struct SourceSettings {
  SourceType type = SourceType::kFile;
  std::string path;            ///< NDJSON file (file, follow); ignored for stdin
  int poll_ms = 200;           ///< follow/stdin: sleep between polls when no new line is there
  std::size_t max_line_bytes = std::size_t{1} << 20;  ///< longer lines are dead-lettered, not buffered
};

/// "checkpoint:" — durable state + source offset as one atomic file.
struct CheckpointSettings {
  std::string dir;                         ///< empty = no checkpoints (and no recovery)
  std::uint64_t every_events = 100000;     ///< lines consumed between checkpoints (0 = off)
  double every_seconds = 60.0;             ///< wall seconds between checkpoints (0 = off)
  int keep = 2;                            ///< checkpoints kept (the newest ones)
};

/// "dead_letter:" — where bad lines go.
struct DeadLetterSettings {
  std::string path = "stream-dead-letters.ndjson";  ///< appended JSON lines; empty = count only
  std::size_t max_raw_bytes = 4096;                 ///< a bad line's text is cut to this many bytes
};

/// "stats:" — observability.
struct StatsSettings {
  double interval_seconds = 10.0;  ///< one stats line on stderr this often (0 = never)
};

/// The whole updater process config.
struct StreamProcessConfig {
  ModelSettings model;
  SourceSettings source;
  CheckpointSettings checkpoint;
  DeadLetterSettings dead_letter;
  StatsSettings stats;
  StreamConfig stream;   ///< the engine's knobs ("stream:")
  std::string origin;    ///< the file it was read from (for messages)
};

}  // namespace freshrec
