#include "cpu/experiment/statistics.hpp"

#include <algorithm>
#include <cmath>

#include "cpu/util/error.hpp"

namespace freshrec {

MeanStd mean_std(const std::vector<double>& v) {
  MeanStd m;
  m.n = v.size();
  if (v.empty()) return m;
  double s = 0.0;
  for (double x : v) s += x;
  m.mean = s / static_cast<double>(v.size());
  if (v.size() > 1) {
    double ss = 0.0;
    for (double x : v) ss += (x - m.mean) * (x - m.mean);
    m.std = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  return m;
}

namespace {
// Continued fraction of the regularised incomplete beta (modified Lentz).
double beta_cf(double a, double b, double x) {
  constexpr double kTiny = 1e-300, kEps = 1e-15;
  double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= 300; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1.0) < kEps) break;
  }
  return h;
}

double incomplete_beta(double a, double b, double x) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  const double front =
      std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x));
  if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_cf(a, b, x) / a;
  return 1.0 - front * beta_cf(b, a, 1.0 - x) / b;
}
}  // namespace

double student_t_two_sided_p(double t, double dof) {
  if (!(dof > 0) || !std::isfinite(t)) return std::isfinite(t) ? 1.0 : 0.0;
  return incomplete_beta(dof / 2.0, 0.5, dof / (dof + t * t));
}

PairedTest paired_test(const std::vector<double>& treatment, const std::vector<double>& baseline) {
  if (treatment.size() != baseline.size()) throw InputError("paired_test: samples differ in length");
  PairedTest p;
  p.n = treatment.size();
  if (p.n == 0) return p;
  std::vector<double> d(p.n);
  for (std::size_t j = 0; j < p.n; ++j) {
    d[j] = treatment[j] - baseline[j];
    if (d[j] > 0) ++p.wins;
    else if (d[j] < 0) ++p.losses;
    else ++p.ties;
  }
  const MeanStd m = mean_std(d);
  p.mean_diff = m.mean;
  if (p.n > 1 && m.std > 0) {
    p.t = m.mean / (m.std / std::sqrt(static_cast<double>(p.n)));
    p.t_p = student_t_two_sided_p(p.t, static_cast<double>(p.n - 1));
  } else if (p.n > 1 && m.mean != 0) {
    p.t = m.mean > 0 ? INFINITY : -INFINITY;  // identical non-zero differences: no doubt left
    p.t_p = 0.0;
  }
  // Exact binomial: P(X <= min(w, l)) * 2 under p = 1/2, capped at 1.
  const std::size_t n = p.wins + p.losses;
  if (n > 0) {
    const std::size_t k = std::min(p.wins, p.losses);
    double tail = 0.0;
    for (std::size_t j = 0; j <= k; ++j)
      tail += std::exp(std::lgamma(n + 1.0) - std::lgamma(j + 1.0) - std::lgamma(n - j + 1.0) - n * std::log(2.0));
    p.sign_p = std::min(1.0, 2.0 * tail);
  }
  return p;
}

}  // namespace freshrec
