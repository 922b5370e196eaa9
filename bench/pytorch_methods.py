#!/usr/bin/env python3
"""
PyTorch side of `npm run bench:methods`, for a side-by-side comparison on the same machine.

The same work as bench/methods.ts: a Llama-family model with the shapes of the model folder's
config.json (SmolLM2-135M by default), batch 4 x 128 tokens (the same token ids), loss on every
position, one step = forward + backward + clip_grad_norm_(1.0) + torch.optim.AdamW (lr 1e-5,
no weight decay), for each method: soft prompt (20 virtual tokens), prefix (20 keys/values per
layer, as PEFT's PREFIX_TUNING), LoRA r8 alpha 16 on every projection, the last 2 layers (and
the final norm), full fine-tuning; and `embeds`, the train row of `npm run bench` (issue 2).
The model is the Hugging Face eager implementation written out
(RMSNorm, rotate-half RoPE, grouped K/V repeated per head as `repeat_kv`, SwiGLU, tied head) with
random weights: speed does not depend on their values. Logits are computed at the real positions
only (not the virtual ones), which is less work than PEFT does. Denormals are flushed, as Plum
does (BENCHMARKS.md finding 11). Each method runs in its own process so that its peak resident
memory (ru_maxrss) is its own; threads = cores, as Plum's.

  apt-get install python3-torch libopenblas0-pthread   # Debian's PyTorch 1.13 (the issue's
                                           # reference); without OpenBLAS it runs on reference BLAS
                                           # (~7 GFLOPS here, 60 s per step)
  /usr/bin/python3 bench/pytorch_methods.py [--model DIR] [--steps 5] [--method NAME] [--json FILE]

Timing: 2 untimed steps, then the median of --steps timed steps.
"""
import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

# Before torch starts OpenMP: with OpenBLAS's own threads (Debian's libopenblas0-pthread), OpenMP
# threads spinning at the default wait policy take the cores BLAS needs (AMD kind, soft-prompt
# step 6.05 s; passive 2.07 s; libopenblas0-openmp at the default 2.20 s). The fastest is used.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

B, T, N_VIRTUAL, LORA_R, LORA_ALPHA = 4, 128, 20, 8, 16
METHODS = ['soft-prompt', 'prefix', 'lora', 'last-layers', 'full']
# `embeds`: `npm run bench`'s train row (issue 2): forward + the gradient of the input embeddings
# only, every weight frozen, no optimizer.
ALL = METHODS + ['embeds']


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LoraLinear(nn.Module):
    """y = x W^T + (alpha / r) (x A^T) B^T, B = 0 at the start (PEFT's LoRA layer, no dropout)."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        self.lora_A = nn.Parameter(torch.randn(r, base.in_features) / math.sqrt(base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.t()) @ self.lora_B.t() * self.scale


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.h, self.kv, self.dh = c['num_attention_heads'], c['num_key_value_heads'], c['hidden_size'] // c['num_attention_heads']
        d = c['hidden_size']
        self.q_proj = nn.Linear(d, self.h * self.dh, bias=False)
        self.k_proj = nn.Linear(d, self.kv * self.dh, bias=False)
        self.v_proj = nn.Linear(d, self.kv * self.dh, bias=False)
        self.o_proj = nn.Linear(self.h * self.dh, d, bias=False)

    def forward(self, x, cos, sin, mask, prefix=None):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.h, self.dh).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv, self.dh).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv, self.dh).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if prefix is not None:  # [2, kv, P, dh]: the layer's trained keys and values
            k = torch.cat((prefix[0].expand(b, -1, -1, -1), k), dim=2)
            v = torch.cat((prefix[1].expand(b, -1, -1, -1), v), dim=2)
        g = self.h // self.kv
        k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)  # HF repeat_kv
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.dh) + mask, dim=-1)
        return self.o_proj((att @ v).transpose(1, 2).reshape(b, t, -1))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, f = c['hidden_size'], c['intermediate_size']
        self.input_layernorm = RMSNorm(d, c['rms_norm_eps'])
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(d, c['rms_norm_eps'])
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x, cos, sin, mask, prefix=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, prefix)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c['vocab_size'], c['hidden_size'])
        self.layers = nn.ModuleList(Block(c) for _ in range(c['num_hidden_layers']))
        self.norm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=c.get('initializer_range', 0.02))

    def rope(self, n):
        dh = self.c['hidden_size'] // self.c['num_attention_heads']
        inv = 1.0 / (self.c.get('rope_theta', 10000.0) ** (torch.arange(0, dh, 2).float() / dh))
        f = torch.outer(torch.arange(n).float(), inv)
        e = torch.cat((f, f), dim=-1)
        return e.cos(), e.sin()

    def forward(self, ids, virtual=None, prefixes=None, embeds=None):
        x = self.embed_tokens(ids) if embeds is None else embeds  # [B, T, C]
        nv = 0
        if virtual is not None:
            nv = virtual.shape[0]
            x = torch.cat((virtual.expand(x.shape[0], -1, -1), x), dim=1)
        t = x.shape[1]
        p = prefixes.shape[3] if prefixes is not None else 0
        cos, sin = self.rope(t)  # positions 0..t-1 (a prefix takes no positions, as in PEFT)
        mask = torch.full((t, p + t), float('-inf')).triu(p + 1)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, mask, prefixes[i] if prefixes is not None else None)
        h = self.norm(x[:, nv:])  # real positions only
        return F.linear(h, self.embed_tokens.weight)  # tied LM head


def setup(method, c):
    model = Model(c)
    for p in model.parameters():
        p.requires_grad_(method == 'full')
    extra = {}
    if method == 'soft-prompt':
        extra['virtual'] = nn.Parameter(model.embed_tokens.weight[torch.randint(0, c['vocab_size'], (N_VIRTUAL,))].detach().clone())
    elif method == 'prefix':
        kv, dh = c['num_key_value_heads'], c['hidden_size'] // c['num_attention_heads']
        extra['prefixes'] = nn.Parameter(torch.randn(c['num_hidden_layers'], 2, kv, N_VIRTUAL, dh) * 0.02)
    elif method == 'lora':
        for layer in model.layers:
            for owner, names in ((layer.self_attn, ('q_proj', 'k_proj', 'v_proj', 'o_proj')), (layer, ('gate_proj', 'up_proj', 'down_proj'))):
                for n in names:
                    setattr(owner, n, LoraLinear(getattr(owner, n), LORA_R, LORA_ALPHA))
    elif method == 'last-layers':
        for m in list(model.layers[-2:]) + [model.norm]:
            for p in m.parameters():
                p.requires_grad_(True)
    elif method == 'embeds':
        extra['embeds'] = model.embed_tokens.weight[torch.randint(0, c['vocab_size'], (B, T))].detach().clone().requires_grad_(True)
    params = [p for p in model.parameters() if p.requires_grad] + list(extra.values())
    return model, extra, params


def run_one(method, c, steps):
    torch.manual_seed(0)
    model, extra, params = setup(method, c)
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0) if method != 'embeds' else None
    v = c['vocab_size']
    ids = torch.tensor([[1 + ((t * 31 + b * 7) % (v - 1)) for t in range(T)] for b in range(B)])

    def step():
        for p in params:
            p.grad = None
        logits = model(ids, **extra)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, v), ids[:, 1:].reshape(-1))
        loss.backward()
        if opt:
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
        return loss.item()

    step()
    step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    s = statistics.median(times)
    return {
        'method': method,
        'trainable': sum(p.numel() for p in params),
        'sec': s,
        'tokensPerSec': B * T / s,
        'peakGB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--model', default=os.path.join(tempfile.gettempdir(), 'plum-bench', 'smollm2-135m-seed0'))
    ap.add_argument('--steps', type=int, default=5)
    ap.add_argument('--method', choices=ALL)
    ap.add_argument('--json', help='also write the rows to this file')
    a = ap.parse_args()
    cfg_file = os.path.join(a.model, 'config.json')
    if not os.path.exists(cfg_file):
        sys.exit(f'{cfg_file}: not found (run `npm run bench:methods` once to write the default model, or pass --model DIR)')
    with open(cfg_file) as f:
        c = json.load(f)
    torch.set_num_threads(os.cpu_count() or 1)
    torch.set_flush_denormal(True)
    if a.method:
        print(json.dumps(run_one(a.method, c, a.steps)))
        return
    rows = []
    blas = os.path.realpath('/etc/alternatives/libblas.so.3-x86_64-linux-gnu') if os.path.exists('/etc/alternatives/libblas.so.3-x86_64-linux-gnu') else 'unknown'
    print(f'PyTorch {torch.__version__}, {torch.get_num_threads()} threads, BLAS {blas}, OMP_WAIT_POLICY={os.environ["OMP_WAIT_POLICY"]}, {B} x {T} tokens')
    print('| method | trainable params | step (s) | tokens/s | peak memory (GB) |\n|---|---:|---:|---:|---:|')
    for m in ALL:
        out = subprocess.run([sys.executable, __file__, '--model', a.model, '--steps', str(a.steps), '--method', m], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(f"| {m} | {r['trainable']:,} | {r['sec']:.2f} | {r['tokensPerSec']:.0f} | {r['peakGB']:.2f} |", flush=True)
    if a.json:
        with open(a.json + '.tmp', 'w') as f:
            json.dump({'torch': torch.__version__, 'threads': torch.get_num_threads(), 'blas': blas, 'rows': rows}, f, indent=1)
        os.replace(a.json + '.tmp', a.json)


if __name__ == '__main__':
    main()
