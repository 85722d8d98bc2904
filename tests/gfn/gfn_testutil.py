"""Shared helpers for the GFlowNet tests: a table-lookup policy that plays an exact flow."""

import jax
import jax.numpy as jnp
import numpy as np

from lfx.gfn.exact import _batch_state
from lfx.gfn.networks import PolicyOutput
from lfx.gfn.rollout import NEG


def table_policy(env, env_params, flows):
    """`policy_apply(params, obs)` returning the exact flow's PF/PB logits and log F by lookup.

    Observations are one-hot per slot, so obs . obs' equals the number of slots iff the states agree.
    """
    all_obs = jax.vmap(env.get_obs, in_axes=(0, None))(_batch_state(env, flows.states), env_params)
    fwd = jnp.asarray(np.where(np.isfinite(flows.log_pf), flows.log_pf, NEG), jnp.float32)
    bwd = jnp.asarray(np.where(np.isfinite(flows.log_pb), flows.log_pb, NEG), jnp.float32)
    lf = jnp.asarray(flows.log_flow, jnp.float32)

    def apply(params, obs):
        idx = jnp.argmax(obs @ all_obs.T, axis=-1)
        return PolicyOutput(fwd[idx], bwd[idx], lf[idx])

    return apply
