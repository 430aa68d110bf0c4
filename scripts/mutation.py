"""Mutation testing of the Ray-free core with cosmic-ray: how many deliberate bugs do the fast unit tests catch?

Each module is mutated in a throw-away copy of the work tree (cosmic-ray rewrites the file on disk, one mutant at
a time) and tested with only its own fast unit tests, so nothing here touches the checkout or starts Ray.
Sessions are kept in `.mutation/` for `cr-report --show-diff .mutation/<name>.sqlite`.

Run it through `bash scripts/mutation.sh [MODULE|GROUP ...]` (see `--help`); docs/mutation.md has the figures.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
SESSIONS = ROOT / ".mutation"
# cosmic-ray's command line with our operators added (scripts/mutation_operators.py): `in` <-> `not in`, a call
# statement deleted, `return x` -> `return None`.
COSMIC_RAY = (str(PYTHON), str(ROOT / "scripts" / "mutation_operators.py"))


def _files(pattern: str, *, but: tuple[str, ...] = ()) -> tuple[str, ...]:
    return tuple(p.relative_to(ROOT).as_posix() for p in sorted(ROOT.glob(pattern)) if p.name not in but)


# Module (or folder prefix) -> the tests that stand for it, most specific first: pytest arguments, so a group can
# leave out a slow variant with `-k`. Every group runs without Ray. A group needs a server only where what the
# module does is talk to one (s3.py, the index's SQL, redis_store.py); the tests start it themselves on loopback.
# Keep in step with docs/mutation.md.
# The core's own unit tests, none needing a server (test_observe.py starts a Sentry ingest and a child replica).
_CORE = _files("tests/cascade/test_*.py", but=("test_observe.py",))
# Every remote test but test_catalogue.py, which imports deployments.remote (and so Ray) for its config checks.
_REMOTE = _files("tests/models/remote/test_*.py", but=("test_catalogue.py",))
_STYLEGAN3_LOADING = tuple(
    f"tests/models/stylegan3/test_{name}.py" for name in ("unpickler", "options", "loader", "security")
)
# `-k "not postgres"` keeps the folder+SQLite variant of the `stack` tests and drops S3 (moto) + PostgreSQL.
_FOLDER_ONLY = ("-k", "not postgres")
_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # What s3.py does is speak S3: only a real endpoint (moto_server) tests it.
    ("cascade/store/s3.py", ("tests/cascade/store/test_stores.py", "-k", "not folder")),
    ("cascade/store/", ("tests/cascade/store", "tests/cascade/images/test_http.py", *_FOLDER_ONLY)),
    ("cascade/images/", ("tests/cascade/images", *_FOLDER_ONLY)),
    # SQLite and a real PostgreSQL: the index's SQL differs between them.
    ("cascade/index/", ("tests/cascade/index",)),
    ("cascade/keys/", ("tests/cascade/keys", "tests/cascade/test_access_config.py")),
    # A real redis-server for the module that speaks to one; the in-process store for the rest.
    ("cascade/limits/redis_store.py", ("tests/cascade/limits",)),
    ("cascade/limits/", ("tests/cascade/limits", "-k", "not redis")),
    ("cascade/observe.py", ("tests/cascade/test_observe.py", *_CORE)),
    ("cascade/", _CORE),
    ("models/protocol.py", ("tests/models/test_protocol.py",)),
    (
        "models/scrub.py",
        ("tests/models/test_scrub.py", "tests/models/remote/test_errors_sizes.py", "tests/cascade/test_scrub.py"),
    ),
    ("models/remote/catalogue.py", ("tests/models/remote/test_catalogue.py",)),
    (
        "models/remote/errors.py",
        ("tests/models/remote/test_errors_sizes.py", "tests/models/remote/test_retry.py", *_REMOTE),
    ),
    ("models/remote/sizes.py", ("tests/models/remote/test_errors_sizes.py", *_REMOTE)),
    ("models/remote/", _REMOTE),
    ("models/script/", ("tests/models/test_script_runner.py",)),
    ("models/stylegan3/", _STYLEGAN3_LOADING),
)
_MUTATED = (
    # Every module of the core but package markers with no code of their own and types.py (frozen dataclasses and
    # a Literal).
    *(
        p.relative_to(ROOT).as_posix()
        for p in sorted((ROOT / "cascade").rglob("*.py"))
        if p.name != "types.py" and (p.name != "__init__.py" or re.search(r"^\s*(def|class) ", p.read_text(), re.M))
    ),
    "models/protocol.py",
    "models/scrub.py",
    *_files("models/remote/*.py", but=("__init__.py", "__main__.py")),
    "models/script/runner.py",
    "models/script/tree.py",
    # The StyleGAN3 loader: the restricted unpickler and what it hands over to, not the generator's maths.
    *(f"models/stylegan3/{name}.py" for name in ("loader", "unpickler", "recognise", "options")),
    *_files("models/stylegan3/pickle_*.py"),
)


def _tests_for(module: str) -> tuple[str, ...]:
    """The module's group, its mirror test file (when there is one) first: with -x a mutant dies at its first
    failing test, usually there."""
    group = next(tests for prefix, tests in _GROUPS if module.startswith(prefix))
    folder, name = module.rsplit("/", 1)
    mirror = f"tests/{folder}/test_{name}"
    first = (mirror,) if (ROOT / mirror).is_file() else ()
    return tuple(dict.fromkeys((*first, *group)))


MODULES: dict[str, tuple[str, ...]] = {module: _tests_for(module) for module in _MUTATED}


# Mutants left out on purpose, as cosmic-ray operator-name regexes (matched from the start of the name):
EXCLUDED_OPERATORS = (
    # Arithmetic swaps into bitwise, shift, power, floor-division and modulo operators: almost all die of a
    # TypeError on the first call and only multiply the run time; + - * / swaps among themselves stay.
    r"core/ReplaceBinaryOperator_\w+_(Pow|RShift|LShift|BitOr|BitAnd|BitXor|FloorDiv|Mod)$",
    # `|` in this code is only a type union, mostly in annotations that `from __future__ import annotations`
    # never evaluates: every one of these would be an equivalent mutant.
    r"core/ReplaceBinaryOperator_BitOr_",
    # `==` -> `is` on interned string literals (outcomes, states) behaves the same in CPython, and
    # `x is None` -> `x == None` always does: equivalent. `is` <-> `is not` flips stay.
    r"core/ReplaceComparisonOperator_(Eq|NotEq|Lt|LtE|Gt|GtE)_(Is|IsNot)$",
    r"core/ReplaceComparisonOperator_Is_Eq$",
    r"core/ReplaceComparisonOperator_IsNot_NotEq$",
)


# Survivors that no test can kill because the program behaves the same (docs/mutation.md says why for each):
# (module, operator-name regex, regex on "what -> what instead | the source line | the line after => the line the
# mutant wrote"). They count apart, not in the score. Keep each narrow enough to match that one mutant.
EQUIVALENT: tuple[tuple[str, str, str], ...] = (
    # Only "busy" and "skipped" get this far, and "skipped" <= "busy" is false.
    ("cascade/circuit.py", r"ReplaceComparisonOperator_Eq_LtE$", r'elif outcome == "busy":'),
    # loc[1:] -> loc[0:]: loc[0] is always the field's name, a string, which the int filter drops anyway.
    ("cascade/schemas.py", r"NumberReplacer$", r"^1 -> 0 \| .*for p in loc\[1:\] if isinstance\(p, int\)"),
    # pydantic makes a field validator a class method whether or not it is decorated as one.
    ("cascade/schemas.py", r"RemoveDecorator$", r"\| @classmethod \| def _encodable_text\("),
    ("cascade/config.py", r"RemoveDecorator$", r"\| @classmethod \| def _known_(store|database)\("),
    # `_encodable`'s only caller asks `not _encodable(value)`: a None there reads as False does.
    ("cascade/schemas.py", r"ReplaceReturnWithNone$", r"\| return False \| return True => return None"),
    # A hue is only ever used modulo 1 (`_hex` takes h % 1.0): a hue constant moved by +-1, or the accent's own
    # `% 1.0` made `+ - * /` 1.0, or its 0.08 moved by +-1, gives the very same colours.
    ("cascade/svg.py", r"NumberReplacer$", r'^-?[\d.]+ -> -?[\d.]+ \| "[a-z]+": [\d.]+,'),
    ("cascade/svg.py", r"ReplaceBinaryOperator_Mod_", r"accent = hues\[1\] if len\(hues\) > 1 else"),
    ("cascade/svg.py", r"NumberReplacer$", r"^(0\.08 -> (1\.08|-0\.92)|1\.0 -> 2\.0) \| accent = "),
    # `h % 1.0` -> `h + 1.0` or `h % 2.0` in `_hex`: colorsys.hsv_to_rgb repeats every 1.0 for h >= 0, and no hue
    # here is below -0.125.
    ("cascade/svg.py", r"ReplaceBinaryOperator_Mod_Add$", r"colorsys\.hsv_to_rgb\(h % 1\.0, s, v\)"),
    ("cascade/svg.py", r"NumberReplacer$", r"^1\.0 -> 2\.0 \| r, g, b = colorsys\.hsv_to_rgb\(h % 1\.0, s, v\)"),
    # A circle reads b[0] to b[3] only: a slice that ends a byte or more later changes nothing.
    ("cascade/svg.py", r"NumberReplacer$", r"^(6 -> 7|4 -> 5) \| b = digest\[2 \+ i \* 4 : 6 \+ i \* 4\]"),
    # BaseException.__new__ keeps the positional args whether or not __init__ passes them on, and pickling (how Ray
    # sends a replica's error) restores `message` and `fields` from the instance's __dict__.
    ("models/protocol.py", r"DeleteCallStatement$", r"\| super\(\)\.__init__\(message, fields\) \|"),
    # sys.stderr is line-buffered and the line ends in a newline: flushed either way.
    ("models/protocol.py", r"ReplaceTrueWithFalse$", r"print\(error, file=stderr, flush=True\)"),
    # A name is matched in full before its type is looked up, and a name of ours has exactly one dot.
    ("cascade/store/keys.py", r"NumberReplacer$", r"=> return MIME_BY_EXTENSION\[name\.rsplit\(\"\.\", 2\)\[1\]\]$"),
    # read()'s default: any negative n means "to the end of the window".
    (
        "cascade/store/folder.py",
        r"(ReplaceUnaryOperator_USub_Invert|NumberReplacer)$",
        r"\| def read\(self, n: int = -1, /\)",
    ),
    # `_left` never goes below 0, and at 0 a read asks the file for 0 bytes, which is b"" too.
    ("cascade/store/folder.py", r"(ReplaceComparisonOperator_LtE_(Eq|Lt)|NumberReplacer)$", r"\| if self\._left <= 0:"),
    # O_NONBLOCK changes nothing for a regular file, and only regular files get past the fstat.
    ("cascade/store/folder.py", r"(DeleteCallStatement|ReplaceTrueWithFalse)$", r"\| os\.set_blocking\(fd, True\) \|"),
    # The temporary file always exists there: the rename onto the name is the try block's last step.
    ("cascade/store/folder.py", r"ReplaceTrueWithFalse$", r"\| Path\(tmp\)\.unlink\(missing_ok=True\) \|"),
    # Only a name equal to a bare time stamp would change sides, none of ours is one (a backend and 16 hex digits
    # follow), and the sweep keeps only names of ours.
    (
        "cascade/store/folder.py",
        r"ReplaceComparisonOperator_Lt_LtE$",
        r"\| names = sorted\(e\.name for e in os\.scandir",
    ),
    # Only a symlink would stat differently, and the is_file(follow_symlinks=False) before it keeps them out.
    ("cascade/store/folder.py", r"ReplaceFalseWithTrue$", r"\| if entry\.stat\(follow_symlinks=False\)\.st_mtime"),
    # Fragments are whole 4-character groups, so `>= 7` and `>= 8` pick the same ones.
    ("models/scrub.py", r"NumberReplacer$", r"^8 -> 7 \| _MIN_FRAGMENT_CHARS = 8"),
    # Alignment 3 is alignment 0 again (one more whole group of zeros in front): the same fragment, twice.
    ("models/scrub.py", r"NumberReplacer$", r"^3 -> 4 \| for lead in range\(3\):"),
    # For lead 0, 1 and 2, ceil(lead / 2) and ceil(lead / 4) are ceil(lead / 3): 0, 1, 1.
    ("models/scrub.py", r"NumberReplacer$", r"^3 -> [24] \| first_group = -\(-lead // 3\)"),
    # A cache of compiled patterns: only the speed changes.
    ("models/scrub.py", r"(NumberReplacer|RemoveDecorator)$", r"\| @lru_cache\(maxsize=256\) \|"),
    # backoff() is only asked about a try that failed (failures >= 1), so failures - 1 is never below 0.
    (
        "models/remote/retry.py",
        r"NumberReplacer$",
        r"^0 -> -1 \| ceiling = min\(self\.max_delay_s, .*max\(0, failures - 1\)",
    ),
    # `*` -> `/` before the keyword arguments: every caller names them, which works either way.
    ("models/remote/retry.py", r"ReplaceBinaryOperator_Mul_Div$", r"^ \| \*, \| policy: RetryPolicy,"),
    # The last try returns or raises (`tries == policy.max_tries`), so the loop never reaches a further round, and
    # `tries` never exceeds max_tries for `==` -> `>=` to see.
    ("models/remote/retry.py", r"NumberReplacer$", r"=> for tries in range\(1, policy\.max_tries \+ 2\):$"),
    (
        "models/remote/retry.py",
        r"ReplaceComparisonOperator_Eq_GtE$",
        r"\| if not exc\.retryable or tries == policy\.max_tries:",
    ),
    # Every status from 500 up was taken by the line before, so `< 500` and `<= 500` see the same statuses.
    ("models/remote/errors.py", r"ReplaceComparisonOperator_Lt_LtE$", r"\| if 400 <= status < 500:"),
    # `*` -> `/` before error_for_status's keyword arguments: every caller names them.
    ("models/remote/errors.py", r"ReplaceBinaryOperator_Mul_Div$", r"^ \| \*, \| retry_after: float \| None = None,"),
    # `*` -> `/` before Scrubber's keyword-only send_prompts: every caller names it.
    (
        "cascade/scrub.py",
        r"ReplaceBinaryOperator_Mul_Div$",
        r"def __init__\(self, secrets: Iterable\[str\] = \(\), \*, send_prompts",
    ),
    # Not equivalent after a power cut, but nothing short of one can tell: the flush and fsyncs that make an
    # answered save survive a crash (the bytes, then the name in the folder).
    (
        "cascade/store/folder.py",
        r"DeleteCallStatement$",
        r"\| (f\.flush\(\)|os\.fsync\(f\.fileno\(\)\)|self\._sync_folder\(\)|os\.fsync\(fd\)) \|",
    ),
)


@dataclass
class Outcome:
    module: str
    total: int = 0
    killed: int = 0
    incompetent: int = 0
    survivors: list[str] = field(default_factory=list)
    equivalent: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    @property
    def score(self) -> float:
        judged = self.killed + len(self.survivors)
        return 100.0 * self.killed / judged if judged else 100.0


def _slug(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def _copy_tree(dest: Path) -> None:
    """The work tree as git sees it (tracked and new files, no ignored ones such as .venv)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    for rel in filter(None, listed.decode().split("\0")):
        source = ROOT / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)


def _test_command(tests: tuple[str, ...]) -> str:
    # -x: one failing test is enough to call the mutant killed. -B keeps a stale .pyc of an earlier mutant (same
    # size, same second) from being imported instead of the next one.
    return shlex.join([str(PYTHON), "-B", "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header",
                       "-o", "addopts=", *tests])  # fmt: skip


def _config(module: str, tests: tuple[str, ...], timeout_s: float) -> str:
    command = _test_command(tests)
    excluded = ", ".join(json.dumps(pattern) for pattern in EXCLUDED_OPERATORS)
    return (
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(module)}\n"
        f"timeout = {timeout_s}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(command)}\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
        "[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = [{excluded}]\n"
    )


def _tool(name: str) -> str:
    return str(PYTHON.parent / name)


def _run(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def _baseline_seconds(tests: tuple[str, ...], cwd: Path) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [str(PYTHON), "-B", "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *tests],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"the unmutated tests fail, nothing to measure:\n{done.stdout[-3000:]}")
    return time.monotonic() - started


def run_module(module: str) -> Outcome:
    outcome = Outcome(module)
    started = time.monotonic()
    tests = MODULES[module]
    session = SESSIONS / f"{_slug(module)}.sqlite"
    try:
        with tempfile.TemporaryDirectory(prefix="cascade-mutation-") as tmp:
            work = Path(tmp)
            _copy_tree(work)
            # A mutant that makes the tests hang is killed by the timeout: generous against a loaded machine.
            timeout_s = max(30.0, 5 * _baseline_seconds(tests, work))
            (work / "cosmic-ray.toml").write_text(_config(module, tests, timeout_s))
            session.unlink(missing_ok=True)
            _run([*COSMIC_RAY, "init", "cosmic-ray.toml", str(session)], work)
            _run([_tool("cr-filter-operators"), str(session), "cosmic-ray.toml"], work)
            _run([*COSMIC_RAY, "exec", "cosmic-ray.toml", str(session)], work)
        _summarise(session, outcome)
    except RuntimeError as exc:
        outcome.error = str(exc)
    outcome.seconds = time.monotonic() - started
    return outcome


def _change(mutation: dict, line: str) -> str:
    """What a number mutant wrote instead ("1 -> 0"): cosmic-ray adds +1 then -1, two occurrences per number."""
    if not mutation["operator_name"].endswith("NumberReplacer") or mutation["end_pos"][0] != mutation["start_pos"][0]:
        return ""
    token = line[mutation["start_pos"][1] : mutation["end_pos"][1]]
    try:
        value = ast.literal_eval(token)
    except (ValueError, SyntaxError):
        return ""
    return f"{token} -> {value + (1 if mutation['occurrence'] % 2 == 0 else -1)}"


def _mutated_line(diff: str) -> str:
    """The first line the mutant wrote, from cosmic-ray's unified diff ("" for a deleted line)."""
    added = (line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++"))
    return next(added, "")


def recheck_survivors(module: str) -> Outcome:
    """Test again only the last run's survivors, against the tests as they are now (seconds, not minutes)."""
    from cosmic_ray.mutating import mutate_and_test
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome
    from mutation_operators import register

    register()
    outcome = Outcome(module)
    started = time.monotonic()
    session = SESSIONS / f"{_slug(module)}.sqlite"
    tests = MODULES[module]
    source = (ROOT / module).read_text().splitlines()
    here = Path.cwd()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="cascade-mutation-") as tmp,
            use_db(str(session), WorkDB.Mode.open) as db,
        ):
            work = Path(tmp)
            _copy_tree(work)
            timeout_s = max(30.0, 5 * _baseline_seconds(tests, work))
            command = _test_command(tests)
            os.chdir(work)  # cosmic-ray mutates the module path relative to the current folder
            try:
                for item, result in db.completed_work_items:
                    if result.test_outcome != TestOutcome.SURVIVED:
                        continue
                    first = item.mutations[0]
                    # Known equivalent mutants survive every test by definition: running them again only costs.
                    described = {"start_pos": tuple(first.start_pos), "end_pos": tuple(first.end_pos),
                                 "operator_name": first.operator_name, "occurrence": first.occurrence}  # fmt: skip
                    if not _judge(module, described, result.diff or "", source)[1]:
                        db.set_result(item.job_id, mutate_and_test(item.mutations, command, timeout_s))
            finally:
                os.chdir(here)
        _summarise(session, outcome)
    except RuntimeError as exc:
        outcome.error = str(exc)
    outcome.seconds = time.monotonic() - started
    return outcome


def _summarise(session: Path, outcome: Outcome) -> None:
    dump = subprocess.run([_tool("cosmic-ray"), "dump", str(session)], capture_output=True, text=True, check=True)
    source = (ROOT / outcome.module).read_text().splitlines()
    for line in dump.stdout.splitlines():
        item, result = json.loads(line)
        if result is None or result["worker_outcome"] == "skipped":
            continue
        outcome.total += 1
        if result["test_outcome"] == "killed":
            outcome.killed += 1
        elif result["test_outcome"] == "incompetent":
            outcome.incompetent += 1
        else:
            line, known = _judge(outcome.module, item["mutations"][0], result.get("diff") or "", source)
            (outcome.equivalent if known else outcome.survivors).append(line)
    for lines in (outcome.survivors, outcome.equivalent):
        lines.sort(key=lambda s: int(s.split(":")[1]))


def _judge(module: str, mutation: dict, diff: str, source: list[str]) -> tuple[str, bool]:
    """A surviving mutant's one-line description, and whether it is a known equivalent one (EQUIVALENT)."""
    row, col = mutation["start_pos"]
    operator = mutation["operator_name"].split("/", 1)[1]
    text = source[row - 1].strip()
    change = _change(mutation, source[row - 1])
    line = f"{module}:{row}:{col} {operator}{f' ({change})' if change else ''}: {text[:90]}"
    after = source[row].strip() if row < len(source) else ""
    seen = f"{change} | {text} | {after} => {_mutated_line(diff)}"
    known = any(name == module and re.match(op, operator) and re.search(where, seen) for name, op, where in EQUIVALENT)
    return line, known


def _selected(names: list[str]) -> list[str]:
    if not names:
        return list(MODULES)
    chosen: list[str] = []
    for name in names:
        name = name.rstrip("/")
        matches = [m for m in MODULES if m == name or m.startswith(name + "/")]
        if not matches:
            sys.exit(f"unknown module {name!r}; known: {', '.join(MODULES)}")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help="module files or folders, e.g. cascade/circuit.py or models/remote")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="modules mutated at the same time (default 1)")
    parser.add_argument("--fail-under", type=float, default=0.0, help="exit 1 when a module scores under this %%")
    parser.add_argument(
        "--survivors", action="store_true", help="test the last run's survivors again (after adding tests)"
    )
    parser.add_argument("--report", action="store_true", help="summarise the last run's sessions, run nothing")
    parser.add_argument("--list", action="store_true", help="print each module and its tests, then stop")
    args = parser.parse_args()
    modules = _selected(args.modules)
    if args.list:
        for module in modules:
            print(f"{module}: {' '.join(MODULES[module])}")
        return 0
    SESSIONS.mkdir(exist_ok=True)
    if args.survivors:
        outcomes = [recheck_survivors(m) for m in modules if (SESSIONS / f"{_slug(m)}.sqlite").is_file()]
    elif args.report:
        outcomes = [Outcome(module) for module in modules if (SESSIONS / f"{_slug(module)}.sqlite").is_file()]
        for o in outcomes:
            _summarise(SESSIONS / f"{_slug(o.module)}.sqlite", o)
    else:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = list(pool.map(run_module, modules))
    print(
        f"\n{'module':34} {'mutants':>7} {'killed':>6} {'survived':>8} {'equiv.':>6} {'incomp.':>7}"
        f" {'score':>6} {'time':>6}"
    )
    for o in outcomes:
        if o.error:
            print(f"{o.module:34} ERROR: {o.error}")
            continue
        print(
            f"{o.module:34} {o.total:7d} {o.killed:6d} {len(o.survivors):8d} {len(o.equivalent):6d} {o.incompetent:7d}"
            f" {o.score:5.1f}% {o.seconds:5.0f}s"
        )
    for o in outcomes:
        if o.equivalent:
            print(f"\nknown equivalent mutants in {o.module} (not in the score):")
            print("\n".join("  " + s for s in o.equivalent))
        if o.survivors:
            print(f"\nsurvivors in {o.module} (cr-report --show-diff {SESSIONS.name}/{_slug(o.module)}.sqlite):")
            print("\n".join("  " + s for s in o.survivors))
    low = [o.module for o in outcomes if not o.error and o.score < args.fail_under]
    if low:
        print(f"\nunder {args.fail_under:g} %: {', '.join(low)}")
    return 1 if low or any(o.error for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
