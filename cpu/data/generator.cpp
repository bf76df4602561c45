#include "cpu/data/generator.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <string_view>
#include <utility>

#include <fmt/compile.h>
#include <fmt/format.h>

#include "cpu/data/timestamp_parse.hpp"
#include "cpu/train/random.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

// Independent random streams, so that e.g. the catalogue does not change when the
// number of users or events does.
enum Stream : std::uint64_t {
  kCatalogStream = 1,
  kCategoryPopularityStream = 2,
  kUserStream = 3,
  kPlanStream = 4,
  kSessionTimeStream = 5,
  kContentStream = 6,
};

// Behaviour constants. They shape the data but are not knobs anyone has asked for;
// promote one to GeneratorConfig when an experiment needs it.
constexpr double kSessionLengthMedian = 7.0;   // events; log-normal
constexpr double kSessionLengthSigma = 0.8;
constexpr std::uint32_t kMaxSessionLength = 1000;
constexpr double kSearchStartProbability = 0.3;         // a session in a known taste
constexpr double kShiftedSearchStartProbability = 0.75;  // a new intent usually starts with a search
constexpr double kOnCategoryProbability = 0.9;  // else a view wanders to one of the user's tastes
constexpr double kClickProbability = 0.35;      // per view
constexpr double kCartProbability = 0.30;       // per click
constexpr double kPurchaseProbability = 0.45;   // per add_to_cart
constexpr double kShiftPersistence = 0.5;  // a shifted intent carries into the next session
constexpr double kCategoryPopularityExponent = 0.8;
constexpr double kCategorySizeSigma = 0.6;  // spread of items per category
constexpr double kItemPriceSigma = 0.4;     // spread of prices inside a category
constexpr double kActivitySigma = 1.0;      // spread of users' session rates
constexpr double kQueryVariantCdf[ItemCatalog::kQueryVariants] = {0.55, 0.70, 0.85, 1.0};
constexpr std::string_view kQueryPrefixes[ItemCatalog::kQueryVariants] = {"", "cheap ", "best ", "new "};

struct BaseCategory {
  const char* name;
  double mean_price;
};
constexpr BaseCategory kBaseCategories[] = {
    {"running_shoes", 95},    {"winter_boots", 130},   {"headphones", 80},
    {"smartphones", 550},     {"laptops", 900},        {"tablets", 350},
    {"smartwatches", 250},    {"cameras", 600},        {"coffee_makers", 90},
    {"blenders", 60},         {"cookware", 70},        {"kitchen_knives", 45},
    {"vacuum_cleaners", 180}, {"bedding", 60},         {"desk_lamps", 35},
    {"office_chairs", 220},   {"backpacks", 55},       {"sunglasses", 85},
    {"wristwatches", 160},    {"jeans", 55},           {"shirts", 30},
    {"dresses", 60},          {"jackets", 120},        {"sneakers", 75},
    {"yoga_mats", 30},        {"dumbbells", 45},       {"bicycles", 450},
    {"tents", 160},           {"board_games", 35},     {"books", 15},
    {"video_games", 50},      {"toys", 25},            {"skincare", 25},
    {"perfume", 70},          {"hair_dryers", 55},     {"vitamins", 20},
    {"dog_food", 45},         {"cat_toys", 12},        {"garden_tools", 35},
    {"power_drills", 110},    {"car_accessories", 30}, {"phone_cases", 18},
    {"chargers", 22},         {"monitors", 250},       {"keyboards", 70},
    {"gaming_mice", 50},      {"baby_strollers", 300}, {"wine_glasses", 30},
};
constexpr std::uint32_t kNumBase = sizeof(kBaseCategories) / sizeof(kBaseCategories[0]);

struct Prefix {
  const char* name;
  double price_factor;
};
constexpr Prefix kPrefixes[] = {
    {"premium", 2.5}, {"budget", 0.45}, {"kids", 0.6}, {"vintage", 1.4},
    {"eco", 1.2},     {"smart", 1.8},   {"travel", 0.9}, {"pro", 2.0},
};
constexpr std::uint32_t kNumPrefixes = sizeof(kPrefixes) / sizeof(kPrefixes[0]);

/// Walker/Vose alias table: O(1) draws from a fixed discrete distribution.
class AliasTable {
 public:
  AliasTable() = default;
  explicit AliasTable(const std::vector<double>& weights) { build(weights.data(), weights.size(), 0); }

  /// Builds the table for `n` weights into slots [offset, offset + n) (flat tables
  /// for many small distributions share one pair of arrays).
  void build(const double* weights, std::size_t n, std::size_t offset) {
    if (prob_.size() < offset + n) {
      prob_.resize(offset + n);
      alias_.resize(offset + n);
    }
    double total = 0.0;
    for (std::size_t i = 0; i < n; ++i) total += weights[i];
    FRESHREC_ASSERT(n > 0 && total > 0.0 && std::isfinite(total));
    std::vector<double> scaled(n);
    std::vector<std::uint32_t> small, large;
    for (std::size_t i = 0; i < n; ++i) {
      scaled[i] = weights[i] * static_cast<double>(n) / total;
      (scaled[i] < 1.0 ? small : large).push_back(static_cast<std::uint32_t>(i));
    }
    while (!small.empty() && !large.empty()) {
      const std::uint32_t s = small.back(), l = large.back();
      small.pop_back();
      prob_[offset + s] = scaled[s];
      alias_[offset + s] = l;
      scaled[l] -= 1.0 - scaled[s];
      if (scaled[l] < 1.0) {
        large.pop_back();
        small.push_back(l);
      }
    }
    // Leftovers are 1 up to rounding.
    for (std::uint32_t i : large) prob_[offset + i] = 1.0, alias_[offset + i] = i;
    for (std::uint32_t i : small) prob_[offset + i] = 1.0, alias_[offset + i] = i;
  }

  /// A draw in [0, n) from the table at [offset, offset + n).
  std::uint32_t sample(Rng& rng, std::uint32_t n, std::size_t offset = 0) const {
    const std::uint32_t i = rng.below(n);
    return rng.uniform() < prob_[offset + i] ? i : alias_[offset + i];
  }
  std::uint32_t size() const noexcept { return static_cast<std::uint32_t>(prob_.size()); }

 private:
  std::vector<double> prob_;
  std::vector<std::uint32_t> alias_;
};

double exponential(Rng& rng) { return -std::log(1.0 - rng.uniform()); }

/// Name and typical price of category `c`: the base list, then prefixed rounds
/// ("premium_headphones"), then numbered rounds ("premium_headphones_2").
std::pair<std::string, double> category_name_and_price(std::uint32_t c) {
  const BaseCategory& base = kBaseCategories[c % kNumBase];
  const std::uint32_t round = c / kNumBase;
  if (round == 0) return {base.name, base.mean_price};
  const Prefix& prefix = kPrefixes[(round - 1) % kNumPrefixes];
  std::string name = fmt::format("{}_{}", prefix.name, base.name);
  const std::uint32_t generation = (round - 1) / kNumPrefixes;
  if (generation > 0) name += fmt::format("_{}", generation + 1);
  return {std::move(name), base.mean_price * prefix.price_factor};
}

/// xx.99 price, at least 0.99, exact to the cent in decimal.
double shop_price(double raw) {
  const double whole = std::floor(std::max(raw, 0.0));
  return (whole * 100.0 + 99.0) / 100.0;
}

// Category popularity is part of the world, not of one user: weights 1/rank^s over a
// random ranking of the categories.
std::vector<double> category_popularity(const GeneratorConfig& config) {
  const auto n = static_cast<std::uint32_t>(config.categories);
  std::vector<std::uint32_t> rank(n);
  for (std::uint32_t c = 0; c < n; ++c) rank[c] = c;
  Rng rng(derive_seed(config.seed, kCategoryPopularityStream));
  shuffle_in_place(rank.data(), rank.size(), rng);
  std::vector<double> weight(n);
  for (std::uint32_t c = 0; c < n; ++c)
    weight[c] = std::pow(static_cast<double>(rank[c]) + 1.0, -kCategoryPopularityExponent);
  return weight;
}

/// A draw from `popularity` that `taste` does not like (the target of an intent shift).
/// Returns false when the user likes every category.
bool draw_unliked_category(const UserTaste& taste, const AliasTable& popularity, std::uint32_t n,
                           Rng& rng, std::uint32_t& out) {
  if (taste.count >= n) return false;
  for (int attempt = 0; attempt < 64; ++attempt) {
    const std::uint32_t c = popularity.sample(rng, n);
    if (!taste.likes(c)) {
      out = c;
      return true;
    }
  }
  // The favourites hold nearly all the mass: take a uniform unliked category instead.
  std::uint32_t k = rng.below(n - taste.count);
  for (std::uint32_t c = 0; c < n; ++c) {
    if (taste.likes(c)) continue;
    if (k-- == 0) {
      out = c;
      return true;
    }
  }
  return false;
}

std::uint32_t draw_taste_category(const UserTaste& taste, Rng& rng) {
  double u = rng.uniform();
  for (std::uint32_t k = 0; k + 1 < taste.count; ++k) {
    if (u < taste.weight[k]) return taste.favourite[k];
    u -= taste.weight[k];
  }
  return taste.favourite[taste.count - 1];
}

// One planned session: 24 bytes, so a 100M-event plan (~10M sessions) stays small.
struct Session {
  double start;             // epoch seconds of its first event
  std::uint32_t user;
  std::uint32_t id;         // creation index: seeds the session's time stream
  std::uint32_t category;   // the intent of the session
  std::uint32_t length;     // events; kShiftedBit marks an intent shift
};
constexpr std::uint32_t kShiftedBit = 0x80000000u;

// Intra-session gaps: a minimum, an exponential body, and a cap well under the session
// gap so that a session never splits in two.
struct GapModel {
  double min_gap, mean_gap, max_gap;
  explicit GapModel(double session_gap)
      : min_gap(std::min(2.0, 0.05 * session_gap)),
        mean_gap(std::min(25.0, 0.1 * session_gap)),
        max_gap(0.8 * session_gap) {}
  /// Next gap from a session's SplitMix64 time stream.
  double next(std::uint64_t& state) const {
    const std::uint64_t bits = mix64(state);
    state += 0x9E3779B97F4A7C15ULL;
    const double u = static_cast<double>(bits >> 11) * 0x1.0p-53;
    return std::min(min_gap + mean_gap * -std::log(1.0 - u), max_gap);
  }
};

enum class Stage : std::uint8_t { kFirst, kView, kClick, kCart, kPurchase };

struct Cursor {
  std::uint32_t session;    // index into the time-sorted plan
  std::uint32_t remaining;  // events still to emit, including the pending one
  std::uint64_t time_state;
  double offset;            // seconds since the session start of the pending event
  std::uint32_t item;       // item the funnel is on
  Stage stage;
};

struct HeapEntry {
  double time;
  std::uint32_t slot;   // into the cursor slab
  std::uint32_t order;  // session index: unique, breaks time ties deterministically
};
// std heap functions keep the largest on top; this puts the earliest there.
struct Later {
  bool operator()(const HeapEntry& a, const HeapEntry& b) const noexcept {
    return a.time > b.time || (a.time == b.time && a.order > b.order);
  }
};

double round_to_millisecond(double t) { return std::round(t * 1000.0) / 1000.0; }

}  // namespace

void validate_generator_config(const GeneratorConfig& c) {
  auto fail = [](const char* key, const std::string& why) {
    throw InputError(fmt::format("generator.{}: {}", key, why));
  };
  if (c.events < 0 || c.events > 2'000'000'000LL)
    fail("events", fmt::format("must be in [0, 2e9], got {}", c.events));
  if (c.users < 1) fail("users", fmt::format("must be >= 1, got {}", c.users));
  if (c.items < 1) fail("items", fmt::format("must be >= 1, got {}", c.items));
  if (c.categories < 1 || c.categories > 1'000'000)
    fail("categories", fmt::format("must be in [1, 1000000], got {}", c.categories));
  if (c.categories > c.items)
    fail("categories", fmt::format("must not exceed generator.items ({}), got {}", c.items, c.categories));
  if (!(c.zipf_exponent >= 0.0 && c.zipf_exponent <= 10.0))
    fail("zipf_exponent", fmt::format("must be in [0, 10], got {}", c.zipf_exponent));
  if (!(c.session_gap_seconds >= 1.0 && c.session_gap_seconds <= 1e9))
    fail("session_gap_seconds", fmt::format("must be in [1, 1e9], got {}", c.session_gap_seconds));
  if (!(c.intent_shift_probability >= 0.0 && c.intent_shift_probability <= 1.0))
    fail("intent_shift_probability", fmt::format("must be in [0, 1], got {}", c.intent_shift_probability));
  if (!(c.start_time >= 0.0 && c.start_time <= 4e9))
    fail("start_time", fmt::format("must be epoch seconds in [0, 4e9], got {}", c.start_time));
  if (!(c.days > 0.0 && c.days <= 36500.0))
    fail("days", fmt::format("must be in (0, 36500], got {}", c.days));
  // Every event time must be one the readers accept back (kMaxEventTimestamp).
  if (c.start_time + c.days * 86400.0 > kMaxEventTimestamp)
    fail("days", fmt::format("start_time + days ({} s) runs past 2100-01-01", c.start_time + c.days * 86400.0));
}

std::string generated_user_id(std::uint32_t user) { return fmt::format("u{}", user); }
std::string generated_item_id(std::uint32_t item) { return fmt::format("i{}", item); }

ItemCatalog make_item_catalog(const GeneratorConfig& config) {
  validate_generator_config(config);
  const auto num_categories = static_cast<std::uint32_t>(config.categories);
  const auto num_items = static_cast<std::uint32_t>(config.items);
  Rng rng(derive_seed(config.seed, kCatalogStream));
  ItemCatalog cat;

  cat.category_names.reserve(num_categories);
  cat.category_mean_price.reserve(num_categories);
  cat.queries.reserve(std::size_t{num_categories} * ItemCatalog::kQueryVariants);
  for (std::uint32_t c = 0; c < num_categories; ++c) {
    auto [name, price] = category_name_and_price(c);
    std::string words = name;
    std::replace(words.begin(), words.end(), '_', ' ');
    for (std::string_view prefix : kQueryPrefixes) cat.queries.push_back(std::string(prefix) + words);
    cat.category_names.push_back(std::move(name));
    cat.category_mean_price.push_back(price);
  }

  // Every category gets one item, the rest follow log-normal category sizes; then the
  // assignment is shuffled so item ids say nothing about categories.
  std::vector<double> size_weight(num_categories);
  for (double& w : size_weight) w = std::exp(kCategorySizeSigma * rng.normal());
  const AliasTable sizes(size_weight);
  cat.category.resize(num_items);
  for (std::uint32_t i = 0; i < num_items; ++i)
    cat.category[i] = i < num_categories ? i : sizes.sample(rng, num_categories);
  shuffle_in_place(cat.category.data(), cat.category.size(), rng);

  cat.items_by_rank.assign(num_categories, {});
  for (std::uint32_t i = 0; i < num_items; ++i) cat.items_by_rank[cat.category[i]].push_back(i);
  cat.popularity_rank.resize(num_items);
  for (auto& ranked : cat.items_by_rank) {
    shuffle_in_place(ranked.data(), ranked.size(), rng);
    for (std::uint32_t r = 0; r < ranked.size(); ++r) cat.popularity_rank[ranked[r]] = r;
  }

  cat.price.resize(num_items);
  for (std::uint32_t i = 0; i < num_items; ++i) {
    // exp(sigma*N - sigma^2/2) has mean 1: the category mean stays the mean.
    const double factor = std::exp(kItemPriceSigma * rng.normal() - 0.5 * kItemPriceSigma * kItemPriceSigma);
    cat.price[i] = shop_price(cat.category_mean_price[cat.category[i]] * factor);
  }
  return cat;
}

ItemInfo ItemCatalog::item_info(const IdMap& items) const {
  ItemInfo info;
  info.category_names.intern("");  // category 0 is "unknown"
  for (const std::string& name : category_names) info.category_names.intern(name);
  info.category.assign(items.size(), 0);
  info.price.assign(items.size(), std::numeric_limits<float>::quiet_NaN());
  for (std::uint32_t k = 0; k < items.size(); ++k) {
    const std::string& id = items.id(k);
    if (id.size() < 2 || id[0] != 'i') continue;
    std::uint64_t index = 0;
    bool digits = id.size() <= 11;
    for (std::size_t p = 1; digits && p < id.size(); ++p) {
      digits = id[p] >= '0' && id[p] <= '9';
      index = index * 10 + static_cast<std::uint64_t>(id[p] - '0');
    }
    // "i007" is not one of ours: only the canonical spelling maps back.
    if (!digits || index >= num_items() || (id.size() > 2 && id[1] == '0')) continue;
    info.category[k] = category[index] + 1;
    info.price[k] = static_cast<float>(price[index]);
  }
  return info;
}

std::vector<UserTaste> make_user_tastes(const GeneratorConfig& config) {
  validate_generator_config(config);
  const auto n = static_cast<std::uint32_t>(config.categories);
  const AliasTable popularity(category_popularity(config));
  Rng rng(derive_seed(config.seed, kUserStream));
  // Keep at least one category outside every user's tastes so an intent can shift.
  const std::uint32_t max_favourites = std::max<std::uint32_t>(1, std::min<std::uint32_t>(3, n - 1));
  std::vector<UserTaste> users(static_cast<std::size_t>(config.users));
  for (UserTaste& u : users) {
    const std::uint32_t wanted = std::min<std::uint32_t>(2 + rng.below(2), max_favourites);
    while (u.count < wanted) {
      std::uint32_t c = popularity.sample(rng, n);
      for (int attempt = 0; attempt < 64 && u.likes(c); ++attempt) c = popularity.sample(rng, n);
      while (u.likes(c)) c = (c + 1) % n;  // terminates: fewer favourites than categories
      u.favourite[u.count++] = c;
    }
    // Dirichlet(1, …, 1) = normalised unit exponentials; most liked first.
    double w[3], total = 0.0;
    for (std::uint32_t k = 0; k < u.count; ++k) total += (w[k] = exponential(rng) + 1e-12);
    std::sort(w, w + u.count, [](double a, double b) { return a > b; });
    for (std::uint32_t k = 0; k < u.count; ++k) u.weight[k] = static_cast<float>(w[k] / total);
    u.activity = static_cast<float>(std::exp(kActivitySigma * rng.normal() - 0.5 * kActivitySigma * kActivitySigma));
  }
  return users;
}

struct EventGenerator::Impl {
  GeneratorConfig config;
  ItemCatalog catalog;
  std::vector<UserTaste> users;
  GapModel gaps;
  // Zipf draws per category: one flat alias table over items_by_rank, category c at
  // offset item_offset[c].
  AliasTable item_alias;
  std::vector<std::uint32_t> item_offset;
  std::vector<std::uint32_t> ranked_items;
  std::vector<Session> sessions;  // sorted by (start, id)
  std::size_t next_session = 0;
  std::vector<Cursor> cursors;  // slab; free slots listed in free_slots
  std::vector<std::uint32_t> free_slots;
  std::vector<HeapEntry> heap;
  Rng content;
  GeneratorStats stats;

  explicit Impl(const GeneratorConfig& c)
      : config(c),
        catalog(make_item_catalog(c)),
        users(make_user_tastes(c)),
        gaps(c.session_gap_seconds),
        content(derive_seed(c.seed, kContentStream)) {
    build_item_alias();
    plan_sessions();
  }

  void build_item_alias() {
    const std::size_t n = catalog.num_categories();
    item_offset.resize(n + 1);
    ranked_items.reserve(catalog.num_items());
    std::vector<double> weight;
    for (std::size_t c = 0; c < n; ++c) {
      const auto& ranked = catalog.items_by_rank[c];
      item_offset[c] = static_cast<std::uint32_t>(ranked_items.size());
      weight.resize(ranked.size());
      for (std::size_t r = 0; r < ranked.size(); ++r)
        weight[r] = std::pow(static_cast<double>(r) + 1.0, -config.zipf_exponent);
      item_alias.build(weight.data(), weight.size(), item_offset[c]);
      ranked_items.insert(ranked_items.end(), ranked.begin(), ranked.end());
    }
    item_offset[n] = static_cast<std::uint32_t>(ranked_items.size());
  }

  std::uint64_t time_seed(std::uint32_t session_id) const {
    return derive_seed(config.seed, kSessionTimeStream, session_id);
  }

  // Plan: session lengths summing to exactly config.events, each given to a user in
  // proportion to activity; then per user, an intent per session and start times that
  // fit the sessions and their gaps into the span.
  void plan_sessions() {
    Rng rng(derive_seed(config.seed, kPlanStream));
    std::vector<double> activity(users.size());
    for (std::size_t u = 0; u < users.size(); ++u) activity[u] = users[u].activity;
    const AliasTable by_activity(activity);
    const auto num_users = static_cast<std::uint32_t>(users.size());

    // Lengths and owners are independent draws, so the sessions can be laid out grouped
    // by user from the start: the per-user pass below then reads memory in order (a
    // scattered layout made this pass cache-miss bound at 100M events).
    std::vector<std::uint32_t> lengths;
    lengths.reserve(static_cast<std::size_t>(config.events / 9 + 16));
    for (std::int64_t left = config.events; left > 0;) {
      const double len = std::exp(std::log(kSessionLengthMedian) + kSessionLengthSigma * rng.normal());
      auto n = static_cast<std::int64_t>(std::clamp(std::llround(len), 1LL, static_cast<long long>(kMaxSessionLength)));
      n = std::min(n, left);
      left -= n;
      lengths.push_back(static_cast<std::uint32_t>(n));
    }
    stats.sessions = static_cast<std::int64_t>(lengths.size());
    std::vector<std::uint32_t> first(num_users + 1, 0);
    for (std::size_t k = 0; k < lengths.size(); ++k) ++first[by_activity.sample(rng, num_users) + 1];
    for (std::uint32_t u = 0; u < num_users; ++u) first[u + 1] += first[u];
    sessions.resize(lengths.size());
    for (std::uint32_t u = 0; u < num_users; ++u)
      for (std::uint32_t id = first[u]; id < first[u + 1]; ++id) sessions[id] = Session{0.0, u, id, 0, lengths[id]};
    lengths = {};

    const AliasTable popularity(category_popularity(config));
    const auto num_categories = static_cast<std::uint32_t>(config.categories);
    // Entering a shift with probability a, keeping it with probability c, gives a
    // stationary share a / (1 - c(1 - a)) of shifted sessions; solve for the share p.
    const double p = config.intent_shift_probability;
    const double c = kShiftPersistence;
    const double enter = p >= 1.0 ? 1.0 : p * (1.0 - c) / (1.0 - p * c);
    const double span = config.days * 86400.0;
    // Between sessions: the gap plus a hair, so millisecond rounding cannot close it.
    const double spacing = config.session_gap_seconds + 0.01;
    std::vector<double> duration, slack;
    for (std::uint32_t u = 0; u < num_users; ++u) {
      const std::uint32_t k = first[u + 1] - first[u];
      if (k == 0) continue;
      duration.resize(k);
      double busy = spacing * (k - 1);
      for (std::uint32_t j = 0; j < k; ++j) {
        std::uint64_t state = time_seed(first[u] + j);
        double d = 0.0;
        for (std::uint32_t e = 1; e < sessions[first[u] + j].length; ++e) d += gaps.next(state);
        duration[j] = d;
        busy += d;
      }
      // Uniform order statistics spread the free time: sessions land anywhere in the
      // span, never closer than the gap. No free time: back to back, past the span.
      if (busy > span) ++stats.users_past_span;
      // The user's last event lands at most at start_time + max(span, busy).
      if (config.start_time + busy > kMaxEventTimestamp)
        throw InputError(fmt::format(
            "generator.session_gap_seconds: user u{} needs {:.0f} s for {} sessions and their gaps, which runs "
            "past 2100-01-01; lower session_gap_seconds or events, or raise users",
            u, busy, k));
      const double free_time = std::max(0.0, span - busy);
      slack.resize(k);
      for (double& s : slack) s = rng.uniform() * free_time;
      std::sort(slack.begin(), slack.end());
      double used = 0.0;
      const UserTaste& taste = users[u];
      bool shifted = false;
      std::uint32_t shift_category = 0;
      for (std::uint32_t j = 0; j < k; ++j) {
        Session& s = sessions[first[u] + j];
        s.start = config.start_time + slack[j] + used;
        used += duration[j] + spacing;
        if (!(shifted && rng.uniform() < c)) {
          shifted = rng.uniform() < enter &&
                    draw_unliked_category(taste, popularity, num_categories, rng, shift_category);
        }
        if (shifted) {
          s.category = shift_category;
          s.length |= kShiftedBit;
          ++stats.shifted_sessions;
        } else {
          s.category = draw_taste_category(taste, rng);
        }
      }
    }
    std::sort(sessions.begin(), sessions.end(), [](const Session& a, const Session& b) {
      return a.start < b.start || (a.start == b.start && a.id < b.id);
    });
  }

  void open_session() {
    const auto order = static_cast<std::uint32_t>(next_session++);
    const Session& s = sessions[order];
    std::uint32_t slot;
    if (free_slots.empty()) {
      slot = static_cast<std::uint32_t>(cursors.size());
      cursors.emplace_back();
    } else {
      slot = free_slots.back();
      free_slots.pop_back();
    }
    cursors[slot] = Cursor{order, s.length & ~kShiftedBit, time_seed(s.id), 0.0, 0, Stage::kFirst};
    heap.push_back(HeapEntry{s.start, slot, order});
    std::push_heap(heap.begin(), heap.end(), Later{});
  }

  std::uint32_t draw_item(std::uint32_t category) {
    const std::uint32_t off = item_offset[category];
    const std::uint32_t n = item_offset[category + 1] - off;
    return ranked_items[off + item_alias.sample(content, n, off)];
  }

  // The pending event of `cur`, advancing its funnel.
  void step(Cursor& cur, const Session& s, GeneratedEvent& out) {
    out.user = s.user;
    if (cur.stage == Stage::kFirst) {
      const bool shifted = (s.length & kShiftedBit) != 0;
      cur.stage = Stage::kView;
      if (content.uniform() < (shifted ? kShiftedSearchStartProbability : kSearchStartProbability)) {
        const double u = content.uniform();
        std::uint32_t v = 0;
        while (v + 1 < ItemCatalog::kQueryVariants && u >= kQueryVariantCdf[v]) ++v;
        out.type = EventType::kSearch;
        out.item = GeneratedEvent::kNoItem;
        out.category = s.category;
        out.query_variant = static_cast<std::uint8_t>(v);
        ++stats.searches;
        return;
      }
    }
    out.query_variant = 0;
    switch (cur.stage) {
      case Stage::kFirst:
      case Stage::kView: {
        const std::uint32_t category = content.uniform() < kOnCategoryProbability
                                           ? s.category
                                           : draw_taste_category(users[s.user], content);
        cur.item = draw_item(category);
        out.type = EventType::kView;
        cur.stage = content.uniform() < kClickProbability ? Stage::kClick : Stage::kView;
        break;
      }
      case Stage::kClick:
        out.type = EventType::kClick;
        cur.stage = content.uniform() < kCartProbability ? Stage::kCart : Stage::kView;
        break;
      case Stage::kCart:
        out.type = EventType::kAddToCart;
        cur.stage = content.uniform() < kPurchaseProbability ? Stage::kPurchase : Stage::kView;
        break;
      case Stage::kPurchase:
        out.type = EventType::kPurchase;
        cur.stage = Stage::kView;
        break;
    }
    out.item = cur.item;
    out.category = catalog.category[cur.item];
  }

  bool next(GeneratedEvent& out) {
    if (stats.emitted >= config.events) return false;
    // Open every session whose first event comes before the earliest pending one.
    while (next_session < sessions.size() &&
           (heap.empty() || Later{}(heap.front(), HeapEntry{sessions[next_session].start, 0,
                                                              static_cast<std::uint32_t>(next_session)})))
      open_session();
    FRESHREC_ASSERT(!heap.empty());
    std::pop_heap(heap.begin(), heap.end(), Later{});
    HeapEntry top = heap.back();
    Cursor& cur = cursors[top.slot];
    const Session& s = sessions[cur.session];
    step(cur, s, out);
    out.timestamp = round_to_millisecond(top.time);
    ++stats.emitted;
    if (--cur.remaining > 0) {
      cur.offset += gaps.next(cur.time_state);
      heap.back().time = s.start + cur.offset;
      std::push_heap(heap.begin(), heap.end(), Later{});
    } else {
      heap.pop_back();
      free_slots.push_back(top.slot);
    }
    return true;
  }
};

EventGenerator::EventGenerator(const GeneratorConfig& config) : impl_(std::make_unique<Impl>(config)) {}
EventGenerator::~EventGenerator() = default;
EventGenerator::EventGenerator(EventGenerator&&) noexcept = default;
EventGenerator& EventGenerator::operator=(EventGenerator&&) noexcept = default;

bool EventGenerator::next(GeneratedEvent& out) { return impl_->next(out); }
const GeneratorConfig& EventGenerator::config() const noexcept { return impl_->config; }
const ItemCatalog& EventGenerator::catalog() const noexcept { return impl_->catalog; }
const std::vector<UserTaste>& EventGenerator::users() const noexcept { return impl_->users; }
GeneratorStats EventGenerator::stats() const noexcept { return impl_->stats; }

void EventGenerator::to_event(const GeneratedEvent& e, Event& out) const {
  const ItemCatalog& cat = impl_->catalog;
  const fmt::format_int user(e.user);
  out.user_id.assign("u").append(user.data(), user.size());
  out.type = e.type;
  out.timestamp = e.timestamp;
  out.category = cat.category_names[e.category];
  out.rating = NAN;
  if (e.item == GeneratedEvent::kNoItem) {
    out.item_id.clear();
    out.price = NAN;
    out.query = cat.query(e.category, e.query_variant);
  } else {
    const fmt::format_int item(e.item);
    out.item_id.assign("i").append(item.data(), item.size());
    out.price = cat.price[e.item];
    out.query.clear();
  }
}

InteractionLog generate_interaction_log(const GeneratorConfig& config) {
  EventGenerator gen(config);
  InteractionLog log;
  log.reserve(static_cast<std::size_t>(config.events));  // upper bound: searches are dropped
  constexpr std::uint32_t kUnseen = std::numeric_limits<std::uint32_t>::max();
  std::vector<std::uint32_t> user_index(gen.users().size(), kUnseen);
  std::vector<std::uint32_t> item_index(gen.catalog().num_items(), kUnseen);
  GeneratedEvent e;
  while (gen.next(e)) {
    if (e.item == GeneratedEvent::kNoItem) continue;
    // Interning follows first-seen order, as a reader of the NDJSON file would.
    std::uint32_t& u = user_index[e.user];
    if (u == kUnseen) u = log.users.intern(generated_user_id(e.user));
    std::uint32_t& i = item_index[e.item];
    if (i == kUnseen) i = log.items.intern(generated_item_id(e.item));
    log.add(u, i, e.timestamp, 1.0f, e.type);
  }
  return log;
}

void generate_events(const GeneratorConfig& config, const std::function<void(const Event&)>& sink) {
  EventGenerator gen(config);
  GeneratedEvent e;
  Event event;
  while (gen.next(e)) {
    gen.to_event(e, event);
    sink(event);
  }
}

namespace {

/// Owns the output stream; stdout is borrowed, never closed.
class OutputFile {
 public:
  explicit OutputFile(const std::string& path) : path_(path) {
    file_ = path == "-" ? stdout : std::fopen(path.c_str(), "wb");
    if (!file_) throw IoError(fmt::format("{}: cannot open for writing: {}", path, std::strerror(errno)));
  }
  ~OutputFile() {
    if (file_ && file_ != stdout) std::fclose(file_);
  }
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void write(const char* data, std::size_t size) {
    if (std::fwrite(data, 1, size, file_) != size)
      throw IoError(fmt::format("{}: write failed: {}", path_, std::strerror(errno)));
  }
  void close() {
    const bool is_stdout = file_ == stdout;
    std::FILE* f = file_;
    file_ = nullptr;
    if (is_stdout ? std::fflush(f) != 0 : std::fclose(f) != 0)
      throw IoError(fmt::format("{}: write failed: {}", path_, std::strerror(errno)));
  }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace

GeneratorStats write_ndjson(const GeneratorConfig& config, const std::string& path) {
  EventGenerator gen(config);
  const ItemCatalog& cat = gen.catalog();
  OutputFile out(path);
  fmt::memory_buffer buf;
  auto it = std::back_inserter(buf);
  constexpr std::size_t kFlushBytes = 1 << 20;
  GeneratedEvent e;
  // Names and queries are built from [a-z0-9_ ] only, so nothing needs JSON escaping.
  while (gen.next(e)) {
    const std::string_view type = event_type_name(e.type);
    if (e.item == GeneratedEvent::kNoItem) {
      fmt::format_to(it,
                     FMT_COMPILE("{{\"user_id\":\"u{}\",\"event_type\":\"{}\",\"timestamp\":{},"
                                "\"properties\":{{\"category\":\"{}\",\"query\":\"{}\"}}}}\n"),
                     e.user, type, e.timestamp, cat.category_names[e.category],
                     cat.query(e.category, e.query_variant));
    } else {
      fmt::format_to(it,
                     FMT_COMPILE("{{\"user_id\":\"u{}\",\"item_id\":\"i{}\",\"event_type\":\"{}\",\"timestamp\":{},"
                                "\"properties\":{{\"category\":\"{}\",\"price\":{}}}}}\n"),
                     e.user, e.item, type, e.timestamp, cat.category_names[e.category], cat.price[e.item]);
    }
    if (buf.size() >= kFlushBytes) {
      out.write(buf.data(), buf.size());
      buf.clear();
    }
  }
  out.write(buf.data(), buf.size());
  out.close();
  return gen.stats();
}

}  // namespace freshrec
