"""TAXONS' autoencoder: a small flax conv encoder / decoder on [S, S] images of final states.

Paolo et al., "Unsupervised Learning and Exploration of Reachable Outcome Space" (TAXONS,
arXiv:1909.05508 / ICRA 2020): the latent code z = enc(image) [latent 10] is the behaviour
descriptor; the surprise of an image is its reconstruction error ||dec(enc(x)) - x||^2 / S^2.
The paper uses a conv autoencoder on 64 x 64 images; lfx offers that shape (`kind="conv"`) and, as the
CPU default, a dense autoencoder on 32 x 32 images (`kind="mlp"`, hidden 128).

Training minimises the mean squared reconstruction error with Adam (learning rate traced, in the
optimiser state: `HParams.ae_lr`) over the valid rows of a fixed-size image buffer (`train_steps`,
jittable), or with a validation split and early stopping (`train_early_stopping`, STAX
arXiv:2203.15474), which loops on the host over jitted epochs.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


@dataclasses.dataclass(frozen=True)
class AEConfig:
    image_size: int = 32
    latent_dim: int = 10
    channels: tuple[int, int] = (8, 16)
    hidden: int = 128
    kind: str = "mlp"  # "mlp" | "conv"
    batch_size: int = 64

    def __post_init__(self):
        if self.image_size % 4 or self.image_size <= 0:
            raise ValueError(f"image_size must be a positive multiple of 4, got {self.image_size}.")
        if self.kind not in ("mlp", "conv"):
            raise ValueError(f"kind must be 'mlp' or 'conv', got {self.kind!r}.")


class ConvAE(nn.Module):
    config: AEConfig

    def setup(self):
        c = self.config
        self.enc1 = nn.Conv(c.channels[0], (4, 4), strides=(2, 2))
        self.enc2 = nn.Conv(c.channels[1], (4, 4), strides=(2, 2))
        self.to_z = nn.Dense(c.latent_dim)
        self.from_z = nn.Dense((c.image_size // 4) ** 2 * c.channels[1])
        self.dec1 = nn.ConvTranspose(c.channels[0], (4, 4), strides=(2, 2))
        self.dec2 = nn.ConvTranspose(1, (4, 4), strides=(2, 2))

    def encode(self, x):  # [N, S, S] -> [N, L]
        h = nn.relu(self.enc1(x[..., None]))
        h = nn.relu(self.enc2(h))
        return self.to_z(h.reshape(h.shape[0], -1))

    def decode(self, z):  # [N, L] -> [N, S, S]
        c = self.config
        q = c.image_size // 4
        h = nn.relu(self.from_z(z)).reshape(z.shape[0], q, q, c.channels[1])
        h = nn.relu(self.dec1(h))
        return nn.sigmoid(self.dec2(h))[..., 0]

    def __call__(self, x):
        return self.decode(self.encode(x))


class MLPAE(nn.Module):
    """Dense encoder S^2 -> hidden -> latent and mirror decoder (CPU-friendly: XLA's CPU
    transposed-convolution gradients are slow)."""

    config: AEConfig

    def setup(self):
        c = self.config
        self.e1 = nn.Dense(c.hidden)
        self.to_z = nn.Dense(c.latent_dim)
        self.d1 = nn.Dense(c.hidden)
        self.out = nn.Dense(c.image_size**2)

    def encode(self, x):
        return self.to_z(nn.relu(self.e1(x.reshape(x.shape[0], -1))))

    def decode(self, z):
        s = self.config.image_size
        return nn.sigmoid(self.out(nn.relu(self.d1(z)))).reshape(z.shape[0], s, s)

    def __call__(self, x):
        return self.decode(self.encode(x))


def make_autoencoder(config: AEConfig):
    """Returns (init, encode, surprise, loss) pure functions over the flax params."""
    model = ConvAE(config) if config.kind == "conv" else MLPAE(config)

    def init(key):
        return model.init(key, jnp.zeros((1, config.image_size, config.image_size)))

    def encode(params, images):
        return model.apply(params, images, method=type(model).encode)

    def surprise(params, images):
        recon = model.apply(params, images)
        return jnp.mean((recon - images) ** 2, axis=(-2, -1))

    def loss(params, images, mask=None):
        err = surprise(params, images)
        if mask is None:
            return jnp.mean(err)
        return jnp.sum(err * mask) / jnp.maximum(mask.sum(), 1)

    return init, encode, surprise, loss


def make_trainer(config: AEConfig):
    """Returns (init_opt, train_steps, train_early_stopping), the last two jitted (built here once).

    init_opt(params, lr) -> Adam state carrying the (traced) learning rate `lr`.
    train_steps(key, params, opt_state, images, valid, num_steps) -> (params, opt_state, losses).
    train_early_stopping(key, params, images, valid, lr, ...) -> (best params, epochs run).
    """
    _, _, _, loss = make_autoencoder(config)
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)

    def init_opt(params, lr):
        state = opt.init(params)
        return state._replace(hyperparams={**state.hyperparams,
                                           "learning_rate": jnp.asarray(lr, jnp.float32)})

    def train_steps(key, params, opt_state, images, valid, num_steps: int):
        """num_steps Adam steps on minibatches drawn uniformly from the valid rows of images [M, S, S]."""
        prob = valid / jnp.maximum(valid.sum(), 1)

        def body(carry, k):
            params, opt_state = carry
            idx = jax.random.choice(k, images.shape[0], (config.batch_size,), p=prob)
            value, g = jax.value_and_grad(loss)(params, images[idx])
            upd, opt_state = opt.update(g, opt_state, params)
            return (optax.apply_updates(params, upd), opt_state), value

        (params, opt_state), losses = jax.lax.scan(body, (params, opt_state),
                                                   jax.random.split(key, num_steps))
        return params, opt_state, losses

    train_jit = jax.jit(train_steps, static_argnums=5)
    val_loss = jax.jit(loss)

    def train_early_stopping(key, params, images, valid, lr, *, steps_per_epoch=50, max_epochs=20,
                             patience=3, val_fraction=0.2):
        """Host loop: random validation split, jitted epochs, stop after `patience` epochs without a
        new best validation loss; returns the best parameters and the number of epochs run."""
        k_split, key = jax.random.split(key)
        is_val = (jax.random.uniform(k_split, valid.shape) < val_fraction) & valid
        is_train = valid & ~is_val
        opt_state = init_opt(params, lr)
        best, best_params, bad, epochs = jnp.inf, params, 0, 0
        for e in range(max_epochs):
            params, opt_state, _ = train_jit(jax.random.fold_in(key, e), params, opt_state, images,
                                             is_train.astype(jnp.float32), steps_per_epoch)
            v = float(val_loss(params, images, is_val.astype(jnp.float32)))
            epochs = e + 1
            if v < best:
                best, best_params, bad = v, params, 0
            else:
                bad += 1
                if bad >= patience:
                    break
        return best_params, epochs

    return init_opt, train_jit, train_early_stopping
