"""The published Qwen/Qwen-Image component configs, for sizing and for building real-shape random models.

Sources: the model repo's transformer/config.json and text_encoder/config.json (a Qwen2.5-VL-7B config, transformers
4.53.1); its vae/config.json matches diffusers' `AutoencoderKLQwenImage` defaults (base_dim 96, z_dim 16,
dim_mult [1, 2, 4, 4], num_res_blocks 2, temperal_downsample [False, True, True]) apart from the latent statistics,
which do not change shapes. Building these on the meta device costs no memory
(tests/models/qwen_image/test_memory.py checks `memory.PUBLISHED_PARAMS` against them).
"""

from __future__ import annotations

from typing import Any

TRANSFORMER: dict[str, Any] = {
    "patch_size": 2,
    "in_channels": 64,
    "out_channels": 16,
    "num_layers": 60,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 3584,
    "guidance_embeds": False,
    "axes_dims_rope": (16, 56, 56),
}

VAE: dict[str, Any] = {
    "base_dim": 96,
    "z_dim": 16,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_scales": [],
    "temperal_downsample": [False, True, True],
}

TEXT_ENCODER: dict[str, Any] = {
    "text_config": {
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
        "max_position_embeddings": 128000,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
        "tie_word_embeddings": False,
    },
    "vision_config": {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "out_hidden_size": 3584,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "in_chans": 3,
    },
    "vocab_size": 152064,
    "hidden_size": 3584,
    "tie_word_embeddings": False,
}


def build_on_meta() -> dict[str, Any]:
    """The three weighted components with the published shapes, on the meta device (no memory)."""
    import torch
    from diffusers import AutoencoderKLQwenImage, QwenImageTransformer2DModel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    with torch.device("meta"):
        return {
            "transformer": QwenImageTransformer2DModel(**TRANSFORMER),
            "vae": AutoencoderKLQwenImage(**VAE),
            "text_encoder": Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**TEXT_ENCODER)),
        }
