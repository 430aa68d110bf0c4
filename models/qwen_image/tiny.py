"""A tiny, randomly initialised Qwen-Image pipeline saved like the real one, for tests and benchmarks without weights.

Usage: `python -m models.qwen_image.tiny OUT_DIR`. Nothing is downloaded: the tokenizer is built locally
(byte-level alphabet, no merges) and every component is random, so images are noise with the right shape.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2's reversible byte → printable character map, which byte-level BPE tokenizers (Qwen2's included) use.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


def build_tokenizer() -> Any:
    from transformers import Qwen2Tokenizer

    vocab = {ch: i for i, ch in enumerate(sorted(_bytes_to_unicode().values()))}
    for token in SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    # Every byte is a token and there are no merges: the chat template then spans far more than the 34 tokens the
    # pipeline drops from the front of the encoded prompt, which a real-but-tiny vocabulary would not guarantee.
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=[],
        unk_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=["<|im_start|>", "<|im_end|>"],
    )


def build_tiny_pipeline(out_dir: Path, seed: int = 0) -> Path:
    """Create a tiny random `QwenImagePipeline` in `out_dir` (created if needed) and return `out_dir`."""
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    out_dir = Path(out_dir)
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=16,
        out_channels=4,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=3,
        joint_attention_dim=16,
        guidance_embeds=False,
        axes_dims_rope=(8, 4, 4),
    )
    torch.manual_seed(seed)
    z_dim = 4
    vae = AutoencoderKLQwenImage(
        base_dim=z_dim * 6,
        z_dim=z_dim,
        dim_mult=[1, 2, 4],
        num_res_blocks=1,
        temperal_downsample=[False, True],
        latents_mean=[0.0] * z_dim,
        latents_std=[1.0] * z_dim,
    )
    torch.manual_seed(seed)
    # The same scheduler settings as the real model's scheduler_config.json, so scheduler code paths match.
    scheduler = FlowMatchEulerDiscreteScheduler(
        base_image_seq_len=256,
        base_shift=0.5,
        max_image_seq_len=8192,
        max_shift=0.9,
        shift=1.0,
        shift_terminal=0.02,
        time_shift_type="exponential",
        use_dynamic_shifting=True,
    )
    eos_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
            "rope_theta": 1000000.0,
            "vocab_size": len(tokenizer),
            # The defaults point at the real 151k vocabulary; keep them inside this one.
            "bos_token_id": None,
            "eos_token_id": eos_id,
            "pad_token_id": eos_id,
        },
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16},
        hidden_size=16,
        vocab_size=len(tokenizer),
    )
    text_encoder = Qwen2_5_VLForConditionalGeneration(config).eval()
    pipe = QwenImagePipeline(
        scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out_dir)
    return out_dir


# The Linear layers a Qwen-Image LoRA adapts in every transformer block.
_LORA_TARGETS = (
    "attn.to_q",
    "attn.to_k",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_q_proj",
    "attn.add_k_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
    "img_mlp.net.0.proj",
    "img_mlp.net.2",
    "txt_mlp.net.0.proj",
    "txt_mlp.net.2",
)


def build_tiny_lora(pipeline_dir: Path, out_file: Path, rank: int = 4, seed: int = 1) -> Path:
    """A random LoRA for the tiny pipeline's transformer, saved as one safetensors file.

    Laid out like the Lightning LoRAs (`transformer_blocks.N.<module>.lora_down.weight` / `.lora_up.weight` /
    `.alpha`, no prefix): the kohya-style format diffusers' Qwen-Image loader converts
    (`_convert_non_diffusers_qwen_lora_to_diffusers`), so loading it runs the same conversion the real files do.
    """
    import json

    import torch
    from safetensors.torch import save_file

    config = json.loads((Path(pipeline_dir) / "transformer" / "config.json").read_text(encoding="utf-8"))
    inner = int(config["num_attention_heads"]) * int(config["attention_head_dim"])
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for block in range(int(config["num_layers"])):
        for target in _LORA_TARGETS:
            fan_in = 4 * inner if target.endswith("net.2") else inner
            fan_out = 4 * inner if target.endswith("net.0.proj") else inner
            key = f"transformer_blocks.{block}.{target}"
            # Up is random too (trained LoRAs are not zero there), large enough to change the image visibly.
            tensors[f"{key}.lora_down.weight"] = torch.randn(rank, fan_in, generator=generator) * 0.3
            tensors[f"{key}.lora_up.weight"] = torch.randn(fan_out, rank, generator=generator) * 0.3
            tensors[f"{key}.alpha"] = torch.tensor(float(rank))
    out_file.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out_file))
    return out_file


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m models.qwen_image.tiny OUT_DIR", file=sys.stderr)
        return 2
    print(build_tiny_pipeline(Path(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
