"""NumPy's float32 matrix product [m, k] x [k, n], repeated, on a given number of BLAS threads.

Prints one JSON object: the seconds the products took (one warm-up product excluded).
"""
import argparse
import json
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits


def main():
    parser = argparse.ArgumentParser()
    for name in ("--m", "--k", "--n", "--products", "--threads"):
        parser.add_argument(name, type=int, required=True)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    a = rng.random((args.m, args.k), dtype=np.float32)
    b = rng.random((args.k, args.n), dtype=np.float32)
    with threadpool_limits(limits=args.threads):
        pools = {p["internal_api"]: p["num_threads"] for p in threadpool_info()}
        # The BLAS kernels are whatever OpenBLAS picked for this processor: check they compute right.
        exact = a.astype(np.float64) @ b.astype(np.float64)
        error = float(np.max(np.abs(a @ b - exact) / np.maximum(np.abs(exact), 1e-30)))
        if not error < 1e-4:
            raise SystemExit(f"NumPy's float32 product is wrong on this machine: relative error {error}")
        began = time.perf_counter()
        for _ in range(args.products):
            a @ b
        seconds = time.perf_counter() - began
    print(json.dumps({"seconds": seconds, "threads": pools}))


if __name__ == "__main__":
    main()
