"""StyleGAN3 (alias-free GAN) generator in plain PyTorch, written from the paper's published description.

Modules: `filters` (FIR design), `ops` (filtered leaky ReLU, modulated convolution), `mapping`, `layers`, `synthesis`,
`generator`; reading the release's network pickles safely: `pickle_vm` + `pickle_ops` (our pickle interpreter),
`pickle_numpy` / `pickle_torch` (arrays and tensors from checked bytes), `unpickler` (the allowed callables),
`recognise` (a StyleGAN3 generator by its module tree), `options` (its checked init kwargs), `loader`, `errors`;
`ours` (safetensors + JSON), `engine` (what a deployment calls), `gen_images` / `export` / `__main__` (command
lines); `testing`, `release_pickle`, `release_tree`, `release_others` (tiny networks written in the release's layout,
for tests and benchmarks).

Importing this package does nothing heavy: no torch import, no weights, no compilation.
"""
