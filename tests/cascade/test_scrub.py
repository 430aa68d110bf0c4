from __future__ import annotations

import base64
import secrets
from urllib.parse import quote, quote_plus

import pytest

from cascade.keys import tokens
from cascade.scrub import REDACTED, Scrubber, is_secret_name, secrets_from_env
from tests.services.secret_scan import leaks

SECRET = secrets.token_urlsafe(30)  # no recognisable shape: only the literal net can catch it


@pytest.mark.parametrize("pad", ["", "u", "us", "use", "user:"])
def test_a_known_secret_is_found_in_base64_at_any_alignment(pad: str) -> None:
    scrubber = Scrubber([SECRET])
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        packed = encode((pad + SECRET + "!tail").encode()).decode()
        assert leaks(packed.encode(), SECRET), "the scan must see the secret before scrubbing"
        out = scrubber.text(f"reply={packed}")
        assert REDACTED in out and not leaks(out.encode(), SECRET)


def test_a_known_secret_is_found_plain_and_url_encoded() -> None:
    weird = "p@ss/word+with spaces&more"
    scrubber = Scrubber([SECRET, weird])
    for text in (SECRET, quote(weird, safe=""), quote_plus(weird), weird):
        assert scrubber.text(f"x {text} y") == f"x {REDACTED} y"


def test_secrets_come_from_the_environment_including_passwords_in_urls() -> None:
    env = {
        "OPENAI_API_KEY": " sk-abc ",
        "FAL_KEY": "",
        "CASCADE_REDIS_URL": "redis://:hunter2hunter2@redis:6379/0",
        "CASCADE_DATABASE_URL": "postgresql://cascade:dbpassword9@db/cascade",
        "CASCADE_STORAGE_URL": "s3://bucket/prefix",
        "HOME": "/root",
    }
    assert secrets_from_env(env) == {"sk-abc", "hunter2hunter2", "dbpassword9"}


@pytest.mark.parametrize(
    "text",
    [
        tokens.generate().key,
        "sk-proj-" + "A1b2" * 10,
        "AIza" + "x" * 35,
        "0f8fad5b-d9cb-469f-a165-70867728950e:" + "ab" * 16,
        "Bearer abc.def.ghi",
        "basic dXNlcjpwYXNz",
    ],
)
def test_secrets_of_a_known_shape_are_found_without_being_told(text: str) -> None:
    out = Scrubber().text(f"failed with {text} today")
    assert REDACTED in out and text.split()[-1] not in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis://:pw12345@host:6379/0", "redis://:[Filtered]@host:6379/0"),
        ("postgresql://user:pw12345@db/x", "postgresql://user:[Filtered]@db/x"),
        ("https://x/models?key=abc123&alt=json", "https://x/models?key=[Filtered]&alt=json"),
        (
            "https://s3/o?X-Amz-Signature=abc&X-Amz-Credential=def",
            "https://s3/o?X-Amz-Signature=[Filtered]&X-Amz-Credential=[Filtered]",
        ),
    ],
)
def test_credentials_in_urls_are_cut_out(text: str, expected: str) -> None:
    assert Scrubber().text(text) == expected


def test_fields_are_judged_by_name_in_dicts_and_header_pairs() -> None:
    event = {
        "request": {
            "headers": {"Authorization": "Token 123", "X-Api-Key": "abc", "Content-Type": "application/json"},
            "data": {"prompt": "a cat", "size": "64x64", "negative_prompt": "dogs"},
        },
        "spans": [{"data": {"headers": [["x-goog-api-key", "abc"], ["accept", "*/*"]]}}],
        "tags": {"key_id": "0123456789ab", "request_id": "r1", "backend": "remote"},
        "extra": {"openai_api_key": "zzz", "service_token": "t", "empty_password": None},
    }
    out = Scrubber().scrub(event)
    assert out["request"]["headers"] == {
        "Authorization": REDACTED,
        "X-Api-Key": REDACTED,
        "Content-Type": "application/json",
    }
    assert out["request"]["data"] == {"prompt": "[prompt]", "size": "64x64", "negative_prompt": "[prompt]"}
    assert out["spans"][0]["data"]["headers"] == [["x-goog-api-key", REDACTED], ["accept", "*/*"]]
    assert out["tags"] == event["tags"]
    assert out["extra"] == {"openai_api_key": REDACTED, "service_token": REDACTED, "empty_password": None}
    assert event["request"]["headers"]["X-Api-Key"] == "abc", "the input is not changed in place"


def test_the_prompt_is_scrubbed_from_text_unless_prompts_may_be_sent() -> None:
    event = {"message": "refused 'a red fox' (a%20red%20fox)", "extra": {"prompt": "a red fox"}}
    assert Scrubber().scrub(event, prompt="a red fox") == {
        "message": "refused '[prompt]' ([prompt])",
        "extra": {"prompt": "[prompt]"},
    }
    assert Scrubber(send_prompts=True).scrub(event, prompt="a red fox") == event


def test_short_values_and_ordinary_names_are_left_alone() -> None:
    scrubber = Scrubber(["abc"])  # too short to be a secret: would blank out ordinary words
    assert scrubber.text("abc abcdef") == "abc abcdef"
    assert not any(is_secret_name(n) for n in ("key_id", "request_id", "monkey", "tokens_used", "backend"))
    assert all(is_secret_name(n) for n in ("X-API-KEY", "authorization", "Proxy-Authorization", "FAL_KEY", "cookie"))


def test_a_secret_of_eight_characters_is_masked_in_every_form_and_one_of_seven_is_left_alone() -> None:
    eight = "Zq8 kP2w"  # with a space, so its quote_plus form ("Zq8+kP2w") is eight characters too
    scrubber = Scrubber([eight])
    for text in (eight, quote(eight, safe=""), quote_plus(eight)):
        assert scrubber.text(f"x {text} y") == f"x {REDACTED} y"
    assert Scrubber(["Zq8kP2w"]).text("x Zq8kP2w y") == "x Zq8kP2w y"


def test_a_secret_that_starts_another_does_not_leave_the_longer_ones_tail() -> None:
    scrubber = Scrubber(["hunter2hunter2"])
    scrubber.add_secrets(["hunter2hunter2-and-more"])
    assert scrubber.text("pw=hunter2hunter2-and-more; old=hunter2hunter2") == f"pw={REDACTED}; old={REDACTED}"


def test_a_prompt_of_four_characters_is_masked_in_text_and_a_shorter_one_is_not() -> None:
    assert Scrubber().scrub({"message": "refused 'a ox'"}, prompt="a ox") == {"message": "refused '[prompt]'"}
    # Three letters would blank out every "fox" in every message; the prompt field itself still goes.
    assert Scrubber().scrub({"message": "refused fox", "prompt": "fox"}, prompt="fox") == {
        "message": "refused fox",
        "prompt": "[prompt]",
    }


def test_a_malformed_service_url_is_skipped_and_the_others_still_give_their_passwords() -> None:
    env = {"CASCADE_REDIS_URL": "redis://[::1:6379/0", "CASCADE_DATABASE_URL": "postgresql://u:dbpassword9@db/x"}
    assert secrets_from_env(env) == {"dbpassword9"}


def test_empty_values_stay_empty_and_only_pairs_are_read_as_headers() -> None:
    event = {
        "headers": [["authorization", ""], ("Cookie", "session=abc123")],
        "words": ["token", "expired", "retry"],
        "extra": {"password": "", "api_key": [], "secret": {}, "prompt": ""},
    }
    assert Scrubber().scrub(event) == {
        "headers": [["authorization", ""], ["Cookie", REDACTED]],
        "words": ["token", "expired", "retry"],
        "extra": {"password": "", "api_key": [], "secret": {}, "prompt": ""},
    }


def test_pairs_that_are_not_headers_pass_through_and_a_secret_pair_hides_any_value() -> None:
    # Lists of two are everywhere in an event (a frame's [lineno, code], [status, reason]): only a secret-named
    # first string makes a header pair, whatever its value's type.
    event = {"pairs": [[404, "not found"], [None, "x"]], "headers": [["x-api-key", 123456789], ["token", True]]}
    assert Scrubber().scrub(event) == {
        "pairs": [[404, "not found"], [None, "x"]],
        "headers": [["x-api-key", REDACTED], ["token", REDACTED]],
    }
