#include <cmath>
#include <string>

#include "cpu/train/random.hpp"
#include "cpu/train/trainer.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

// Each row draws from its own stream (seed, side, row): a row's start does not depend
// on the thread count or on how many rows come before it.
void fill_normal(FactorMatrix& m, std::uint64_t seed, std::uint64_t side, float scale) {
  for (Eigen::Index r = 0; r < m.rows(); ++r) {
    Rng rng(derive_seed(seed, side, static_cast<std::uint64_t>(r)));
    for (Eigen::Index j = 0; j < m.cols(); ++j) m(r, j) = static_cast<float>(scale * rng.normal());
  }
}

}  // namespace

void initialize_factors(const InteractionLog& log, const TrainingSet& data, const TrainConfig& config,
                        ModelKind kind, const FactorModel* warm, FactorModel& model) {
  const int k = config.factors;
  if (k < 1) throw InputError("train.factors: must be >= 1, got " + std::to_string(k));
  if (!std::isfinite(config.init_scale) || config.init_scale < 0.0f)
    throw InputError("train.init_scale: must be finite and >= 0, got " + std::to_string(config.init_scale));
  if (static_cast<std::size_t>(data.n_users()) != log.users.size() ||
      static_cast<std::size_t>(data.n_items()) != log.items.size())
    throw InputError("initialize_factors: training set is " + std::to_string(data.n_users()) + " x " +
                     std::to_string(data.n_items()) + " but the log has " + std::to_string(log.users.size()) +
                     " users and " + std::to_string(log.items.size()) + " items");
  if (warm) {
    if (warm->factors() != k)
      throw InputError("warm start: the previous model has " + std::to_string(warm->factors()) +
                       " factors but train.factors is " + std::to_string(k));
    if (warm->kind != kind)
      throw InputError("warm start: the previous model is " +
                       std::string(warm->kind == ModelKind::kImplicit ? "implicit" : "explicit") +
                       " but this run trains an " + (kind == ModelKind::kImplicit ? "implicit" : "explicit") +
                       " model");
  }

  const Eigen::Index nu = data.n_users(), ni = data.n_items();
  model.kind = kind;
  model.user_factors.resize(nu, k);
  model.item_factors.resize(ni, k);
  fill_normal(model.user_factors, config.seed, 0, config.init_scale);
  fill_normal(model.item_factors, config.seed, 1, config.init_scale);
  model.user_bias = Eigen::VectorXf::Zero(nu);
  model.item_bias = Eigen::VectorXf::Zero(ni);
  model.global_bias = kind == ModelKind::kExplicit ? static_cast<float>(data.rating_mean) : 0.0f;
  model.user_ids = log.users;
  model.item_ids = log.items;
  model.data_cutoff = data.cutoff;

  if (!warm) return;
  for (Eigen::Index u = 0; u < nu; ++u) {
    auto w = warm->user_ids.find(log.users.id(static_cast<std::uint32_t>(u)));
    // A non-finite warm row is treated as unknown: it must not seed the new model.
    if (w && warm->user_factors.row(*w).allFinite()) {
      model.user_factors.row(u) = warm->user_factors.row(*w);
      if (warm->user_bias.size() > static_cast<Eigen::Index>(*w) && std::isfinite(warm->user_bias[*w]))
        model.user_bias[u] = warm->user_bias[*w];
    }
  }
  for (Eigen::Index i = 0; i < ni; ++i) {
    auto w = warm->item_ids.find(log.items.id(static_cast<std::uint32_t>(i)));
    if (w && warm->item_factors.row(*w).allFinite()) {
      model.item_factors.row(i) = warm->item_factors.row(*w);
      if (warm->item_bias.size() > static_cast<Eigen::Index>(*w) && std::isfinite(warm->item_bias[*w]))
        model.item_bias[i] = warm->item_bias[*w];
    }
  }
}

}  // namespace freshrec
