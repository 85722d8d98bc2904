"""Evolution strategies: an evosax adapter (fitness maximised), BBOB and neuroevolution problems,
whole runs as one `lax.scan`, and EvoLLM (a language model as the recombination operator)."""

from lfx.es.run import make_search
from lfx.es.strategies import STRATEGIES, Strategy, make_strategy

__all__ = ["STRATEGIES", "Strategy", "make_search", "make_strategy"]
