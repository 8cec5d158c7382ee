"""Image-to-image translation: PatchGAN logits through the step, the adversarial weight, the
U-Net and PatchGAN against the reference's sizes, paired data, paired metrics, and the pix2pix
experiment (a run that learns, bad input)."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import expect_one_line_error
from PIL import Image

from jaxgan import data, evaluate, generate, metrics, pairs
from jaxgan.experiments import pix2pix
from jaxgan.inputs import FromBatch
from jaxgan.models import MLPGenerator
from jaxgan.state import GANState, StepConfig
from jaxgan.step import logits_of, train_step
from jaxgan.terms import L1ToTarget, LabelTargets, R1Penalty, R2Penalty
from jaxgan.translation import PatchDiscriminator, UNetGenerator, patch_receptive_field

# --- patch logits through the step ----------------------------------------------------------


class PerSample(nn.Module):
    """D with one logit per sample; ``patches`` > 0 copies it onto a patches × patches grid
    (plus ``offsets``, a fixed per-patch shift), returned ``[n, p, p]`` or ``[n, p, p, 1]``."""

    patches: int = 0
    offsets: bool = False
    channel: bool = False

    @nn.compact
    def __call__(self, x):
        logit = nn.Dense(1)(x)[:, 0]
        if not self.patches:
            return logit
        p = self.patches
        shift = jnp.arange(p * p, dtype=jnp.float32).reshape(p, p) if self.offsets else 0.0
        out = jnp.broadcast_to(logit[:, None, None], (x.shape[0], p, p)) + shift
        return out[..., None] if self.channel else out


def state_with(config, discriminator):
    return GANState.create(
        generator=MLPGenerator((2,), hidden=(8,)),
        discriminator=discriminator,
        g_tx=optax.sgd(0.1),
        d_tx=optax.sgd(0.1),
        key=jax.random.key(0),
        config=config,
    )


BATCH = {"x": jax.random.normal(jax.random.key(5), (8, 2))}
SKIMAGE_SSIM = 0.9418989261184796
TARGETS = LabelTargets(real=(0.9, 1.0), flip=0.25)


@pytest.mark.parametrize(
    "config",
    [
        StepConfig(latent_dim=2, targets=TARGETS, d_terms=(R1Penalty(2.0),)),
        StepConfig(loss="rpgan", latent_dim=2, d_terms=(R1Penalty(1.0), R2Penalty(1.0))),
        StepConfig(loss="ragan", latent_dim=2),
    ],
    ids=["bce_targets_r1", "rpgan_r1_r2", "ragan"],
)
@pytest.mark.parametrize("channel", [False, True], ids=["nhw", "nhw1"])
def test_patch_logits_that_all_agree_train_as_one_logit_per_sample(config, channel):
    """A PatchGAN whose patches all say what a per-sample D says: the same losses, D(x),
    D(G(z)) and updates (each sample's target shared by its patches, the penalties on the
    mean patch logit, relativistic pairs patch by patch)."""
    plain, plain_metrics = train_step(state_with(config, PerSample()), BATCH)
    patched, patch_metrics = train_step(state_with(config, PerSample(3, channel=channel)), BATCH)
    for name in ("d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm"):
        assert float(patch_metrics[name]) == pytest.approx(float(plain_metrics[name]), rel=1e-5)
    for a, b in zip(
        jax.tree.leaves(plain.d.params), jax.tree.leaves(patched.d.params), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_the_losses_see_every_patch_logit():
    """A probe loss, D's mean real logit, by hand: every patch's own value counts."""
    seen = []

    def mean_real(real, fake):
        seen.append(real.shape)
        return jnp.mean(real) + 0.0 * jnp.mean(fake)

    from jaxgan.losses import GANLoss

    loss = GANLoss("probe", mean_real, lambda f, r: -jnp.mean(f))
    state = state_with(StepConfig(loss=loss, latent_dim=2), PerSample(3, offsets=True))
    dense = state.d.params["Dense_0"]
    by_hand = jnp.mean(BATCH["x"] @ dense["kernel"] + dense["bias"]) + jnp.mean(jnp.arange(9.0))
    _, metrics = train_step(state, BATCH)  # donates the state
    assert seen[0] == (8, 3, 3)
    assert float(metrics["d_loss"]) == pytest.approx(float(by_hand), rel=1e-6)


def test_logits_of_accepts_samples_and_patches_and_refuses_class_scores():
    for shape, out in [((4,), (4,)), ((4, 1), (4,)), ((4, 5, 5), (4, 5, 5)), ((4, 5, 5, 1),) * 2]:
        assert logits_of(jnp.zeros(shape)).shape == (out if len(out) != 4 else (4, 5, 5))
    for shape in [(4, 2), (4, 5, 5, 2), (4, 5)]:
        with pytest.raises(ValueError, match=r"one logit per sample.*or one per patch"):
            logits_of(jnp.zeros(shape))


# --- the adversarial weight -----------------------------------------------------------------


class Translator(nn.Module):
    @nn.compact
    def __call__(self, source):
        return nn.Dense(2)(nn.relu(nn.Dense(8)(source)))


class PairCritic(nn.Module):
    @nn.compact
    def __call__(self, x, source):
        return nn.Dense(1)(jnp.concatenate([x, source], axis=-1))[:, 0]


def translation_metrics(adv_weight: float) -> dict:
    pairs_batch = {**BATCH, "source": BATCH["x"][::-1] * 0.5}
    config = StepConfig(
        inputs=FromBatch(), g_terms=(L1ToTarget(10.0),), adv_weight=adv_weight, latent_dim=2
    )
    state = GANState.create(
        generator=Translator(), discriminator=PairCritic(), g_tx=optax.sgd(0.1),
        d_tx=optax.sgd(0.1), key=jax.random.key(0), config=config, example_batch=pairs_batch,
    )  # fmt: skip
    return {k: float(v) for k, v in train_step(state, pairs_batch)[1].items()}


def test_adv_weight_scales_the_gan_term_of_gs_loss_only():
    """g_loss = w * GAN loss + 10 * L1 (logged as g_l1), the same D update for every w."""
    full, half, none = (translation_metrics(w) for w in (1.0, 0.5, 0.0))
    adversarial = full["g_loss"] - 10 * full["g_l1"]
    assert adversarial > 0.1  # the non-saturating loss of a D near chance: about log 2
    assert half["g_loss"] == pytest.approx(0.5 * adversarial + 10 * half["g_l1"], rel=1e-5)
    assert none["g_loss"] == pytest.approx(10 * none["g_l1"], rel=1e-6)
    assert none["d_loss"] == full["d_loss"] and none["g_l1"] == full["g_l1"]
    with pytest.raises(ValueError, match="adv_weight must be >= 0"):
        StepConfig(adv_weight=-1.0)


# --- the networks ---------------------------------------------------------------------------


def param_count(module, *inputs) -> int:
    variables = jax.eval_shape(
        lambda: module.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, *inputs)
    )
    return sum(leaf.size for leaf in jax.tree.leaves(variables["params"]))


def test_unet_and_patchgan_have_the_reference_implementations_sizes():
    """pix2pix's unet_256 (ngf 64, batch norm) prints 54.414 M parameters and its 70×70
    PatchGAN on (A, B) pairs 2.769 M, 30×30 logits on 256×256 images."""
    image = jnp.zeros((1, 256, 256, 3))
    assert round(param_count(UNetGenerator(3, 64, 8), image) / 1e6, 3) == 54.414
    d = PatchDiscriminator(64, 3)
    assert round(param_count(d, image, image) / 1e6, 3) == 2.769
    logits = jax.eval_shape(lambda: d.init_with_output(jax.random.key(0), image, image)[0])
    assert logits.shape == (1, 30, 30)
    assert patch_receptive_field(3) == 70 and patch_receptive_field(1) == 16


def test_unet_dropout_is_its_noise_at_sampling_and_sizes_must_divide():
    source = jax.random.normal(jax.random.key(0), (2, 16, 16, 1))
    outputs = {}
    for keep in (True, False):
        g = UNetGenerator(1, 4, 4, dropout_at_sampling=keep)
        variables = g.init(jax.random.key(1), source, train=False)
        outputs[keep] = [
            g.apply(variables, source, train=False, rngs={"dropout": jax.random.key(k)})
            for k in (2, 3)
        ]
    assert outputs[True][0].shape == (2, 16, 16, 1)
    first, second = (np.asarray(o) for o in outputs[True])
    assert np.abs(first - second).max() > 0.01 * np.abs(first).max()  # weights N(0, 0.02)
    np.testing.assert_array_equal(outputs[False][0], outputs[False][1])
    with pytest.raises(ValueError, match="divisible by 16"):
        UNetGenerator(1, 4, 4).init(jax.random.key(0), jnp.zeros((1, 24, 24, 1)), train=False)


# --- paired data ----------------------------------------------------------------------------


def write_pair(path, left, right):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([left, right], axis=1)).save(path)


def solid(color, size=8):
    return np.full((size, size, 3), color, np.uint8)


def test_aligned_folders_split_each_file_into_source_and_target(tmp_path):
    for i in range(3):
        write_pair(tmp_path / "train" / f"{i}.png", solid((200, 0, i)), solid((0, 0, 250)))
    a_to_b = pairs.load_aligned_folder(tmp_path, "train", 4)
    assert a_to_b["source"].shape == a_to_b["target"].shape == (3, 4, 4, 3)
    np.testing.assert_array_equal(a_to_b["source"][2, 0, 0], (200, 0, 2))
    np.testing.assert_array_equal(a_to_b["target"][0, 3, 3], (0, 0, 250))
    b_to_a = pairs.load_aligned_folder(tmp_path, "train", 4, direction="BtoA")
    np.testing.assert_array_equal(b_to_a["source"], a_to_b["target"])
    assert pairs.eval_split(tmp_path) == "val"
    with pytest.raises(data.DataError, match=r"test is not a directory.*\(.* has train\)"):
        pairs.load_aligned_folder(tmp_path, "test", 4)
    Image.fromarray(solid(9)).save(tmp_path / "train" / "3.png")  # a square: no pair
    with pytest.raises(data.DataError, match=r"3.png is 8x8, not an A\|B pair"):
        pairs.load_aligned_folder(tmp_path, "train", 4)


def test_inpainting_pairs_blank_the_lower_half_of_the_source_only():
    images = np.random.default_rng(0).integers(1, 256, (3, 28, 28, 1), dtype=np.uint8)
    kept = images.copy()
    task = pairs.inpaint_pairs(images)
    np.testing.assert_array_equal(task["target"], kept)
    np.testing.assert_array_equal(task["source"][:, :14], kept[:, :14])
    assert not task["source"][:, 14:].any() and images.all()


# --- paired metrics -------------------------------------------------------------------------


def test_psnr_and_ssim_by_hand():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.9, (2, 16, 16, 1))
    assert metrics.psnr(x + 0.1, x) == pytest.approx(20.0)  # MSE 0.01 of range 1
    assert metrics.ssim(x, x) == pytest.approx(1.0)
    a, b = np.full((1, 12, 12, 1), 0.2), np.full((1, 12, 12, 1), 0.6)
    c1 = 0.01**2  # flat images: only SSIM's luminance term, (2ab + C1) / (a^2 + b^2 + C1)
    assert metrics.ssim(a, b) == pytest.approx((2 * 0.2 * 0.6 + c1) / (0.04 + 0.36 + c1))
    # scikit-image 0.26's structural_similarity(gaussian_weights=True, sigma=1.5,
    # use_sample_covariance=False, data_range=1) of this pair (the mean over its valid region)
    noisy = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    assert metrics.ssim(noisy[:1], x[:1]) == pytest.approx(SKIMAGE_SSIM, abs=1e-6)
    with pytest.raises(ValueError, match="window is larger"):
        metrics.ssim(x[:, :8, :8], x[:, :8, :8])
    with pytest.raises(ValueError, match="of one shape"):
        metrics.paired_scores(x[:1], x)


# --- the experiment -------------------------------------------------------------------------


def write_inversion_task(root, rng, counts=(("train", 200), ("test", 50))):
    """An aligned dataset whose B is A's negative: 16x16 random blobs (smoothed noise)."""
    for split, count in counts:
        for i in range(count):
            noise = rng.uniform(0, 1, (4, 4, 3))
            a = (255 * noise.repeat(4, axis=0).repeat(4, axis=1)).astype(np.uint8)
            write_pair(root / split / f"{i:03d}.png", a, 255 - a)


def test_pix2pix_learns_a_translation_from_an_aligned_folder(tmp_path):
    """5 short epochs learn to invert colours: the outputs end far nearer the targets than the
    sources are (the baseline in summary.json), and the log and files are all there."""
    write_inversion_task(tmp_path / "data", np.random.default_rng(0))
    workdir = tmp_path / "run"
    pix2pix.main([
        "--task", "aligned", "--data-dir", str(tmp_path / "data"), "--workdir", str(workdir),
        "--image-size", "16", "--g-depth", "4", "--d-layers", "1", "--g-width", "8",
        "--d-width", "8", "--batch-size", "20", "--epochs", "5", "--lr-g", "2e-3",
        "--lr-d", "2e-3", "--log-every", "0",
    ])  # fmt: skip
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["num_train"] == 200 and summary["num_test"] == 50 and summary["steps"] == 50
    assert summary["source_l1"] > 0.3  # a negative is far from its positive
    assert summary["test_l1"] < 0.25 * summary["source_l1"], summary
    assert summary["test_psnr"] > summary["source_psnr"] + 6.0
    for name in ("translations.png", "loss_curves.png", "progress.gif", "samples/epoch_0005.png"):
        assert (workdir / name).is_file(), name
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["g_l1"] < 0.5 * records[0]["g_l1"]


def test_pix2pix_inpainting_is_scored_against_the_blank_source(digits_400, tmp_path, capsys):
    """The MNIST task's summary: the network's scores and the blank source's, the same
    numbers for the source as the metrics give by hand."""
    workdir = tmp_path / "run"
    pix2pix.main([
        "--data-dir", str(digits_400), "--workdir", str(workdir), "--epochs", "1",
        "--batch-size", "50", "--g-width", "4", "--d-width", "4", "--g-depth", "3",
        "--d-layers", "1",
    ])  # fmt: skip
    summary = json.loads((workdir / "summary.json").read_text())
    task = pairs.inpaint_pairs(data.pad_images(data.load_idx(digits_400, "test")["image"], 32))
    blank = metrics.paired_scores(task["source"], task["target"])
    assert summary["num_test"] == 200 and summary["steps"] == 8
    for name, value in blank.items():
        assert summary[f"source_{name.removeprefix('test_')}"] == pytest.approx(value), name
    assert 0.3 < summary["source_label_accuracy"] < 0.8  # the top half alone is ambiguous
    for name in ("test_l1", "test_psnr", "test_ssim", "fid_mnist", "label_accuracy"):
        assert np.isfinite(summary[name]) and name in summary
    capsys.readouterr()  # the run's own output
    for main, extra in ((generate.main, ["--out", str(tmp_path / "x.png")]), (evaluate.main, [])):
        # a translation is not sampled from noise
        argv = ["--workdir", str(workdir), *extra]
        expect_one_line_error(capsys, main, argv, "translates source images")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "aligned"], "--task aligned needs --data-dir"),
        (["--task", "aligned", "--data-dir", "{tmp}/none"], "none/train is not a directory"),
        (["--task", "aligned", "--data-dir", "{tmp}/squares"], "not an A|B pair"),
        (["--image-size", "48"], "--image-size 48 does not divide by 2^5 = 32"),
        (["--d-layers", "4"], "--d-layers 4 halves --image-size 32 below the 4x4"),
        (["--d-spectral-norm"], "--d-spectral-norm is not available"),
        (["--adv-weight", "-1"], "--adv-weight must be >= 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    Image.fromarray(solid(9)).save(tmp_path / "square.png")
    (tmp_path / "squares" / "train").mkdir(parents=True)
    Image.fromarray(solid(9)).save(tmp_path / "squares" / "train" / "0.png")
    argv = [a.format(tmp=tmp_path) for a in argv]
    expect_one_line_error(
        capsys, pix2pix.main, ["--workdir", str(tmp_path / "run"), *argv], message
    )
    assert not (tmp_path / "run" / "checkpoints").exists()
