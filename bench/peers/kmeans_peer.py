"""scikit-learn's KMeans (Lloyd) from given initial centres: time per iteration and final inertia.

Prints one JSON object. The time of one iteration is the difference between a
fit of N iterations and a fit of one, divided by N - 1, so that the fixed costs
of a fit (input checks, norms, the final assignment) cancel out.
"""
import argparse
import json
import resource
import time

import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_info, threadpool_limits


def fit(x, centres, iterations):
    model = KMeans(n_clusters=len(centres), init=centres, n_init=1, max_iter=iterations, tol=0, algorithm="lloyd")
    began = time.perf_counter()
    model.fit(x)
    return time.perf_counter() - began, model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--x", required=True)
    parser.add_argument("--centres", required=True)
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    x = np.load(args.x)
    centres = np.load(args.centres)
    with threadpool_limits(limits=args.threads):
        pools = {p["internal_api"]: p["num_threads"] for p in threadpool_info()}
        full = min(fit(x, centres, args.iterations)[0] for _ in range(args.repeats))
        one = min(fit(x, centres, 1)[0] for _ in range(args.repeats))
        _, model = fit(x, centres, args.iterations)
    iterations = int(model.n_iter_)
    # The same definition as seedflow's: float32 differences, summed in double precision.
    diff = x.astype(np.float64) - model.cluster_centers_.astype(np.float64)[model.labels_]
    inertia = float(np.einsum("ij,ij->", diff, diff))
    per_iteration = (full - one) / (iterations - 1) if iterations > 1 else full
    print(json.dumps({
        "iterations": iterations,
        "perIterationS": per_iteration,
        "totalS": full,
        "inertia": inertia,
        "reportedInertia": float(model.inertia_),
        "threads": pools,
        "peakRssMb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == "__main__":
    main()
