#pragma once
#include <cstdint>
#include <vector>

namespace freshrec {

/// Compressed sparse rows, float values. Column indices within a row are sorted
/// and unique. Lives in host memory.
struct CsrMatrix {
  std::int32_t rows = 0;
  std::int32_t cols = 0;
  std::vector<std::int64_t> indptr{0};  ///< rows + 1 offsets into indices/values
  std::vector<std::int32_t> indices;    ///< column of each stored entry
  std::vector<float> values;            ///< value of each stored entry

  std::int64_t nnz() const noexcept { return static_cast<std::int64_t>(indices.size()); }
  std::int64_t row_begin(std::int32_t r) const noexcept { return indptr[r]; }
  std::int64_t row_end(std::int32_t r) const noexcept { return indptr[r + 1]; }
  std::int64_t row_size(std::int32_t r) const noexcept { return indptr[r + 1] - indptr[r]; }

  /// The transpose, in O(nnz + rows + cols), rows of the result sorted.
  CsrMatrix transpose() const;
};

/// One (row, col, value) triple; duplicates are merged by `build_csr`.
struct CooEntry {
  std::int32_t row;
  std::int32_t col;
  float value;
};

/// How duplicate (row, col) entries combine.
enum class DuplicatePolicy { kSum, kLast };

/// Builds a CSR matrix of shape rows x cols from triples (any order). With kLast the
/// entry that comes last in `entries` wins.
CsrMatrix build_csr(std::int32_t rows, std::int32_t cols, const std::vector<CooEntry>& entries,
                    DuplicatePolicy duplicates);

}  // namespace freshrec
