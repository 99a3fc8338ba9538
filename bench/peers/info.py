"""Versions of the Python peers and the thread pools they use, as one JSON object.

Each peer that cannot be imported is reported as missing rather than failing.
"""
import json
import os
import platform


def threadpools():
    """The native thread pools loaded so far (BLAS, OpenMP) and their sizes, or None without threadpoolctl."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    return [
        {"api": p.get("internal_api"), "library": os.path.basename(p.get("filepath", "")), "version": p.get("version"), "threads": p.get("num_threads"), "architecture": p.get("architecture")}
        for p in threadpoolctl.threadpool_info()
    ]


def main():
    info = {"python": platform.python_version(), "env": {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "OMP_", "MKL_"))}}
    try:
        import numpy
        info["numpy"] = numpy.__version__
    except ImportError as error:
        info["numpy"] = None
        info["numpyError"] = str(error)
    try:
        import sklearn
        info["sklearn"] = sklearn.__version__
    except ImportError as error:
        info["sklearn"] = None
        info["sklearnError"] = str(error)
    # Before torch is imported: importing it changes OpenMP's default thread count.
    info["threadpools"] = threadpools()
    try:
        import torch
        info["torch"] = torch.__version__
        info["torchDefaultThreads"] = torch.get_num_threads()
    except ImportError as error:
        info["torch"] = None
        info["torchError"] = str(error)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
