// GPU benchmark: seconds per ALS iteration (CG and exact) and per SGD epoch on generated
// matrices of ML-20M size (140K users, 27K items, 20M interactions, k = 64) and multiples
// of it, achieved bandwidth, transfer and build times, and the CPU backend on the ML-20M
// size for the ratio. Medians over the iterations of one run; a table is printed last.
//   gpu_bench [--probe] [--scales 1,10] [--iterations 5] [--cpu-iterations 2] [--factors 64]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if FRESHREC_WITH_CUDA
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "cpu/train/random.hpp"
#include "cpu/train/trainer.hpp"
#include "cuda/cuda_backend.hpp"

namespace {

using namespace freshrec;

struct Options {
  std::vector<double> scales{1.0, 10.0};
  int iterations = 5;
  int cpu_iterations = 2;
  int factors = 64;
  bool probe = false;  ///< only report whether a device answers (exit 0) or not (exit 3)
};

Options parse(int argc, char** argv) {
  Options o;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    auto value = [&]() -> std::string {
      if (a + 1 >= argc) {
        std::fprintf(stderr, "gpu_bench: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++a];
    };
    if (arg == "--scales") {
      o.scales.clear();
      std::string s = value();
      for (std::size_t pos = 0; pos <= s.size();) {
        const std::size_t end = std::min(s.find(',', pos), s.size());
        o.scales.push_back(std::atof(s.substr(pos, end - pos).c_str()));
        pos = end + 1;
      }
    } else if (arg == "--iterations") {
      o.iterations = std::atoi(value().c_str());
    } else if (arg == "--cpu-iterations") {
      o.cpu_iterations = std::atoi(value().c_str());
    } else if (arg == "--probe") {
      o.probe = true;
    } else if (arg == "--factors") {
      o.factors = std::atoi(value().c_str());
    } else {
      std::fprintf(stderr, "usage: gpu_bench [--probe] [--scales 1,10] [--iterations N] [--cpu-iterations N] [--factors K]\n");
      std::exit(2);
    }
  }
  return o;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ML-20M-like shape: heavy-tailed user activity (Pareto, alpha 1.5), Zipf(0.9) item
// popularity, distinct items per user. Values: implicit confidences 1 + alpha * w in
// {1..4}, or ratings in 0.5 .. 5. Users are generated in parallel, each from its own seed.
struct Matrices {
  TrainingSet implicit_set;
  TrainingSet ratings;
};

Matrices generate(std::int32_t users, std::int32_t items, std::int64_t target_nnz, std::uint64_t seed) {
  std::vector<double> item_cdf(static_cast<std::size_t>(items));
  double acc = 0.0;
  for (std::int32_t i = 0; i < items; ++i) item_cdf[i] = (acc += std::pow(i + 1.0, -0.9));
  for (double& c : item_cdf) c /= acc;
  std::vector<double> w(static_cast<std::size_t>(users));
  double wsum = 0.0;
  for (std::int32_t u = 0; u < users; ++u) {
    Rng rng(derive_seed(seed, 1, u));
    w[u] = std::pow(1.0 - rng.uniform(), -1.0 / 1.5);
    wsum += w[u];
  }
  CsrMatrix R;
  R.rows = users;
  R.cols = items;
  R.indptr.assign(static_cast<std::size_t>(users) + 1, 0);
  const std::int64_t cap = items / 4;
  for (std::int32_t u = 0; u < users; ++u) {
    const auto want = static_cast<std::int64_t>(std::llround(w[u] * static_cast<double>(target_nnz) / wsum));
    R.indptr[u + 1] = R.indptr[u] + std::clamp<std::int64_t>(want, 1, cap);
  }
  R.indices.resize(static_cast<std::size_t>(R.indptr[users]));
  std::vector<std::int64_t> kept(static_cast<std::size_t>(users));
#pragma omp parallel for schedule(dynamic, 256)
  for (std::int32_t u = 0; u < users; ++u) {
    Rng rng(derive_seed(seed, 2, u));
    std::int32_t* row = R.indices.data() + R.indptr[u];
    const std::int64_t n = R.indptr[u + 1] - R.indptr[u];
    for (std::int64_t j = 0; j < n; ++j) {
      const double x = rng.uniform();
      row[j] = static_cast<std::int32_t>(std::lower_bound(item_cdf.begin(), item_cdf.end(), x) - item_cdf.begin());
      if (row[j] >= items) row[j] = items - 1;
    }
    std::sort(row, row + n);
    kept[u] = std::unique(row, row + n) - row;
  }
  // Compact away the duplicate draws (a popular item drawn twice by one user).
  std::int64_t out = 0;
  for (std::int32_t u = 0; u < users; ++u) {
    const std::int64_t b = R.indptr[u];
    std::memmove(R.indices.data() + out, R.indices.data() + b, sizeof(std::int32_t) * kept[u]);
    R.indptr[u] = out;
    out += kept[u];
  }
  R.indptr[users] = out;
  R.indices.resize(static_cast<std::size_t>(out));
  R.indices.shrink_to_fit();

  Matrices m;
  m.implicit_set.user_items = R;
  m.ratings.user_items = std::move(R);
  CsrMatrix& C = m.implicit_set.user_items;
  CsrMatrix& S = m.ratings.user_items;
  C.values.resize(C.indices.size());
  S.values.resize(S.indices.size());
  double rsum = 0.0;
#pragma omp parallel for reduction(+ : rsum) schedule(static)
  for (std::int64_t e = 0; e < out; ++e) {
    const std::uint64_t h = mix64(seed ^ static_cast<std::uint64_t>(e));
    C.values[e] = 1.0f + 2.0f * static_cast<float>(1 + h % 4);
    S.values[e] = 0.5f * static_cast<float>(1 + (h >> 8) % 10);
    rsum += S.values[e];
  }
  m.ratings.rating_mean = rsum / static_cast<double>(out);
  m.implicit_set.item_users = C.transpose();
  m.ratings.item_users = S.transpose();
  return m;
}

FactorModel make_model(const TrainingSet& d, int k, bool explicit_model, std::uint64_t seed) {
  FactorModel m;
  m.kind = explicit_model ? ModelKind::kExplicit : ModelKind::kImplicit;
  m.user_factors.resize(d.n_users(), k);
  m.item_factors.resize(d.n_items(), k);
#pragma omp parallel
  {
    Rng rng(derive_seed(seed, static_cast<std::uint64_t>(omp_get_thread_num())));
#pragma omp for schedule(static)
    for (Eigen::Index i = 0; i < m.user_factors.size(); ++i) m.user_factors.data()[i] = 0.01f * static_cast<float>(rng.normal());
#pragma omp for schedule(static)
    for (Eigen::Index i = 0; i < m.item_factors.size(); ++i) m.item_factors.data()[i] = 0.01f * static_cast<float>(rng.normal());
  }
  m.user_bias = Eigen::VectorXf::Zero(d.n_users());
  m.item_bias = Eigen::VectorXf::Zero(d.n_items());
  m.global_bias = explicit_model ? static_cast<float>(d.rating_mean) : 0.0f;
  return m;
}

struct Row {
  std::string what;
  std::string size;
  double seconds = NAN;      // median per iteration / epoch
  double floor_gbs = NAN;    // floor bytes / time
  double req_gbs = NAN;      // requested bytes / time
  double upload_s = NAN, upload_gbs = NAN, build_s = NAN;
  double loss = NAN;
  std::string note;
};

Row run(const std::string& what, const std::string& size, Trainer& t, const TrainingSet& data, FactorModel model) {
  std::vector<double> host_seconds;
  double last_loss = NAN;
  const double t0 = now_s();
  t.fit(data, model, [&](const IterationReport& r) {
    host_seconds.push_back(r.seconds);
    last_loss = r.loss;
  });
  const double total = now_s() - t0;
  Row row;
  row.what = what;
  row.size = size;
  row.loss = last_loss;
  if (const auto* ct = dynamic_cast<const CudaTrainer*>(&t)) {
    const CudaFitStats& s = ct->last_stats();
    // Drop the first iteration when there are several: it pays lazy module loading.
    std::vector<double> its(s.iteration_seconds.begin() + (s.iteration_seconds.size() > 2 ? 1 : 0),
                            s.iteration_seconds.end());
    row.seconds = median(its);
    row.floor_gbs = s.floor_bytes_per_iteration / row.seconds * 1e-9;
    row.req_gbs = s.requested_bytes_per_iteration / row.seconds * 1e-9;
    row.upload_s = s.upload_seconds;
    row.upload_gbs = static_cast<double>(s.upload_bytes) / s.upload_seconds * 1e-9;
    row.build_s = s.build_seconds;
    char note[160];
    std::snprintf(note, sizeof note, "fit %.2fs, peak %.2f GiB (plan %.2f), download %.3fs", total,
                  s.peak_device_bytes / 1073741824.0, s.planned_device_bytes / 1073741824.0, s.download_seconds);
    row.note = note;
  } else {
    row.seconds = median(host_seconds);
    char note[96];
    std::snprintf(note, sizeof note, "fit %.2fs on %d threads", total, omp_get_max_threads());
    row.note = note;
  }
  std::printf("  %-22s %-6s %9.4f s/it  loss %.6g  %s\n", row.what.c_str(), row.size.c_str(), row.seconds, row.loss,
              row.note.c_str());
  std::fflush(stdout);
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  std::string why;
  if (!cuda_device_available(&why)) {
    std::printf("gpu_bench: no device (%s)\n", why.c_str());
    return 3;
  }
  if (opt.probe) {
    std::printf("gpu_bench: device %s\n", why.c_str());
    return 0;
  }
  std::printf("gpu_bench: %s, k=%d, %d iterations per case\n", why.c_str(), opt.factors, opt.iterations);
  std::vector<Row> rows;
  double cpu_als = NAN, gpu_als_1x = NAN;
  for (double scale : opt.scales) {
    const auto users = static_cast<std::int32_t>(138493 * scale);
    const auto items = static_cast<std::int32_t>(26744 * scale);
    const auto nnz = static_cast<std::int64_t>(20000263 * scale);
    char size[16];
    std::snprintf(size, sizeof size, "%gx", scale);
    const double g0 = now_s();
    const Matrices m = generate(users, items, nnz, 42);
    std::printf("data %s: %d users x %d items, %lld interactions, generated in %.1fs\n", size, users, items,
                static_cast<long long>(m.implicit_set.user_items.nnz()), now_s() - g0);
    // The longest rows bound the CG half-steps (a warp per row; a block above kCgLongRowEntries).
    auto longest = [](const CsrMatrix& x) {
      std::int64_t best = 0;
      for (std::int32_t r = 0; r < x.rows; ++r) best = std::max(best, x.row_size(r));
      return best;
    };
    std::printf("longest row: user %lld, item %lld entries\n",
                static_cast<long long>(longest(m.implicit_set.user_items)),
                static_cast<long long>(longest(m.implicit_set.item_users)));

    TrainConfig c;
    c.factors = opt.factors;
    c.iterations = opt.iterations;
    c.regularization = 0.01f;
    c.compute_loss = false;
    c.solver = AlsSolver::kConjugateGradient;
    c.cg_steps = 3;
    {
      auto t = make_cuda_trainer(c);
      rows.push_back(run("cuda als cg3", size, *t, m.implicit_set, make_model(m.implicit_set, c.factors, false, 1)));
      if (scale == 1.0) gpu_als_1x = rows.back().seconds;
    }
    {
      TrainConfig e = c;
      e.solver = AlsSolver::kCholesky;
      e.iterations = std::max(2, opt.iterations / 2 + 1);
      auto t = make_cuda_trainer(e);
      rows.push_back(run("cuda als exact", size, *t, m.implicit_set, make_model(m.implicit_set, c.factors, false, 1)));
    }
    {
      TrainConfig s = c;
      s.algorithm = Algorithm::kSgd;
      s.learning_rate = 0.005f;
      auto t = make_cuda_trainer(s);
      rows.push_back(run("cuda sgd", size, *t, m.ratings, make_model(m.ratings, c.factors, true, 2)));
    }
    {
      // One iteration with the loss on, to show the loss path runs at this size.
      TrainConfig l = c;
      l.iterations = 1;
      l.compute_loss = true;
      auto t = make_cuda_trainer(l);
      rows.push_back(run("cuda als cg3 +loss", size, *t, m.implicit_set, make_model(m.implicit_set, c.factors, false, 1)));
    }
    if (scale == 1.0 && opt.cpu_iterations > 0) {
      TrainConfig cc = c;
      cc.iterations = opt.cpu_iterations;
      cc.threads = 0;
      auto t = make_cpu_trainer(cc);
      rows.push_back(run("cpu als cg3", size, *t, m.implicit_set, make_model(m.implicit_set, c.factors, false, 1)));
      cpu_als = rows.back().seconds;
    }
  }

  std::printf("\n%-20s %-5s %11s %10s %10s %9s %9s %9s\n", "case", "size", "s/iter", "floor GB/s", "req GB/s",
              "upload s", "up GB/s", "build s");
  for (const Row& r : rows)
    std::printf("%-20s %-5s %11.5f %10.1f %10.1f %9.4f %9.2f %9.4f\n", r.what.c_str(), r.size.c_str(), r.seconds,
                r.floor_gbs, r.req_gbs, r.upload_s, r.upload_gbs, r.build_s);
  if (std::isfinite(cpu_als) && std::isfinite(gpu_als_1x))
    std::printf("ALS cg3 k=%d at 1x: CPU %.3f s/iter (%d threads) / GPU %.5f s/iter = %.1fx\n", opt.factors, cpu_als,
                omp_get_max_threads(), gpu_als_1x, cpu_als / gpu_als_1x);
  return 0;
}

#else
int main() {
  std::printf("gpu_bench: built without CUDA\n");
  return 0;
}
#endif
