"""scikit-learn's PCA and exact nearest neighbours on the same images, one thread.

Prints one JSON object: the PCA fit and projection times, the explained
variance, the kNN times on the projection and on the pixels, and how many rows
have the same neighbours (as a set) as seedflow's graph of the pixels.
"""
import argparse
import json
import resource
import time

import numpy as np
import sklearn
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits


def knn(x, k):
    began = time.perf_counter()
    # One neighbour more: each row finds itself first (or a duplicate of itself).
    _, indices = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(x).kneighbors(x)
    return time.perf_counter() - began, indices


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--x", required=True)
    parser.add_argument("--components", type=int, required=True)
    parser.add_argument("--neighbours", type=int, required=True)
    parser.add_argument("--ours", required=True, help="seedflow's kNN indices of the pixels, int32 n x k")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    x = np.load(args.x)
    k = args.neighbours
    with threadpool_limits(limits=args.threads):
        # The covariance eigendecomposition where this scikit-learn has it (1.5+), the same method as seedflow's.
        solver = "covariance_eigh" if tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 5) else "full"
        pca = PCA(n_components=args.components, svd_solver=solver)
        began = time.perf_counter()
        pca.fit(x)
        fit = time.perf_counter() - began
        began = time.perf_counter()
        projected = pca.transform(x).astype(np.float32)
        project = time.perf_counter() - began
        knn_features, _ = knn(projected, k)
        knn_pixels, indices = knn(x, k)
    ours = np.load(args.ours)
    rows = np.arange(len(x))
    same = 0
    for i in rows:
        theirs = [j for j in indices[i] if j != i][:k]
        if set(theirs) == set(ours[i].tolist()):
            same += 1
    print(json.dumps({
        "fitS": fit,
        "projectS": project,
        "solver": solver,
        "explained": float(np.sum(pca.explained_variance_ratio_)),
        "knnFeaturesS": knn_features,
        "knnPixelsS": knn_pixels,
        "sameNeighbourSets": same / len(x),
        "peakRssMb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == "__main__":
    main()
