"""PyTorch training epochs of the 784-300-100-10 MLP (Adam, batches of B, shuffled).

The thread count caps PyTorch's own pool and the native BLAS and OpenMP pools alike.

Starts from the weights seedflow would start from (kernels given as .npy files,
[inputs, units] like Keras) and prints one JSON object with each epoch's time.
"""
import argparse
import json
import resource
import time

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--x", required=True)
    parser.add_argument("--y", required=True)
    parser.add_argument("--weights", nargs="+", required=True, help="kernel0 bias0 kernel1 bias1 ...")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--learning-rate", type=float, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # torch.set_num_threads leaves the BLAS library's own pool alone (2 threads by default with OpenBLAS): cap it too.
    limits = threadpool_limits(limits=args.threads)
    torch.manual_seed(args.seed)
    x = torch.from_numpy(np.load(args.x))
    y = torch.from_numpy(np.load(args.y).astype(np.int64))
    arrays = [np.load(f) for f in args.weights]
    layers = []
    for i in range(0, len(arrays), 2):
        kernel, bias = arrays[i], arrays[i + 1]
        linear = torch.nn.Linear(kernel.shape[0], kernel.shape[1])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
            linear.bias.copy_(torch.from_numpy(bias))
        layers.append(linear)
        if i + 2 < len(arrays):
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    # Keras's epsilon, as seedflow uses it.
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = x.shape[0]
    seconds, losses = [], []
    for _ in range(args.epochs):
        began = time.perf_counter()
        order = torch.randperm(n)
        loss_sum, correct = 0.0, 0
        for start in range(0, n, args.batch_size):
            rows = order[start:start + args.batch_size]
            xb, yb = x[rows], y[rows]
            logits = model(xb)
            loss = loss_fn(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            # Read back as seedflow does: the loss and accuracy of every batch.
            loss_sum += loss.item() * len(rows)
            correct += int((logits.argmax(1) == yb).sum())
        seconds.append(time.perf_counter() - began)
        losses.append(loss_sum / n)
    pools = {p["internal_api"]: p["num_threads"] for p in threadpool_info()}
    limits.restore_original_limits()
    print(json.dumps({
        "epochSeconds": seconds,
        "losses": losses,
        "threads": torch.get_num_threads(),
        "pools": pools,
        "peakRssMb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == "__main__":
    main()
