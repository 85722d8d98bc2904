"""The settings of the ES experiments (es_bbob, es_cartpole) as dataclasses, validated up front.

The dataclasses are the truth; `experiments/configs/es_*.py` derive their ConfigDicts from them
(`lfx.experiment.to_configdict`) and the scripts turn them back (`from_configdict`). Everything
that can be wrong with a configuration -- an unknown strategy, function or ablation field, an
ablation that does not parse, a non-positive size, an LM file that is missing or a `.pkl` -- is
refused here, with a message that names the fix, before a script opens its work directory.

    settings = ESSettings(...)                    # strategies, population, generations, evollm
    validate_settings(settings, dims=(2, 5))      # raises ConfigError
    for label, s in ablation_variants(settings):  # "" or "field=value" per ablation value
        strategy = build_strategy(name, s, dim, lm)
"""

from __future__ import annotations

import dataclasses
import difflib

from evosax import algorithms as evosax_algorithms

from lfx.es.evollm import EvoLLM, EvoLLMConfig
from lfx.es.evollm.models import LM_NAMES, check_lm_files
from lfx.es.strategies import STRATEGIES, make_strategy
from lfx.experiment.config import ConfigError

EVOLLM = "evollm"


@dataclasses.dataclass(frozen=True)
class EvoLLMSettings:
    """The `evollm` block: which LM (`lfx.es.evollm.models`) and EvoLLM's prompt/search knobs."""

    lm: str = "smollm2"  # smollm2 | teacher | untrained | toy
    lm_path: str = ""  # teacher/untrained: teacher_lm.npz (+ .json); smollm2: optional .gguf
    adapter_path: str = ""  # LoRA adapters (.npz) merged into SmolLM2; needs lm="smollm2"
    block_size: int = 2
    context_length: int = 5
    context_selection: str = "best"
    sort_order: str = "least_to_most"
    x_decimals: int = 2
    fitness_digits: int = 3
    sigma: float = 0.5
    sigma_decay: float = 1.0
    temperature: float = 0.0
    max_rows: int = 256  # LM rows per generate call (runs are chunked to fit)


@dataclasses.dataclass(frozen=True)
class ESSettings:
    """Strategies and their settings, shared by the BBOB and neuroevolution experiments.

    strategies: comma-separated names: keys of `lfx.es.STRATEGIES`, "evollm", or evosax names.
    ablation: "" or "field=v1,v2,..." over a field of this class or of `evollm`: every strategy
      runs once per value (labels "name[field=v]").
    """

    strategies: str = "random_search,hill_climbing,open_es,snes,cma_es"
    population_size: int = 8
    num_generations: int = 25
    init_mean: float = 0.0
    hill_climbing_std: float = 0.5
    open_es_lr: float = 0.3  # best of {0.01, 0.03, 0.1, 0.3} (std 0.5); see docs/results/es.md
    open_es_std: float = 1.0  # best of {0.1, 0.3, 0.5, 1.0} (lr 0.1)
    ablation: str = ""
    evollm: EvoLLMSettings = EvoLLMSettings()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.strategies.split(","))


# Fields an ablation may vary (everything but the lists themselves and the LM files).
_NOT_ABLATABLE = {"strategies", "ablation", "evollm", "lm", "lm_path", "adapter_path"}


def _suggest(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def split_names(spec: str, what: str, known, *, field: str) -> tuple[str, ...]:
    """'a,b' -> ('a', 'b'), refusing empty entries, repeats and names outside `known`."""
    names = tuple(s.strip() for s in spec.split(","))
    if not spec.strip() or not all(names):
        raise ConfigError(f"config.{field} must be a comma-separated list of {what} names, got "
                          f"{spec!r}. Known: {', '.join(known)}.")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"config.{field} names {repeated} more than once.")
    for n in names:
        if n not in known:
            raise ConfigError(f"Unknown {what} {n!r} in config.{field}.{_suggest(n, known)} "
                              f"Known: {', '.join(known)}.")
    return names


def known_strategies() -> tuple[str, ...]:
    """lfx's strategy names, "evollm", then the other evosax algorithm names."""
    lfx_names = (*sorted(STRATEGIES), EVOLLM)
    return lfx_names + tuple(n for n in sorted(evosax_algorithms.algorithms) if n not in lfx_names)


def parse_ablation(settings: ESSettings) -> tuple[str, tuple[str, ...]] | None:
    """`settings.ablation` "field=v1,v2" -> (field, raw values), or None; refuses bad syntax."""
    spec = settings.ablation.strip()
    if not spec:
        return None
    fields = {f.name: f for f in dataclasses.fields(ESSettings)}
    evollm_fields = {f.name: f for f in dataclasses.fields(EvoLLMSettings)}
    allowed = sorted((set(fields) | set(evollm_fields)) - _NOT_ABLATABLE)
    if spec.count("=") != 1:
        raise ConfigError(f"config.ablation must look like 'field=v1,v2,...' (one '='), got "
                          f"{spec!r}; e.g. --config.ablation=sort_order=least_to_most,random.")
    field, values = (s.strip() for s in spec.split("="))
    if field not in allowed:
        raise ConfigError(f"config.ablation: {field!r} is not a field an ablation can vary."
                          f"{_suggest(field, allowed)} Fields: {', '.join(allowed)}.")
    items = tuple(v.strip() for v in values.split(","))
    if not values.strip() or not all(items):
        raise ConfigError(f"config.ablation: {field!r} needs a comma-separated list of values, "
                          f"got {values!r}.")
    if len(set(items)) != len(items):
        raise ConfigError(f"config.ablation lists a value of {field!r} twice: {values!r}.")
    return field, items


def _convert(field: str, raw: str, current):
    kind = type(current)
    try:
        if kind is bool:
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            return raw.lower() == "true"
        return kind(raw)
    except ValueError:
        raise ConfigError(f"config.ablation: {raw!r} is not a valid {kind.__name__} for "
                          f"{field!r}.") from None


def ablation_variants(settings: ESSettings) -> list[tuple[str, ESSettings]]:
    """[(label, settings)]: [("", settings)] without an ablation, else one per value."""
    parsed = parse_ablation(settings)
    if parsed is None:
        return [("", settings)]
    field, values = parsed
    out = []
    for raw in values:
        if field in {f.name for f in dataclasses.fields(EvoLLMSettings)}:
            value = _convert(field, raw, getattr(settings.evollm, field))
            s = dataclasses.replace(settings,
                                    evollm=dataclasses.replace(settings.evollm, **{field: value}))
        else:
            value = _convert(field, raw, getattr(settings, field))
            s = dataclasses.replace(settings, **{field: value})
        out.append((f"{field}={raw}", s))
    return out


def evollm_config(settings: ESSettings, dim: int) -> EvoLLMConfig:
    e = settings.evollm
    return EvoLLMConfig(
        population_size=settings.population_size, num_dims=dim, block_size=e.block_size,
        context_length=e.context_length, context_selection=e.context_selection,
        sort_order=e.sort_order, x_decimals=e.x_decimals, fitness_digits=e.fitness_digits,
        sigma=e.sigma, sigma_decay=e.sigma_decay, temperature=e.temperature,
    )


def build_strategy(name: str, settings: ESSettings, dim: int, lm=None):
    """The strategy `name` for `dim`-dimensional search (EvoLLM needs the loaded `lm`)."""
    if name == EVOLLM:
        if lm is None:
            raise ValueError("build_strategy('evollm', ...) needs the language model (lm=).")
        return EvoLLM(evollm_config(settings, dim), lm)
    kwargs = {}
    if name == "hill_climbing":
        kwargs = {"std": settings.hill_climbing_std}
    elif name == "open_es":
        kwargs = {"lr": settings.open_es_lr, "std": settings.open_es_std}
    return make_strategy(name, population_size=settings.population_size, num_dims=dim, **kwargs)


def validate_settings(settings: ESSettings, dims: tuple[int, ...]) -> tuple[str, ...]:
    """Refuses everything that would fail later (see the module doc); returns the strategy names.

    Builds every (strategy, ablation value, dim) once without an LM -- cheap, nothing compiles --
    so a bad value (an odd OpenAI-ES population, an unknown sort order) fails now. LM files are
    checked, not loaded.
    """
    names = split_names(settings.strategies, "strategy", known_strategies(), field="strategies")
    for field in ("population_size", "num_generations"):
        if getattr(settings, field) < 1:
            raise ConfigError(f"config.{field} must be >= 1, got {getattr(settings, field)}.")
    if settings.evollm.max_rows < 1:
        raise ConfigError(f"config.evollm.max_rows must be >= 1, got {settings.evollm.max_rows}.")
    for label, s in ablation_variants(settings):
        where = f" (ablation {label})" if label else ""
        for dim in dims:
            for name in names:
                try:
                    if name == EVOLLM:
                        evollm_config(s, dim).validate()
                    else:
                        build_strategy(name, s, dim)
                except (ValueError, TypeError) as err:
                    raise ConfigError(f"Strategy {name!r} at {dim}-D{where}: {err}") from None
    if EVOLLM in names:
        e = settings.evollm
        if e.lm not in LM_NAMES:
            raise ConfigError(f"Unknown config.evollm.lm {e.lm!r}.{_suggest(e.lm, LM_NAMES)} "
                              f"Known: {', '.join(LM_NAMES)}.")
        try:
            check_lm_files(e.lm, e.lm_path, e.adapter_path)
        except (ValueError, FileNotFoundError) as err:
            raise ConfigError(str(err)) from None
    return names


def parse_dims(spec: str) -> tuple[int, ...]:
    """'2,5,10' -> (2, 5, 10); refuses non-integers and values < 1."""
    try:
        dims = tuple(int(d) for d in str(spec).split(","))
    except ValueError:
        raise ConfigError(f"config.dims must be comma-separated positive integers, got "
                          f"{spec!r}.") from None
    if not dims or min(dims) < 1 or len(set(dims)) != len(dims):
        raise ConfigError(f"config.dims must be distinct positive integers, got {spec!r}.")
    return dims


@dataclasses.dataclass(frozen=True)
class BBOBSettings:
    """What experiments/es_bbob.py runs on: functions x dims x seeds (one task each)."""

    fns: str = "sphere,ellipsoidal,rosenbrock,rastrigin,discus,attractive_sector," \
        "different_powers,schaffers_f7"
    dims: str = "2,5,10"
    num_seeds: int = 5
    tag: str = "baselines"  # names the default work directory runs/es_bbob_<tag>_<time>


@dataclasses.dataclass(frozen=True)
class NeuroSettings:
    """What experiments/es_cartpole.py runs on: an MLP policy on an lfx env."""

    env: str = "CartPole-v1"
    hidden: int = 4  # 4-4-2 tanh MLP: 30 parameters -> 15 blocks of 2 per EvoLLM query
    num_seeds: int = 3
    num_episodes: int = 1
    max_steps: int = 500
    tag: str = "default"
