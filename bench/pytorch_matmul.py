"""PyTorch (Debian 1.13, OpenBLAS) GEMM GFLOPS at the shapes `npm run bench -- matmul` measures in ORT, 2 threads,
median of 15 calls: `OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/pytorch_matmul.py` (BENCHMARKS.md)."""
import torch, time
torch.set_num_threads(2)
for M,K,N in [(512,576,1536),(512,1536,576),(2048,576,576),(512,576,49152)]:
    a=torch.randn(M,K); b=torch.randn(K,N)
    for _ in range(3): a@b
    ts=[]
    for _ in range(15):
        t=time.perf_counter(); a@b; ts.append(time.perf_counter()-t)
    ts.sort(); t=ts[len(ts)//2]
    print(f"torch {M}x{K}x{N}: {2*M*K*N/t/1e9:.1f} GFLOPS")
