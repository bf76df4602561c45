// The two CUDA trainers behind the Trainer interface. Host code only: the kernels are
// reached through the launchers of als_kernels.hpp / sgd_kernels.hpp.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "cpu/train/config_check.hpp"
#include "cpu/util/error.hpp"
#include "cuda/als_kernels.hpp"
#include "cuda/cuda_backend.hpp"
#include "cuda/device_csr.hpp"
#include "cuda/nvtx.hpp"
#include "cuda/sgd_kernels.hpp"

namespace freshrec {
namespace {

void check_model_shape(const std::string& who, const TrainingSet& data, const FactorModel& model, int k,
                       bool biases) {
  const bool bias_ok =
      !biases || (model.user_bias.size() == data.n_users() && model.item_bias.size() == data.n_items());
  if (model.n_users() != data.n_users() || model.n_items() != data.n_items() || model.factors() != k ||
      model.user_factors.cols() != k || !bias_ok)
    throw InputError(who + ": model is " + std::to_string(model.n_users()) + " users x " +
                     std::to_string(model.n_items()) + " items x " + std::to_string(model.factors()) +
                     " factors but the training set is " + std::to_string(data.n_users()) + " x " +
                     std::to_string(data.n_items()) + " and train.factors is " + std::to_string(k) +
                     " (call initialize_factors first)");
}

// splitmix64 of (seed, stream): independent seeds for the shuffle and each epoch.
std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream) {
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double host_seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class CudaTrainerBase : public CudaTrainer {
 public:
  explicit CudaTrainerBase(const TrainConfig& config) : config_(config) {
    validate_train_config(config_);
    if (config_.factors > kCudaMaxFactors)
      throw InputError("train.factors: the CUDA backend takes at most " + std::to_string(kCudaMaxFactors) +
                       " factors, got " + std::to_string(config_.factors));
    install_nvtx_hooks();
  }
  const CudaFitStats& last_stats() const noexcept override { return stats_; }

 protected:
  // Created on the first fit and kept: one stream and one cuBLAS handle per trainer.
  GpuResources& resources() {
    if (!res_) res_ = std::make_unique<GpuResources>(0);
    return *res_;
  }

  TrainConfig config_;
  CudaFitStats stats_;
  std::unique_ptr<GpuResources> res_;
};

// ---------------------------------------------------------------------------------------
class CudaAlsTrainer final : public CudaTrainerBase {
 public:
  explicit CudaAlsTrainer(const TrainConfig& config) : CudaTrainerBase(config) { config_.algorithm = Algorithm::kAls; }

  std::string name() const override {
    if (config_.solver == AlsSolver::kConjugateGradient) return "cuda-als-cg";
    return config_.factors <= kCudaMaxCholeskyFactors ? "cuda-als-cholesky" : "cuda-als-cg-exact";
  }

  void fit(const TrainingSet& data, FactorModel& model, const IterationCallback& on_iteration) override {
    NvtxRange fit_range("cuda.als.fit");
    const int k = config_.factors;
    check_model_shape(name(), data, model, k, false);
    const CsrMatrix& R = data.user_items;
    for (float c : R.values)
      if (!(std::isfinite(c) && c > 0.0f))
        throw InputError(name() + ": confidences must be finite and > 0, found " + std::to_string(c));

    GpuResources& res = resources();
    stats_ = CudaFitStats{};
    stats_.device_name = res.device_name();
    const std::int32_t nu = data.n_users(), ni = data.n_items();
    const std::int64_t nnz = R.nnz();
    const std::size_t ld = static_cast<std::size_t>(gram_stride(k));
    const std::size_t factor_bytes = (static_cast<std::size_t>(nu) + ni) * k * sizeof(float);
    // Both orientations, plus the CG's long-row lists (4 bytes a row).
    const std::size_t csr_bytes = (static_cast<std::size_t>(nu) + ni + 2) * 8 + static_cast<std::size_t>(nnz) * 16 +
                                  (static_cast<std::size_t>(nu) + ni) * 4;
    const std::size_t upload_bytes =
        (static_cast<std::size_t>(nu) + 1) * 8 + static_cast<std::size_t>(nnz) * 8;
    const std::size_t build_bytes = static_cast<std::size_t>(nnz) * 4 +
                                    std::max(build_device_csr_bytes(nu, nnz), build_device_csr_bytes(ni, nnz));
    stats_.planned_device_bytes =
        factor_bytes + csr_bytes + upload_bytes + build_bytes + ld * ld * sizeof(float) + (64u << 20);
    res.require_free(stats_.planned_device_bytes, name());
    res.reset_peak();

    DeviceBuffer<float> X(res, static_cast<std::size_t>(nu) * k), Y(res, static_cast<std::size_t>(ni) * k);
    DeviceBuffer<float> gram(res, ld * ld);
    DeviceBuffer<double> loss_terms(res, 2);
    DeviceCsr by_user, by_item;
    {
      NvtxRange r("cuda.als.upload");
      EventTimer timer(res);
      timer.start();
      // The user-major CSR travels as COO: row pointers + columns + confidences; the
      // rows are expanded and both orientations are rebuilt on the device.
      DeviceBuffer<std::int64_t> indptr(res, R.indptr.size());
      DeviceBuffer<std::int32_t> cols(res, static_cast<std::size_t>(nnz));
      DeviceBuffer<float> vals(res, static_cast<std::size_t>(nnz));
      indptr.upload(R.indptr.data(), R.indptr.size());
      cols.upload(R.indices.data(), static_cast<std::size_t>(nnz));
      vals.upload(R.values.data(), static_cast<std::size_t>(nnz));
      X.upload(model.user_factors.data(), X.size());
      Y.upload(model.item_factors.data(), Y.size());
      timer.stop();
      stats_.upload_seconds = timer.seconds();
      stats_.upload_bytes = indptr.bytes() + cols.bytes() + vals.bytes() + X.bytes() + Y.bytes();

      NvtxRange b("cuda.als.build");
      EventTimer build_timer(res);
      build_timer.start();
      DeviceBuffer<std::int32_t> rows(res, static_cast<std::size_t>(nnz));
      expand_csr_rows(res, indptr.data(), nu, rows.data());
      indptr.reset();
      by_user = build_device_csr(res, nu, ni, rows.data(), cols.data(), vals.data(), nnz);
      by_item = build_device_csr(res, ni, nu, cols.data(), rows.data(), vals.data(), nnz);
      build_timer.stop();
      stats_.build_seconds = build_timer.seconds();
    }
    FRESHREC_ASSERT(by_user.nnz == nnz && by_item.nnz == nnz);

    const bool exact = config_.solver == AlsSolver::kCholesky;
    const bool cholesky = exact && k <= kCudaMaxCholeskyFactors;
    // Above the Cholesky kernel's size the exact solver is CG run to convergence: k steps
    // solve a k x k SPD system in exact arithmetic; the residual test ends it sooner.
    const int steps = exact ? 2 * k : config_.cg_steps;
    const float reg = config_.regularization;
    // The rows too long for one warp (popular items), listed once per orientation.
    CgLongRows user_long_rows, item_long_rows;
    if (!cholesky) {
      user_long_rows = list_cg_long_rows(res, by_user.view());
      item_long_rows = list_cg_long_rows(res, by_item.view());
    }
    auto half_step = [&](const DeviceCsr& m, const CgLongRows& long_rows, const DeviceBuffer<float>& other,
                         std::int32_t n_other, DeviceBuffer<float>& factors) {
      compute_gram(res, other.data(), n_other, k, reg, gram.data());
      if (cholesky)
        als_cholesky_update(res, m.view(), other.data(), gram.data(), factors.data(), k);
      else
        als_cg_update(res, m.view(), long_rows, other.data(), gram.data(), factors.data(), k, steps);
    };

    // Bytes: floor = CSR (8 B/entry) + the other side's factors read + own factors read
    // and written; requested = every gather of a k-vector counted per pass.
    const double passes = cholesky ? 1.0 : 1.0 + steps;
    const double entry_bytes = 8.0 * nnz * 2;
    stats_.floor_bytes_per_iteration = entry_bytes + 3.0 * factor_bytes;
    stats_.requested_bytes_per_iteration =
        2.0 * nnz * passes * (8.0 + 4.0 * k) + 3.0 * factor_bytes;

    EventTimer user_timer(res), item_timer(res);
    for (int it = 1; it <= config_.iterations; ++it) {
      NvtxRange iter_range("cuda.als.iteration");
      const auto t0 = std::chrono::steady_clock::now();
      {
        NvtxRange r("cuda.als.user_step");
        user_timer.start();
        half_step(by_user, user_long_rows, Y, ni, X);
        user_timer.stop();
      }
      {
        NvtxRange r("cuda.als.item_step");
        item_timer.start();
        half_step(by_item, item_long_rows, X, nu, Y);
        item_timer.stop();
      }
      res.synchronize();
      IterationReport report;
      report.iteration = it;
      report.seconds = host_seconds_since(t0);
      stats_.user_step_seconds.push_back(user_timer.seconds());
      stats_.item_step_seconds.push_back(item_timer.seconds());
      stats_.iteration_seconds.push_back(report.seconds);
      report.loss = NAN;
      if (config_.compute_loss) {
        NvtxRange r("cuda.als.loss");
        const auto l0 = std::chrono::steady_clock::now();
        report.loss = loss(res, by_user, X, Y, gram, loss_terms, nu, ni, k);
        stats_.loss_seconds += host_seconds_since(l0);
      }
      if (on_iteration) on_iteration(report);
    }

    {
      NvtxRange r("cuda.als.download");
      EventTimer timer(res);
      timer.start();
      X.download(model.user_factors.data(), X.size());
      Y.download(model.item_factors.data(), Y.size());
      timer.stop();
      stats_.download_seconds = timer.seconds();
      stats_.download_bytes = X.bytes() + Y.bytes();
    }
    stats_.peak_device_bytes = res.peak_bytes();
  }

 private:
  // implicit's calculate_loss: the user-side quadratic form with gram = Y^T Y + reg I
  // already carries reg |x_u|^2, so only reg |Y|^2 is added here.
  double loss(GpuResources& res, const DeviceCsr& by_user, const DeviceBuffer<float>& X, const DeviceBuffer<float>& Y,
              DeviceBuffer<float>& gram, DeviceBuffer<double>& terms, std::int32_t nu, std::int32_t ni, int k) {
    const float reg = config_.regularization;
    compute_gram(res, Y.data(), ni, k, reg, gram.data());
    als_loss_terms(res, by_user.view(), X.data(), Y.data(), gram.data(), k, terms.data());
    double host[2] = {0.0, 0.0};
    terms.download(host, 2);
    const double item_norm = sum_of_squares(res, Y.data(), static_cast<std::int64_t>(Y.size()));
    res.synchronize();
    const double total = host[0] + static_cast<double>(reg) * item_norm;
    const double denom = host[1] + static_cast<double>(nu) * static_cast<double>(ni) - static_cast<double>(by_user.nnz);
    return denom > 0.0 ? total / denom : NAN;
  }
};

// ---------------------------------------------------------------------------------------
class CudaSgdTrainer final : public CudaTrainerBase {
 public:
  explicit CudaSgdTrainer(const TrainConfig& config) : CudaTrainerBase(config) { config_.algorithm = Algorithm::kSgd; }

  std::string name() const override { return "cuda-sgd"; }

  void fit(const TrainingSet& data, FactorModel& model, const IterationCallback& on_iteration) override {
    NvtxRange fit_range("cuda.sgd.fit");
    const int k = config_.factors;
    check_model_shape(name(), data, model, k, true);
    const CsrMatrix& R = data.user_items;
    for (float v : R.values)
      if (!std::isfinite(v)) throw InputError(name() + ": training ratings must be finite, found " + std::to_string(v));

    GpuResources& res = resources();
    stats_ = CudaFitStats{};
    stats_.device_name = res.device_name();
    const std::int32_t nu = data.n_users(), ni = data.n_items();
    const std::int64_t n = R.nnz();
    const std::size_t factor_bytes = (static_cast<std::size_t>(nu) + ni) * (k + 1) * sizeof(float);
    // samples (12 B) + indptr + shuffle: keys 8 + permutation 8 + sort buffers 16 + gather 4.
    stats_.planned_device_bytes = factor_bytes + static_cast<std::size_t>(n) * (12 + 36) +
                                  (static_cast<std::size_t>(nu) + 1) * 8 + (64u << 20);
    res.require_free(stats_.planned_device_bytes, name());
    res.reset_peak();

    DeviceBuffer<float> P(res, static_cast<std::size_t>(nu) * k), Q(res, static_cast<std::size_t>(ni) * k);
    DeviceBuffer<float> bu(res, static_cast<std::size_t>(nu)), bi(res, static_cast<std::size_t>(ni));
    DeviceBuffer<std::int32_t> su(res, static_cast<std::size_t>(n)), si(res, static_cast<std::size_t>(n));
    DeviceBuffer<float> sr(res, static_cast<std::size_t>(n));
    {
      NvtxRange r("cuda.sgd.upload");
      EventTimer timer(res);
      timer.start();
      DeviceBuffer<std::int64_t> indptr(res, R.indptr.size());
      indptr.upload(R.indptr.data(), R.indptr.size());
      si.upload(R.indices.data(), static_cast<std::size_t>(n));
      sr.upload(R.values.data(), static_cast<std::size_t>(n));
      P.upload(model.user_factors.data(), P.size());
      Q.upload(model.item_factors.data(), Q.size());
      bu.upload(model.user_bias.data(), bu.size());
      bi.upload(model.item_bias.data(), bi.size());
      timer.stop();
      stats_.upload_seconds = timer.seconds();
      stats_.upload_bytes = indptr.bytes() + si.bytes() + sr.bytes() + P.bytes() + Q.bytes() + bu.bytes() + bi.bytes();

      NvtxRange b("cuda.sgd.build");
      EventTimer build_timer(res);
      build_timer.start();
      expand_csr_rows(res, indptr.data(), nu, su.data());
      shuffle_samples(res, su.data(), si.data(), sr.data(), n, mix_seed(config_.seed, 0x53474455ULL));
      build_timer.stop();
      stats_.build_seconds = build_timer.seconds();
    }

    const SgdSamples samples{su.data(), si.data(), sr.data(), n};
    const SgdModel dm{P.data(), Q.data(), bu.data(), bi.data(), k};
    // Per sample: (u, i, r) 12 B read; p, q read and written (16 k B); two biases read and
    // written (16 B). The floor counts each factor row once per epoch instead.
    stats_.requested_bytes_per_iteration = static_cast<double>(n) * (12.0 + 16.0 * k + 16.0);
    stats_.floor_bytes_per_iteration = static_cast<double>(n) * 12.0 + 2.0 * factor_bytes;

    const float mu = model.global_bias;  // fixed, as on the CPU (initialize_factors sets it)
    EventTimer timer(res);
    for (int epoch = 1; epoch <= config_.iterations; ++epoch) {
      NvtxRange r("cuda.sgd.epoch");
      const auto t0 = std::chrono::steady_clock::now();
      SgdStep step;
      step.learning_rate = std::max(
          config_.min_learning_rate,
          static_cast<float>(config_.learning_rate * std::pow(static_cast<double>(config_.lr_decay), epoch - 1)));
      step.regularization = config_.regularization;
      step.bias_regularization = config_.bias_regularization;
      step.global_bias = mu;
      timer.start();
      sgd_epoch(res, samples, dm, step, mix_seed(config_.seed, static_cast<std::uint64_t>(epoch)));
      timer.stop();
      res.synchronize();
      IterationReport report;
      report.iteration = epoch;
      report.seconds = host_seconds_since(t0);
      stats_.iteration_seconds.push_back(timer.seconds());
      report.loss = NAN;
      if (config_.compute_loss) {
        NvtxRange lr("cuda.sgd.loss");
        const auto l0 = std::chrono::steady_clock::now();
        // RMSE on the training ratings, as the CPU trainer reports.
        report.loss = n > 0 ? std::sqrt(sgd_squared_error(res, samples, dm, mu) / static_cast<double>(n)) : NAN;
        stats_.loss_seconds += host_seconds_since(l0);
      }
      if (on_iteration) on_iteration(report);
    }

    {
      NvtxRange r("cuda.sgd.download");
      EventTimer dl(res);
      dl.start();
      P.download(model.user_factors.data(), P.size());
      Q.download(model.item_factors.data(), Q.size());
      bu.download(model.user_bias.data(), bu.size());
      bi.download(model.item_bias.data(), bi.size());
      dl.stop();
      stats_.download_seconds = dl.seconds();
      stats_.download_bytes = P.bytes() + Q.bytes() + bu.bytes() + bi.bytes();
    }
    stats_.peak_device_bytes = res.peak_bytes();
  }
};

}  // namespace

std::unique_ptr<Trainer> make_cuda_trainer(const TrainConfig& config) {
  switch (config.algorithm) {
    case Algorithm::kAls:
      return std::make_unique<CudaAlsTrainer>(config);
    case Algorithm::kSgd:
      return std::make_unique<CudaSgdTrainer>(config);
  }
  throw InputError("train.algorithm: unknown value " + std::to_string(static_cast<int>(config.algorithm)));
}

}  // namespace freshrec
