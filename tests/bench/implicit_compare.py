#!/usr/bin/env python3
"""Times implicit's CPU ALS (conjugate gradient) on a matrix exported by train_bench.

The directory holds indptr.npy (int64), indices.npy (int32), data.npy (float32,
confidences) and shape.npy ([users, items]) of the user x item CSR matrix. Prints one
`median_seconds_per_iteration=<s>` and `min_seconds_per_iteration=<s>` (the times
implicit's own fit callback reports per iteration, i.e. without its transpose and
initialisation), plus context lines.
"""
import argparse
import os
import statistics
import sys

# BLAS threads would compete with implicit's own OpenMP threads (implicit warns about it).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.sparse  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    import implicit
    from implicit.cpu.als import AlternatingLeastSquares

    d = args.directory
    users, items = (int(x) for x in np.load(os.path.join(d, "shape.npy")))
    matrix = scipy.sparse.csr_matrix(
        (np.load(os.path.join(d, "data.npy")), np.load(os.path.join(d, "indices.npy")),
         np.load(os.path.join(d, "indptr.npy"))),
        shape=(users, items))
    print(f"implicit {implicit.__version__}: {users} x {items}, {matrix.nnz} nnz, "
          f"k={args.factors}, {args.threads} threads")

    model = AlternatingLeastSquares(factors=args.factors, iterations=1, use_cg=True, regularization=0.01,
                                    num_threads=args.threads, calculate_training_loss=False, random_state=42)
    seconds = []
    for _ in range(args.reps):
        # Repeated fits warm-start from the previous factors, like our repeated fit().
        model.fit(matrix, show_progress=False, callback=lambda it, elapsed, loss: seconds.append(elapsed))
    print("per-iteration seconds: " + ", ".join(f"{s:.3f}" for s in seconds))
    print(f"median_seconds_per_iteration={statistics.median(seconds):.6f}")
    print(f"min_seconds_per_iteration={min(seconds):.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
