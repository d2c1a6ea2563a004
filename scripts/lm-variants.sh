# The study's eight rows, as "share n_kv_head" pairs for a 4-head model: QKV, Q-K=V, Q=K-V, Q=K=V,
# GQA-2, MQA, Q-GQA-2, Q-MQA. Sourced by scripts/demo and scripts/lm-study.
# shellcheck shell=bash
lm_variants=("none 4" "kv 4" "qk 4" "qkv 4" "none 2" "none 1" "kv 2" "kv 1")
