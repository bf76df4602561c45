#pragma once
/// Training losses reported per iteration; shared by the CPU trainers and usable as the
/// reference for other backends. All inputs live in host memory.
#include "cpu/data/csr.hpp"
#include "cpu/model/factor_model.hpp"

namespace freshrec {

/// Implicit-ALS loss exactly as implicit's calculate_loss:
/// [sum_ui c_ui (p_ui - x_u.y_i)^2 + reg (|X|^2 + |Y|^2)] / (sum c + n_users*n_items - nnz),
/// where unstored pairs have c = 1, p = 0. `user_items` holds the confidences.
/// Uses `threads` OpenMP threads; the result does not depend on the thread count.
double implicit_als_loss(const CsrMatrix& user_items, const FactorMatrix& user_factors,
                         const FactorMatrix& item_factors, float regularization, int threads);

/// Root-mean-square error of `model` on the stored ratings of `ratings` (users x items).
/// NaN when there are no ratings. Thread-count independent.
double rating_rmse(const CsrMatrix& ratings, const FactorModel& model, int threads);

}  // namespace freshrec
