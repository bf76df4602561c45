#include "cpu/data/csr.hpp"

#include <algorithm>
#include <numeric>

#include "cpu/util/error.hpp"

namespace freshrec {

CsrMatrix CsrMatrix::transpose() const {
  CsrMatrix t;
  t.rows = cols;
  t.cols = rows;
  t.indptr.assign(static_cast<std::size_t>(cols) + 1, 0);
  for (std::int32_t c : indices) ++t.indptr[c + 1];
  std::partial_sum(t.indptr.begin(), t.indptr.end(), t.indptr.begin());
  t.indices.resize(indices.size());
  t.values.resize(values.size());
  std::vector<std::int64_t> cursor(t.indptr.begin(), t.indptr.end() - 1);
  // Walking rows in order writes each transposed row already sorted.
  for (std::int32_t r = 0; r < rows; ++r) {
    for (std::int64_t k = indptr[r]; k < indptr[r + 1]; ++k) {
      const std::int64_t dst = cursor[indices[k]]++;
      t.indices[dst] = r;
      t.values[dst] = values[k];
    }
  }
  return t;
}

CsrMatrix build_csr(std::int32_t rows, std::int32_t cols, const std::vector<CooEntry>& entries,
                    DuplicatePolicy duplicates) {
  // Counting sort by row keeps the input order within a row (needed for kLast).
  std::vector<std::int64_t> start(static_cast<std::size_t>(rows) + 1, 0);
  for (const CooEntry& e : entries) {
    if (e.row < 0 || e.row >= rows || e.col < 0 || e.col >= cols)
      throw InputError("build_csr: entry out of range");
    ++start[e.row + 1];
  }
  std::partial_sum(start.begin(), start.end(), start.begin());
  std::vector<std::int32_t> order_col(entries.size());
  std::vector<float> order_val(entries.size());
  std::vector<std::int64_t> cursor(start.begin(), start.end() - 1);
  for (const CooEntry& e : entries) {
    const std::int64_t dst = cursor[e.row]++;
    order_col[dst] = e.col;
    order_val[dst] = e.value;
  }

  CsrMatrix m;
  m.rows = rows;
  m.cols = cols;
  m.indptr.assign(static_cast<std::size_t>(rows) + 1, 0);
  m.indices.reserve(entries.size());
  m.values.reserve(entries.size());
  std::vector<std::int64_t> perm;
  for (std::int32_t r = 0; r < rows; ++r) {
    const std::int64_t b = start[r], e = start[r + 1];
    perm.resize(static_cast<std::size_t>(e - b));
    std::iota(perm.begin(), perm.end(), b);
    std::stable_sort(perm.begin(), perm.end(),
                     [&](std::int64_t x, std::int64_t y) { return order_col[x] < order_col[y]; });
    for (std::size_t k = 0; k < perm.size(); ++k) {
      const std::int32_t c = order_col[perm[k]];
      const float v = order_val[perm[k]];
      if (!m.indices.empty() && static_cast<std::int64_t>(m.indices.size()) > m.indptr[r] &&
          m.indices.back() == c) {
        m.values.back() = duplicates == DuplicatePolicy::kSum ? m.values.back() + v : v;
      } else {
        m.indices.push_back(c);
        m.values.push_back(v);
      }
    }
    m.indptr[r + 1] = static_cast<std::int64_t>(m.indices.size());
  }
  return m;
}

}  // namespace freshrec
