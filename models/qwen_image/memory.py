"""Where Qwen-Image's weights live on this machine: a pure function of free memory, component sizes and options.

No torch here: the engine measures the card and the host, `weights.parameter_counts` sizes the components from the
checkpoint's own safetensors headers, and `choose_plan` decides (or refuses, saying what would work). Tests drive
it with a table of cards.

Working-memory figures are estimates, stated where they are defined: the weights are exact, the rest is sized
generously from the model's shapes and from VAE decode measurements in the Qwen-Image notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

OffloadMode = Literal["auto", "off", "text_encoder", "group", "sequential", "model"]
PlanMode = Literal["off", "text_encoder", "group", "sequential", "model"]
OFFLOAD_MODES: tuple[str, ...] = ("auto", "off", "text_encoder", "group", "sequential", "model")

GIB = 1024**3
MP = 1_000_000

# Parameter counts of the published Qwen/Qwen-Image components (transformer/, text_encoder/, vae/ config.json),
# as the models built from those configs count them (tests/models/qwen_image/test_memory.py rebuilds them on the
# meta device to check). bf16: 2 bytes each.
PUBLISHED_PARAMS = {"transformer": 20_430_401_088, "text_encoder": 8_292_166_656, "vae": 126_892_531}
# The text encoder's token embedding and its LM head (152064 × 3584 each): the largest single modules that leaf-level
# offloading moves at once.
PUBLISHED_LARGEST_LEAF_PARAMS = 152_064 * 3_584
PUBLISHED_HIDDEN = 24 * 128  # transformer inner width: heads × head_dim
PUBLISHED_FFN = 4 * PUBLISHED_HIDDEN

# VAE decode without tiling, from the notes' measurements (≈5 GiB at 1024², 8 at 1328², 21 at 2048²): ~5 GiB per
# megapixel. Tiled decode works on 256-pixel tiles, so it stays near one tile's cost whatever the size (estimate).
VAE_DECODE_GIB_PER_MP = 5.0
VAE_TILED_DECODE_GIB = 1.0
# cuBLAS/attention workspaces, the CUDA caching allocator's fragmentation, the text encoder's activations and
# logits: a fixed allowance plus a share of what is resident (estimate).
WORKSPACE_GIB = 1.5
FRAGMENTATION = 0.03
# What the replica process itself needs in host RAM besides offloaded weights (Python, torch, Ray worker).
HOST_BASE_GIB = 4.0


@dataclass(frozen=True)
class ComponentSizes:
    """Bytes each component takes at the dtype it is loaded in, plus the shapes activation estimates need."""

    transformer: int
    text_encoder: int
    vae: int
    largest_leaf: int
    hidden: int = PUBLISHED_HIDDEN
    ffn: int = PUBLISHED_FFN
    dtype_bytes: int = 2
    # Pixels per transformer token: (VAE downsampling × 2×2 patches)² = 16² for the real model.
    pixels_per_token: int = 256

    @property
    def weights(self) -> int:
        return self.transformer + self.text_encoder + self.vae

    @classmethod
    def published(cls, dtype_bytes: int = 2) -> ComponentSizes:
        p = PUBLISHED_PARAMS
        return cls(
            transformer=p["transformer"] * dtype_bytes,
            text_encoder=p["text_encoder"] * dtype_bytes,
            vae=p["vae"] * dtype_bytes,
            largest_leaf=PUBLISHED_LARGEST_LEAF_PARAMS * dtype_bytes,
            dtype_bytes=dtype_bytes,
        )


@dataclass(frozen=True)
class PlanInputs:
    """What the plan is chosen from. `gpu_free` None: no GPU (the device is the CPU)."""

    requested: OffloadMode
    gpu_free: int | None
    host_available: int | None
    sizes: ComponentSizes
    max_pixels: int
    text_tokens: int = 512
    # Tile VAE decodes from this many pixels up (None: never); the plan may lower it so decodes fit.
    vae_tiling_min_pixels: int | None = 1536 * 1536
    device: str = "cuda"


@dataclass(frozen=True)
class MemoryPlan:
    mode: PlanMode
    device: str
    gpu_need: int | None
    gpu_free: int | None
    host_need: int
    host_available: int | None
    vae_tiling_min_pixels: int | None
    max_pixels: int
    why: str
    # GPU bytes each mode would need on this card (for the log and /healthz: what the alternatives cost).
    needs: dict[str, int] = field(default_factory=dict)
    advice: str | None = None

    def as_dict(self) -> dict[str, object]:
        gib = _gib
        return {
            "mode": self.mode,
            "device": self.device,
            "gpu_need_gib": gib(self.gpu_need),
            "gpu_free_gib": gib(self.gpu_free),
            "host_need_gib": gib(self.host_need),
            "host_available_gib": gib(self.host_available),
            "vae_tiling_min_pixels": self.vae_tiling_min_pixels,
            "max_pixels": self.max_pixels,
            "why": self.why,
            "gpu_need_gib_by_mode": {k: gib(v) for k, v in self.needs.items()},
            "advice": self.advice,
        }

    def summary(self) -> str:
        if self.gpu_free is None:
            return f"{self.mode} on {self.device}: {self.why}"
        return (
            f"{self.mode} on {self.device}: needs ~{_gib(self.gpu_need)} GiB of {_gib(self.gpu_free)} GiB free; "
            f"host RAM ~{_gib(self.host_need)} GiB of {_gib(self.host_available)} GiB available; "
            f"VAE tiling from {self.vae_tiling_min_pixels} px; {self.why}"
        )


class PlanRefused(RuntimeError):
    """No placement of the weights can work with this card, host and options; the message says what would."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _gib(value: int | None) -> float | None:
    return None if value is None else round(value / GIB, 1)


def transformer_activations(sizes: ComponentSizes, pixels: int, text_tokens: int) -> int:
    """Peak activations of one transformer forward: every token's hidden state a few times over (q, k, v, the
    attention output, residuals, modulation) plus the 4× wider feed-forward in and out. Attention runs through
    memory-efficient SDPA kernels, so nothing grows with tokens². CFG runs its two forwards one after the other."""
    tokens = pixels // sizes.pixels_per_token + text_tokens
    return tokens * (8 * sizes.hidden + 2 * sizes.ffn) * sizes.dtype_bytes


def vae_decode(pixels: int, tiled: bool) -> int:
    return int(VAE_TILED_DECODE_GIB * GIB) if tiled else int(VAE_DECODE_GIB_PER_MP * GIB * pixels / MP)


def _decode(inputs: PlanInputs, tile_from: int | None) -> int:
    """The largest VAE decode: untiled below `tile_from`, tiled from there on."""
    pixels = inputs.max_pixels
    untiled_max = pixels if tile_from is None else min(pixels, tile_from - 1)
    decode = vae_decode(untiled_max, tiled=False)
    if tile_from is not None and pixels >= tile_from:
        decode = max(decode, vae_decode(pixels, tiled=True))
    return decode


def _phases(mode: PlanMode, inputs: PlanInputs, tile_from: int | None) -> tuple[int, int]:
    """(bytes resident for the replica's life, largest transient need of a job) in one placement.

    A job encodes, then denoises, then decodes: the transient need is the largest of the three phases, each
    counting the weights that placement brings in for it (with streams the next leaf group is prefetched while
    the current one runs, hence two leaves).
    """
    sizes = inputs.sizes
    act = transformer_activations(sizes, inputs.max_pixels, inputs.text_tokens)
    decode = _decode(inputs, tile_from)
    leaves = 2 * sizes.largest_leaf
    if mode == "off":
        return sizes.weights, max(act, decode)
    if mode == "text_encoder":
        return sizes.transformer + sizes.vae, max(leaves, act, decode)
    if mode == "model":  # one whole component on the GPU at a time
        return 0, max(sizes.text_encoder, sizes.transformer + act, sizes.vae + decode)
    return 0, leaves + max(act, decode)  # group, sequential


def gpu_need(mode: PlanMode, inputs: PlanInputs, tile_from: int | None) -> int:
    resident, transient = _phases(mode, inputs, tile_from)
    return int(resident * (1 + FRAGMENTATION) + transient + WORKSPACE_GIB * GIB)


def host_need(mode: PlanMode, sizes: ComponentSizes, on_gpu: bool) -> int:
    """Host RAM: offloaded weights live there (pinned for streamed transfers); loading goes straight to the device."""
    if not on_gpu:
        offloaded = sizes.weights  # the CPU is the device: everything is in host RAM
    elif mode == "off":
        offloaded = 0
    elif mode == "text_encoder":
        offloaded = sizes.text_encoder
    else:
        offloaded = sizes.weights
    return int(offloaded + HOST_BASE_GIB * GIB)


def _fitting_tile_threshold(mode: PlanMode, inputs: PlanInputs) -> int | None:
    """The configured tiling threshold, lowered (down to tiling everything) until the decode fits; None if even
    tiled decodes leave too little room."""
    free = inputs.gpu_free or 0
    configured = inputs.vae_tiling_min_pixels
    if gpu_need(mode, inputs, configured) <= free:
        return configured
    # The largest untiled decode that fits, in steps of 64² pixels: a bisection over the need, which grows with it.
    lo, hi = 0, (configured or inputs.max_pixels + 1) // 4096
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if gpu_need(mode, inputs, mid * 4096) <= free:
            lo = mid
        else:
            hi = mid - 1
    if lo > 0:
        return lo * 4096
    return 1 if gpu_need(mode, inputs, 1) <= free else None


_WHY = {
    "off": "every component resident on the GPU",
    "text_encoder": "transformer and VAE resident; the text encoder streamed to the GPU layer by layer only "
    "while it encodes, so it holds no GPU memory during denoising",
    "group": "every component streamed to the GPU leaf by leaf on CUDA streams (diffusers group offloading), "
    "overlapping transfers with compute",
    "sequential": "every component moved to the GPU module by module as it runs (accelerate sequential offload)",
    "model": "one whole component on the GPU at a time (model CPU offload)",
}
_AUTO_ORDER: tuple[PlanMode, ...] = ("off", "text_encoder", "group")
_LIGHTNING_ADVICE = (
    "every denoising step streams the weights over PCIe: use the 8-step Lightning LoRA (lightning_lora, "
    "true_cfg_scale 1) so a job takes 8 forwards instead of 100"
)


def choose_plan(inputs: PlanInputs) -> MemoryPlan:
    """The placement to use, or PlanRefused naming what would work."""
    if inputs.gpu_free is None:
        return _cpu_plan(inputs)
    # The least each placement can work with (every decode tiled): what the log and a refusal quote.
    needs = {mode: gpu_need(mode, inputs, 1) for mode in _WHY}
    candidates: tuple[PlanMode, ...] = _AUTO_ORDER if inputs.requested == "auto" else (inputs.requested,)  # type: ignore[assignment]
    refusals: list[str] = []
    for mode in candidates:
        tile_from = _fitting_tile_threshold(mode, inputs)
        host = host_need(mode, inputs.sizes, on_gpu=True)
        if tile_from is None:
            refusals.append(
                f"{mode} needs ~{_gib(gpu_need(mode, inputs, 1))} GiB on the GPU even with every VAE decode tiled"
            )
            continue
        if inputs.host_available is not None and host > inputs.host_available:
            refusals.append(f"{mode} keeps ~{_gib(host)} GiB in host RAM, {_gib(inputs.host_available)} GiB available")
            continue
        why = _WHY[mode]
        if tile_from != inputs.vae_tiling_min_pixels:
            why += f"; VAE decodes tiled from {tile_from} px so they fit"
        return MemoryPlan(
            mode=mode,
            device=inputs.device,
            gpu_need=gpu_need(mode, inputs, tile_from),
            gpu_free=inputs.gpu_free,
            host_need=host,
            host_available=inputs.host_available,
            vae_tiling_min_pixels=tile_from,
            max_pixels=inputs.max_pixels,
            why=why,
            needs=needs,
            advice=_LIGHTNING_ADVICE if mode in ("group", "sequential", "model") else None,
        )
    raise PlanRefused(_refusal(inputs, needs, refusals))


def _refusal(inputs: PlanInputs, needs: dict[str, int], refusals: list[str]) -> str:
    asked = "cpu_offload auto" if inputs.requested == "auto" else f"cpu_offload {inputs.requested}"
    text = f"Qwen-Image cannot start on {inputs.device} with {asked}: " + "; ".join(refusals) + "."
    options = []
    for mode in ("off", "text_encoder", "group"):
        tile_from = _fitting_tile_threshold(mode, inputs)  # type: ignore[arg-type]
        host = host_need(mode, inputs.sizes, on_gpu=True)  # type: ignore[arg-type]
        if tile_from is not None and (inputs.host_available is None or host <= inputs.host_available):
            if mode != inputs.requested:
                options.append(f"cpu_offload {mode} would fit (needs ~{_gib(needs[mode])} GiB)")
    if options:
        return f"{text} " + "; ".join(options) + " (or auto)."
    group = needs["group"]
    host = host_need("group", inputs.sizes, on_gpu=True)
    return (
        f"{text} It needs a GPU with ~{_gib(group)} GiB free and ~{_gib(host)} GiB of host RAM (group offload), "
        f"or ~{_gib(needs['off'])} GiB free to keep everything on the GPU; lower max_pixels to shrink the working "
        "memory a little."
    )


def _cpu_plan(inputs: PlanInputs) -> MemoryPlan:
    """On the CPU there is nothing to offload to; a forced mode still runs its hooks (tests exercise them)."""
    host = host_need("off", inputs.sizes, on_gpu=False)
    if inputs.host_available is not None and host > inputs.host_available:
        raise PlanRefused(
            f"Qwen-Image cannot run on {inputs.device}: its weights need ~{_gib(host)} GiB of RAM, "
            f"{_gib(inputs.host_available)} GiB available; use a GPU"
        )
    mode: PlanMode = "off" if inputs.requested in ("auto", "off") else inputs.requested  # type: ignore[assignment]
    return MemoryPlan(
        mode=mode,
        device=inputs.device,
        gpu_need=None,
        gpu_free=None,
        host_need=host,
        host_available=inputs.host_available,
        vae_tiling_min_pixels=inputs.vae_tiling_min_pixels,
        max_pixels=inputs.max_pixels,
        why="no GPU: weights in host RAM" if mode == "off" else f"{_WHY[mode]} (onto the CPU itself)",
    )
