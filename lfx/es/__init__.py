"""Evolution strategies: an evosax adapter (fitness maximised), BBOB and neuroevolution problems,
whole runs as one `lax.scan` (`make_train` recipe, `make_search`), and EvoLLM (a language model as
the recombination operator)."""

from lfx.es.run import SearchConfig, SearchHParams, SearchRecipe, make_search, make_train
from lfx.es.strategies import STRATEGIES, Strategy, make_strategy

__all__ = ["STRATEGIES", "SearchConfig", "SearchHParams", "SearchRecipe", "Strategy", "make_search",
           "make_strategy", "make_train"]
