"""Domains: which prompts a single-domain network can draw, and which class a prompt asks a conditional one for."""

from __future__ import annotations

import pytest

from cascade.domain import DomainArgs, preset, prompt_words, release_preset


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        ("/models/stylegan3-t-ffhq-1024x1024.pkl", "faces"),
        ("stylegan3-r-ffhqu-256x256.pkl", "faces"),
        ("stylegan3-t-metfaces-1024x1024.pkl", "portraits"),
        ("stylegan3-r-metfacesu-1024x1024.pkl", "portraits"),
        ("stylegan3-t-afhqv2-512x512.pkl", "animals"),
        ("my-own-houses.pkl", None),
        (None, None),
    ],
)
def test_release_networks_name_their_domain(network: str | None, expected: str | None) -> None:
    assert release_preset(network) == expected


def test_faces_take_face_prompts_only() -> None:
    faces = preset("faces")
    for prompt in ("a portrait of an old man", "Smiling WOMAN, studio light", "two kids laughing", "a selfie"):
        assert faces.matches(prompt), prompt
    for prompt in ("a red house by a lake", "a cat with green eyes", "", "facet of a gem"):
        assert not faces.matches(prompt), prompt
    assert faces.skip_reason("a red house by a lake") == "prompt outside the network's domain: faces"
    assert faces.skip_reason("a face") is None


def test_plurals_are_understood() -> None:
    assert prompt_words("Puppies and foxes") == ["puppies", "puppy", "and", "foxes", "fox", "foxe"]
    assert preset("animals").matches("three puppies") and preset("animals").matches("wolves at night")


def test_a_conditional_network_gets_its_class_from_the_prompt() -> None:
    afhq = DomainArgs(name="afhq", classes={"cat": 0, "kitten": 0, "dog": 1, "puppy": 1, "fox": 2, "lion": 2}).build()
    assert afhq.class_for("a sleepy kitten on a sofa") == 0
    assert afhq.class_for("puppies playing, a cat watching") == 1  # the first class word wins
    assert afhq.class_for("a lion") == 2 and afhq.class_for("an animal") is None
    assert afhq.matches("a lion") and not afhq.matches("a house")


def test_domain_config_is_checked() -> None:
    assert DomainArgs(name="pets", preset="animals", words=["hamster"]).build().matches("a hamster")
    with pytest.raises(ValueError, match="unknown domain preset"):
        DomainArgs(name="x", preset="houses").build()
    with pytest.raises(ValueError, match="no words"):
        DomainArgs(name="x").build()
    with pytest.raises(ValueError, match="must be >= 0"):
        DomainArgs(name="x", classes={"cat": -1}).build()


def test_short_words_are_not_cut_into_false_singulars() -> None:
    # A plural ending is cut only when at least two letters are left: "flies" is read as "fly" but "ties" as
    # "tie" (and "ti"), "foes" as "foe" but "yes" only as "ye", "ads" as "ad" but "as" stays "as".
    assert prompt_words("ties flies") == ["ties", "ti", "tie", "flies", "fly"]
    assert prompt_words("yes foes") == ["yes", "ye", "foes", "fo", "foe"]
    assert prompt_words("as ads cats") == ["as", "ads", "ad", "cats", "cat"]


def test_words_and_class_words_from_config_match_whatever_their_case() -> None:
    pets = DomainArgs(name="pets", words=["Hamster"], classes={"Guinea": 0, "RABBIT": 3}).build()
    assert pets.matches("A HAMSTER") and pets.matches("a guinea pig")
    assert pets.class_for("Rabbits in a field") == 3 and pets.class_for("a guinea pig") == 0


def test_a_domains_name_is_one_to_eighty_characters_and_unknown_keys_are_refused() -> None:
    assert DomainArgs(name="x" * 80, words=["cat"]).build().name == "x" * 80
    for bad in ({"name": ""}, {"name": "x" * 81}, {"name": "x", "word": ["cat"]}):
        with pytest.raises(ValueError):
            DomainArgs.model_validate(bad)
