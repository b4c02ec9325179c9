r"""A study file: what to train, on which environments, with which seeds and variants.

A study is one YAML file (see ``examples/studies/``)::

    name: cartpole-smoke            # the Optuna study name and the results folder
    algo: dqn                       # dqn | qrdqn | td3 | ddpg | sac | ppo | a2c
    envs: [CartPole-v1]
    seeds: [0, 1]
    budget: 2000                    # environment steps per run
    n_envs: 1
    eval: {freq: 500, episodes: 5, deterministic: true}
    checkpoint_freq: 1000           # model + replay buffer + RNG state every K steps
    diagnostics: true               # spike rates, θ⁻, per-layer gradient norms at each evaluation
    hyperparams: {learning_rate: 2.3e-3, ...}        # algorithm kwargs of every variant
    env_hyperparams: {CartPole-v1: {...}}            # per environment (optional; may set budget, n_envs)
    baseline: ann                   # the variant scores are normalised to
    random_scores: {CartPole-v1: 9.4}                # 0 % of the normalised score (default 0)
    variants:
      ann: {policy: MlpPolicy, policy_kwargs: {net_arch: [256, 256]}}
      ternary:
        policy: snnrl_sb3.SpikingQPolicy
        preset: datsqn              # shorthand for policy_kwargs.preset
        policy_kwargs: {body: small_cnn}
        hyperparams: {learning_rate: 1.0e-4}         # overrides for this variant
    claims:                         # decided by the report (probability of improvement)
      - {name: "ternary beats the ANN", better: ternary, worse: ann}
      - {name: "ternary matches the ANN", better: ternary, worse: ann, relation: matches, margin: 0.15}
    tune:                           # optional: `run --tune`, a TPE search over one variant
      variant: ternary
      envs: [CartPole-v1]
      seeds: [0, 1, 2]              # the objective is the mean over these seeds
      n_trials: 20
      space:
        policy_kwargs.num_steps: {type: int, low: 2, high: 8}
        policy_kwargs.surrogate_kwargs.alpha: {type: float, low: 0.5, high: 4.0, log: true}
        hyperparams.learning_rate: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}

Every value is JSON-plain. Strings in ``hyperparams`` that SB3 cannot take from YAML are written as
rl-zoo3 writes them: ``learning_rate: lin_1e-3`` (a linear schedule), ``noise_type: normal`` with
``noise_std: 0.1`` (TD3/DDPG action noise), ``train_freq: [1, episode]``.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from snnrl_sb3._validation import check_choice, check_int, check_seed

__all__ = ["ALGORITHMS", "Cell", "EvalProtocol", "Study", "TuneSpec", "Variant", "load_study"]

#: ``algo:`` values and the algorithm class each names (module, attribute).
ALGORITHMS = {
    "dqn": ("stable_baselines3", "DQN"),
    "qrdqn": ("sb3_contrib", "QRDQN"),
    "td3": ("stable_baselines3", "TD3"),
    "ddpg": ("stable_baselines3", "DDPG"),
    "sac": ("stable_baselines3", "SAC"),
    "ppo": ("stable_baselines3", "PPO"),
    "a2c": ("stable_baselines3", "A2C"),
}
_TOP_KEYS = {"name", "algo", "envs", "seeds", "budget", "n_envs", "eval", "checkpoint_freq", "diagnostics",
             "hyperparams", "env_hyperparams", "baseline", "random_scores", "variants", "claims", "tune",
             "description"}
_VARIANT_KEYS = {"policy", "preset", "policy_kwargs", "hyperparams", "label"}
_TUNE_TYPES = ("int", "float", "categorical")


def _plain(name: str, value: Any) -> Any:
    """``value`` if it is JSON-plain (finite numbers, strings, bools, None, lists, string-keyed dicts)."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be JSON-plain (numbers, strings, lists, dicts), got {value!r}: {error}") \
            from None
    return json.loads(text)


def _mapping(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a mapping, got {type(value).__name__}")
    return dict(_plain(name, dict(value)))


def _unknown(where: str, given: Mapping[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(given) - allowed)
    if extra:
        raise ValueError(f"{where}: unknown key(s) {extra}; allowed: {sorted(allowed)}")


@dataclass(frozen=True)
class EvalProtocol:
    """How each run is evaluated: every ``freq`` environment steps, ``episodes`` episodes on a
    separate environment (seeded ``seed + 10_000``), greedy when ``deterministic``."""

    freq: int
    episodes: int = 10
    deterministic: bool = True


@dataclass(frozen=True)
class Variant:
    """One agent of a study: its policy (an SB3 policy name, ``snnrl_sb3`` class name or dotted
    path), policy kwargs (``preset`` folded in) and algorithm-kwarg overrides."""

    name: str
    policy: str
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    hyperparams: dict[str, Any] = field(default_factory=dict)
    label: str = ""


@dataclass(frozen=True)
class Cell:
    """One run of a study: a (variant, environment, seed) and everything that defines its result.

    ``key`` names it (``variant/env/seed<k>``, also its results folder); ``definition`` is the
    JSON of what the run depends on and ``digest`` its hash: a cell whose definition changed is a
    different experiment and is never resumed from, or mixed with, the old one's results."""

    variant: str
    env: str
    seed: int
    algo: str
    policy: str
    policy_kwargs: dict[str, Any]
    hyperparams: dict[str, Any]
    budget: int
    n_envs: int
    eval: EvalProtocol
    checkpoint_freq: int
    diagnostics: bool

    @property
    def key(self) -> str:
        return f"{self.variant}/{self.env.replace('/', '-')}/seed{self.seed}"

    @property
    def definition(self) -> dict[str, Any]:
        return {"variant": self.variant, "env": self.env, "seed": self.seed, "algo": self.algo,
                "policy": self.policy, "policy_kwargs": self.policy_kwargs, "hyperparams": self.hyperparams,
                "budget": self.budget, "n_envs": self.n_envs, "eval": self.eval.__dict__,
                "diagnostics": self.diagnostics}

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.definition, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TuneSpec:
    """``run --tune``: a TPE search over ``space`` for ``variant``; a trial's objective is the
    mean final evaluation over ``seeds`` and ``envs``."""

    variant: str
    envs: tuple[str, ...]
    seeds: tuple[int, ...]
    n_trials: int
    space: dict[str, dict[str, Any]]
    objective: str = "final"


@dataclass(frozen=True)
class Study:
    """A parsed, validated study file (see the module docs for the format)."""

    name: str
    algo: str
    envs: tuple[str, ...]
    seeds: tuple[int, ...]
    budget: int
    n_envs: int
    eval: EvalProtocol
    checkpoint_freq: int
    diagnostics: bool
    hyperparams: dict[str, Any]
    env_hyperparams: dict[str, dict[str, Any]]
    variants: dict[str, Variant]
    baseline: str | None = None
    random_scores: dict[str, float] = field(default_factory=dict)
    claims: tuple[dict[str, Any], ...] = ()
    tune: TuneSpec | None = None
    description: str = ""
    path: Path | None = None

    def cell(self, variant: str, env: str, seed: int, *, overrides: Mapping[str, Any] | None = None) -> Cell:
        """The run of ``variant`` on ``env`` with ``seed``; ``overrides`` (``{"policy_kwargs.x": v,
        "hyperparams.y": w}``, dotted paths as in ``tune.space``) change its definition."""
        v = self.variants[variant]
        env_hyperparams = dict(self.env_hyperparams.get(env, {}))
        budget = env_hyperparams.pop("budget", self.budget)
        n_envs = env_hyperparams.pop("n_envs", self.n_envs)
        hyperparams = {**self.hyperparams, **env_hyperparams, **v.hyperparams}
        parts = {"policy_kwargs": copy.deepcopy(v.policy_kwargs), "hyperparams": copy.deepcopy(hyperparams)}
        for path, value in (overrides or {}).items():
            head, *rest = path.split(".")
            target = parts[head]
            for key in rest[:-1]:
                target = target.setdefault(key, {})
            target[rest[-1]] = value
        return Cell(variant=variant, env=env, seed=seed, algo=self.algo, policy=v.policy,
                    policy_kwargs=parts["policy_kwargs"], hyperparams=parts["hyperparams"], budget=budget,
                    n_envs=n_envs, eval=self.eval, checkpoint_freq=self.checkpoint_freq,
                    diagnostics=self.diagnostics)

    def cells(self) -> list[Cell]:
        """Every (variant, env, seed) run of the study, in a fixed order (seeds outermost, so that
        workers finish whole seeds of every variant first)."""
        return [self.cell(v, env, seed) for seed in self.seeds for env in self.envs for v in self.variants]


def normalize_kwargs(cell: Cell) -> dict[str, Any] | None:
    """``VecNormalize`` kwargs of ``hyperparams.normalize`` (rl-zoo3's key: ``true`` or a mapping
    of ``VecNormalize`` kwargs), or ``None``."""
    value = cell.hyperparams.get("normalize", False)
    if value is False or value is None:
        return None
    if value is True:
        return {}
    if not isinstance(value, dict) or not set(value) <= {"norm_obs", "norm_reward", "clip_obs", "clip_reward",
                                                         "gamma", "epsilon"}:
        raise ValueError(f"hyperparams.normalize must be true, false or a mapping of VecNormalize kwargs (norm_obs, "
                         f"norm_reward, clip_obs, clip_reward, gamma, epsilon), got {value!r}")
    return dict(value)


def _check_env_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"envs must be a list of gymnasium environment ids, got {value!r}")
    return value


def _parse_variant(name: str, raw: Any) -> Variant:
    if not isinstance(raw, Mapping):
        raise ValueError(f"variants.{name} must be a mapping with at least 'policy', got {raw!r}")
    _unknown(f"variants.{name}", raw, _VARIANT_KEYS)
    policy = raw.get("policy")
    if not isinstance(policy, str) or not policy:
        raise ValueError(f"variants.{name}.policy must be a policy name or dotted path (e.g. MlpPolicy, "
                         f"snnrl_sb3.SpikingQPolicy), got {policy!r}")
    policy_kwargs = _mapping(f"variants.{name}.policy_kwargs", raw.get("policy_kwargs"))
    if raw.get("preset") is not None:
        if "preset" in policy_kwargs and policy_kwargs["preset"] != raw["preset"]:
            raise ValueError(f"variants.{name}: preset {raw['preset']!r} conflicts with policy_kwargs.preset "
                             f"{policy_kwargs['preset']!r}")
        policy_kwargs["preset"] = raw["preset"]
    return Variant(name=name, policy=policy, policy_kwargs=policy_kwargs,
                   hyperparams=_mapping(f"variants.{name}.hyperparams", raw.get("hyperparams")),
                   label=str(raw.get("label") or name))


def _parse_tune(raw: Any, study_envs: tuple[str, ...], study_seeds: tuple[int, ...],
                variants: Mapping[str, Variant]) -> TuneSpec:
    if not isinstance(raw, Mapping):
        raise ValueError(f"tune must be a mapping, got {raw!r}")
    _unknown("tune", raw, {"variant", "envs", "seeds", "n_trials", "space", "objective"})
    variant = check_choice("tune.variant", raw.get("variant"), sorted(variants))
    space = _mapping("tune.space", raw.get("space"))
    if not space:
        raise ValueError("tune.space must name at least one parameter, e.g. "
                         "{'hyperparams.learning_rate': {'type': 'float', 'low': 1e-5, 'high': 1e-3, 'log': true}}")
    for path, spec in space.items():
        head = path.split(".")[0]
        if head not in ("policy_kwargs", "hyperparams") or "." not in path:
            raise ValueError(f"tune.space key {path!r} must start with 'policy_kwargs.' or 'hyperparams.'")
        if not isinstance(spec, Mapping):
            raise ValueError(f"tune.space.{path} must be a mapping with 'type', got {spec!r}")
        kind = check_choice(f"tune.space.{path}.type", spec.get("type"), _TUNE_TYPES)
        if kind == "categorical":
            if not isinstance(spec.get("choices"), list) or not spec["choices"]:
                raise ValueError(f"tune.space.{path}.choices must be a non-empty list")
        else:
            low, high = spec.get("low"), spec.get("high")
            if not (isinstance(low, (int, float)) and isinstance(high, (int, float))) or any(
                    isinstance(x, bool) or not math.isfinite(x) for x in (low, high)) or not low < high:
                raise ValueError(f"tune.space.{path}: low and high must be finite numbers with low < high, got "
                                 f"low={low!r}, high={high!r}")
            if spec.get("log") and low <= 0:
                raise ValueError(f"tune.space.{path}: a log-scale range needs low > 0, got {low!r}")
    envs = tuple(_check_env_id(e) for e in raw.get("envs", study_envs))
    seeds = tuple(check_seed("tune.seeds", s) for s in raw.get("seeds", study_seeds))
    if not envs or not seeds:
        raise ValueError("tune.envs and tune.seeds must not be empty")
    return TuneSpec(variant=variant, envs=envs, seeds=seeds, n_trials=check_int("tune.n_trials",
                    raw.get("n_trials", 20), low=1), space=space,
                    objective=check_choice("tune.objective", raw.get("objective", "final"), ("final", "best")))


def parse_study(raw: Any, path: Path | None = None) -> Study:
    """Validate a study read from YAML (a mapping); every error is a ``ValueError`` naming the key
    and what is allowed."""
    try:
        return _parse_study(raw, path)
    except TypeError as error:  # the shared checkers raise TypeError for a wrong type: one kind of error here
        raise ValueError(str(error)) from None


def _parse_study(raw: Any, path: Path | None) -> Study:
    where = str(path) if path is not None else "study"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: a study file must be a YAML mapping, got {type(raw).__name__}")
    _unknown(where, raw, _TOP_KEYS)
    name = raw.get("name") or (path.stem if path is not None else None)
    if not isinstance(name, str) or not name or any(c in name for c in "/\\ "):
        raise ValueError(f"name must be a non-empty string without '/', '\\' or spaces, got {name!r}")
    algo = check_choice("algo", raw.get("algo"), ALGORITHMS)
    envs_raw = raw.get("envs")
    if not isinstance(envs_raw, list) or not envs_raw:
        raise ValueError(f"envs must be a non-empty list of environment ids, got {envs_raw!r}")
    envs = tuple(_check_env_id(e) for e in envs_raw)
    seeds_raw = raw.get("seeds")
    if not isinstance(seeds_raw, list) or not seeds_raw:
        raise ValueError(f"seeds must be a non-empty list of integers, got {seeds_raw!r}")
    seeds = tuple(check_seed("seeds", s) for s in seeds_raw)
    if len(set(seeds)) != len(seeds) or len(set(envs)) != len(envs):
        raise ValueError(f"envs and seeds must not repeat, got envs={list(envs)}, seeds={list(seeds)}")
    budget = check_int("budget", raw.get("budget"), low=1)
    eval_raw = _mapping("eval", raw.get("eval"))
    _unknown("eval", eval_raw, {"freq", "episodes", "deterministic"})
    protocol = EvalProtocol(freq=check_int("eval.freq", eval_raw.get("freq", max(budget // 10, 1)), low=1),
                            episodes=check_int("eval.episodes", eval_raw.get("episodes", 10), low=1),
                            deterministic=bool(eval_raw.get("deterministic", True)))
    variants_raw = raw.get("variants")
    if not isinstance(variants_raw, Mapping) or not variants_raw:
        raise ValueError("variants must be a non-empty mapping of name -> {policy, policy_kwargs, ...}")
    variants = {}
    for vname, vraw in variants_raw.items():
        if not isinstance(vname, str) or not vname or any(c in vname for c in "/\\ "):
            raise ValueError(f"variant names must be non-empty strings without '/', '\\' or spaces, got {vname!r}")
        variants[vname] = _parse_variant(vname, vraw)
    baseline = raw.get("baseline", "ann" if "ann" in variants else None)
    if baseline is not None:
        baseline = check_choice("baseline", baseline, sorted(variants))
    env_hyperparams = {str(k): _mapping(f"env_hyperparams.{k}", v)
                       for k, v in _mapping("env_hyperparams", raw.get("env_hyperparams")).items()}
    for env, overrides in env_hyperparams.items():
        check_choice("env_hyperparams", env, envs)
        for key in ("budget", "n_envs"):  # the two study-level settings an environment may override
            if key in overrides:
                check_int(f"env_hyperparams.{env}.{key}", overrides[key], low=1)
    random_scores = {}
    for env, score in _mapping("random_scores", raw.get("random_scores")).items():
        check_choice("random_scores", env, envs)
        if not isinstance(score, (int, float)) or isinstance(score, bool):
            raise ValueError(f"random_scores.{env} must be a number, got {score!r}")
        random_scores[env] = float(score)
    claims = []
    for i, claim in enumerate(raw.get("claims") or []):
        if not isinstance(claim, Mapping):
            raise ValueError(f"claims[{i}] must be a mapping with name, better, worse")
        _unknown(f"claims[{i}]", claim, {"name", "better", "worse", "relation", "margin"})
        better = check_choice(f"claims[{i}].better", claim.get("better"), sorted(variants))
        worse = check_choice(f"claims[{i}].worse", claim.get("worse"), sorted(variants))
        relation = check_choice(f"claims[{i}].relation", claim.get("relation", "beats"), ("beats", "matches"))
        margin = claim.get("margin", 0.15)
        if not isinstance(margin, (int, float)) or isinstance(margin, bool) or not 0 < margin < 0.5:
            raise ValueError(f"claims[{i}].margin must be a number in (0, 0.5), got {margin!r}")
        claims.append({"name": str(claim.get("name") or f"{better} {relation} {worse}"), "better": better,
                       "worse": worse, "relation": relation, "margin": float(margin)})
    checkpoint_freq = check_int("checkpoint_freq", raw.get("checkpoint_freq", max(budget // 10, 1)), low=1)
    tune = None if raw.get("tune") is None else _parse_tune(raw["tune"], envs, seeds, variants)
    study = Study(name=name, algo=algo, envs=envs, seeds=seeds, budget=budget,
                  n_envs=check_int("n_envs", raw.get("n_envs", 1), low=1), eval=protocol,
                  checkpoint_freq=checkpoint_freq, diagnostics=bool(raw.get("diagnostics", False)),
                  hyperparams=_mapping("hyperparams", raw.get("hyperparams")), env_hyperparams=env_hyperparams,
                  variants=variants, baseline=baseline, random_scores=random_scores, claims=tuple(claims),
                  tune=tune, description=str(raw.get("description") or ""), path=path)
    for env in envs:  # settings read only when a run starts: checked now, not hours into a study
        for variant in variants:
            normalize_kwargs(study.cell(variant, env, seeds[0]))
    return study



def load_study(path: str | Path) -> Study:
    """Read and validate a study file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"study file {str(path)!r} does not exist")
    with path.open() as f:
        try:
            raw = yaml.safe_load(f)
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: not valid YAML: {error}") from None
    return parse_study(raw, path)


def resolve_object(name: str, what: str) -> Any:
    """A dotted path (``snnrl_sb3.SpikingQPolicy``), a class exported by ``snnrl_sb3``
    (``SpikingQPolicy``), or for policies SB3's own names (``MlpPolicy``: returned as the string)."""
    if what == "policy" and name in ("MlpPolicy", "CnnPolicy", "MultiInputPolicy"):
        return name
    module_name, _, attr = name.rpartition(".")
    if not module_name:
        module_name, attr = "snnrl_sb3", name
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        raise ValueError(f"{what} {name!r} is neither an SB3 policy name nor an importable dotted path") from None
