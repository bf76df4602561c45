// libFuzzer target: the checkpoint loader and the engine state it carries.
// First byte even: the rest is a whole checkpoint file for read_checkpoint.
// First byte odd: the rest is an engine payload; the harness wraps it in a valid header
// (as a forger or a writer bug would) so it reaches StreamEngine::restore on a tiny
// baseline. Either must end in IntegrityError, or in a state that can take more events
// and be serialised again. Run with FRESHREC_FUZZ_EMIT_SEEDS=<dir> once to write seeds
// (a real checkpoint file and its payload) into <dir> and exit.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cpu/stream/checkpoint.hpp"
#include "cpu/stream/stream_engine.hpp"
#include "cpu/util/error.hpp"
#include "cpu/util/fs.hpp"
#include "cpu/util/sha256.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace freshrec;

namespace {
std::shared_ptr<const FactorModel> baseline() {
  static const auto m = std::make_shared<const FactorModel>(fuzz::tiny_model());
  return m;
}

StreamConfig engine_config() {
  StreamConfig c;
  return c;
}

Event event(const char* user, const char* item, EventType type, double t) {
  Event e;
  e.user_id = user;
  e.item_id = item;
  e.type = type;
  e.timestamp = t;
  if (type == EventType::kRating) e.rating = 4.0;
  e.price = 9.5;
  e.category = "c1";
  return e;
}

// A checkpoint file around `payload` with a correct header (the writer's layout).
std::string wrap(std::string_view payload) {
  nlohmann::json header = {{"format", kCheckpointFormatVersion},
                           {"seq", 1},
                           {"created_at", "2026-01-01T00:00:00Z"},
                           {"baseline_version", "v1"},
                           {"source",
                            {{"byte_offset", 0},
                             {"line", 0},
                             {"device", 0},
                             {"inode", 0},
                             {"fingerprint", ""},
                             {"fingerprint_bytes", 0}}},
                           {"dead_letter_bytes", 0},
                           {"counters", nlohmann::json::object()},
                           {"payload_bytes", payload.size()},
                           {"payload_sha256", sha256_hex(payload)}};
  header["header_sha256"] = sha256_hex(header.dump());
  return "FRESHREC-CHECKPOINT 1\n" + header.dump() + "\n" + std::string(payload);
}

void emit_seeds(const std::string& dir) {
  StreamEngine engine(engine_config(), baseline());
  double t = 1700000100.0;
  const EventType types[] = {EventType::kView, EventType::kClick, EventType::kAddToCart, EventType::kPurchase,
                             EventType::kRating};
  const char* users[] = {"u0", "u1", "new-user"};
  const char* items[] = {"i0", "i1", "i2", "i3", "new-item"};
  for (int n = 0; n < 40; ++n) engine.apply(event(users[n % 3], items[(n * 7) % 5], types[n % 5], t += 13.0));
  std::ostringstream out;
  engine.save(out);
  const std::string payload = out.str();
  fuzz::put_file(dir + "/engine_state", std::string(1, '\x01') + payload);
  CheckpointStore store(fuzz::scratch_dir() + "/ck", 1);
  CheckpointRecord record;
  record.baseline_version = "v1";
  record.engine_state = payload;
  record.counters["lines"] = 40;
  const std::string path = store.write(record);
  fuzz::put_file(dir + "/checkpoint_file", std::string(1, '\x00') + read_file(path));
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("FRESHREC_FUZZ_EMIT_SEEDS")) {
    emit_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static const std::string path = fuzz::scratch_dir() + "/checkpoint-000000000001.ckpt";
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  fuzz::put_file(path, (data[0] & 1) ? wrap(rest) : std::string(rest));
  CheckpointRecord record;
  try {
    record = read_checkpoint(path);
  } catch (const IntegrityError& e) {
    if (std::string(e.what()).find(path) == std::string::npos) std::abort();
    return 0;
  }
  StreamEngine engine(engine_config(), baseline());
  std::istringstream in(record.engine_state);
  try {
    engine.restore(in);
  } catch (const IntegrityError&) {
    return 0;
  }
  // A restored state must keep working: more events, a recommendation, a new save.
  engine.apply(event("u1", "i2", EventType::kClick, engine.watermark() + 1.0));
  engine.apply(event("zz", "i3", EventType::kRating, engine.watermark() + 2.0));
  RecommendRequest request;
  request.user_id = "u1";
  (void)engine.recommend(request);
  std::ostringstream out;
  engine.save(out);
  (void)engine.state_digest();
  return 0;
}
