"""Suite files: which combinations to run and what to measure.

A suite is a TOML file (``suite.toml`` in a folder under ``suites/``, or any ``.toml`` file)::

    [suite]
    description = "How the seed models converge"

    [matrix]                      # defaults every case expands over
    devices = ["cpu", "cuda", "mps"]
    precisions = ["fp32", "fp16", "bf16"]
    seeds = [0, 1, 2]
    modes = ["eager"]             # how each step runs: eager (default), compile, cudagraphs

    [[cases]]
    model = "single_neuron"
    dataset = "line"
    target_loss = 0.01            # converged_epoch: first epoch with loss <= this
    recipe = { epochs = 300 }     # override any Recipe field
    options = {}                  # the dataset's options
    model_options = {}            # the model's options
    mode_options = { compile = { backend = "inductor" } }   # per mode, its options
    max_seconds = 60              # a run stops there with status timeout, keeping its curve
    # devices / precisions / seeds / modes here override the matrix for this case

Everything is checked against the loaded plugins before anything runs: an unknown key, a
value of the wrong type, or a name no plugin registered is reported with the file, the key and
the valid choices.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchkit.claims import Claim, parse_claim
from benchkit.criteria import Criterion, parse_criterion
from benchkit.errors import SuiteError
from benchkit.mode import DEFAULT_MODE
from benchkit.recipe_parts import recipe_problem
from benchkit.references import Reference, parse_reference
from benchkit.registry import RECIPE_KINDS, Registry
from benchkit.workload import Recipe

SUITE_FILE = "suite.toml"
_TOP_KEYS = {"suite", "matrix", "cases", "claims", "references", "compare"}  # compare.py
_SUITE_KEYS = {"name", "description", "criteria", "kind"}
_MATRIX_KEYS = {"devices", "precisions", "seeds", "batch_sizes", "modes"}
#: What ``benchkit run`` does with a suite: train (convergence), run its pytest-benchmark
#: tests (throughput), or measure each case's peak memory in a fresh process (memory).
SUITE_KINDS = ("convergence", "throughput", "memory")
_CASE_KEYS = _MATRIX_KEYS | {
    "model",
    "dataset",
    "target_loss",
    "recipe",
    "options",
    "model_options",
    "mode_options",
    "criteria",
    "trace",
    "max_seconds",
}
_RECIPE_TYPES: dict[str, tuple[type, ...]] = {
    "loss": (str,),
    "optimizer": (str,),
    "lr": (float, int),
    "epochs": (int,),
    "batch_size": (int,),
    "shuffle": (bool,),
    "optimizer_options": (dict,),
    "ignore_index": (int,),
    "loss_options": (dict,),
    "schedule": (str,),
    "schedule_options": (dict,),
}


@dataclass(frozen=True)
class Case:
    """One run: a model on a dataset under a precision on a device with a seed."""

    model: str
    dataset: str
    precision: str
    device: str
    seed: int
    recipe: Recipe
    target_loss: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    model_options: dict[str, Any] = field(default_factory=dict)
    variant: str = ""  # the suite's overrides, canonical JSON; tells apart same-named cases
    criteria: tuple[Criterion, ...] = ()  # first epoch each is met goes to criteria.csv
    trace: bool = False  # record parameters, gradients and prediction every epoch
    batch: int | None = None  # from a batch_sizes axis; None: the recipe's own
    tag: str = ""  # set only when two cases of a suite would otherwise share a run_id
    max_seconds: float | None = None  # a run stops there with status timeout
    mode: str = DEFAULT_MODE  # how each step runs (eager, compile, cudagraphs …)
    mode_options: dict[str, Any] = field(default_factory=dict)  # the mode's own options

    @property
    def base_id(self) -> str:
        """model/dataset/precision/device/seedN, /batchN from a batch-size sweep, and /MODE
        for any mode but eager (so eager runs keep the ids they had before modes existed)."""
        base = f"{self.model}/{self.dataset}/{self.precision}/{self.device}/seed{self.seed}"
        if self.batch is not None:
            base = f"{base}/batch{self.batch}"
        return base if self.mode == DEFAULT_MODE else f"{base}/{self.mode}"

    @property
    def run_id(self) -> str:
        """A key unique within a result set, stable across runs of the same suite."""
        return f"{self.base_id}/{self.tag}" if self.tag else self.base_id


@dataclass
class Suite:
    """A parsed, validated suite and the cases it expands to."""

    path: Path
    name: str
    description: str
    text: str
    cases: list[Case]
    claims: list[Claim] = field(default_factory=list)
    kind: str = "convergence"
    references: list[Reference] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        """Hash of the suite file's contents, recorded with every result set."""
        return hashlib.sha256(self.text.encode()).hexdigest()


def resolve_path(spec: str | Path) -> Path:
    """Find the suite file a user meant: a file, a folder holding ``suite.toml``, or a path
    written without its ``.toml`` extension."""
    path = Path(spec)
    candidates = (
        [path / SUITE_FILE] if path.is_dir() else [path, path.with_name(path.name + ".toml")]
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise SuiteError(
        f"suite {str(spec)!r} not found (looked for {tried}); "
        "pass a suite folder such as suites/convergence or a .toml file"
    )


def _type_name(types: tuple[type, ...]) -> str:
    names = {
        "str": "string",
        "int": "integer",
        "float": "number",
        "bool": "boolean",
        "dict": "table",
        "list": "array",
    }
    if float in types:  # an integer is a number too
        types = tuple(t for t in types if t is not int)
    return " or ".join(names[t.__name__] for t in types)


def _plain(value: Any) -> bool:
    """TOML values benchkit can record: no dates or times."""
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return isinstance(value, str | int | float | bool)


class SuiteChecker:
    """Validates the values of one suite file against the registered plugins; every error
    names the file and the key (``FILE: KEY: what is wrong; the valid choices``)."""

    def __init__(self, path: Path, registry: Registry) -> None:
        self.path = path
        self.registry = registry

    def fail(self, key: str, message: str) -> SuiteError:
        """The error for ``key`` (to raise): ``FILE: KEY: message``."""
        return SuiteError(f"{self.path}: {key}: {message}")

    def keys(self, table: dict[str, Any], allowed: set[str], where: str) -> None:
        """Reject a key of ``table`` that is not in ``allowed``."""
        for key in table:
            if key not in allowed:
                name = f"{where}.{key}" if where else key
                raise self.fail(name, f"unknown key; valid keys: {', '.join(sorted(allowed))}")

    def typed(self, value: Any, types: tuple[type, ...], key: str) -> Any:
        """``value`` if it is one of ``types`` (a boolean is not a number here)."""
        # bool is an int in Python; a suite that writes `epochs = true` is wrong all the same
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            raise self.fail(key, f"expected {_type_name(types)}, got {value!r}")
        return value

    def names(self, value: Any, key: str) -> list[Any]:
        """``value`` if it is a non-empty array (a matrix axis)."""
        if not isinstance(value, list) or not value:
            raise self.fail(key, f"expected a non-empty array, got {value!r}")
        return value

    def choice(self, kind: str, name: Any, key: str) -> str:
        """``name`` if a plugin registered a ``kind`` of that name."""
        self.typed(name, (str,), key)
        valid = self.registry.names(kind)
        if name not in valid:
            hint = self.registry.disabled_hint(kind, name)
            raise self.fail(
                key, f"unknown {kind} {name!r}; valid: {', '.join(valid) or 'none'}{hint}"
            )
        return name

    def device(self, name: Any, key: str) -> str:
        """A registered device, optionally with a numeric index (``cuda:1``)."""
        self.typed(name, (str,), key)
        base, _, index = name.partition(":")
        self.choice("device", base, key)
        if ":" in name and not index.isdigit():
            raise self.fail(key, f"device index in {name!r} must be a number, as in cuda:0")
        return name

    def options(self, given: Any, defaults: dict[str, Any], key: str, owner: str) -> dict:
        """``defaults`` updated with ``given``; each option must exist and match its
        default's type (any type where the default is ``None``)."""
        self.typed(given, (dict,), key)
        out = dict(defaults)
        for opt, value in given.items():
            if opt not in defaults:
                valid = ", ".join(sorted(defaults)) or "none"
                raise self.fail(f"{key}.{opt}", f"{owner} has no such option; valid: {valid}")
            default = defaults[opt]
            if default is not None:
                types: tuple[type, ...] = (
                    (float, int) if isinstance(default, float) else (type(default),)
                )
                self.typed(value, types, f"{key}.{opt}")
            if not _plain(value):
                raise self.fail(f"{key}.{opt}", "dates and times are not option values")
            out[opt] = value
        return out

    def batch_size(self, value: Any, key: str) -> int | None:
        """A positive batch size, or ``None`` for ``"recipe"`` (the recipe's own)."""
        if value == "recipe":
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(key, f'batch sizes are positive integers or "recipe", got {value!r}')
        return value

    def criteria(self, value: Any, key: str) -> tuple[Criterion, ...]:
        """An array of criteria strings, parsed."""
        texts = self.typed(value, (list,), key)
        out = []
        for i, text in enumerate(texts):
            self.typed(text, (str,), f"{key}[{i}]")
            try:
                out.append(parse_criterion(text))
            except ValueError as exc:
                raise self.fail(f"{key}[{i}]", str(exc)) from None
        return tuple(out)

    def recipe(self, base: Recipe, given: Any, key: str) -> tuple[Recipe, dict[str, Any]]:
        """``base`` with the ``recipe`` table's fields replaced, and the fields as given."""
        self.typed(given, (dict,), key)
        for name, value in given.items():
            if name not in _RECIPE_TYPES:
                valid = ", ".join(sorted(_RECIPE_TYPES))
                raise self.fail(f"{key}.{name}", f"unknown recipe field; valid: {valid}")
            self.typed(value, _RECIPE_TYPES[name], f"{key}.{name}")
        for kind, options_field in RECIPE_KINDS.items():
            name = given.get(kind, getattr(base, kind))
            if kind in given:
                self.choice(kind, name, f"{key}.{kind}")
            if options_field in given and name is not None:
                self.options(
                    given[options_field],
                    dict(self.registry.get(kind, name).options),
                    f"{key}.{options_field}",
                    f"{kind} {name!r}",
                )
        if not _plain(given):
            raise self.fail(key, "values must be strings, numbers, booleans, arrays or tables")
        try:
            recipe = base.with_overrides(given)
        except (TypeError, ValueError) as exc:
            raise self.fail(key, str(exc)) from None
        problem = recipe_problem(recipe, self.registry)
        if problem:
            raise self.fail(key, f"the recipe {recipe.describe()}: {problem}")
        return recipe, dict(given)


def parse_suite(
    spec: str | Path, registry: Registry, batch_sizes: Sequence[int | None] | None = None
) -> Suite:
    """Read, validate and expand a suite file against the registered plugins.

    The steps, each a function of its own: :func:`read_suite` (the file and its TOML),
    :func:`validate_top` (the tables every suite shares), then per case :func:`validate_case`
    and :func:`expand_case` (its matrix of runs), :func:`tag_shared_ids` (run ids stay
    unique), :func:`parse_claims` and :func:`parse_references`. A case is expanded before the
    next one is validated, so the first mistake in the file is the one reported.

    :param batch_sizes: replaces every case's batch-size axis (``None`` in it: the recipe's
        batch), as ``benchkit run --batch-sizes`` does.
    """
    path, text, doc = read_suite(spec)
    check = SuiteChecker(path, registry)
    top = validate_top(doc, check)
    cases: list[Case] = []
    seen: set[tuple[str, str]] = set()
    for index, raw in enumerate(top.cases):
        case_spec = validate_case(raw, index, top, check, batch_sizes)
        cases.extend(expand_case(case_spec, check, seen))
    cases = tag_shared_ids(cases)
    name = check.typed(top.meta.get("name", _default_name(path)), (str,), "suite.name")
    description = check.typed(top.meta.get("description", ""), (str,), "suite.description")
    claims = parse_claims(doc, cases, check)
    kind = check.typed(top.meta.get("kind", "convergence"), (str,), "suite.kind")
    if kind not in SUITE_KINDS:
        raise check.fail("suite.kind", f"unknown kind {kind!r}; valid: {', '.join(SUITE_KINDS)}")
    references = parse_references(doc, cases, check)
    if references and kind != "convergence":
        raise check.fail("references", f"a {kind} suite records no curves to compare with")
    return Suite(
        path=path,
        name=name,
        description=description,
        text=text,
        cases=cases,
        claims=claims,
        kind=kind,
        references=references,
    )


def read_suite(spec: str | Path) -> tuple[Path, str, dict[str, Any]]:
    """Step 1: find the suite file (:func:`resolve_path`), read it and parse its TOML.

    :returns: the file's path, its text (hashed and recorded with every result set) and the
        parsed document.
    :raises SuiteError: no such suite, or the file is not valid TOML.
    """
    path = resolve_path(spec)
    text = path.read_text(encoding="utf-8")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: not valid TOML: {exc}") from None
    return path, text, doc


@dataclass(frozen=True)
class SuiteTop:
    """What :func:`validate_top` checked: the ``[suite]`` and ``[matrix]`` tables, the
    suite-wide criteria and the raw ``[[cases]]`` tables (each still to be validated)."""

    meta: dict[str, Any]
    matrix: dict[str, Any]
    criteria: tuple[Criterion, ...]
    cases: list[Any]


def validate_top(doc: dict[str, Any], check: SuiteChecker) -> SuiteTop:
    """Step 2: the top-level keys and the tables every case shares.

    :raises SuiteError: an unknown key, a table of the wrong type, a bad suite-wide
        criterion, or no ``[[cases]]``.
    """
    check.keys(doc, _TOP_KEYS, "")
    meta = check.typed(doc.get("suite", {}), (dict,), "suite")
    check.keys(meta, _SUITE_KEYS, "suite")
    matrix = check.typed(doc.get("matrix", {}), (dict,), "matrix")
    check.keys(matrix, _MATRIX_KEYS, "matrix")
    check.typed(doc.get("compare", {}), (dict,), "compare")  # thresholds, read by compare
    suite_criteria = check.criteria(meta.get("criteria", []), "suite.criteria")
    raw_cases = doc.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise check.fail(
            "cases", "a suite needs at least one [[cases]] table with model and dataset"
        )
    return SuiteTop(meta=meta, matrix=matrix, criteria=suite_criteria, cases=raw_cases)


@dataclass(frozen=True)
class CaseSpec:
    """One validated ``[[cases]]`` table, before it is expanded over its matrix.

    ``overrides`` are the case's own recipe, options and model options as the file wrote
    them (they make the run's ``variant``); ``options`` and ``model_options`` are merged with
    the plugins' defaults. ``batches`` holds ``None`` for the recipe's own batch size.
    ``mode_options`` holds each mode's options merged with its defaults, ``given_mode_options``
    those the file wrote (a mode's own are part of its runs' ``variant``).
    """

    where: str
    model: str
    dataset: str
    recipe: Recipe
    overrides: dict[str, Any]
    options: dict[str, Any]
    model_options: dict[str, Any]
    target_loss: float | None
    criteria: tuple[Criterion, ...]
    trace: bool
    devices: list[str]
    precisions: list[str]
    seeds: list[int]
    batches: list[int | None]
    max_seconds: float | None = None
    modes: list[str] = field(default_factory=lambda: [DEFAULT_MODE])
    mode_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    given_mode_options: dict[str, Any] = field(default_factory=dict)


def validate_case(
    raw: Any,
    index: int,
    top: SuiteTop,
    check: SuiteChecker,
    batch_sizes: Sequence[int | None] | None = None,
) -> CaseSpec:
    """Step 3: check one ``[[cases]]`` table against the plugins and the suite's matrix.

    :param batch_sizes: replaces the case's batch-size axis (``benchkit run --batch-sizes``).
    :raises SuiteError: the first thing wrong with the case, naming its key.
    """
    registry = check.registry
    where = f"cases[{index}]"
    check.typed(raw, (dict,), where)
    check.keys(raw, _CASE_KEYS, where)
    for required in ("model", "dataset"):
        if required not in raw:
            raise check.fail(
                f"{where}.{required}", "missing (every case names a model and a dataset)"
            )
    model = check.choice("model", raw["model"], f"{where}.model")
    dataset = check.choice("dataset", raw["dataset"], f"{where}.dataset")
    model_reg = registry.get("model", model)
    if dataset not in model_reg.datasets:
        raise check.fail(
            f"{where}.dataset",
            f"model {model!r} does not fit dataset {dataset!r}; "
            f"it fits: {', '.join(sorted(model_reg.datasets))} (a dataset's plugin can "
            f"offer it with register(..., recipes={{{model!r}: Recipe(...)}}))",
        )
    recipe, recipe_overrides = check.recipe(
        model_reg.datasets[dataset], raw.get("recipe", {}), f"{where}.recipe"
    )
    options = check.options(
        raw.get("options", {}),
        dict(registry.get("dataset", dataset).options),
        f"{where}.options",
        f"dataset {dataset!r}",
    )
    model_options = check.options(
        raw.get("model_options", {}),
        dict(model_reg.options),
        f"{where}.model_options",
        f"model {model!r}",
    )
    target = raw.get("target_loss")
    if target is not None:
        target = float(check.typed(target, (float, int), f"{where}.target_loss"))
    criteria = (
        check.criteria(raw["criteria"], f"{where}.criteria") if "criteria" in raw else top.criteria
    )
    trace = check.typed(raw.get("trace", False), (bool,), f"{where}.trace")
    max_seconds = raw.get("max_seconds")
    if max_seconds is not None:
        check.typed(max_seconds, (float, int), f"{where}.max_seconds")
        if not (math.isfinite(max_seconds) and max_seconds > 0):
            raise check.fail(f"{where}.max_seconds", f"expected seconds > 0, got {max_seconds}")
        max_seconds = float(max_seconds)
    if trace and recipe.batch_size is not None:
        raise check.fail(f"{where}.trace", "a trace needs a full-batch recipe (no batch_size)")

    def axis(name: str) -> tuple[list[Any], str]:
        if name in raw:
            return check.names(raw[name], f"{where}.{name}"), f"{where}.{name}"
        if name in top.matrix:
            return check.names(top.matrix[name], f"matrix.{name}"), f"matrix.{name}"
        raise check.fail(
            f"{where}.{name}", f"no {name} for this case: set [matrix] {name} or the case's own"
        )

    devices, dkey = axis("devices")
    precisions, pkey = axis("precisions")
    seeds, skey = axis("seeds")
    devices = [check.device(d, dkey) for d in devices]
    precisions = [check.choice("precision", p, pkey) for p in precisions]
    seeds = [check.typed(s, (int,), skey) for s in seeds]
    modes, mode_options = _modes(check, raw, top.matrix, where)
    if trace and any(m != DEFAULT_MODE for m in modes):
        raise check.fail(
            f"{where}.trace", f"a trace records every step as written: run it in {DEFAULT_MODE}"
        )
    batches: list[int | None] = [None]
    if batch_sizes is not None:
        batches = list(batch_sizes)
    elif "batch_sizes" in raw or "batch_sizes" in top.matrix:
        sizes, bkey = axis("batch_sizes")
        batches = [check.batch_size(b, bkey) for b in sizes]
    overrides = {
        k: v
        for k, v in (
            ("options", raw.get("options")),
            ("model_options", raw.get("model_options")),
            ("recipe", recipe_overrides),
        )
        if v
    }
    return CaseSpec(
        where=where,
        model=model,
        dataset=dataset,
        recipe=recipe,
        overrides=overrides,
        options=options,
        model_options=model_options,
        target_loss=target,
        criteria=criteria,
        trace=trace,
        devices=devices,
        precisions=precisions,
        seeds=seeds,
        batches=batches,
        max_seconds=max_seconds,
        modes=modes,
        mode_options=mode_options,
        given_mode_options=dict(raw.get("mode_options", {})),
    )


def expand_case(spec: CaseSpec, check: SuiteChecker, seen: set[tuple[str, str]]) -> list[Case]:
    """Step 4: one :class:`Case` per batch size, mode, device, precision and seed, in that
    order.

    :param seen: ``(base_id, variant)`` of the runs expanded so far; extended in place.
    :raises SuiteError: a run the suite already has (same ids, same overrides).
    """
    cases = []
    for batch, mode in itertools.product(spec.batches, spec.modes):
        sized = dict(spec.overrides, batch_size=batch) if batch is not None else spec.overrides
        if mode in spec.given_mode_options:  # only this mode's own options tell it apart
            sized = dict(sized, mode_options=spec.given_mode_options[mode])
        variant = json.dumps(sized, sort_keys=True) if sized else ""
        batch_recipe = spec.recipe if batch is None else replace(spec.recipe, batch_size=batch)
        for device, precision, seed in itertools.product(spec.devices, spec.precisions, spec.seeds):
            case = Case(
                spec.model,
                spec.dataset,
                precision,
                device,
                seed,
                batch_recipe,
                spec.target_loss,
                spec.options,
                spec.model_options,
                variant,
                spec.criteria,
                spec.trace,
                batch,
                max_seconds=spec.max_seconds,
                mode=mode,
                mode_options=spec.mode_options[mode],
            )
            if (case.base_id, variant) in seen:
                raise check.fail(spec.where, f"run {case.base_id} appears twice in the suite")
            seen.add((case.base_id, variant))
            cases.append(case)
    return cases


def tag_shared_ids(cases: Sequence[Case]) -> list[Case]:
    """Step 5: a case with overrides that shares its base id with another case gets a short
    hash of the overrides in its run_id; the plain case keeps its id, so adding a variant to
    a suite does not rename runs recorded before."""
    shared = Counter(c.base_id for c in cases)
    return [
        replace(c, tag=hashlib.sha1(c.variant.encode()).hexdigest()[:8])
        if shared[c.base_id] > 1 and c.variant
        else c
        for c in cases
    ]


def parse_claims(doc: dict[str, Any], cases: Sequence[Case], check: SuiteChecker) -> list[Claim]:
    """Step 6: the ``[[claims]]`` tables (see :mod:`benchkit.claims`); a claim may name only
    criteria the suite's cases record, and claim ids are unique.

    :raises SuiteError: the first thing wrong with a claim.
    """
    raw_claims = check.typed(doc.get("claims", []), (list,), "claims")
    known = {c.text for case in cases for c in case.criteria}
    claims = []
    for i, raw in enumerate(raw_claims):
        check.typed(raw, (dict,), f"claims[{i}]")
        claims.append(parse_claim(raw, i, check.fail, known))
    ids = [c.id for c in claims]
    if len(ids) != len(set(ids)):
        raise check.fail("claims", f"claim ids must be unique, got {', '.join(ids)}")
    return claims


def parse_references(
    doc: dict[str, Any], cases: Sequence[Case], check: SuiteChecker
) -> list[Reference]:
    """Step 7: the ``[[references]]`` tables, the figures a source printed (see
    :mod:`benchkit.references`); each must match a case of the suite, and ids are unique.

    :raises SuiteError: the first thing wrong with a reference.
    """
    raw_references = check.typed(doc.get("references", []), (list,), "references")
    references = []
    for i, raw in enumerate(raw_references):
        check.typed(raw, (dict,), f"references[{i}]")
        references.append(parse_reference(raw, i, check.fail, cases))
    ids = [r.id for r in references]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise check.fail(
            "references", f"reference ids must be unique; repeated: {', '.join(repeated)}"
        )
    return references


def _modes(
    check: SuiteChecker, raw: dict[str, Any], matrix: dict[str, Any], where: str
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """A case's modes (its own ``modes``, the matrix's, or eager) and each one's options: the
    registered defaults updated by the case's ``mode_options = { MODE = { ... } }``."""
    if "modes" in raw:
        names, key = check.names(raw["modes"], f"{where}.modes"), f"{where}.modes"
    elif "modes" in matrix:
        names, key = check.names(matrix["modes"], "matrix.modes"), "matrix.modes"
    else:  # eager needs no plugin: a registry without the built-in modes still runs suites
        names, key = [DEFAULT_MODE], ""
    modes = [check.choice("mode", m, key) if key else m for m in names]
    given = check.typed(raw.get("mode_options", {}), (dict,), f"{where}.mode_options")
    for name in given:
        if name not in modes:
            raise check.fail(
                f"{where}.mode_options.{name}",
                f"the case does not run in mode {name!r}; its modes: {', '.join(modes)}",
            )
    registered = check.registry.entries["mode"]
    options = {
        m: check.options(
            given.get(m, {}),
            dict(registered[m].options) if m in registered else {},
            f"{where}.mode_options.{m}",
            f"mode {m!r}",
        )
        for m in modes
    }
    return modes, options


def _default_name(path: Path) -> str:
    return path.parent.name if path.name == SUITE_FILE else path.stem


def parse_batch_sizes(text: str) -> list[int | None]:
    """``"recipe,1,16,256"`` → ``[None, 1, 16, 256]``."""
    sizes: list[int | None] = []
    for part in (p.strip() for p in text.split(",")):
        if part == "recipe":
            sizes.append(None)
        elif part.isdigit() and int(part) > 0:
            sizes.append(int(part))
        else:
            raise SuiteError(
                f"--batch-sizes {text!r}: write positive sizes or 'recipe', "
                "as in recipe,1,16,256,4096"
            )
    return sizes


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-2"`` (or a mix) → ``[0, 1, 2]``."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        lo, dash, hi = part.partition("-")
        if not (lo.isdigit() and (not dash or hi.isdigit())):
            raise SuiteError(f"--seeds {text!r}: write seeds as 0,1,2 or 0-2")
        first, last = int(lo), int(hi) if dash else int(lo)
        if last < first:
            raise SuiteError(f"--seeds {text!r}: range {part} runs backwards; write {hi}-{lo}")
        seeds.extend(range(first, last + 1))
    return seeds


def filter_cases(
    cases: Sequence[Case],
    models: Iterable[str] = (),
    datasets: Iterable[str] = (),
    precisions: Iterable[str] = (),
    devices: Iterable[str] = (),
    seeds: Iterable[int] = (),
    modes: Iterable[str] = (),
) -> list[Case]:
    """Narrow the suite's cases; a filter value the suite does not have is an error, and so
    are filters that have no run in common.

    A device filter ``cuda:1`` picks the suite's ``cuda:1`` cases, or, where the suite has
    none, its ``cuda`` cases, run on ``cuda:1``.
    """
    out = list(cases)
    used = []
    for flag, wanted, attr in (
        ("--model", models, "model"),
        ("--dataset", datasets, "dataset"),
        ("--precision", precisions, "precision"),
        ("--seeds", seeds, "seed"),
        ("--mode", modes, "mode"),
    ):
        wanted = list(wanted)
        if not wanted:
            continue
        have = sorted({getattr(c, attr) for c in cases}, key=str)
        missing = [w for w in wanted if w not in have]
        if missing:
            raise SuiteError(
                f"{flag} {','.join(map(str, missing))} matches nothing in the suite; "
                f"it has: {', '.join(map(str, have))}"
            )
        used.append(f"{flag} {','.join(map(str, wanted))}")
        out = [c for c in out if getattr(c, attr) in wanted]
    wanted_devices = list(devices)
    if wanted_devices:
        have_devices = sorted({c.device for c in cases})
        picked: dict[str, Case] = {}
        for want in wanted_devices:
            base = want.partition(":")[0]
            if want in have_devices:
                chosen = [c for c in out if c.device == want]
            elif ":" in want and base in have_devices:
                chosen = [_with_device(c, want) for c in out if c.device == base]
            else:
                raise SuiteError(
                    f"--device {want} matches nothing in the suite; "
                    f"it has: {', '.join(have_devices)}"
                )
            picked.update((c.run_id, c) for c in chosen)
        used.append(f"--device {','.join(wanted_devices)}")
        out = list(picked.values())
    if not out:
        raise SuiteError(f"no run of the suite matches {' '.join(used)} together")
    return out


def _with_device(case: Case, device: str) -> Case:
    return replace(case, device=device)
