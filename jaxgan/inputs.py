"""What G takes and what D judges: the conditioning of a GAN variant, as a value of the step.

The step conditions both networks on a *condition* ``c``: for the real samples it comes from
the batch (:meth:`real_condition`), for the generated ones the variant supplies it
(:meth:`fake_condition`: nothing, labels drawn at random, or the batch's own source image).
G is called as ``G(*g_args(z, c))`` and D as ``D(*d_args(x, c))``:

- :class:`Unconditional`: ``G(z)``, ``D(x)``;
- :class:`ClassConditional` (cGAN, Mirza & Osindero 2014): ``G(z, y)``, ``D(x, y)``, the real
  labels in ``batch["y"]``, uniform random ones for the fakes;
- :class:`AuxiliaryClassifier` (AC-GAN, Odena et al. 2017): ``G(z, y)``, ``D(x)`` returning
  ``(logits, class_logits)``, with the classification losses as its terms;
- :class:`FromBatch` (image-to-image, pix2pix's recipe): ``G(batch[source])`` (and noise if
  asked), D judging ``(x, source)`` pairs.

A variant of one's own is any object with these methods (and ``reads``, the batch entries it
uses besides ``"x"``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from jaxgan.axis import DataAxis
from jaxgan.terms import ClassLoss, GeneratorClassLoss

Array = jax.Array
# Folded into an update's key for the labels a conditional G is asked for.
LABEL_STREAM = 8


@dataclasses.dataclass(frozen=True)
class Unconditional:
    """``G(z)`` and ``D(x)``: the plain GAN."""

    reads: ClassVar[tuple[str, ...]] = ()
    d_terms: ClassVar[tuple] = ()
    g_terms: ClassVar[tuple] = ()

    def real_condition(self, batch: dict[str, Array]) -> Any:
        return None

    def fake_condition(self, key: Array, batch: dict[str, Array], axis: DataAxis, n: int) -> Any:
        return None

    def init_condition(self, n: int, batch: dict[str, Array] | None) -> Any:
        return None

    def g_args(self, z: Array, condition: Any) -> tuple:
        if condition is not None:
            raise ValueError(
                "labels (a condition) given to an unconditional generator; build the step with "
                "inputs=ClassConditional(num_classes) or AuxiliaryClassifier(num_classes)"
            )
        return (z,)

    def d_args(self, x: Array, condition: Any) -> tuple:
        return (x,)


@dataclasses.dataclass(frozen=True)
class ClassConditional:
    """The cGAN: G and D both take integer labels after their input.

    Attributes:
      num_classes: the labels' number of classes (at least 2).
    """

    num_classes: int
    reads: ClassVar[tuple[str, ...]] = ("y",)
    d_terms: ClassVar[tuple] = ()
    g_terms: ClassVar[tuple] = ()

    def __post_init__(self):
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise ValueError(f"a conditional GAN needs num_classes >= 2, got {self.num_classes}")

    def real_condition(self, batch: dict[str, Array]) -> Array:
        if "y" not in batch:
            raise ValueError(
                f"a {type(self).__name__} step needs the real samples' labels in batch['y']"
            )
        return batch["y"]

    def fake_condition(self, key: Array, batch: dict[str, Array], axis: DataAxis, n: int) -> Array:
        """Uniform random labels for the ``n`` generated samples (drawn for the global batch)."""
        key = jax.random.fold_in(key, LABEL_STREAM)
        return axis.rows(
            key, n, lambda k, rows: jax.random.randint(k, (rows,), 0, self.num_classes)
        )

    def init_condition(self, n: int, batch: dict[str, Array] | None) -> Array:
        return jnp.zeros((n,), jnp.int32)

    def g_args(self, z: Array, condition: Array | None) -> tuple:
        if condition is None:
            raise ValueError(f"a {type(self).__name__} generator needs labels: pass them")
        return (z, condition)

    def d_args(self, x: Array, condition: Array) -> tuple:
        return (x, condition)


@dataclasses.dataclass(frozen=True)
class AuxiliaryClassifier(ClassConditional):
    """AC-GAN: G takes labels; D takes none and returns ``(logits, class_logits)``; D adds the
    classification loss on real (and generated) samples, G on its own.

    Attributes:
      num_classes: the labels' number of classes.
      weight: the classification losses' weight in both networks' losses.
      fake_in_d: D's classification loss covers generated samples too (Odena et al.); False
        trains D's classifier on real samples only.
    """

    weight: float = 1.0
    fake_in_d: bool = True

    def __post_init__(self):
        super().__post_init__()
        if not self.weight >= 0:
            raise ValueError(f"ac_weight must be >= 0, got {self.weight}")

    @property
    def d_terms(self) -> tuple:
        return (ClassLoss(self.weight, on_fake=self.fake_in_d),)

    @property
    def g_terms(self) -> tuple:
        return (GeneratorClassLoss(self.weight),)

    def d_args(self, x: Array, condition: Array) -> tuple:
        return (x,)


@dataclasses.dataclass(frozen=True)
class FromBatch:
    """G translates an input from the batch; D judges (sample, source) pairs.

    Attributes:
      source: the batch entry G takes (the source image of pix2pix); its rows pair with
        ``batch["x"]``, the real outputs.
      noise: also pass the latent noise to G, after the source.
      pairs: D takes the source after the sample (a conditional D, pix2pix's); False
        judges the sample alone.
    """

    source: str = "source"
    noise: bool = False
    pairs: bool = True
    d_terms: ClassVar[tuple] = ()
    g_terms: ClassVar[tuple] = ()

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.source,)

    def real_condition(self, batch: dict[str, Array]) -> Array:
        if self.source not in batch:
            raise ValueError(
                f"this step's generator takes batch[{self.source!r}]; the batch has none"
            )
        return batch[self.source]

    def fake_condition(self, key: Array, batch: dict[str, Array], axis: DataAxis, n: int) -> Array:
        return self.real_condition(batch)

    def init_condition(self, n: int, batch: dict[str, Array] | None) -> Array:
        if batch is None or self.source not in batch:
            raise ValueError(
                f"GANState.create needs example_batch with {self.source!r} to initialise a "
                "generator that takes an input from the batch"
            )
        return jnp.asarray(batch[self.source][:n])

    def g_args(self, z: Array, condition: Array | None) -> tuple:
        if condition is None:
            raise ValueError(f"this generator translates batch[{self.source!r}]: pass the source")
        return (condition, z) if self.noise else (condition,)

    def d_args(self, x: Array, condition: Array) -> tuple:
        return (x, condition) if self.pairs else (x,)
