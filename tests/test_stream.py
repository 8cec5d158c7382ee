"""Host-memory data: the step-by-step runner trains exactly as the on-device epoch does."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan.epoch import train_epoch
from jaxgan.models import MLPDiscriminator, MLPGenerator
from jaxgan.state import GANState, StepConfig
from jaxgan.stream import host_epoch_runner, prefetch

BATCH = 25


def make_state() -> GANState:
    return GANState.create(
        generator=MLPGenerator((2,), hidden=(16,)),
        discriminator=MLPDiscriminator((16,)),
        g_tx=optax.adam(1e-3, b1=0.5),
        d_tx=optax.adam(1e-3, b1=0.5),
        key=jax.random.key(3),
        config=StepConfig(d_steps=2, latent_dim=4),
    )


def test_host_runner_matches_the_on_device_epoch_in_whole_and_in_chunks():
    """230 uint8 'samples' (4 steps of 2 x 25 per epoch, 30 left over), scaled on the device
    by ``prepare``; two epochs on device vs. on the host in whole epochs and in halves."""
    raw = np.random.default_rng(0).integers(0, 256, (230, 2), dtype=np.uint8)

    def scale(batch):
        return {"x": batch["x"] / 127.5 - 1.0}

    on_device, device_metrics = make_state(), []
    for _ in range(2):
        on_device, m = train_epoch(on_device, scale({"x": jnp.asarray(raw)}), batch_size=BATCH)
        device_metrics.append(m)

    for chunk in (4, 2):
        run = host_epoch_runner(BATCH, chunk, prepare=scale)
        on_host, host_metrics = make_state(), []
        for _ in range(8 // chunk):
            on_host, m = run(on_host, {"x": raw})
            host_metrics.append(m)
        assert int(on_host.step) == 8
        params = zip(jax.tree.leaves(on_host.g), jax.tree.leaves(on_device.g), strict=True)
        for a, b in params:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        host_losses = np.concatenate([m["d_loss"] for m in host_metrics])
        device_losses = np.concatenate([m["d_loss"] for m in device_metrics])
        np.testing.assert_allclose(host_losses, device_losses, rtol=1e-5)

    with pytest.raises(ValueError, match="cross the epoch's end"):
        host_epoch_runner(BATCH, 3)(on_host.replace(step=jnp.asarray(2)), {"x": raw})


def test_prefetch_keeps_order_and_raises_the_producers_error():
    assert list(prefetch(iter(range(10)), size=2)) == list(range(10))

    def broken():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(prefetch(broken()))
