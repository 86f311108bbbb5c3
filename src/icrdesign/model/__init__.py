"""Property-structured VAE over the invertible crystal representation (FTCP supplementary S6).

>>> from icrdesign.model import load_trained
>>> model = load_trained(Path("results/model"))
>>> z = model.encode_mean(raw_icr)                  # N x latent
>>> structures = model.icr.decode(model.decode(z))  # list[Structure | None]
>>> model.predict_properties(z)["band_gap"]          # eV
"""

from icrdesign.model.network import Architecture, PropertyVAE, vae_loss
from icrdesign.model.pipeline import train_model
from icrdesign.model.trained import PropertyScaler, TrainedModel, load_trained
from icrdesign.model.training import TrainingData, fit, load_checkpoint


def main(argv: list[str]) -> int:
    """``icrdesign train``: see icrdesign.model.cli."""
    from icrdesign.model.cli import main as cli_main

    return cli_main(argv)


__all__ = [
    "Architecture",
    "PropertyScaler",
    "PropertyVAE",
    "TrainedModel",
    "TrainingData",
    "fit",
    "load_checkpoint",
    "load_trained",
    "main",
    "train_model",
    "vae_loss",
]
