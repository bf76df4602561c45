#pragma once
/// Bandit exploration on top of a StreamEngine, without reaching into it: the engine keeps
/// the greedy point estimate (nightly + SGD + session), the Explorer keeps what exploration
/// needs (per-user posteriors, item evidence, pending impressions) and re-ranks a candidate
/// pool: the engine's greedy top (k + pool) plus the cold items (born in the stream, or
/// rarely shown), at most ExploreConfig::slots of the k going to exploration.
///
/// Single writer (observe, restore), many readers (recommend): the caller serialises observe
/// with recommend as it does StreamEngine::apply (the updater's writer thread). recommend is a
/// const reader: its Thompson draw comes from a hash of (seed, user, request), where the
/// request number is the caller's counter or, by default, the bits of the engine's watermark,
/// so a replay of the same events gives the same recommendations.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cpu/stream/bandit.hpp"
#include "cpu/stream/dense_ids.hpp"
#include "cpu/stream/impressions.hpp"
#include "cpu/stream/stream_engine.hpp"

namespace freshrec::stream {

/// Extra knobs of the explorer around ExploreConfig.
struct ExplorerConfig {
  ExploreConfig explore;
  std::size_t max_users = 100000;     ///< posteriors held (least recently active evicted)
  std::size_t max_cold_items = 512;   ///< cold candidates held (newest kept)
  int pool = 40;                      ///< greedy candidates beyond k
  float nightly_item_evidence = 20.0f;  ///< evidence of an item the nightly model knows
  std::uint64_t seed = 42;
};

/// Counters for /metrics and the stats file.
struct ExplorerCounters {
  std::uint64_t impressions = 0;
  std::uint64_t rewards = 0;          ///< clicks/purchases within the window of an impression
  std::uint64_t weak_negatives = 0;   ///< impressions closed without one
  std::uint64_t posterior_updates = 0;
  std::uint64_t evicted_users = 0;
};

class Explorer {
 public:
  explicit Explorer(ExplorerConfig cfg);
  // The LRU iterators and post_of_key_ point into this object's own containers: a copy would
  // share them, a move keeps them valid (node-based containers move their nodes).
  Explorer(const Explorer&) = delete;
  Explorer& operator=(const Explorer&) = delete;
  Explorer(Explorer&&) = default;
  Explorer& operator=(Explorer&&) = default;

  /// Feeds one accepted event (call after StreamEngine::apply): an impression starts its
  /// reward window; a click or purchase of a shown item is a reward; outcomes whose window
  /// closed update the user's posterior (seeded from `baseline`'s vector on first use).
  /// `weak_negatives` (optional) receives the (user, item) explorer keys of the shown items
  /// whose impression closed without a reward during this call, for the caller's online SGD,
  /// one user's in a row; user_name()/item_name() turn them into ids (valid until the next
  /// observe, which may renumber users).
  /// `item_in_baseline`: whether event.item_id has a row in `baseline`, when the caller
  /// already knows (the engine does, from its item table); otherwise it is looked up.
  struct WeakNegative {
    std::uint32_t user = 0;  ///< explorer user key
    std::uint32_t item = 0;  ///< explorer item key (stable: items are never renumbered)
  };
  void observe(const Event& event, const FactorModel& baseline, std::vector<WeakNegative>* weak_negatives = nullptr,
               std::optional<bool> item_in_baseline = std::nullopt);

  /// Starts loading the table slots observe(event) will look up for a click or purchase (a
  /// hint, no effect on the state): the engine calls it at the top of apply, so the misses
  /// overlap its own work.
  void prefetch(const Event& event) const noexcept;

  /// Top-k with exploration. `request` = 0 uses the watermark's bits. The items of the
  /// request's cart and the purchases the engine excludes never appear (they are not in the
  /// engine's candidates; cold candidates are checked against the cart).
  Recommendation recommend(const StreamEngine& engine, const RecommendRequest& request, std::uint64_t request_number = 0) const;

  /// The greedy ranking of a request (already excluding cart, purchases, page item).
  using GreedyFn = std::function<Recommendation(const RecommendRequest&)>;
  /// The greedy score of (user, item) at time t; non-finite = the item may not be shown.
  using ScoreFn = std::function<float(const std::string& user, const std::string& item, double t)>;
  /// The same as above on an engine's internals (the engine calls this under its own lock):
  /// `greedy` and `score` stand for StreamEngine::recommend and ::score, `watermark` for its
  /// watermark, `baseline` for its nightly model.
  Recommendation recommend(const GreedyFn& greedy, const ScoreFn& score, const FactorModel& baseline, double watermark,
                           const RecommendRequest& request, std::uint64_t request_number = 0) const;

  /// A hot swap from `old_base` to `new_base`: every tracked posterior's prior mean moves from
  /// the user's old nightly vector to the new one (zeros where a model lacks the user), the
  /// evidence gathered so far is kept (UserPosterior::rebase). A model of another k cannot
  /// carry a posterior over: they are dropped and start again from the new prior.
  void rebase(const FactorModel& old_base, const FactorModel& new_base);
  /// The posterior mean of `user` (k doubles), or nullopt when the user has no posterior.
  std::optional<std::vector<double>> posterior_mean(const std::string& user) const;

  /// Canonical serialisation (checkpoint and digest); restore throws IntegrityError on bad bytes.
  void save(std::ostream& out) const;
  void restore(std::istream& in);
  /// SHA-256 hex of save()'s bytes.
  std::string state_digest() const;

  const std::string& user_name(std::uint32_t user) const { return users_ids_.id(user); }
  const std::string& item_name(std::uint32_t item) const { return items_.id(item); }

  const ExplorerCounters& counters() const noexcept { return counters_; }
  std::size_t tracked_users() const noexcept { return users_.size(); }
  /// User ids held for pending impressions (bounded, see compact_users).
  std::size_t user_ids_held() const noexcept { return users_ids_.size(); }
  /// Host bytes of the posteriors (k-dependent, see UserPosterior).
  std::size_t posterior_bytes() const noexcept;

 private:
  struct UserEntry {
    UserPosterior posterior;
    std::list<std::string>::iterator lru;
  };
  UserEntry* posterior_for(const std::string& user, const FactorModel& baseline);
  /// The same for a user key of users_ids_, through post_of_key_ (no string hashing).
  UserPosterior* posterior_for_key(std::uint32_t user, const FactorModel& baseline);
  /// Closes scratch_[from, to), outcomes of one user: counters and evidence per outcome, one
  /// posterior lookup and one batched posterior update (UserPosterior::update_many).
  void close_run(std::size_t from, std::size_t to, const FactorModel& baseline);
  /// `baseline`'s row of explorer item `key`, -1 when it has none (cached per model).
  std::int32_t item_row(std::uint32_t key, const FactorModel& baseline);
  /// Forgets the user ids without a pending impression once more than
  /// 2 * max_pending_impressions + 1024 are held (posteriors are keyed by the id string and
  /// stay): 10M distinct users must not mean 10M strings held.
  void compact_users();
  /// Forgets every posterior (counted as evicted): a model of another k cannot carry them.
  void drop_posteriors();

  ExplorerConfig cfg_;
  ImpressionTracker tracker_;
  DenseIds items_;                                      ///< item id <-> explorer item key
  DenseIds users_ids_;                                  ///< user id <-> explorer user key (compacted)
  ItemEvidence evidence_;                               ///< by explorer item key (impressions seen)
  std::list<std::string> lru_;                          ///< most recent first
  std::unordered_map<std::string, UserEntry> users_;
  std::vector<UserEntry*> post_of_key_;                 ///< users_ids_ key -> its entry in users_, or null (derived)
  std::vector<std::string> cold_;                       ///< stream-born items, newest last
  std::vector<ImpressionOutcome> scratch_;
  std::vector<std::uint32_t> impression_keys_;  ///< observe scratch
  std::vector<std::int32_t> item_row_;          ///< explorer item key -> row of row_model_ (derived)
  const FactorModel* row_model_ = nullptr;      ///< the model item_row_ was computed on
  std::vector<const float*> run_x_;             ///< close_run scratch
  std::vector<double> run_y_;
  ExplorerCounters counters_;
};

}  // namespace freshrec::stream
