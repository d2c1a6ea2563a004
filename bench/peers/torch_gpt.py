#!/usr/bin/python3
"""kvtie's benchmark GPT written plainly in PyTorch: the peer that bench/compare_train.sh times
against build/release/bench/train_step.

The model is DESIGN.md §1 (pre-norm GPT-2, tied LM head, learned positions, shared attention
projections, grouped kv heads); the timed step is the one train_step times. Options and JSON keys
mirror train_step so the driver can read both the same way.

    torch_gpt.py [--d-model 256 --layers 4 ...] [--variant Q-K=V] [--json]
    torch_gpt.py --check A.safetensors [B.safetensors ...] [--check-out DIR]

--check builds the model each kvtie checkpoint describes and requires the same tensor names and
shapes. With --check-out it then writes DIR/A.peer.safetensors (its own weights, large enough that
the attention pattern matters) and DIR/A.peer.npy (tokens) and prints its loss on them, for
`kvtie eval` to reproduce. One JSON line per checkpoint; exit status 1 on any mismatch.
"""
import argparse
import json
import math
import os
import re
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# The rows train_step times, by kvtie's labels: (share, kv heads; None = one per query head).
VARIANTS = {
    "QKV": ("none", None),
    "Q-K=V": ("kv", None),
    "Q=K-V": ("qk", None),
    "Q=K=V": ("qkv", None),
    "MQA": ("none", 1),
    "Q-MQA": ("kv", 1),
}

# Distinct projections per share value, in kvtie's checkpoint naming (roles joined by "_").
PROJECTIONS = {
    "none": ("q", "k", "v"),
    "kv": ("q", "k_v"),
    "qk": ("q_k", "v"),
    "qkv": ("q_k_v",),
}


class Config:
    def __init__(self, d_model, n_layer, n_head, n_kv_head, d_ff, vocab_size, max_seq_len, share,
                 head_dim=None, causal=True):
        self.d_model, self.n_layer, self.n_head, self.n_kv_head = d_model, n_layer, n_head, n_kv_head
        self.d_ff, self.vocab_size, self.max_seq_len, self.share = d_ff, vocab_size, max_seq_len, share
        self.head_dim = head_dim or d_model // n_head
        self.causal = causal
        if share not in PROJECTIONS:
            raise ValueError(f"share {share!r}: expected one of {', '.join(PROJECTIONS)}")
        if n_head % n_kv_head:
            raise ValueError(f"n_head {n_head} is not a multiple of n_kv_head {n_kv_head}")
        if share in ("qk", "qkv") and n_kv_head != n_head:
            raise ValueError(f"share {share} needs n_kv_head == n_head")

    @classmethod
    def from_kvtie(cls, j):
        for key, want in (("pos", "learned"), ("head", "lm"), ("score_pos2d", False)):
            if j.get(key, want) != want:
                raise ValueError(f"the peer models only {key} = {want!r}, the checkpoint has {j[key]!r}")
        return cls(j["d_model"], j["n_layer"], j["n_head"], j["n_kv_head"], j["d_ff"], j["vocab_size"],
                   j["max_seq_len"], j["share"], j.get("head_dim"), j.get("causal", True))

    def label(self):
        """kvtie's variant_label()."""
        base = {"none": "QKV", "kv": "Q-K=V", "qk": "Q=K-V", "qkv": "Q=K=V"}[self.share]
        if self.n_kv_head == self.n_head:
            return base
        grouping = "MQA" if self.n_kv_head == 1 else f"GQA-{self.n_kv_head}"
        return "Q-" + grouping if self.share == "kv" else grouping

    def flops_per_token(self, seq):
        """train_step's count: 6·(matmul params + d·V) + 12·L·T·(n_head·hd)."""
        q_dim, kv_dim = self.n_head * self.head_dim, self.n_kv_head * self.head_dim
        proj_dim = {"none": q_dim + 2 * kv_dim, "kv": q_dim + kv_dim, "qk": 2 * q_dim, "qkv": q_dim}[self.share]
        d = self.d_model
        per_layer = d * proj_dim + d * q_dim + 2 * d * self.d_ff
        return 6.0 * (self.n_layer * per_layer + d * self.vocab_size) + 12.0 * self.n_layer * seq * q_dim


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        q_dim, kv_dim = c.n_head * c.head_dim, c.n_kv_head * c.head_dim
        # A projection that serves as Q is q_dim wide; one serving only K and/or V is kv_dim wide.
        for name in PROJECTIONS[c.share]:
            setattr(self, name, nn.Linear(c.d_model, q_dim if "q" in name else kv_dim))
        self.out = nn.Linear(q_dim, c.d_model)
        self.register_buffer("mask", torch.ones(c.max_seq_len, c.max_seq_len, dtype=torch.bool).tril(),
                             persistent=False)

    def forward(self, x):
        c = self.c
        B, T, _ = x.shape
        if c.share == "none":
            q, k, v = self.q(x), self.k(x), self.v(x)
        elif c.share == "kv":
            q = self.q(x)
            k = v = self.k_v(x)
        elif c.share == "qk":
            q = k = self.q_k(x)
            v = self.v(x)
        else:
            q = k = v = self.q_k_v(x)
        H, G, hd = c.n_kv_head, c.n_head // c.n_kv_head, c.head_dim
        # Query head h reads kv head h // G. Stacking a group's G query heads along the rows lets
        # one matmul per kv head read K and V once, instead of copying them G times.
        q = q.view(B, T, H, G, hd).permute(0, 2, 3, 1, 4).reshape(B, H, G * T, hd)
        k = k.view(B, T, H, hd).transpose(1, 2)
        v = v.view(B, T, H, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)).mul_(1.0 / math.sqrt(hd)).view(B, H, G, T, T)
        if c.causal:
            att = att.masked_fill(~self.mask[:T, :T], float("-inf"))
        att = F.softmax(att, dim=-1).view(B, H, G * T, T)
        y = (att @ v).view(B, H, G, T, hd).permute(0, 3, 1, 2, 4).reshape(B, T, c.n_head * hd)
        return self.out(y)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc = nn.Linear(c.d_model, c.d_ff)
        self.proj = nn.Linear(c.d_ff, c.d_model)

    def forward(self, x):
        return self.proj(F.gelu(self.fc(x)))  # exact (erf) GELU: PyTorch's default


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln1 = nn.LayerNorm(c.d_model, eps=1e-5)
        self.attn = Attention(c)
        self.ln2 = nn.LayerNorm(c.d_model, eps=1e-5)
        self.mlp = MLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        self.pos_emb = nn.Embedding(c.max_seq_len, c.d_model)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.d_model, eps=1e-5)
        self.init_weights(0.02)

    def init_weights(self, std):
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, std)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(T, device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.tok_emb.weight)  # LM head tied to the embedding
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-1)


def make_optimizer(model, lr):
    # kvtie decays every tensor of rank ≥ 2 (matrices and embeddings), not biases or norms.
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8)


def sgemm_gflops(M, N, K):
    """train_step's probe through torch.mm: best single C = A·Bᵀ over ~0.5 s after two warm-ups."""
    a, b, c = torch.full((M, K), 0.5), torch.full((N, K), 0.25), torch.empty(M, N)
    torch.mm(a, b.t(), out=c)
    torch.mm(a, b.t(), out=c)
    best, start = 0.0, time.perf_counter()
    while time.perf_counter() - start < 0.5:
        t = time.perf_counter()
        torch.mm(a, b.t(), out=c)
        best = max(best, 2.0 * M * N * K / (time.perf_counter() - t) / 1e9)
    return best


def loaded_blas():
    """The BLAS library this process mapped, to show which one torch's matmuls go through."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if re.search(r"/lib(open)?blas[^/]*\.so", path):
                libs.add(os.path.realpath(path))
    return sorted(libs)


def time_variant(c, batch, seq, steps):
    torch.manual_seed(1)
    model = GPT(c)
    opt = make_optimizer(model, 1e-4)
    g = torch.Generator().manual_seed(2)
    x = torch.randint(c.vocab_size, (batch, seq), generator=g)
    y = torch.randint(c.vocab_size, (batch, seq), generator=g)

    def step():
        opt.zero_grad()
        loss = model(x, y)
        loss.backward()
        # train_step's AdamW takes the global gradient norm and clips to 1.0 on every step.
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    step()  # warm-up, as train_step: first-touch allocations and BLAS thread start
    step()
    best = float("inf")
    for _ in range(steps):
        t = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t)
    tokens = batch * seq
    return {"variant": c.label(), "step_ms": best * 1e3, "tokens_per_s": tokens / best,
            "gflops": c.flops_per_token(seq) * tokens / best / 1e9}


# ---- --check: the same model as kvtie's, tensor for tensor and loss for loss -------------------

def read_safetensors_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def write_safetensors(path, tensors, metadata):
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, t in tensors.items():
        blob = t.detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format pads the header so the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for blob in blobs:
            f.write(blob)


def write_npy_int32(path, values):
    header = "{'descr': '<i4', 'fortran_order': False, 'shape': (%d,), }" % len(values)
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack(f"<{len(values)}i", *values))


def check(ckpt, out_dir):
    header = read_safetensors_header(ckpt)
    meta = header.pop("__metadata__", {})
    c = Config.from_kvtie(json.loads(meta["kvtie.config"]))
    model = GPT(c)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: v["shape"] for k, v in header.items()}
    problems = [f"{k}: kvtie {theirs.get(k)}, peer {ours.get(k)}"
                for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)]
    result = {"checkpoint": ckpt, "variant": c.label(), "params": sum(p.numel() for p in model.parameters()),
              "tensors": len(ours), "problems": problems}
    if not problems and out_dir:
        # Weights at std 0.02 leave attention nearly uniform, so a wrong mask or head mapping would
        # barely move the loss; at 0.3 for d_model 64 (scaled as 1/√d, so scores stay this size) it does.
        torch.manual_seed(3)
        model.init_weights(0.3 * math.sqrt(64 / c.d_model))
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.split(".")[-2].startswith("ln"):
                    p.normal_(1.0 if name.endswith("weight") else 0.0, 0.2)
                elif name.endswith("bias"):
                    p.normal_(0.0, 0.1)
        prefix = os.path.join(out_dir, os.path.basename(ckpt).removesuffix(".safetensors") + ".peer")
        write_safetensors(prefix + ".safetensors", model.state_dict(), meta)
        windows, T = 3, c.max_seq_len
        tokens = torch.randint(c.vocab_size, (windows * T,), generator=torch.Generator().manual_seed(4))
        write_npy_int32(prefix + ".npy", tokens.tolist())
        w = tokens.view(windows, T)
        # kvtie eval predicts every token of a window but the first.
        targets = torch.cat([w[:, 1:], torch.full((windows, 1), -1)], dim=1)
        with torch.no_grad():
            result["loss"] = model(w, targets).item()
        result["peer_checkpoint"], result["tokens"] = prefix + ".safetensors", prefix + ".npy"
    print(json.dumps(result), flush=True)
    return not problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--d-model", type=int, default=256, help="model width")
    ap.add_argument("--layers", type=int, default=4, help="transformer blocks")
    ap.add_argument("--heads", type=int, default=4, help="query heads (head_dim = d_model / heads)")
    ap.add_argument("--seq", type=int, default=128, help="sequence length")
    ap.add_argument("--batch", type=int, default=16, help="sequences per step")
    ap.add_argument("--vocab", type=int, default=8192, help="vocabulary size")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per variant (best is reported)")
    ap.add_argument("--variant", action="append", choices=list(VARIANTS),
                    help="time only this variant (repeatable; default: all six)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--no-sgemm", action="store_true", help="skip the torch.mm SGEMM probe (sgemm_gflops: null)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--info", action="store_true", help="print the torch version, threads and BLAS as JSON, and exit")
    ap.add_argument("--check", metavar="CKPT", nargs="+", help="compare with kvtie checkpoints (see above)")
    ap.add_argument("--check-out", metavar="DIR", help="with --check: write the peer's weights and tokens here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.info:
        print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": loaded_blas()}))
        return 0
    if a.check:
        return 0 if all([check(path, a.check_out) for path in a.check]) else 1

    tokens = a.batch * a.seq
    d = a.d_model
    sgemm = None if a.no_sgemm else max(sgemm_gflops(tokens, 4 * d, d), sgemm_gflops(tokens, a.vocab, d),
                                        sgemm_gflops(1024, 1024, 1024))
    threads = torch.get_num_threads()
    if a.json:
        print(json.dumps({"sgemm_gflops": sgemm, "threads": threads, "torch": torch.__version__,
                          "blas": loaded_blas()}), flush=True)
    else:
        print(f"train step (PyTorch {torch.__version__}): d_model {d}, {a.layers} layers, {a.heads} heads, "
              f"seq {a.seq}, batch {a.batch}, vocab {a.vocab}, {threads} threads")
        print(f"BLAS: {', '.join(loaded_blas()) or '?'}")
        if sgemm is not None:
            print(f"SGEMM (torch.mm, measured now): {sgemm:.1f} GFLOP/s")
        print(f"\n{'variant':<8} {'ms/step':>9} {'tokens/s':>10} {'GFLOP/s':>9} {'% SGEMM':>8}")
    for name in a.variant or VARIANTS:
        share, kv = VARIANTS[name]
        c = Config(d, a.layers, a.heads, kv or a.heads, 4 * d, a.vocab, a.seq, share)
        r = time_variant(c, a.batch, a.seq, a.steps)
        r["pct_sgemm"] = None if sgemm is None else 100 * r["gflops"] / sgemm
        if a.json:
            print(json.dumps(r), flush=True)
        else:
            line = f"{r['variant']:<8} {r['step_ms']:9.1f} {r['tokens_per_s']:10.0f} {r['gflops']:9.1f}"
            print(line if sgemm is None else f"{line} {r['pct_sgemm']:7.1f}%", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
