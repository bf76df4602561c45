#pragma once
/// The embedded default data: a synthetic e-commerce event log, deterministic by seed.
///
/// The world: `categories` readable categories ("running_shoes", "winter_boots", …,
/// then prefixed variants such as "premium_headphones"), each with a typical price and
/// its items (log-normal prices around it, Zipf popularity inside the category). Users
/// have a long-term taste: 2–3 favourite categories with Dirichlet(1) weights and a
/// log-normal activity level. Each user's sessions are separated by at least
/// `session_gap_seconds` of inactivity; events inside a session are closer than that.
/// A session targets one category: a favourite, or (intent shift) a category outside the
/// user's tastes, which may persist into the user's next sessions. A session may open
/// with a search whose query names its category, then walks the funnel
/// view → click → add_to_cart → purchase with decreasing probabilities.
///
/// Exactly `config.events` events are emitted (searches included), in non-decreasing
/// time order, with millisecond timestamps inside [start_time, start_time + days]
/// — except for a user too active to fit all their sessions and gaps into `days`, whose
/// sessions then run back to back (minimum gap) past the end of the span.
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cpu/data/data_config.hpp"
#include "cpu/data/event.hpp"
#include "cpu/data/interaction_log.hpp"

namespace freshrec {

/// Throws InputError naming the `generator.<key>` that is out of range.
void validate_generator_config(const GeneratorConfig& config);

/// Ground truth of the generated catalogue; item `i` has external id "i<i>".
/// Deterministic by config.seed, config.items and config.categories only.
struct ItemCatalog {
  std::vector<std::string> category_names;  ///< per category: readable snake_case name
  std::vector<double> category_mean_price;  ///< per category: typical price (currency units)
  std::vector<std::uint32_t> category;      ///< per item: index into category_names
  std::vector<double> price;                ///< per item: price, xx.99 style, > 0
  std::vector<std::uint32_t> popularity_rank;  ///< per item: 0 = most popular of its category
  /// Per category, its items from most to least popular (rank order).
  std::vector<std::vector<std::uint32_t>> items_by_rank;
  /// Query texts, kQueryVariants per category: "running shoes", "cheap running shoes", …
  std::vector<std::string> queries;
  static constexpr std::uint32_t kQueryVariants = 4;

  std::size_t num_items() const noexcept { return category.size(); }
  std::size_t num_categories() const noexcept { return category_names.size(); }
  /// Query text `variant` (< kQueryVariants) for `category`.
  const std::string& query(std::uint32_t category_index, std::uint32_t variant) const {
    return queries[category_index * kQueryVariants + variant];
  }
  /// The item side information for the dense item indices of `items` (a log's id map):
  /// ids this catalogue does not know get category 0 ("") and a NaN price.
  ItemInfo item_info(const IdMap& items) const;
};

/// External user id of generator user `u`: "u<u>".
std::string generated_user_id(std::uint32_t user);
/// External item id of catalogue item `i`: "i<i>".
std::string generated_item_id(std::uint32_t item);

/// Builds the catalogue of `config` (validated first).
ItemCatalog make_item_catalog(const GeneratorConfig& config);

/// A user's long-term taste (ground truth).
struct UserTaste {
  std::uint32_t favourite[3] = {0, 0, 0};  ///< favourite categories, most liked first
  float weight[3] = {0, 0, 0};             ///< their mixture weights (sum to 1)
  std::uint32_t count = 0;                 ///< favourites in use (1..3)
  float activity = 1.0f;                   ///< relative session rate (log-normal, mean ~1)
  /// True when `category_index` is one of this user's favourites.
  bool likes(std::uint32_t category_index) const noexcept {
    for (std::uint32_t k = 0; k < count; ++k)
      if (favourite[k] == category_index) return true;
    return false;
  }
};

/// Builds every user's taste for `config` (validated first); index = generator user.
std::vector<UserTaste> make_user_tastes(const GeneratorConfig& config);

/// One generated event with generator indices (no strings): 24 bytes.
struct GeneratedEvent {
  static constexpr std::uint32_t kNoItem = 0xFFFFFFFFu;
  double timestamp = 0.0;        ///< epoch seconds, millisecond resolution
  std::uint32_t user = 0;        ///< generator user index (id "u<user>")
  std::uint32_t item = kNoItem;  ///< catalogue item index, kNoItem for a search
  std::uint32_t category = 0;    ///< item's category, or the searched category
  EventType type = EventType::kView;
  std::uint8_t query_variant = 0;  ///< searches: ItemCatalog::query(category, query_variant)
};

/// Counts a generator has planned or emitted so far.
struct GeneratorStats {
  std::int64_t sessions = 0;          ///< sessions planned (a session has >= 1 event)
  std::int64_t shifted_sessions = 0;  ///< sessions whose category is outside the user's tastes
  std::int64_t emitted = 0;           ///< events returned by next() so far
  std::int64_t searches = 0;          ///< of which searches (no item)
  /// Users whose sessions and gaps did not fit into `days`: their events run past the
  /// span's end (too few users for the event count).
  std::int64_t users_past_span = 0;
};

/// Pull-style generator: plans every session up front (about 24 bytes per session, one
/// session per ~9 events, plus the catalogue and the users), then produces events one at
/// a time in time order by merging the sessions that are open at that moment. Use it to
/// feed a consumer at its own pace (the streaming updater); the free functions below are
/// built on it.
class EventGenerator {
 public:
  /// Validates `config` (InputError naming the key) and plans the sessions.
  explicit EventGenerator(const GeneratorConfig& config);
  ~EventGenerator();
  EventGenerator(EventGenerator&&) noexcept;
  EventGenerator& operator=(EventGenerator&&) noexcept;
  EventGenerator(const EventGenerator&) = delete;
  EventGenerator& operator=(const EventGenerator&) = delete;

  /// Writes the next event into `out`; false when all config.events have been produced.
  bool next(GeneratedEvent& out);
  /// Fills `out` (strings reuse their capacity) with the shared-schema form of `event`:
  /// ids "u…"/"i…", properties.category, properties.price for item events,
  /// properties.query for searches.
  void to_event(const GeneratedEvent& event, Event& out) const;

  const GeneratorConfig& config() const noexcept;
  const ItemCatalog& catalog() const noexcept;
  const std::vector<UserTaste>& users() const noexcept;
  GeneratorStats stats() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The log the nightly trainer trains on: every event of generate_events() that has an
/// item (searches are not stored), ids interned in first-seen order — the same log that
/// loading the write_ndjson() file gives. Memory: 21 bytes per stored event plus the plan.
InteractionLog generate_interaction_log(const GeneratorConfig& config);

/// Calls `sink` with every event in time order (searches included), properties filled.
void generate_events(const GeneratorConfig& config, const std::function<void(const Event&)>& sink);

/// Writes the events as NDJSON, one object a line, to `path` ("-" = stdout):
/// {"user_id":"u17","item_id":"i9","event_type":"view","timestamp":1700000123.5,
///  "properties":{"category":"running_shoes","price":79.99}}; searches have no item_id
/// and no price but a "query". Throws IoError when the file cannot be written.
/// Returns what was generated (sessions, searches, users that overran the span).
GeneratorStats write_ndjson(const GeneratorConfig& config, const std::string& path);

}  // namespace freshrec
