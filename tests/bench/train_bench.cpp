// Times the CPU trainers on a synthetic ML-20M-sized matrix (~138K users, ~27K items,
// ~20M interactions, power-law item popularity): one implicit-ALS iteration with CG
// (k=64, 3 steps), one with Cholesky, one biased-SGD epoch on the same entries as
// ratings. When the Python package `implicit` imports, the same matrix is written as
// .npy arrays and tests/bench/implicit_compare.py times implicit's CPU ALS on it in the
// same run, so the ratio compares like with like.
//
//   train_bench [--scale F] [--reps N] [--threads T] [--factors K] [--no-cholesky] [--no-implicit]
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cpu/train/als_trainer.hpp"
#include "cpu/train/random.hpp"
#include "cpu/train/sgd_trainer.hpp"
#include "cpu/train/trainer.hpp"

namespace fs = std::filesystem;
using namespace freshrec;

namespace {

struct Options {
  double scale = 1.0;   // 1.0 = ML-20M size
  int reps = 3;
  int threads = 2;
  int factors = 64;
  bool cholesky = true;
  bool implicit = true;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n == 0 ? NAN : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

/// Users draw their item count from a Pareto tail (min 20, like ML-20M) and their items
/// from a Zipf(0.9) popularity law without repeats. Each user has its own RNG stream, so
/// rows are generated in parallel and the matrix does not depend on the thread count.
CsrMatrix synthesize(std::int32_t users, std::int32_t items, double mean_per_user, int threads) {
  std::vector<double> cdf(static_cast<std::size_t>(items));
  double total = 0.0;
  for (std::int32_t i = 0; i < items; ++i) cdf[i] = total += std::pow(i + 1.0, -0.9);
  for (double& c : cdf) c /= total;
  // Pareto(alpha=1.5) has mean 3*xm; 20 + Pareto(xm) then averages ~mean_per_user (before the cap).
  double xm = std::max(1.0, (mean_per_user - 20.0) / 3.0);
  const std::int32_t cap = std::max<std::int32_t>(20, items / 4);
  std::vector<std::int32_t> count(static_cast<std::size_t>(users));
  // The cap trims the tail's mean; one rescaled second pass lands near the target.
  for (int pass = 0; pass < 2; ++pass) {
    double sum = 0.0;
    for (std::int32_t u = 0; u < users; ++u) {
      Rng rng(derive_seed(2024, 1, static_cast<std::uint64_t>(u)));
      const double pareto = xm / std::pow(1.0 - rng.uniform(), 1.0 / 1.5);
      count[u] = std::min<std::int32_t>(cap, 20 + static_cast<std::int32_t>(pareto));
      sum += count[u];
    }
    xm *= (mean_per_user - 20.0) / std::max(1.0, sum / users - 20.0);
  }
  CsrMatrix m;
  m.rows = users;
  m.cols = items;
  m.indptr.assign(static_cast<std::size_t>(users) + 1, 0);
  for (std::int32_t u = 0; u < users; ++u) m.indptr[u + 1] = m.indptr[u] + count[u];
  m.indices.resize(static_cast<std::size_t>(m.indptr.back()));
  m.values.resize(m.indices.size());
#pragma omp parallel num_threads(threads)
  {
    std::vector<std::uint32_t> stamp(static_cast<std::size_t>(items), 0);  // "chosen by user u+1"
#pragma omp for schedule(dynamic, 256)
    for (std::int32_t u = 0; u < users; ++u) {
      Rng rng(derive_seed(2024, 2, static_cast<std::uint64_t>(u)));
      std::int32_t* idx = m.indices.data() + m.indptr[u];
      for (std::int32_t n = 0; n < count[u];) {
        const auto it = std::lower_bound(cdf.begin(), cdf.end(), rng.uniform());
        const auto i = static_cast<std::int32_t>(std::min<std::ptrdiff_t>(it - cdf.begin(), items - 1));
        if (stamp[i] == static_cast<std::uint32_t>(u) + 1) continue;
        stamp[i] = static_cast<std::uint32_t>(u) + 1;
        idx[n++] = i;
      }
      std::sort(idx, idx + count[u]);
      float* val = m.values.data() + m.indptr[u];
      for (std::int32_t n = 0; n < count[u]; ++n) val[n] = static_cast<float>(1 + rng.below(5));  // a 1..5 rating
    }
  }
  return m;
}

/// Minimal .npy (format 1.0) writer for a 1-D little-endian array.
template <typename T>
void write_npy(const fs::path& path, const char* descr, const std::vector<T>& data) {
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" +
                       std::to_string(data.size()) + ",), }";
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  const char magic[] = "\x93NUMPY\x01\x00";
  out.write(magic, 8);
  const auto len = static_cast<std::uint16_t>(header.size());
  const char len_le[2] = {static_cast<char>(len & 0xFF), static_cast<char>(len >> 8)};
  out.write(len_le, 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size() * sizeof(T)));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

/// Owns the temporary directory holding the exported matrix.
struct TempDir {
  fs::path path;
  TempDir() : path(fs::temp_directory_path() / ("freshrec_train_bench_" + std::to_string(::getpid()))) {
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

/// Seconds per fit() iteration as the trainer reports them (setup excluded), `reps` times.
std::vector<double> time_iterations(Trainer& trainer, const TrainingSet& data, FactorModel& model, int reps) {
  std::vector<double> seconds;
  for (int r = 0; r < reps; ++r)
    trainer.fit(data, model, [&](const IterationReport& it) { seconds.push_back(it.seconds); });
  return seconds;
}

struct ImplicitTiming {
  double median = NAN;
  double min = NAN;
};

ImplicitTiming run_implicit(const Options& o, const TrainingSet& data) {
  if (std::system("python3 -c 'import implicit, scipy' >/dev/null 2>&1") != 0) {
    std::printf("implicit: python package not importable (pip install implicit); comparison skipped\n");
    return {};
  }
  TempDir dir;
  write_npy(dir.path / "indptr.npy", "<i8", data.user_items.indptr);
  write_npy(dir.path / "indices.npy", "<i4", data.user_items.indices);
  write_npy(dir.path / "data.npy", "<f4", data.user_items.values);
  write_npy(dir.path / "shape.npy", "<i8", std::vector<std::int64_t>{data.n_users(), data.n_items()});
  const std::string cmd = "python3 '" FRESHREC_SOURCE_DIR "/tests/bench/implicit_compare.py' '" +
                          dir.path.string() + "' --factors " + std::to_string(o.factors) + " --threads " +
                          std::to_string(o.threads) + " --reps " + std::to_string(o.reps) + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return {};
  ImplicitTiming t;
  char line[4096];
  while (std::fgets(line, sizeof line, pipe)) {
    if (std::sscanf(line, "median_seconds_per_iteration=%lf", &t.median) == 1) continue;
    if (std::sscanf(line, "min_seconds_per_iteration=%lf", &t.min) == 1) continue;
    std::fputs(("  [implicit] " + std::string(line)).c_str(), stdout);
  }
  ::pclose(pipe);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    auto next = [&]() -> const char* {
      if (a + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++a];
    };
    if (arg == "--scale") o.scale = std::atof(next());
    else if (arg == "--reps") o.reps = std::max(1, std::atoi(next()));
    else if (arg == "--threads") o.threads = std::max(1, std::atoi(next()));
    else if (arg == "--factors") o.factors = std::max(1, std::atoi(next()));
    else if (arg == "--no-cholesky") o.cholesky = false;
    else if (arg == "--no-implicit") o.implicit = false;
    else {
      std::fprintf(stderr,
                   "usage: %s [--scale F] [--reps N] [--threads T] [--factors K] [--no-cholesky] [--no-implicit]\n",
                   argv[0]);
      return 2;
    }
  }
  if (!(o.scale > 0.0)) {
    std::fprintf(stderr, "--scale must be > 0\n");
    return 2;
  }

  const auto users = static_cast<std::int32_t>(std::lround(138493 * o.scale));
  const auto items = static_cast<std::int32_t>(std::max(100L, std::lround(26744 * std::sqrt(o.scale))));
  const double per_user = 20000263.0 / 138493.0;

  auto t0 = std::chrono::steady_clock::now();
  TrainingSet ratings;
  ratings.user_items = synthesize(users, items, per_user, o.threads);
  ratings.item_users = ratings.user_items.transpose();
  double sum = 0.0;
  for (float v : ratings.user_items.values) sum += v;
  ratings.rating_mean = sum / static_cast<double>(ratings.user_items.nnz());
  // The implicit matrix: confidence 1 + alpha * rating, alpha = 1.
  TrainingSet implicit = ratings;
  for (float& v : implicit.user_items.values) v += 1.0f;
  for (float& v : implicit.item_users.values) v += 1.0f;
  const double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::printf("train_bench: %d users x %d items, %lld nnz (scale %.3g), k=%d, %d threads, %d reps; built in %.2f s\n",
              users, items, static_cast<long long>(ratings.user_items.nnz()), o.scale, o.factors, o.threads, o.reps,
              build_s);
  std::printf("%-34s %12s %12s\n", "case", "median s", "min s");

  TrainConfig base;
  base.backend = Backend::kCpu;
  base.factors = o.factors;
  base.threads = o.threads;
  base.iterations = 1;
  base.compute_loss = false;
  base.regularization = 0.01f;
  auto row = [](const char* name, const std::vector<double>& s) {
    std::printf("%-34s %12.3f %12.3f\n", name, median(s), *std::min_element(s.begin(), s.end()));
    std::fflush(stdout);
  };

  // No id maps exist for a synthetic matrix (initialize_factors reads them from a log),
  // so the model is sized here, with a deterministic N(0, 0.01^2) start.
  auto fresh_model = [&](ModelKind kind, const TrainingSet& d) {
    FactorModel m;
    m.kind = kind;
    m.user_factors.resize(d.n_users(), o.factors);
    m.item_factors.resize(d.n_items(), o.factors);
    Rng rng(7);
    for (Eigen::Index n = 0; n < m.user_factors.size(); ++n) m.user_factors.data()[n] = float(0.01 * rng.normal());
    for (Eigen::Index n = 0; n < m.item_factors.size(); ++n) m.item_factors.data()[n] = float(0.01 * rng.normal());
    m.user_bias = Eigen::VectorXf::Zero(d.n_users());
    m.item_bias = Eigen::VectorXf::Zero(d.n_items());
    m.global_bias = kind == ModelKind::kExplicit ? float(d.rating_mean) : 0.0f;
    return m;
  };

  TrainConfig cg = base;
  cg.algorithm = Algorithm::kAls;
  cg.solver = AlsSolver::kConjugateGradient;
  cg.cg_steps = 3;
  FactorModel m_cg = fresh_model(ModelKind::kImplicit, implicit);
  AlsTrainer cg_trainer(cg);
  const std::vector<double> cg_s = time_iterations(cg_trainer, implicit, m_cg, o.reps);
  row("als cg (3 steps) / iteration", cg_s);

  if (o.cholesky) {
    TrainConfig ch = cg;
    ch.solver = AlsSolver::kCholesky;
    FactorModel m_ch = fresh_model(ModelKind::kImplicit, implicit);
    AlsTrainer ch_trainer(ch);
    row("als cholesky / iteration", time_iterations(ch_trainer, implicit, m_ch, o.reps));
  }

  TrainConfig sgd = base;
  sgd.algorithm = Algorithm::kSgd;
  sgd.learning_rate = 0.005f;
  FactorModel m_sgd = fresh_model(ModelKind::kExplicit, ratings);
  SgdTrainer sgd_trainer(sgd);
  const auto fit0 = std::chrono::steady_clock::now();
  const std::vector<double> sgd_s = time_iterations(sgd_trainer, ratings, m_sgd, o.reps);
  const double fit_total = std::chrono::duration<double>(std::chrono::steady_clock::now() - fit0).count();
  row("sgd / epoch", sgd_s);
  double epochs_total = 0.0;
  for (double s : sgd_s) epochs_total += s;
  std::printf("%-34s %12.3f\n", "sgd block setup / fit", (fit_total - epochs_total) / o.reps);

  if (o.implicit) {
    const ImplicitTiming t = run_implicit(o, implicit);
    if (std::isfinite(t.median)) {
      std::printf("%-34s %12.3f %12.3f\n", "implicit cpu als cg / iteration", t.median, t.min);
      // Medians and minima both: on a shared machine the minimum is the least disturbed run.
      std::printf("ratio implicit / freshrec (als cg): %.2fx on medians, %.2fx on minima (>1: freshrec faster)\n",
                  t.median / median(cg_s), t.min / *std::min_element(cg_s.begin(), cg_s.end()));
    }
  }
  return 0;
}
