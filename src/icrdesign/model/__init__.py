"""Property-structured VAE over the invertible crystal representation (FTCP supplementary S6).

>>> from icrdesign.model import load_trained
>>> model = load_trained(Path("results/model"))
>>> z = model.encode_mean(raw_icr)                  # N x latent
>>> structures = model.icr.decode(model.decode(z))  # list[Structure | None]
>>> model.predict_properties(z)["band_gap"]          # eV

Names are imported on first use, so the network and training loop (``icrdesign.model.network``,
``icrdesign.model.training``) load without pymatgen, e.g. for benchmarks on a bare GPU machine.
"""

from __future__ import annotations

from icrdesign.lazy import lazy_exports

_EXPORTS = {
    "Architecture": "network",
    "PropertyVAE": "network",
    "vae_loss": "network",
    "TrainingData": "training",
    "fit": "training",
    "load_checkpoint": "training",
    "TrainedModel": "trained",
    "load_trained": "trained",
    "train_model": "pipeline",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = list(_EXPORTS)
