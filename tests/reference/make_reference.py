#!/usr/bin/python3
"""Generate the PyTorch reference fixture for kvtie's C++ tests.

What it makes
    tests/reference/reference.safetensors -- a safetensors file (written by
    the small writer below, no `safetensors` package needed) holding, for a
    set of tiny GPT-2-style models ("cases"), the parameters, a batch of
    tokens/targets, the logits, the loss, the gradient of the loss with
    respect to every parameter, and the losses of 10 AdamW steps (plus the
    final parameters for case `kv_kv2_causal`).  Every case's config is a
    JSON string in the header's __metadata__ under the case name.

    The `vit_*` cases are vision transformers (docs/vision.md): a batch of
    images instead of tokens, patch embedding through F.conv2d (kernel =
    stride = patch, weight [d, C*p*p] viewed as [d, C, p, p]), a class token
    (pool "cls") or mean pooling, learned or MAE 2D sin-cos positions.

    Key layout per case CASE:
        CASE/param/<name>   F64   every parameter
        CASE/tokens         I32   [B, T]            (token cases)
        CASE/images         F64   [B, C, H, W]      (vit cases, float32-representable)
        CASE/targets        I32   [B, T] (lm/token heads, -1 = ignored) or [B] (pooled)
        CASE/logits         F64   [B, T, vocab] / [B, T, n_classes] / [B, n_classes]
        CASE/loss           F64   [1]
        CASE/grad/<name>    F64   d loss / d param, every parameter
        CASE/adamw_losses   F64   [10], loss before the i-th AdamW update
        CASE/adamw_final/<name> F64  params after 10 updates (kv_kv2_causal only)

How to run (from the repository root)
    /usr/bin/python3 tests/reference/make_reference.py           # (re)write the file
    /usr/bin/python3 tests/reference/make_reference.py --check   # self-checks + re-read/compare

The computation is float64 throughout, single-threaded and seeded, so the
output is byte-for-byte reproducible.  Weights are drawn in float32 and then
converted to float64, so every stored parameter is exactly representable in
float32.  The file is read by tests/test_reference.cpp.
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "reference.safetensors")

# ---------------------------------------------------------------------------
# Sizes shared by every case
# ---------------------------------------------------------------------------
N_LAYER = 2
D_MODEL = 16
N_HEAD = 4
D_FF = 32
VOCAB = 24
MAX_SEQ_LEN = 8
BATCH = 2
SEQ = 7  # shorter than MAX_SEQ_LEN on purpose
N_CLASSES = 5

ADAMW_STEPS = 10
ADAMW_LR = 1e-2
ADAMW_BETAS = (0.9, 0.95)
ADAMW_EPS = 1e-8
ADAMW_WD = 0.1
CLIP_NORM = 1.0

BASE_SEED = 20240601

# (name, share, n_kv_head, causal, head)
CASES = [
    ("none_kv4_causal", "none", 4, True, "lm"),
    ("none_kv2_causal", "none", 2, True, "lm"),
    ("none_kv1_causal", "none", 1, True, "lm"),
    ("kv_kv4_causal", "kv", 4, True, "lm"),
    ("kv_kv2_causal", "kv", 2, True, "lm"),
    ("kv_kv1_causal", "kv", 1, True, "lm"),
    ("qk_kv4_causal", "qk", 4, True, "lm"),
    ("qkv_kv4_causal", "qkv", 4, True, "lm"),
    ("none_kv2_bidir", "none", 2, False, "lm"),
    ("kv_kv1_bidir", "kv", 1, False, "lm"),
    ("qkv_kv4_bidir", "qkv", 4, False, "lm"),
    ("kv_kv2_bidir_token", "kv", 2, False, "token"),
    ("none_kv4_bidir_pooled", "none", 4, False, "pooled"),
    # The (X)+ score term (score_pos2d), bidirectional, one case per share.
    ("none_kv2_bidir_token_pos2d", "none", 2, False, "token"),
    ("kv_kv2_bidir_token_pos2d", "kv", 2, False, "token"),
    ("qk_kv4_bidir_token_pos2d", "qk", 4, False, "token"),
    ("qkv_kv4_bidir_pooled_pos2d", "qkv", 4, False, "pooled"),
]
ADAMW_FINAL_CASES = {"kv_kv2_causal"}

# Vision transformers: (name, share, n_kv_head, channels, width, pool, pos, score_pos2d); images 8
# high in 4x4 patches: 8x8 is a 2x2 grid (4 patches), 8x12 a 2x3 grid (6 patches, rows != columns).
VIT_HEIGHT = 8
VIT_PATCH = 4
VIT_BATCH = 3
VIT_CASES = [
    ("vit_kv_kv2_cls", "kv", 2, 1, 8, "cls", "learned", False),
    ("vit_none_kv4_mean_sincos2d", "none", 4, 3, 12, "mean", "sincos2d", False),
    ("vit_qk_kv4_cls_sincos2d_pos2d", "qk", 4, 3, 8, "cls", "sincos2d", True),
]


POS2D_FEATURES = 8  # per position: 4 frequencies x (sin, cos); m = 16 channels


def make_config(share, n_kv_head, causal, head, pos2d=False):
    return {
        "n_layer": N_LAYER,
        "n_head": N_HEAD,
        "n_kv_head": n_kv_head,
        "d_model": D_MODEL,
        "d_ff": D_FF,
        "vocab_size": VOCAB,
        "max_seq_len": MAX_SEQ_LEN,
        "share": share,
        "causal": causal,
        "pos": "learned",
        "score_pos2d": pos2d,
        "head": head,
        "n_classes": 0 if head == "lm" else N_CLASSES,
    }


def make_vit_config(share, n_kv_head, channels, width, pool, pos, pos2d):
    n_patches = (VIT_HEIGHT // VIT_PATCH) * (width // VIT_PATCH)
    return {
        "n_layer": N_LAYER,
        "n_head": N_HEAD,
        "n_kv_head": n_kv_head,
        "d_model": D_MODEL,
        "d_ff": D_FF,
        "max_seq_len": n_patches + (1 if pool == "cls" else 0),
        "share": share,
        "causal": False,
        "pos": pos,
        "score_pos2d": pos2d,
        "head": "pooled",
        "n_classes": N_CLASSES,
        "image": {"channels": channels, "height": VIT_HEIGHT, "width": width, "patch": VIT_PATCH},
        "pool": pool,
    }


def is_vit(cfg):
    return "image" in cfg


# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------
def attn_proj_shapes(cfg):
    """Names and output sizes of the attention input projections for a share mode."""
    hd = cfg["d_model"] // cfg["n_head"]
    nq = cfg["n_head"] * hd
    nkv = cfg["n_kv_head"] * hd
    share = cfg["share"]
    if share == "none":
        return [("q", nq), ("k", nkv), ("v", nkv)]
    if share == "kv":
        return [("q", nq), ("k_v", nkv)]
    if share == "qk":
        assert cfg["n_kv_head"] == cfg["n_head"]
        return [("q_k", nq), ("v", nq)]
    if share == "qkv":
        assert cfg["n_kv_head"] == cfg["n_head"]
        return [("q_k_v", nq)]
    raise ValueError(share)


def param_shapes(cfg):
    """Ordered list of (name, shape, kind) with kind in weight/bias/ln_weight/ln_bias."""
    d, dff = cfg["d_model"], cfg["d_ff"]
    hd = d // cfg["n_head"]
    if is_vit(cfg):
        im = cfg["image"]
        out = [("patch_emb.weight", [d, im["channels"] * im["patch"] ** 2], "weight"),
               ("patch_emb.bias", [d], "bias")]
        if cfg["pool"] == "cls":
            out.append(("cls_token", [d], "weight"))
    else:
        out = [("tok_emb.weight", [cfg["vocab_size"], d], "weight")]
    if cfg["pos"] == "learned":
        out.append(("pos_emb.weight", [cfg["max_seq_len"], d], "weight"))
    for i in range(cfg["n_layer"]):
        p = "blocks.%d." % i
        out += [(p + "ln1.weight", [d], "ln_weight"), (p + "ln1.bias", [d], "ln_bias")]
        for nm, n_out in attn_proj_shapes(cfg):
            out += [(p + "attn.%s.weight" % nm, [n_out, d], "weight"),
                    (p + "attn.%s.bias" % nm, [n_out], "bias")]
        out += [
            (p + "attn.out.weight", [d, cfg["n_head"] * hd], "weight"),
            (p + "attn.out.bias", [d], "bias"),
        ]
        if cfg["score_pos2d"]:
            out += [(p + "attn.pos2d.scale", [cfg["n_head"]], "ln_weight"),
                    (p + "attn.pos2d.weight", [cfg["n_head"], 2 * POS2D_FEATURES], "weight"),
                    (p + "attn.pos2d.bias", [cfg["n_head"]], "bias")]
        out += [
            (p + "ln2.weight", [d], "ln_weight"),
            (p + "ln2.bias", [d], "ln_bias"),
            (p + "mlp.fc.weight", [dff, d], "weight"),
            (p + "mlp.fc.bias", [dff], "bias"),
            (p + "mlp.proj.weight", [d, dff], "weight"),
            (p + "mlp.proj.bias", [d], "bias"),
        ]
    out += [("ln_f.weight", [d], "ln_weight"), ("ln_f.bias", [d], "ln_bias")]
    if cfg["head"] in ("token", "pooled"):
        out += [("head.weight", [cfg["n_classes"], d], "weight"),
                ("head.bias", [cfg["n_classes"]], "bias")]
    return out


def build_params(cfg, gen):
    """Random parameters, drawn in float32 (so exactly float32-representable), returned as float64."""
    params = {}
    for name, shape, kind in param_shapes(cfg):
        z = torch.randn(shape, generator=gen, dtype=torch.float32)
        if kind == "weight":
            t = z * 0.3
        elif kind == "bias" or kind == "ln_bias":
            t = z * 0.1
        elif kind == "ln_weight":
            t = 1.0 + z * 0.1  # computed in float32
        else:
            raise ValueError(kind)
        params[name] = t.to(torch.float32).double()
    return params


# ---------------------------------------------------------------------------
# Model (plain, explicit per-head matmuls so the sharing is visible)
# ---------------------------------------------------------------------------
def linear(x, P, name):
    return x @ P[name + ".weight"].t() + P[name + ".bias"]


def layer_norm(x, P, name):
    d = x.shape[-1]
    return F.layer_norm(x, (d,), P[name + ".weight"], P[name + ".bias"], eps=1e-5)


def qkv_projections(x, P, p, cfg):
    """Return (Q [B,T,n_head*hd], K [B,T,n_kv*hd], V [B,T,n_kv*hd]) for the share mode."""
    share = cfg["share"]
    if share == "none":
        return (linear(x, P, p + "attn.q"), linear(x, P, p + "attn.k"), linear(x, P, p + "attn.v"))
    if share == "kv":
        kv = linear(x, P, p + "attn.k_v")
        return linear(x, P, p + "attn.q"), kv, kv
    if share == "qk":
        qk = linear(x, P, p + "attn.q_k")
        return qk, qk, linear(x, P, p + "attn.v")
    if share == "qkv":
        qkv = linear(x, P, p + "attn.q_k_v")
        return qkv, qkv, qkv
    raise ValueError(share)


def pos2d_features(T):
    """f[t] = sin(t w_k), cos(t w_k) for w_k = 10000^(-k/4), k = 0..3."""
    f = torch.zeros(T, POS2D_FEATURES)
    for t in range(T):
        for k in range(POS2D_FEATURES // 2):
            w = 10000.0 ** (-k / (POS2D_FEATURES // 2))
            f[t, 2 * k] = math.sin(t * w)
            f[t, 2 * k + 1] = math.cos(t * w)
    return f


def pos2d_scores(s, P, p, h, T):
    """(X)+: S' = a S + sum_c w_c P_ijc + b with P_ij = [f(i); f(j)], for head h (s: [B,T,T])."""
    f = pos2d_features(T)
    w = P[p + "attn.pos2d.weight"][h]
    u = f @ w[:POS2D_FEATURES]  # [T] query-position part
    v = f @ w[POS2D_FEATURES:]  # [T] key-position part
    return P[p + "attn.pos2d.scale"][h] * s + u[:, None] + v[None, :] + P[p + "attn.pos2d.bias"][h]


def attention(x, P, p, cfg):
    B, T, d = x.shape
    n_head, n_kv = cfg["n_head"], cfg["n_kv_head"]
    hd = d // n_head
    group = n_head // n_kv
    scale = 1.0 / math.sqrt(hd)
    Q, K, V = qkv_projections(x, P, p, cfg)
    if cfg["causal"]:
        allowed = torch.tril(torch.ones(T, T, dtype=torch.bool))  # j <= i
    else:
        allowed = torch.ones(T, T, dtype=torch.bool)
    heads = []
    for h in range(n_head):
        g = h // group  # kv head read by query head h
        q = Q[:, :, h * hd:(h + 1) * hd]  # [B,T,hd]
        k = K[:, :, g * hd:(g + 1) * hd]
        v = V[:, :, g * hd:(g + 1) * hd]
        s = (q @ k.transpose(1, 2)) * scale  # [B,T,T], s[b,i,j] = q_i . k_j
        if cfg["score_pos2d"]:
            s = pos2d_scores(s, P, p, h, T)
        s = s.masked_fill(~allowed, float("-inf"))
        a = torch.softmax(s, dim=-1)
        heads.append(a @ v)  # [B,T,hd]
    y = torch.cat(heads, dim=-1)  # head h -> columns h*hd .. h*hd+hd-1
    return linear(y, P, p + "attn.out")


def mlp(x, P, p):
    return linear(F.gelu(linear(x, P, p + "mlp.fc")), P, p + "mlp.proj")


def sincos2d_table(d, grid_h, grid_w, n_cls):
    """MAE's get_2d_sincos_pos_embed (numpy, float64): first d/2 channels encode the column x, the
    last d/2 the row y, each [sin(t w_k), cos(t w_k)] with w_k = 1/10000^(k/(d/4)); class rows 0."""
    def one_d(dim, pos):
        omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
        omega = 1.0 / 10000 ** omega
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    grid = np.meshgrid(np.arange(grid_w, dtype=np.float64), np.arange(grid_h, dtype=np.float64))  # x first
    grid = np.stack(grid, axis=0).reshape(2, 1, grid_h, grid_w)
    emb = np.concatenate([one_d(d // 2, grid[0]), one_d(d // 2, grid[1])], axis=1)
    emb = np.concatenate([np.zeros((n_cls, d)), emb], axis=0)
    return torch.from_numpy(emb)


def patch_embed(P, images, cfg):
    """Conv2d with kernel = stride = patch: [B, C, H, W] -> [B, n_patches, d], patches row-major."""
    im = cfg["image"]
    d, p = cfg["d_model"], im["patch"]
    w = P["patch_emb.weight"].view(d, im["channels"], p, p)
    y = F.conv2d(images, w, P["patch_emb.bias"], stride=p)  # [B, d, gh, gw]
    return y.flatten(2).transpose(1, 2)


def embed_images(P, images, cfg):
    x = patch_embed(P, images, cfg)
    B, d = x.shape[0], cfg["d_model"]
    n_cls = 1 if cfg["pool"] == "cls" else 0
    if n_cls:
        x = torch.cat([P["cls_token"].view(1, 1, d).expand(B, 1, d), x], dim=1)
    if cfg["pos"] == "learned":
        x = x + P["pos_emb.weight"][:x.shape[1]]
    elif cfg["pos"] == "sincos2d":
        g = cfg["image"]["height"] // cfg["image"]["patch"], cfg["image"]["width"] // cfg["image"]["patch"]
        x = x + sincos2d_table(d, g[0], g[1], n_cls)
    return x


def forward(P, tokens, cfg, attn_fn=attention):
    """Return logits. `tokens` is the image batch [B, C, H, W] for vit cases."""
    if is_vit(cfg):
        x = embed_images(P, tokens, cfg)
    else:
        T = tokens.shape[1]
        x = P["tok_emb.weight"][tokens.long()] + P["pos_emb.weight"][:T]
    for i in range(cfg["n_layer"]):
        p = "blocks.%d." % i
        x = x + attn_fn(layer_norm(x, P, p + "ln1"), P, p, cfg)
        x = x + mlp(layer_norm(x, P, p + "ln2"), P, p)
    x = layer_norm(x, P, "ln_f")
    if cfg["head"] == "lm":
        return x @ P["tok_emb.weight"].t()  # tied, no bias
    if cfg["head"] == "token":
        return linear(x, P, "head")
    if cfg["head"] == "pooled":
        pooled = x[:, 0] if cfg.get("pool") == "cls" else x.mean(dim=1)
        return linear(pooled, P, "head")
    raise ValueError(cfg["head"])


def loss_fn(logits, targets):
    C = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, C), targets.reshape(-1).long(), ignore_index=-1)


def compute_loss(P, tokens, targets, cfg, attn_fn=attention):
    logits = forward(P, tokens, cfg, attn_fn)
    return loss_fn(logits, targets), logits


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
def make_batch(cfg, gen):
    if is_vit(cfg):
        im = cfg["image"]
        images = torch.randn([VIT_BATCH, im["channels"], im["height"], im["width"]], generator=gen,
                             dtype=torch.float32).double()
        targets = torch.randperm(cfg["n_classes"], generator=gen)[:VIT_BATCH]
        return images, targets.to(torch.int32)
    tokens = torch.randint(0, cfg["vocab_size"], (BATCH, SEQ), generator=gen, dtype=torch.int64)
    if cfg["head"] == "pooled":
        # distinct classes per sample, so a batch-order mix-up cannot go unnoticed
        targets = torch.randperm(cfg["n_classes"], generator=gen)[:BATCH]
        return tokens.to(torch.int32), targets.to(torch.int32)
    if cfg["head"] == "lm":
        n_cls, n_ignore = cfg["vocab_size"], 3
    else:
        n_cls, n_ignore = cfg["n_classes"], 2
    targets = torch.randint(0, n_cls, (BATCH, SEQ), generator=gen, dtype=torch.int64)
    flat = targets.view(-1)
    ignore = torch.randperm(BATCH * SEQ, generator=gen)[:n_ignore]
    flat[ignore] = -1
    return tokens.to(torch.int32), targets.to(torch.int32)


# ---------------------------------------------------------------------------
# AdamW
# ---------------------------------------------------------------------------
def run_adamw(params0, tokens, targets, cfg, steps=ADAMW_STEPS):
    names = list(params0.keys())
    P = {n: params0[n].detach().clone().requires_grad_(True) for n in names}
    decay = [P[n] for n in names if P[n].dim() >= 2]
    no_decay = [P[n] for n in names if P[n].dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": ADAMW_WD},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=ADAMW_LR, betas=ADAMW_BETAS, eps=ADAMW_EPS)
    losses = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss, _ = compute_loss(P, tokens, targets, cfg)
        losses.append(loss.item())
        loss.backward()
        torch.nn.utils.clip_grad_norm_([P[n] for n in names], CLIP_NORM)
        opt.step()
    final = {n: P[n].detach().clone() for n in names}
    return torch.tensor(losses, dtype=torch.float64), final


# ---------------------------------------------------------------------------
# Case generation
# ---------------------------------------------------------------------------
def generate_case(index, name, share, n_kv, causal, head, cfg=None):
    if cfg is None:
        cfg = make_config(share, n_kv, causal, head, pos2d=name.endswith("_pos2d"))
    gen = torch.Generator().manual_seed(BASE_SEED + index)
    params0 = build_params(cfg, gen)
    tokens, targets = make_batch(cfg, gen)
    P = {n: t.clone().requires_grad_(True) for n, t in params0.items()}
    loss, logits = compute_loss(P, tokens, targets, cfg)
    names = list(P.keys())
    grads = torch.autograd.grad(loss, [P[n] for n in names])
    adam_losses, adam_final = run_adamw(params0, tokens, targets, cfg)
    return {
        "cfg": cfg,
        "params": params0,
        "tokens": tokens,
        "targets": targets,
        "logits": logits.detach(),
        "loss": loss.detach().reshape(1),
        "grads": {n: g.detach() for n, g in zip(names, grads)},
        "adamw_losses": adam_losses,
        "adamw_final": adam_final,
    }


def all_cases():
    """(name, share, n_kv, causal, head, cfg or None) of every case, token cases first."""
    out = [(name, share, n_kv, causal, head, None) for name, share, n_kv, causal, head in CASES]
    for name, share, n_kv, channels, width, pool, pos, pos2d in VIT_CASES:
        out.append((name, share, n_kv, False, "pooled",
                    make_vit_config(share, n_kv, channels, width, pool, pos, pos2d)))
    return out


def generate_all():
    tensors = []  # ordered (key, tensor)
    metadata = {}
    results = {}
    for index, (name, share, n_kv, causal, head, cfg) in enumerate(all_cases()):
        r = generate_case(index, name, share, n_kv, causal, head, cfg)
        results[name] = r
        metadata[name] = json.dumps(r["cfg"], separators=(",", ":"))
        for n, t in r["params"].items():
            tensors.append(("%s/param/%s" % (name, n), t))
        tensors.append((name + ("/images" if is_vit(r["cfg"]) else "/tokens"), r["tokens"]))
        tensors.append((name + "/targets", r["targets"]))
        tensors.append((name + "/logits", r["logits"]))
        tensors.append((name + "/loss", r["loss"]))
        for n, t in r["grads"].items():
            tensors.append(("%s/grad/%s" % (name, n), t))
        tensors.append((name + "/adamw_losses", r["adamw_losses"]))
        if name in ADAMW_FINAL_CASES:
            for n, t in r["adamw_final"].items():
                tensors.append(("%s/adamw_final/%s" % (name, n), t))
    return tensors, metadata, results


# ---------------------------------------------------------------------------
# safetensors writer / reader (struct + json)
# ---------------------------------------------------------------------------
_DTYPES = {torch.float64: ("F64", "<f8"), torch.int32: ("I32", "<i4")}
_NP_OF = {"F64": "<f8", "I32": "<i4"}


def write_safetensors(path, tensors, metadata):
    header = {}
    blobs = []
    offset = 0
    for key, t in tensors:
        assert key not in header, key
        dt, npdt = _DTYPES[t.dtype]
        raw = np.ascontiguousarray(t.detach().cpu().numpy().astype(npdt)).tobytes()
        header[key] = {"dtype": dt, "shape": list(t.shape),
                       "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((-len(hj)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0
    header = json.loads(data[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    expect = 0
    for key, info in header.items():  # dict order == file order
        b, e = info["data_offsets"]
        assert b == expect, (key, b, expect)
        expect = e
        arr = np.frombuffer(data[base + b:base + e], dtype=_NP_OF[info["dtype"]])
        assert arr.size == int(np.prod(info["shape"], dtype=np.int64)), key
        out[key] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    assert base + expect == len(data), "trailing bytes"
    return out, metadata


# ---------------------------------------------------------------------------
# Self checks (--check)
# ---------------------------------------------------------------------------
def attention_vectorized(x, P, p, cfg):
    """Independent batched implementation (repeat_interleave of kv heads)."""
    B, T, d = x.shape
    nh, nkv = cfg["n_head"], cfg["n_kv_head"]
    hd = d // nh
    Q, K, V = qkv_projections(x, P, p, cfg)
    q = Q.view(B, T, nh, hd).transpose(1, 2)
    k = K.view(B, T, nkv, hd).transpose(1, 2).repeat_interleave(nh // nkv, dim=1)
    v = V.view(B, T, nkv, hd).transpose(1, 2).repeat_interleave(nh // nkv, dim=1)
    s = q @ k.transpose(-1, -2) / math.sqrt(hd)
    if cfg["score_pos2d"]:  # the explicit [T, T, m] pair features, contracted per head
        f = pos2d_features(T)
        pairs = torch.cat([f[:, None, :].expand(T, T, -1), f[None, :, :].expand(T, T, -1)], dim=-1)
        term = torch.einsum("ijc,hc->hij", pairs, P[p + "attn.pos2d.weight"]) + P[p + "attn.pos2d.bias"][:, None, None]
        s = P[p + "attn.pos2d.scale"][None, :, None, None] * s + term[None]
    if cfg["causal"]:
        s = s + torch.triu(torch.full((T, T), float("-inf"), dtype=s.dtype), diagonal=1)
    y = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, T, nh * hd)
    return linear(y, P, p + "attn.out")


def check(path):
    ok = True

    def expect(cond, msg):
        nonlocal ok
        print(("  ok   " if cond else "  FAIL ") + msg)
        ok = ok and bool(cond)

    print("check: re-read %s" % path)
    data, meta = read_safetensors(path)
    expect(sorted(meta.keys()) == sorted(c[0] for c in all_cases()), "metadata has one entry per case")
    tensors, metadata, results = generate_all()
    expect(meta == metadata, "metadata matches regenerated configs")
    expect(list(data.keys()) == [k for k, _ in tensors], "key list/order matches regeneration")
    same = all(torch.equal(data[k], t.to(data[k].dtype)) and data[k].dtype == t.dtype for k, t in tensors)
    expect(same, "every tensor bit-identical to a fresh regeneration (determinism)")
    for k in ["kv_kv2_causal/loss", "none_kv4_bidir_pooled/logits", "qk_kv4_causal/grad/blocks.1.attn.q_k.weight"]:
        expect(torch.equal(data[k], dict(tensors)[k]), "tensor %s round-trips" % k)
    # float32 representability of params
    f32 = all(torch.equal(v, v.float().double()) for k, v in data.items() if "/param/" in k)
    expect(f32, "all params exactly float32-representable")

    for name, share, n_kv, causal, head, _ in all_cases():
        r = results[name]
        cfg = r["cfg"]
        P = {n: t.clone() for n, t in r["params"].items()}
        # vectorized attention cross-check
        with torch.no_grad():
            l2, lg2 = compute_loss(P, r["tokens"], r["targets"], cfg, attn_vectorized_fn)
        expect(torch.allclose(lg2, r["logits"], rtol=0, atol=1e-12) and abs(l2.item() - r["loss"].item()) < 1e-12,
               "%s: per-head loop == vectorized attention" % name)
        # manual cross entropy (mean over non-ignored)
        lg = r["logits"].reshape(-1, r["logits"].shape[-1])
        tg = r["targets"].reshape(-1).long()
        m = tg != -1
        ce = -(torch.log_softmax(lg[m], -1).gather(1, tg[m][:, None])).mean()
        expect(abs(ce.item() - r["loss"].item()) < 1e-12, "%s: loss == manual mean CE over non-ignored" % name)
        # every gradient non-zero somewhere
        # (the (X)+ bias shifts a whole softmax row: its exact gradient is 0, left out)
        nz = all(g.abs().max().item() > 0 for n, g in r["grads"].items() if not n.endswith("pos2d.bias"))
        expect(nz, "%s: every parameter has a non-zero gradient" % name)
        expect(r["adamw_losses"][-1] < r["adamw_losses"][0], "%s: AdamW loss decreases (%.4f -> %.4f)"
               % (name, r["adamw_losses"][0].item(), r["adamw_losses"][-1].item()))

    # shared-projection equivalences: shared matrix == separate matrices set equal
    def equiv(case, mapping, new_share, n_kv):
        r = results[case]
        cfg2 = dict(r["cfg"], share=new_share)
        P2 = {}
        for n, t in r["params"].items():
            hit = False
            for src, dsts in mapping.items():
                if (".attn.%s." % src) in n:
                    for dst in dsts:
                        P2[n.replace(".attn.%s." % src, ".attn.%s." % dst)] = t.clone()
                    hit = True
            if not hit:
                P2[n] = t.clone()
        assert sorted(P2) == sorted(n for n, _, _ in param_shapes(cfg2))
        with torch.no_grad():
            l2, lg2 = compute_loss(P2, r["tokens"], r["targets"], cfg2)
        expect(torch.allclose(lg2, r["logits"], rtol=0, atol=1e-12) and abs(l2.item() - r["loss"].item()) < 1e-12,
               "%s == share '%s' with %s set equal" % (case, new_share, mapping))

    equiv("kv_kv2_causal", {"k_v": ["k", "v"]}, "none", 2)
    equiv("kv_kv1_bidir", {"k_v": ["k", "v"]}, "none", 1)
    equiv("kv_kv4_causal", {"k_v": ["k", "v"]}, "none", 4)
    equiv("qk_kv4_causal", {"q_k": ["q", "k"]}, "none", 4)
    equiv("qkv_kv4_causal", {"q_k_v": ["q", "k", "v"]}, "none", 4)
    equiv("qkv_kv4_bidir", {"q_k_v": ["q", "k_v"]}, "kv", 4)

    # gradient of the shared matrix == sum of gradients of the separate copies
    r = results["kv_kv2_causal"]
    cfg2 = dict(r["cfg"], share="none")
    P2 = {}
    for n, t in r["params"].items():
        if ".attn.k_v." in n:
            P2[n.replace("k_v", "k")] = t.clone().requires_grad_(True)
            P2[n.replace("k_v", "v")] = t.clone().requires_grad_(True)
        else:
            P2[n] = t.clone().requires_grad_(True)
    l2, _ = compute_loss(P2, r["tokens"], r["targets"], cfg2)
    l2.backward()
    gsum = all(torch.allclose(r["grads"][n], P2[n.replace("k_v", "k")].grad + P2[n.replace("k_v", "v")].grad,
                              rtol=0, atol=1e-12)
               for n in r["grads"] if ".attn.k_v." in n)
    expect(gsum, "kv_kv2_causal: grad(k_v) == grad(k) + grad(v) with k = v")

    # gradcheck on a selection of parameters, and a finite-difference spot check
    gc_sel = {
        "kv_kv2_causal": ["blocks.0.attn.k_v.weight", "blocks.1.attn.k_v.bias", "blocks.0.ln1.weight",
                          "pos_emb.weight", "ln_f.bias"],
        "qkv_kv4_bidir": ["blocks.1.attn.q_k_v.weight", "blocks.0.attn.out.bias", "blocks.1.mlp.fc.weight"],
        "none_kv1_causal": ["blocks.0.attn.k.weight", "blocks.1.attn.v.bias", "tok_emb.weight"],
        "kv_kv2_bidir_token": ["head.weight", "blocks.0.attn.q.weight", "blocks.1.ln2.bias"],
        "none_kv4_bidir_pooled": ["head.bias", "blocks.1.mlp.proj.weight", "blocks.0.attn.k.bias"],
        "vit_kv_kv2_cls": ["patch_emb.weight", "patch_emb.bias", "cls_token", "pos_emb.weight"],
        "vit_none_kv4_mean_sincos2d": ["patch_emb.weight", "blocks.0.attn.v.weight"],
        "vit_qk_kv4_cls_sincos2d_pos2d": ["patch_emb.weight", "cls_token", "blocks.0.attn.q_k.weight",
                                          "blocks.1.attn.pos2d.weight"],
    }
    for case, sel in gc_sel.items():
        r = results[case]
        base = r["params"]

        def f(*xs, _case=case, _sel=sel, _r=r, _base=base):
            P = dict(_base)
            P.update(zip(_sel, xs))
            return compute_loss(P, _r["tokens"], _r["targets"], _r["cfg"])[0]

        inputs = tuple(base[n].clone().requires_grad_(True) for n in sel)
        passed = torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)
        expect(passed, "%s: gradcheck on %s" % (case, sel))
        # central finite difference on a few stored-gradient entries
        worst = 0.0
        for n in sel:
            g = r["grads"][n].reshape(-1)
            for idx in [0, g.numel() // 2, g.numel() - 1]:
                Pp = {k: v.clone() for k, v in base.items()}
                Pm = {k: v.clone() for k, v in base.items()}
                h = 1e-6
                Pp[n].view(-1)[idx] += h
                Pm[n].view(-1)[idx] -= h
                with torch.no_grad():
                    lp = compute_loss(Pp, r["tokens"], r["targets"], r["cfg"])[0].item()
                    lm = compute_loss(Pm, r["tokens"], r["targets"], r["cfg"])[0].item()
                fd = (lp - lm) / (2 * h)
                worst = max(worst, abs(fd - g[idx].item()))
        expect(worst < 1e-7, "%s: stored grads vs central FD, max abs err %.2e" % (case, worst))

    # Vision: the conv2d patch embedding == unfold into (c, i, j) rows times the flat weight, and
    # the sin-cos table == its formula written out per channel.
    for name, _, _, _, _, _, _, _ in VIT_CASES:
        r = results[name]
        cfg, P, x = r["cfg"], r["params"], r["tokens"]
        p, d = VIT_PATCH, D_MODEL
        B, C = x.shape[0], x.shape[1]
        rows = x.unfold(2, p, p).unfold(3, p, p).permute(0, 2, 3, 1, 4, 5).reshape(B, -1, C * p * p)
        unf = rows @ P["patch_emb.weight"].t() + P["patch_emb.bias"]
        expect(torch.allclose(unf, patch_embed(P, x, cfg), rtol=0, atol=1e-12),
               "%s: conv2d patch embedding == unfold rows (c, i, j) x weight" % name)
        expect(r["grads"]["patch_emb.weight"].abs().max().item() > 0, "%s: patch weight gradient non-zero" % name)
    gh, gw, q = 2, 3, D_MODEL // 4
    tab = sincos2d_table(D_MODEL, gh, gw, 1)
    worst = 0.0
    for y in range(gh):
        for x_ in range(gw):
            for k in range(q):
                w_k = 1.0 / 10000 ** (k / q)
                want = [math.sin(x_ * w_k), math.cos(x_ * w_k), math.sin(y * w_k), math.cos(y * w_k)]
                got = [tab[1 + y * gw + x_, j * q + k].item() for j in range(4)]
                worst = max(worst, max(abs(a - b) for a, b in zip(want, got)))
    expect(worst < 1e-15 and tab[0].abs().max().item() == 0, "sincos2d table == formula (x first, then y)")

    # AdamW replay from the stored file for kv_kv2_causal
    case = "kv_kv2_causal"
    names = [n for n, _, _ in param_shapes(results[case]["cfg"])]
    P0 = {n: data["%s/param/%s" % (case, n)] for n in names}
    losses, final = run_adamw(P0, data[case + "/tokens"], data[case + "/targets"], results[case]["cfg"])
    expect(torch.equal(losses, data[case + "/adamw_losses"])
           and all(torch.equal(final[n], data["%s/adamw_final/%s" % (case, n)]) for n in names),
           "%s: AdamW replay from file params reproduces adamw_losses/adamw_final" % case)

    print("check: %s" % ("ALL OK" if ok else "FAILURES"))
    return ok


def attn_vectorized_fn(x, P, p, cfg):
    return attention_vectorized(x, P, p, cfg)


# ---------------------------------------------------------------------------
def main(argv):
    torch.set_num_threads(1)
    torch.manual_seed(BASE_SEED)
    torch.set_default_dtype(torch.float64)
    torch.use_deterministic_algorithms(True)
    if "--check" in argv:
        return 0 if check(OUT_PATH) else 1
    tensors, metadata, results = generate_all()
    write_safetensors(OUT_PATH, tensors, metadata)
    size = os.path.getsize(OUT_PATH)
    print("wrote %s" % OUT_PATH)
    print("  %d cases, %d tensors, %d bytes (%.1f KiB)" % (len(all_cases()), len(tensors), size, size / 1024.0))
    for name, share, n_kv, causal, head, _ in all_cases():
        r = results[name]
        al = r["adamw_losses"]
        print("  %-24s share=%-4s n_kv=%d causal=%-5s head=%-6s params=%d loss=%.6f adamw %.4f->%.4f"
              % (name, share, n_kv, causal, head, len(r["params"]), r["loss"].item(), al[0].item(), al[-1].item()))
    if size > 3 * 1024 * 1024:
        print("WARNING: file larger than 3 MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
