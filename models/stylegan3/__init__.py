"""StyleGAN3 (alias-free GAN) generator in plain PyTorch, written from the paper's published description.

Modules: `filters` (FIR design), `ops` (filtered leaky ReLU, modulated convolution), `mapping`, `layers`, `synthesis`,
`generator`, `unpickler` + `loader` (safe reading of the release's network pickles), `ours` (safetensors + JSON),
`engine` (what a deployment calls), `gen_images` / `export` / `__main__` (command lines).

Importing this package does nothing heavy: no torch import, no weights, no compilation.
"""
