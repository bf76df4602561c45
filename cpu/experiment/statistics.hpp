#pragma once
/// Small statistics for experiment reports: mean ± sample std, and paired tests.
#include <cstddef>
#include <vector>

namespace freshrec {

/// Mean and sample standard deviation (n − 1; 0 for fewer than two values).
struct MeanStd {
  double mean = 0.0, std = 0.0;
  std::size_t n = 0;
};
MeanStd mean_std(const std::vector<double>& values);

/// Paired comparison of `treatment` against `baseline` (same length, paired by index).
struct PairedTest {
  std::size_t n = 0;             ///< pairs
  double mean_diff = 0.0;        ///< mean of treatment − baseline
  double t = 0.0;                ///< paired t statistic (0 when the differences have no spread)
  double t_p = 1.0;              ///< two-sided p of t with n − 1 degrees of freedom
  std::size_t wins = 0, losses = 0, ties = 0;  ///< sign test counts
  double sign_p = 1.0;           ///< exact two-sided sign-test p (ties dropped)
};
PairedTest paired_test(const std::vector<double>& treatment, const std::vector<double>& baseline);

/// Two-sided p-value of Student's t with `dof` degrees of freedom.
double student_t_two_sided_p(double t, double dof);

}  // namespace freshrec
