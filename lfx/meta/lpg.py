"""LPG and TA-LPG: a backward recurrent network that produces the agent's update targets.

Learned Policy Gradient (Oh et al. 2020, "Discovering Reinforcement Learning Algorithms",
arXiv:2007.08794). At every step t of an agent trajectory the LPG network η reads

    x_t = [r_t, d_t, π(a_t|s_t), φ(y(s_t)), φ(y(s_{t+1}))]   (+ [n/N, log N] for TA-LPG)

with d_t the termination flag and φ a small MLP (width 16) embedding the agent's m-dim prediction
vector y (a softmax), and runs a GRU BACKWARDS in time (reset where an episode ended), so each target
can depend on the future of its episode. Heads give a scalar policy target π̂_t and a prediction
target ŷ_t = softmax(W h_t). The agent minimises

    L(θ) = -E_t[ π̂_t log π_θ(a_t|s_t) ] + β_y E_t[ KL(y_θ(s_t) ‖ ŷ_t) ],

i.e. it follows π̂ as a policy-gradient "advantage" and moves its predictions towards ŷ (targets are
constants for the agent's gradient; meta-gradients flow through them into η). TA-LPG (Jackson et al.
2024, "Discovering Temporally-Aware Reinforcement Learning Algorithms", arXiv:2402.05828) appends
the training progress n/N and log N to every x_t.

One idea per file, all re-exported here: the network (`lfx.meta.lpg_network`: `LPGConfig`,
`init_lpg`, `lpg_targets`), the agent and its lifetimes (`lfx.meta.lpg_agent`: `make_agent`,
`make_lpg_train`, `masked_final_mean`), the ES fitness with antithetic task sampling
(`lfx.meta.lpg_fitness`) and the meta-gradient meta-loss (`lfx.meta.lpg_metagrad`).
"""

from lfx.meta.lpg_agent import (
    AgentState,
    agent_apply,
    agent_loss,
    init_agent,
    make_agent,
    make_lpg_train,
    masked_final_mean,
)
from lfx.meta.lpg_fitness import make_lpg_fitness
from lfx.meta.lpg_metagrad import make_lpg_metagrad
from lfx.meta.lpg_network import LPGConfig, init_lpg, lpg_targets

__all__ = [
    "AgentState", "LPGConfig", "agent_apply", "agent_loss", "init_agent", "init_lpg",
    "lpg_targets", "make_agent", "make_lpg_fitness", "make_lpg_metagrad", "make_lpg_train",
    "masked_final_mean",
]
